"""Segmentation stage: one label image of crystals from a gray SEM image.

Backends share :func:`segment_crystals`'s contract (see :mod:`.postprocess`): int32 (Y, X),
0 for pore space, crystals 1..N, each one solid 8-connected region within the area limits.
"""

from __future__ import annotations

import numpy as np

from ..config import SegmentConfig
from .postprocess import tidy_labels
from .watershed import segment_watershed

Array = np.ndarray


def segment_crystals(image: Array, pixel_size_um: float, config: SegmentConfig = SegmentConfig()) -> Array:
    """Segment every crystal.

    ``image``: float (Y, X) scaled to [0, 1]; ``pixel_size_um``: micrometres per pixel (the
    area limits and lengths of ``config`` are physical).
    """
    if image.ndim != 2:
        raise ValueError(f"segmentation needs a 2D gray image, got shape {image.shape}")
    pixel_area = pixel_size_um ** 2
    min_area_px = config.min_crystal_area_um2 / pixel_area
    max_area_px = config.max_crystal_area_um2 / pixel_area
    if config.backend == "watershed":
        raw = segment_watershed(image, pixel_size_um, config.watershed, min_area_px)
    else:  # guarded by SegmentConfig; kept for a clear message if the two ever drift apart
        raise ValueError(f"unknown segmentation backend {config.backend!r}")
    return tidy_labels(raw, min_area_px, max_area_px, config.exclude_border)


__all__ = ["segment_crystals", "tidy_labels"]
