"""The one place that imports the deep-learning frameworks, torch before TensorFlow.

torch and TensorFlow each bundle native libraries. With some version pairs (seen with torch
2.14.1 / torchvision 0.29.1 and TensorFlow 2.21) importing TensorFlow before torchvision
crashes the process (segfault); torch + torchvision first, then TensorFlow, works. The pinned
versions (torch 2.11, torchvision 0.26) do not crash either way (a test runs the classifier and
then torchvision in one process). Every module gets TensorFlow/Keras from :func:`import_keras`
(torch first), torch from :func:`import_torch` and torchvision from :func:`import_torchvision`
(a test checks that no other module imports them directly).

torchvision is imported only where it is used (SAM): it takes 2-3 s to import (through
``torch._dynamo``); an analysis of a small image took 19-20 s from start to end with it, 15-16 s
without. TensorFlow (6-8 s) is imported only where Keras is needed: training a classifier, its
activation maps, and a classifier file that :mod:`microcrystalnet.classify.torch_network` cannot run
in torch. Where one configuration needs SAM and such a classifier, the segmenter is loaded first
(:class:`microcrystalnet.pipeline.AnalysisModels`), so torchvision still comes before TensorFlow;
only a long-lived process that uses Keras first and runs SAM later (the Fiji worker) meets the
other order, which the pinned versions support.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import ModuleType

#: set to 1 to see the frameworks' own start-up messages
DEBUG_VARIABLE = "MICROCRYSTALNET_DEBUG"


def import_torch() -> ModuleType:
    """torch."""
    return importlib.import_module("torch")


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native libraries write to the stderr file descriptor while loading.

    TensorFlow's C++ start-up lines (oneDNN, absl) ignore TF_CPP_MIN_LOG_LEVEL. Python
    exceptions are unaffected: they are raised, and printed, after the descriptor is restored.
    """
    if os.environ.get(DEBUG_VARIABLE):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class DeviceUnavailableError(ValueError):
    """A device was asked for that torch cannot use here."""


def torch_device(requested: str | None = None, *, user: str) -> str:
    """The device ``user`` (e.g. "SAM", what the error names) runs on: ``requested`` (cuda, mps or
    cpu) where torch can use it, else :class:`DeviceUnavailableError`; None picks the fastest
    available of cuda, mps and cpu."""
    torch = import_torch()
    if requested:
        unset = "; leave the device unset to use the fastest one there is"
        if requested == "cuda" and not torch.cuda.is_available():
            raise DeviceUnavailableError(f"{user} device 'cuda' was asked for, but torch sees no CUDA GPU{unset}")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise DeviceUnavailableError(f"{user} device 'mps' was asked for, but it is not available{unset}")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def import_torchvision() -> ModuleType:
    """torchvision (its detection ops, e.g. non-maximum suppression), imported after torch."""
    import_torch()
    return importlib.import_module("torchvision")


def import_careamics() -> ModuleType:
    """careamics (Noise2Void), which imports torch: torch first."""
    import_torch()
    return importlib.import_module("careamics")


def import_lightning_callbacks() -> ModuleType:
    """``lightning.pytorch.callbacks`` (careamics trains with lightning): careamics, hence torch, first."""
    import_careamics()
    return importlib.import_module("lightning.pytorch.callbacks")


def import_segment_anything() -> ModuleType:
    """The ``segment_anything`` package (SAM), which imports torchvision: torch and torchvision first."""
    import_torchvision()
    return importlib.import_module("segment_anything")


def import_keras() -> ModuleType:
    """Keras 3 on the TensorFlow backend, imported after torch (and after torchvision where that
    is imported already)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if importlib.util.find_spec("torch") is not None:
        import_torch()
    with _native_stderr_silenced():
        importlib.import_module("tensorflow")
        return importlib.import_module("keras")


def import_tensorflow() -> ModuleType:
    """TensorFlow itself (e.g. ``GradientTape`` for saliency maps), imported as :func:`import_keras` does."""
    import_keras()
    return importlib.import_module("tensorflow")


def framework_versions() -> dict[str, str]:
    """Versions of the frameworks that are imported right now (for summaries)."""
    import sys

    versions = {}
    for name in ("numpy", "tensorflow", "keras", "torch", "torchvision", "skimage", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions
