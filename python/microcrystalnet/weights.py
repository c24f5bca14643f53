"""Finding a model's weights file (classifier, SAM checkpoint): path, environment, cache, download.

Resolution order for a registered weights file:

1. an explicit path given by the caller (``--model PATH``);
2. the folder named by ``MICROCRYSTALNET_MODEL_DIR`` (for offline installs and shared drives);
3. the per-user cache (``$MICROCRYSTALNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/microcrystalnet``,
   else ``~/.cache/microcrystalnet``), sub-folder ``models``;
4. download from the model's URL into the cache, checked against its sha256.

Every file found for a registered model is checked against its sha256, so a truncated
download or a different file is never used silently. A file in the cache with another sha256 (a
damaged copy, or a different file put there by hand) is never used and never deleted: it is
renamed to ``<name>.damaged-<time>`` beside it, a warning names both, and a good copy is fetched;
if none can be, the error says so too. Offline, the error names the URL, the sha256 and where to
put the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

MODEL_DIR_VARIABLE = "MICROCRYSTALNET_MODEL_DIR"
CACHE_DIR_VARIABLE = "MICROCRYSTALNET_CACHE_DIR"
DOWNLOAD_TIMEOUT_S = 60
log = logging.getLogger(__name__)


class ModelUnavailableError(RuntimeError):
    """The model file cannot be found or fetched; the message says how to provide it."""


class WeightsFile(Protocol):
    """A downloadable weights file: what :func:`locate_weights` needs to know about it."""

    @property
    def name(self) -> str: ...

    @property
    def filename(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def other_filenames(self) -> tuple[str, ...]: ...

    @property
    def path_option(self) -> str:
        """The command-line option that takes this file's path (``--model``, ``--sam-checkpoint``)."""


def cache_dir() -> Path:
    """The per-user cache folder of this package (not created here)."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "microcrystalnet"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, card: WeightsFile, where: str) -> Path:
    actual = file_sha256(path)
    if actual != card.sha256:
        raise ModelUnavailableError(
            f"{path} ({where}) is not the model {card.name}: its sha256 is {actual}, expected {card.sha256}. "
            f"The file is damaged or a different model; replace it with the file from {card.url}")
    return path


def _how_to_provide(card: WeightsFile) -> str:
    return (f"Download {card.url} (sha256 {card.sha256}) on a machine with internet access and either "
            f"put it at {cache_dir() / 'models' / card.filename}, or put it in a folder and set "
            f"{MODEL_DIR_VARIABLE} to that folder, or pass its path with {card.path_option}.")


def download_model(card: WeightsFile, destination: Path) -> Path:
    """Download ``card`` to ``destination``, checking the sha256 before the file appears there."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, partial_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".partial", dir=destination.parent)
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as partial_stream, \
                urllib.request.urlopen(card.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                partial_stream.write(block)
        if digest.hexdigest() != card.sha256:
            raise ModelUnavailableError(
                f"the download of {card.name} from {card.url} has sha256 {digest.hexdigest()}, expected "
                f"{card.sha256}; the file on the server changed or the transfer was corrupted. " + _how_to_provide(card))
        os.replace(partial, destination)
        return destination
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise ModelUnavailableError(
            f"the model {card.name} is not on this machine and could not be downloaded from {card.url} "
            f"({error}). " + _how_to_provide(card)) from error
    finally:
        partial.unlink(missing_ok=True)


def _moved_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``<name>.damaged-<time>`` beside it (never deleted: it may be someone's
    file); None when another process moved it first."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    return aside


def locate_weights(card: WeightsFile, explicit_path: str | Path | None = None, download: bool = True) -> Path:
    """Path of a verified weights file for ``card``, following the resolution order above."""
    if explicit_path is not None:
        path = Path(explicit_path)
        if not path.is_file():
            raise ModelUnavailableError(f"model file {path} does not exist")
        return _checked(path, card, "given path")
    names = (card.filename, *card.other_filenames)
    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    if model_dir:
        for name in names:
            candidate = Path(model_dir) / name
            if candidate.is_file():
                return _checked(candidate, card, MODEL_DIR_VARIABLE)
    cached = cache_dir() / "models" / card.filename
    damage = ""
    try:
        actual = file_sha256(cached) if cached.is_file() else None
    except FileNotFoundError:  # another process moved it aside this moment
        actual = None
    if actual == card.sha256:
        return cached
    if actual is not None:
        damage = f"The cached copy {cached} was found corrupted or is another file (sha256 {actual}, expected " \
                 f"{card.sha256}: an interrupted copy, a damaged disk, or a file put there by hand)"
        aside = _moved_aside(cached)
        damage += f" and was renamed to {aside}, not used. " if aside else " and was not used. "
        log.warning("%s%s", damage, "Fetching a fresh copy." if download else "")
    if not download:
        where = "no good copy is" if damage else "it is not"
        raise ModelUnavailableError(f"{damage}The model {card.name} is needed and {where} on this machine; "
                                    "run again without --no-download to fetch it, or: " + _how_to_provide(card))
    try:
        return download_model(card, cached)
    except ModelUnavailableError as error:
        raise ModelUnavailableError(damage + str(error)) from error
