"""Noise2Void in a worker process of its own, for hosts where PyTorch must not run: ImageJ's process.

Running careamics (PyTorch Lightning) inside the Python process that also hosts ImageJ's JVM
crashed that process later on (a segmentation fault with neither a Python traceback nor a JVM
error file; issue 6). The in-process Fiji backend therefore hands Noise2Void to one worker
process, started with ``spawn`` so it inherits nothing of the JVM. The worker loads the model once
and denoises every image sent to it; the rest of the analysis stays in ImageJ's process.

:class:`Noise2VoidProcess` has the interface the preprocessing chain uses (``denoise``,
``source``, ``trained_after``), so it stands wherever a :class:`Noise2VoidModel` does.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from .n2v import Noise2VoidModel

Array = np.ndarray

_loaded: Noise2VoidModel | None = None  # the model, inside the worker process only


def _load_in_worker(path: str) -> tuple[str, ...]:
    global _loaded
    _loaded = Noise2VoidModel.load(path)
    return tuple(_loaded.trained_after)


def _denoise_in_worker(image: Array, tile_px: int) -> Array:
    assert _loaded is not None, "the worker has no model loaded"
    return _loaded.denoise(image, tile_px)


class Noise2VoidProcess:
    """A Noise2Void model loaded and run in a separate Python process; :meth:`close` ends it."""

    def __init__(self, path: str | Path) -> None:
        self.source = Path(path)
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            #: preprocessing steps the model's training images went through before it
            self.trained_after: tuple[str, ...] = self._call(_load_in_worker, str(path))
        except BaseException:
            self.close()
            raise

    def _call(self, function, *arguments):
        try:
            return self._pool.submit(function, *arguments).result()
        except BrokenProcessPool as error:
            raise RuntimeError(f"the Noise2Void worker process for {self.source} ended unexpectedly "
                               "(out of memory?); try a smaller tile size or the External backend") from error

    def denoise(self, image: Array, tile_px: int = 256) -> Array:
        """Denoise ``image`` (float (Y, X) in [0, 1]) in the worker; returns float32 in [0, 1]."""
        return self._call(_denoise_in_worker, np.asarray(image, np.float32), tile_px)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Noise2VoidProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
