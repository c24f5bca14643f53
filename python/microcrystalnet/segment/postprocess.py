"""Turning any segmenter's output into a clean crystal label image.

Every segmentation backend (learned, watershed, SAM) ends here, so all of them hand on the same
contract: ``int32`` (Y, X), 0 for pore space, crystals numbered 1..N, each crystal one 8-connected region without holes and within the area limits.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from ..config import SegmentConfig

Array = np.ndarray

_EIGHT_CONNECTED = np.ones((3, 3), bool)


def tidy_labels(labels: Array, min_area_px: float = 0, max_area_px: float = np.inf,
                exclude_border: bool = False) -> Array:
    """Clean a label image so each crystal is one solid region within the area limits.

    Per label: keep only its largest 8-connected piece, fill its holes that are pore space,
    and drop it if its area (pixels) is outside ``[min_area_px, max_area_px]`` or, with
    ``exclude_border``, if it touches the image border. Returns a new int32 image numbered
    1..N in the order of the input labels.
    """
    return tidy_labels_counting_drops(labels, min_area_px, max_area_px, exclude_border)[0]


def tidy_segmentation(labels: Array, pixel_size_um: float, config: SegmentConfig,
                      not_sample: Array | None = None) -> tuple[Array, dict[str, int]]:
    """:func:`tidy_labels_counting_drops` with the area limits (um^2) and border rule of
    ``config`` for an image of ``pixel_size_um`` (um per pixel): how every segmentation ends."""
    pixel_area = pixel_size_um ** 2
    return tidy_labels_counting_drops(labels, config.min_crystal_area_um2 / pixel_area,
                                      config.max_crystal_area_um2 / pixel_area, config.exclude_border, not_sample)


#: a crystal with at least this fraction of its area on burned-in marks is a mark, not a crystal
MOSTLY_NOT_SAMPLE = 0.5


def tidy_labels_counting_drops(labels: Array, min_area_px: float = 0, max_area_px: float = np.inf,
                               exclude_border: bool = False, not_sample: Array | None = None
                               ) -> tuple[Array, dict[str, int]]:
    """:func:`tidy_labels`, and how many labels it dropped for each reason (``too_small``,
    ``too_large``, ``on_border``, ``on_marks``), so an empty result can say why. ``not_sample``:
    bool (Y, X), True where the image is no sample (burned-in marks, :func:`..databar.burned_in_marks`):
    a label lying mostly (:data:`MOSTLY_NOT_SAMPLE`) there is dropped, from the others that part is
    cut out."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label image must be 2D, got shape {labels.shape}")
    if not_sample is not None and not_sample.shape != labels.shape:
        raise ValueError(f"the not-sample mask ({not_sample.shape}) must have the labels' shape ({labels.shape})")
    tidy = np.zeros(labels.shape, np.int32)
    dropped = {"too_small": 0, "too_large": 0, "on_border": 0, "on_marks": 0}
    for index, box in enumerate(ndi.find_objects(labels if labels.dtype.kind in "iu" else labels.astype(np.int64)),
                                start=1):
        if box is None:
            continue
        region = labels[box] == index
        fillable = labels[box] == 0  # holes are filled with pore, never with another crystal
        if not_sample is not None:
            on_marks = np.count_nonzero(not_sample[box][region])
            if on_marks >= MOSTLY_NOT_SAMPLE * np.count_nonzero(region):
                dropped["on_marks"] += 1
                continue
            if on_marks:  # a crystal a mark was drawn across, or that grew into one: the mark cut out,
                region &= ~not_sample[box]  # but where it lies inside, the crystal goes on under it
                fillable |= not_sample[box]
        pieces, n_pieces = ndi.label(region, structure=_EIGHT_CONNECTED)
        if n_pieces > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            region = pieces == (np.argmax(sizes) + 1)
        region = ndi.binary_fill_holes(region) & (fillable | region)
        area = int(region.sum())
        if area < min_area_px or area > max_area_px:
            dropped["too_small" if area < min_area_px else "too_large"] += 1
            continue
        if exclude_border and _touches_border(region, box, labels.shape):
            dropped["on_border"] += 1
            continue
        tidy[box][region] = index
    return relabel_sequential(tidy)[0].astype(np.int32, copy=False), dropped


def _touches_border(region: Array, box: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    return bool((box[0].start == 0 and region[0].any()) or (box[0].stop == shape[0] and region[-1].any())
                or (box[1].start == 0 and region[:, 0].any()) or (box[1].stop == shape[1] and region[:, -1].any()))
