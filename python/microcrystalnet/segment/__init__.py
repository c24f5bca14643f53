"""Segmentation stage: one label image of crystals from a gray SEM image.

Backends ("watershed", "sam") are segmenter objects with the same two methods (see
:class:`CrystalSegmenter`); their raw labels all go through :func:`.postprocess.tidy_labels`, so
every backend hands on the same contract: int32 (Y, X), 0 for pore space, crystals 1..N, each
one solid 8-connected region within the area limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..config import SegmentConfig
from .postprocess import tidy_labels
from .watershed import segment_watershed

Array = np.ndarray


class CrystalSegmenter(Protocol):
    """A segmentation backend."""

    def describe(self) -> dict[str, Any]:
        """What segments (backend, mode, checkpoint and its sha256 ...), for summaries."""

    def segment(self, image: Array, pixel_size_um: float, config: SegmentConfig) -> tuple[Array, dict[str, Any]]:
        """Raw labels of ``image`` (float (Y, X) in [0, 1]) and statistics of the run."""


class WatershedSegmenter:
    """The classical segmenter (:mod:`.watershed`): always available, no model."""

    def describe(self) -> dict[str, Any]:
        return {"backend": "watershed"}

    def segment(self, image: Array, pixel_size_um: float, config: SegmentConfig) -> tuple[Array, dict[str, Any]]:
        min_area_px = config.min_crystal_area_um2 / pixel_size_um ** 2
        return segment_watershed(image, pixel_size_um, config.watershed, min_area_px), {}


def make_segmenter(config: SegmentConfig = SegmentConfig(), download: bool = True) -> CrystalSegmenter:
    """The segmenter ``config`` asks for, with its model loaded (SAM: checkpoint found or fetched)."""
    if config.backend == "sam":
        from .sam import SamCrystalSegmenter, load_sam

        sam = load_sam(config.sam.model_type, config.sam.checkpoint, config.sam.device, download=download)
        return SamCrystalSegmenter(sam, config.sam)
    return WatershedSegmenter()


@dataclass
class Segmentation:
    """The tidy crystal labels of one image, who made them and what it cost."""

    labels: Array
    segmenter: dict[str, Any]
    statistics: dict[str, Any] = field(default_factory=dict)


def segment_crystals(image: Array, pixel_size_um: float, config: SegmentConfig = SegmentConfig(),
                     segmenter: CrystalSegmenter | None = None) -> Segmentation:
    """Segment every crystal.

    ``image``: float (Y, X) scaled to [0, 1]; ``pixel_size_um``: micrometres per pixel (the
    area limits and lengths of ``config`` are physical). ``segmenter`` defaults to the one
    ``config`` names (loading SAM each call: pass a segmenter from :func:`make_segmenter` to
    analyse many images).
    """
    if image.ndim != 2:
        raise ValueError(f"segmentation needs a 2D gray image, got shape {image.shape}")
    segmenter = segmenter or make_segmenter(config)
    raw, statistics = segmenter.segment(image, pixel_size_um, config)
    pixel_area = pixel_size_um ** 2
    labels = tidy_labels(raw, config.min_crystal_area_um2 / pixel_area, config.max_crystal_area_um2 / pixel_area,
                         config.exclude_border)
    return Segmentation(labels, segmenter.describe(), statistics)


__all__ = ["CrystalSegmenter", "Segmentation", "WatershedSegmenter", "make_segmenter", "segment_crystals",
           "tidy_labels"]
