"""MicroCrystalNet: segment, classify and measure microcrystals in SEM images.

The data flow is ``image -> preprocess -> segment -> classify -> measure -> outputs``;
:func:`microcrystalnet.pipeline.analyze_image` composes the stages. Heavy frameworks
(TensorFlow, torch) are imported lazily, through :mod:`microcrystalnet.frameworks`, so that
``import microcrystalnet`` and ``microcrystalnet --help`` stay fast.
"""

#: the one place the version is written (pyproject.toml reads it from here)
__version__ = "0.1.0"

__all__ = ["__version__"]
