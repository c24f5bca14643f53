"""The resident worker's side of the Fiji protocol (microcrystalnet.fiji_worker): ImageJ's pixel
arrays as Java sends them, and requests answered by a real worker process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microcrystalnet.fiji_worker import ProtocolError, read_request


def request_bytes(header: dict, *payloads: bytes) -> bytes:
    return json.dumps(header).encode() + b"\n" + b"".join(payloads)


@pytest.mark.parametrize("bit_depth, pixels", [
    (8, np.arange(12, dtype=np.uint8).reshape(3, 4)),
    (16, np.array([[0, 1, 40000, 65535]] * 3, np.uint16)),
    (32, np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)),
])
def test_gray_pixels_arrive_as_imagej_holds_them(bit_depth, pixels):
    header = {"command": "analyze", "id": 1, "width": 4, "height": 3, "bit_depth": bit_depth}
    request = read_request(io.BytesIO(request_bytes(header, pixels.astype(pixels.dtype.newbyteorder("<")).tobytes())))
    assert request["pixels"].dtype == pixels.dtype and np.array_equal(request["pixels"], pixels)
    assert request["palette_rgb"] is None


def test_rgb_pixels_and_a_palette_arrive_as_channels():
    packed = np.array([[0x102030, 0xFF0001]], "<u4")  # ImageJ's int RGB: 0xRRGGBB
    header = {"command": "analyze", "id": 1, "width": 2, "height": 1, "bit_depth": 24}
    request = read_request(io.BytesIO(request_bytes(header, packed.tobytes())))
    assert request["pixels"].tolist() == [[[0x10, 0x20, 0x30], [0xFF, 0x00, 0x01]]]
    reds, greens, blues = np.arange(256, dtype=np.uint8), np.zeros(256, np.uint8), np.full(256, 7, np.uint8)
    header = {"command": "analyze", "id": 2, "width": 1, "height": 1, "bit_depth": 8, "palette": True}
    palette = reds.tobytes() + greens.tobytes() + blues.tobytes()
    request = read_request(io.BytesIO(request_bytes(header, b"\x05", palette)))
    assert request["palette_rgb"].shape == (256, 3) and request["palette_rgb"][5].tolist() == [5, 0, 7]


def test_a_short_or_unreadable_request_is_refused():
    header = {"command": "analyze", "id": 1, "width": 4, "height": 4, "bit_depth": 8}
    with pytest.raises(EOFError, match="8 of 16 bytes"):
        read_request(io.BytesIO(request_bytes(header, bytes(8))))
    with pytest.raises(ProtocolError, match="not JSON"):
        read_request(io.BytesIO(b"analyze please\n"))
    with pytest.raises(ProtocolError, match="bit depth 12"):
        read_request(io.BytesIO(request_bytes({**header, "bit_depth": 12})))
    assert read_request(io.BytesIO(b"")) is None


def answer(worker: subprocess.Popen) -> list[str]:
    """The worker's lines up to the end of one request."""
    lines = []
    while True:
        line = worker.stdout.readline().decode().rstrip("\n")
        assert line, f"the worker ended; it said {lines}"
        lines.append(line)
        if line.startswith(("MCN-RESULT", "MCN-ERROR", "MCN-CANCELLED")):
            return lines


def test_the_worker_answers_reports_errors_cancels_and_exits_when_its_input_closes(model_dir_env, small_scene):
    worker = subprocess.Popen([sys.executable, "-m", "microcrystalnet", "worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        assert worker.stdout.readline().decode().split() == ["MCN-READY", str(worker.pid)]
        settings = json.dumps({"classify": {"model": "reference-2023-11-19"}})

        def send(request_id: int, pixels: np.ndarray) -> None:
            header = {"command": "analyze", "id": request_id, "title": "scene.tif", "width": pixels.shape[1],
                      "height": pixels.shape[0], "bit_depth": 8, "pixel_width": 40, "unit": "nm",
                      "settings": settings, "overlay": False, "metadata_file": None, "palette": False}
            worker.stdin.write(request_bytes(header, pixels.tobytes()))
            worker.stdin.flush()

        send(1, small_scene.image)
        worker.stdin.write(b'{"command": "cancel", "id": 1}\n')  # arrives while the models load
        worker.stdin.flush()
        lines = answer(worker)
        assert lines[-1] == "MCN-CANCELLED" and "MCN-LOG loading the classifier reference-2023-11-19" in lines

        send(2, small_scene.image)
        lines = answer(worker)
        assert lines[-1].startswith("MCN-RESULT ") and not [line for line in lines if "loading" in line]
        folder = Path(lines[-1].split(" ", 1)[1])
        summary = json.loads((folder / "summary.json").read_text())
        shutil.rmtree(folder.parent)  # the temporary folder belongs to the caller
        assert summary["pixel_size_um"] == pytest.approx(0.04) and summary["n_crystals"] > 10

        send(3, np.full((128, 128), 9, np.uint8))  # blank: an error for the user, and the worker goes on
        lines = answer(worker)
        assert lines[-1].startswith("MCN-ERROR ") and "blank" in json.loads(lines[-1].split(" ", 1)[1])
        worker.stdin.close()
        assert worker.wait(30) == 0
    finally:
        worker.kill()


def test_a_worker_whose_input_closes_leaves_no_temporary_folder_of_its_models(model_dir_env, small_scene, tmp_path,
                                                                              n2v_model_trained_by_cli):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    worker = subprocess.Popen([sys.executable, "-m", "microcrystalnet", "worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TMPDIR": str(temporary)})
    try:
        assert worker.stdout.readline().decode().split()[0] == "MCN-READY"
        pixels = small_scene.image
        header = {"command": "denoise", "id": 1, "title": "scene.tif", "width": pixels.shape[1],
                  "height": pixels.shape[0], "bit_depth": 8, "pixel_width": 40, "unit": "nm",
                  "model": str(n2v_model_trained_by_cli), "tile_size": 256, "palette": False}
        worker.stdin.write(request_bytes(header, pixels.tobytes()))
        worker.stdin.flush()
        lines = answer(worker)
        assert lines[-1].startswith("MCN-RESULT "), lines
        denoised = Path(lines[-1].split(" ", 1)[1])
        assert denoised.is_file()
        shutil.rmtree(denoised.parent)  # the denoised image's folder belongs to the caller
        assert [path.name for path in temporary.iterdir() if path.name.startswith("microcrystalnet-n2v-")]
        worker.stdin.close()  # ImageJ quits
        assert worker.wait(60) == 0
        ours = [path.name for path in temporary.iterdir() if path.name.startswith("microcrystalnet-")]
        assert ours == []  # the loaded model's careamics folder is gone too (torch's own caches may stay)
    finally:
        worker.kill()
