import dataclasses
import functools
import http.server
import shutil
import socket
import threading

import pytest

from microcrystalnet.weights import ModelUnavailableError, locate_weights
from microcrystalnet.weights import cache_dir
from microcrystalnet.classify.models import REFERENCE_2023_11_19 as CARD


@pytest.fixture
def private_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MICROCRYSTALNET_MODEL_DIR", raising=False)
    monkeypatch.setenv("MICROCRYSTALNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def model_server(tmp_path, reference_model_path):
    """A real HTTP server on 127.0.0.1 serving the reference model (and a damaged copy)."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(reference_model_path, served / "model.h5")
    (served / "damaged.h5").write_bytes(reference_model_path.read_bytes()[:-10])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_explicit_path_is_checked(reference_model_path, tmp_path, private_cache):
    assert locate_weights(CARD, reference_model_path) == reference_model_path
    other = tmp_path / "other.h5"
    other.write_bytes(b"not a model")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        locate_weights(CARD, other)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        locate_weights(CARD, tmp_path / "nothing.h5")


def test_model_dir_variable_is_used_before_cache(model_dir_env, reference_model_path):
    assert locate_weights(CARD, download=False) == reference_model_path


def test_download_fills_the_cache_once_and_checks_sha256(model_server, private_cache):
    card = dataclasses.replace(CARD, url=f"{model_server}/model.h5")
    path = locate_weights(card)
    assert path == private_cache / CARD.filename and path.is_file()
    assert locate_weights(card, download=False) == path  # second time: from the cache
    assert not list(private_cache.glob("*.partial"))


def test_damaged_download_is_refused_and_leaves_nothing(model_server, private_cache):
    card = dataclasses.replace(CARD, url=f"{model_server}/damaged.h5")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        locate_weights(card)
    assert not private_cache.exists() or not any(private_cache.iterdir())


def test_damaged_cache_file_is_moved_aside_not_deleted_and_a_good_copy_fetched(model_server, private_cache):
    private_cache.mkdir(parents=True)
    (private_cache / CARD.filename).write_bytes(b"truncated")
    card = dataclasses.replace(CARD, url=f"{model_server}/model.h5")
    assert locate_weights(card).stat().st_size > 1_000_000
    [aside] = private_cache.glob(f"{CARD.filename}.damaged-*")
    assert aside.read_bytes() == b"truncated"


def test_offline_error_names_url_sha256_and_where_to_put_the_file(private_cache):
    with socket.socket() as probe:  # a port nobody listens on: connection refused, as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    card = dataclasses.replace(CARD, url=f"http://127.0.0.1:{port}/model.h5")
    with pytest.raises(ModelUnavailableError) as raised:
        locate_weights(card)
    message = str(raised.value)
    assert card.url in message and CARD.sha256 in message
    assert str(cache_dir() / "models" / CARD.filename) in message and "MICROCRYSTALNET_MODEL_DIR" in message
    assert "pass its path with --model." in message
    with pytest.raises(ModelUnavailableError, match="not on this machine"):
        locate_weights(CARD, download=False)


def test_registered_url_points_at_the_authors_repository():
    assert CARD.url.startswith("https://raw.githubusercontent.com/YaqoobAnsari/MicroCrystalNet-")
    assert CARD.url.endswith("/CNN_2023-11-19_11-47-51_run1.h5") and len(CARD.sha256) == 64


def test_corrupted_cache_file_is_named_and_the_message_says_what_happened(private_cache, caplog):
    private_cache.mkdir(parents=True)
    cached = private_cache / CARD.filename
    cached.write_bytes(b"truncated")
    with pytest.raises(ModelUnavailableError) as raised:
        locate_weights(CARD, download=False)
    message = str(raised.value)
    assert str(cached) in message and "corrupted" in message and "sha256" in message and CARD.sha256 in message
    assert "renamed to" in message and "without --no-download" in message and CARD.url in message
    [aside] = private_cache.glob(f"{CARD.filename}.damaged-*")  # someone's file, maybe: never deleted
    assert aside.read_bytes() == b"truncated" and str(aside) in message and not cached.exists()


def test_corrupted_cache_file_is_named_when_no_fresh_copy_can_be_downloaded(private_cache):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    private_cache.mkdir(parents=True)
    (private_cache / CARD.filename).write_bytes(b"truncated")
    card = dataclasses.replace(CARD, url=f"http://127.0.0.1:{port}/model.h5")
    with pytest.raises(ModelUnavailableError) as raised:
        locate_weights(card)
    message = str(raised.value)
    assert "found corrupted" in message and str(private_cache / CARD.filename) in message
    assert "could not be downloaded" in message
