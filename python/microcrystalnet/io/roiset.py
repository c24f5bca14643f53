"""Reading ROIs drawn in Fiji (RoiSet.zip or .roi) into a crystal label image.

A petrographer's reference crystals (for tuning SAM, later for training) arrive as ImageJ ROIs.
Area ROIs (polygon, freehand, traced, rectangle, oval) become labels 1..N in file order; a pixel
belongs to a ROI when its centre lies inside the ROI's outline, as ImageJ's ``Roi.getMask``
decides. Where ROIs overlap, the later one wins. Lines and points are skipped with a count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import roifile
from skimage.draw import ellipse

from ..polygon_fill import filled_polygon

Array = np.ndarray

_NON_AREA_SUBTYPES = {roifile.ROI_SUBTYPE.TEXT, roifile.ROI_SUBTYPE.ARROW, roifile.ROI_SUBTYPE.IMAGE}
_AREA_TYPES = {roifile.ROI_TYPE.POLYGON, roifile.ROI_TYPE.FREEHAND, roifile.ROI_TYPE.TRACED, roifile.ROI_TYPE.RECT,
               roifile.ROI_TYPE.OVAL}


class RoiInputError(ValueError):
    """A ROI file cannot be used; the message names the file and the reason."""


@dataclass
class ReferenceCrystals:
    """Reference crystals of one image: ``labels`` int32 (Y, X), ``names[i]`` the ROI name of label i + 1."""

    labels: Array
    names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)


def _roi_pixels(roi: roifile.ImagejRoi, shape: tuple[int, int]) -> tuple[Array, Array]:
    if roi.roitype == roifile.ROI_TYPE.RECT and roi.subtype != roifile.ROI_SUBTYPE.ROTATED_RECT:
        rows = np.arange(max(roi.top, 0), min(roi.bottom, shape[0]))
        cols = np.arange(max(roi.left, 0), min(roi.right, shape[1]))
        grid = np.meshgrid(rows, cols, indexing="ij")
        return grid[0].ravel(), grid[1].ravel()
    if roi.roitype == roifile.ROI_TYPE.OVAL:
        centre_r, centre_c = (roi.top + roi.bottom) / 2 - 0.5, (roi.left + roi.right) / 2 - 0.5
        return ellipse(centre_r, centre_c, (roi.bottom - roi.top) / 2, (roi.right - roi.left) / 2, shape=shape)
    xy = roi.coordinates()
    # pixel (r, c) has its centre at (c + 0.5, r + 0.5) in ImageJ's coordinates
    return filled_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape=shape)


def read_reference_crystals(path: str | Path, shape: tuple[int, int]) -> ReferenceCrystals:
    """Label image of the area ROIs in ``path`` (RoiSet.zip or one .roi) for an image of ``shape``."""
    path = Path(path)
    if not path.is_file():
        raise RoiInputError(f"{path}: no such file")
    try:
        rois = roifile.roiread(path)
    except Exception as error:  # roifile raises several types for broken files
        raise RoiInputError(f"{path}: cannot be read as ImageJ ROIs ({error})") from error
    rois = rois if isinstance(rois, list) else [rois]
    labels = np.zeros(shape, np.int32)
    names: list[str] = []
    skipped: dict[str, int] = {}
    for roi in rois:
        if roi.roitype not in _AREA_TYPES or roi.subtype in _NON_AREA_SUBTYPES:
            kind = roi.roitype.name.lower()
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        rows, cols = _roi_pixels(roi, shape)
        if rows.size == 0:
            skipped["outside the image"] = skipped.get("outside the image", 0) + 1
            continue
        names.append(roi.name or f"roi-{len(names) + 1}")
        labels[rows, cols] = len(names)
    if not names:
        raise RoiInputError(f"{path}: holds no area ROI inside a {shape[1]} x {shape[0]} image")
    return ReferenceCrystals(labels, names, skipped)
