"""MicroCrystalNet: segment, classify and measure microcrystals in SEM images.

The data flow is ``image -> preprocess -> segment -> classify -> measure -> outputs``;
:func:`microcrystalnet.pipeline.analyze_image` composes the stages. Heavy frameworks
(TensorFlow, torch) are imported lazily, through :mod:`microcrystalnet.frameworks`, so that
``import microcrystalnet`` and ``microcrystalnet --help`` stay fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("microcrystalnet")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
