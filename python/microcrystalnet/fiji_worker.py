"""The Fiji command's resident Python worker: one long-lived process that keeps its models loaded.

Fiji (ImageJ's own JVM, no Python in it) starts ``python -m microcrystalnet worker`` on the first
analysis and sends it every image after that (``ResidentBackend.java``); loaded models stay in
the worker's :class:`microcrystalnet.model_cache.ModelCache`, so only the first image (or the
first with other model settings) pays for starting Python and loading PyTorch and the models.
The worker ends when its standard input closes, i.e. when ImageJ quits or dies.

Protocol (UTF-8 lines; pixels as raw bytes; nothing touches the disk on the way in):

Worker -> Fiji, on standard output:
  ``MCN-READY <pid>``                   once, when the worker takes requests
  ``MCN-PROGRESS <fraction 0-1> <stage>`` while a request runs (also "loading models")
  ``MCN-LOG <text>``                    a line for ImageJ's Log (e.g. each model loaded)
  ``MCN-RESULT <path>``                 a request's result (analyze: the result folder inside a new
                                       temporary folder; denoise: a 32-bit TIFF in one); the
                                       temporary folder then belongs to Fiji
  ``MCN-ERROR <JSON string>``           a request failed; the message is for the user
  ``MCN-CANCELLED``                     a request stopped on "cancel"
Each request ends with exactly one RESULT, ERROR or CANCELLED line. Anything else a library
prints goes to standard error, which Fiji keeps in a log file.

Fiji -> worker, on standard input: one JSON object per line, the pixels of analyze and denoise
right after it:
  ``{"command": "analyze", "id": N, "title": ..., "width": W, "height": H, "bit_depth": 8|16|24|32,
     "pixel_width": float|null, "unit": ..., "settings": "<AnalysisConfig JSON>", "overlay": bool,
     "metadata_file": path|null, "palette": bool}`` (pixel_width and unit: ImageJ's calibration,
     pixel_width null when uncalibrated) followed by W*H*bytes-per-pixel bytes (ImageJ's
     pixel array, little-endian: 8-bit 1 byte, 16-bit unsigned 2, 32-bit float 4, RGB packed
     0xRRGGBB int 4), then, if "palette", the 8-bit image's colour table: 256 red, 256 green and
     256 blue bytes
  ``{"command": "denoise", "id": N, "title", "width", "height", "bit_depth", "pixel_width", "unit",
     "model": path, "tile_size": px}`` followed by the pixels as above
  ``{"command": "cancel", "id": N}``    stop request N at its next stage (any time)
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

#: bytes per pixel of ImageJ's pixel arrays, by bit depth, and their little-endian numpy types
PIXEL_TYPES = {8: np.dtype("u1"), 16: np.dtype("<u2"), 24: np.dtype("<u4"), 32: np.dtype("<f4")}
PALETTE_BYTES = 3 * 256


class RequestCancelled(Exception):
    """Fiji asked to stop the request that is running."""


class ProtocolError(ValueError):
    """A request the worker cannot read; the message says what was wrong."""


def read_request(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next request from ``stream`` with its pixels (``"pixels"``: numpy (Y, X) or (Y, X, 3),
    ``"palette_rgb"``: (256, 3) uint8 or None) read in; None at the end of the stream."""
    from .imagej import imagej_pixels_as_array

    line = stream.readline()
    if not line:
        return None
    try:
        request = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"a request is not JSON ({error}): {line[:200]!r}") from None
    if request.get("command") not in ("analyze", "denoise"):
        return request
    bit_depth, width, height = int(request["bit_depth"]), int(request["width"]), int(request["height"])
    if bit_depth not in PIXEL_TYPES:
        raise ProtocolError(f"bit depth {bit_depth} is not one of ImageJ's ({', '.join(map(str, PIXEL_TYPES))})")
    raw = read_exactly(stream, width * height * PIXEL_TYPES[bit_depth].itemsize)
    request["pixels"] = imagej_pixels_as_array(np.frombuffer(raw, PIXEL_TYPES[bit_depth]), bit_depth, height, width)
    request["palette_rgb"] = None
    if request.get("palette"):
        request["palette_rgb"] = np.frombuffer(read_exactly(stream, PALETTE_BYTES), np.uint8).reshape(3, 256).T.copy()
    return request


def read_exactly(stream: IO[bytes], count: int) -> bytes:
    """``count`` bytes from ``stream``; raises EOFError if it ends before."""
    chunks, left = [], count
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError(f"the input ended {left} of {count} bytes before the end of an image")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Worker:
    """Answers requests (see the module's description) one at a time, in the calling thread.

    ``replies``: where the protocol's lines go. ``is_model_error``: whether an exception means
    a model cannot be had or used (the message then says so).
    """

    def __init__(self, replies: IO[str], is_model_error: Callable[[BaseException], bool]) -> None:
        from .imagej import InProcessAnalysis
        from .model_cache import ModelCache

        self._replies = replies
        self._lock = threading.Lock()
        self._is_model_error = is_model_error
        self._cancelled_id: int | None = None
        self.analysis = InProcessAnalysis(ModelCache(on_load=self._loading))

    def reply(self, kind: str, text: str = "") -> None:
        with self._lock:
            self._replies.write(f"MCN-{kind} {text}".rstrip() + "\n")
            self._replies.flush()

    def cancel(self, request_id: int) -> None:
        """Stop request ``request_id`` at its next stage (from any thread)."""
        self._cancelled_id = request_id

    def _loading(self, what: str) -> None:
        self.reply("PROGRESS", f"0 loading the {what}")
        self.reply("LOG", f"loading the {what}")
        log.info("loading the %s", what)

    def _progress(self, request_id: int) -> Callable[[str, float], None]:
        def report(stage: str, fraction: float) -> None:
            if self._cancelled_id == request_id:
                raise RequestCancelled()
            self.reply("PROGRESS", f"{fraction:.4f} {stage}")

        return report

    def answer(self, request: dict[str, Any]) -> None:
        """Runs one analyze or denoise request and replies with its result, error or cancellation."""
        request_id = int(request.get("id", 0))
        started = time.perf_counter()
        try:
            result = self._run(request, self._progress(request_id))
        except RequestCancelled:
            self.reply("CANCELLED")
            return
        except Exception as error:  # every failure becomes a message for the user; the worker goes on
            self.reply("ERROR", json.dumps(self._message(error)))
            return
        log.info("request %d (%s, %s) done in %.3f s", request_id, request["command"], request.get("title"),
                 time.perf_counter() - started)
        self.reply("RESULT", str(result))

    def _run(self, request: dict[str, Any], report: Callable[[str, float], None]) -> Any:
        from .io import pixel_size_from_unit

        pixel_width = request.get("pixel_width")
        pixel_size_um = None if pixel_width is None else pixel_size_from_unit(float(pixel_width), request["unit"])
        if request["command"] == "denoise":
            report("Noise2Void", 0.0)
            return self.analysis.denoise(request["pixels"], request["title"], pixel_size_um, request["model"],
                                         int(request["tile_size"]))
        return self.analysis.analyze(request["pixels"], request["title"], pixel_size_um,
                                     request["settings"], report, bool(request.get("overlay")),
                                     request.get("metadata_file"), request["palette_rgb"])

    def _message(self, error: Exception) -> str:
        from .config import ConfigError
        from .imagej import user_error_types

        if self._is_model_error(error):
            return f"The model is not available or not usable:\n{error}"
        if isinstance(error, ConfigError):
            return f"invalid settings: {error}"
        if isinstance(error, user_error_types()):
            return str(error)
        traceback.print_exc()  # a bug: the details go to the worker's log
        return f"The Python worker failed: {type(error).__name__}: {error} (details in the worker's log)"


def serve(requests: IO[bytes], replies: IO[str], is_model_error: Callable[[BaseException], bool]) -> None:
    """Answers the requests on ``requests`` until it ends; then the process exits at once, even in
    the middle of an analysis (the end of the input means ImageJ is gone)."""
    worker = Worker(replies, is_model_error)
    pending: queue.Queue[dict[str, Any]] = queue.Queue()

    def read_requests() -> None:
        try:
            while (request := read_request(requests)) is not None:
                if request.get("command") == "cancel":
                    worker.cancel(int(request.get("id", 0)))
                elif request.get("command") in ("analyze", "denoise"):
                    pending.put(request)
                else:
                    log.error("worker: unknown command %r, ignored", request.get("command"))
        except (ProtocolError, EOFError) as error:
            log.error("worker: %s; stopping", error)
        finally:
            log.info("worker: input closed, exiting")
            try:
                worker.analysis.models.close()  # os._exit runs no finalizer: temporary folders go now
            finally:
                logging.shutdown()
                os._exit(0)

    threading.Thread(target=read_requests, name="MicroCrystalNet requests", daemon=True).start()
    worker.reply("READY", str(os.getpid()))
    while True:
        worker.answer(pending.get())


def protocol_channel() -> IO[str]:
    """This process's standard output for the protocol alone: from now on anything else written
    to standard output (a library's print) goes to standard error."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return channel
