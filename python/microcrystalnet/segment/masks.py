"""From many overlapping candidate masks (SAM's output) to one crystal label image.

SAM proposes masks that overlap, repeat each other, cover pore space, or cover a whole
cluster of crystals at once. The functions here decide, with plain geometry:

* :func:`drop_pore_masks` - a mask that lies mostly on pore space is not a crystal;
* :func:`drop_container_masks` - a mask that mostly consists of two or more other masks is a
  cluster, not a crystal (the smaller masks are kept);
* :func:`masks_to_labels` - best masks first, a mask mostly covered by better ones is a
  duplicate, the rest is painted where still free;
* :func:`tile_windows` / :func:`inside_tile_interior` - large images are processed in
  overlapping tiles; a mask touching a tile edge inside the image is left to the neighbouring
  tile that holds it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Array = np.ndarray


@dataclass(eq=False)  # two candidates are the same only if they are the same object
class CandidateMask:
    """A mask in image coordinates: ``mask`` (bool, local) placed at ``(top, left)``; ``score``
    orders candidates (higher is better, e.g. SAM's predicted IoU); ``stability`` is SAM's
    stability score where known."""

    top: int
    left: int
    mask: Array
    score: float
    stability: float = 1.0

    @property
    def box(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.mask.shape[0]), slice(self.left, self.left + self.mask.shape[1])

    @cached_property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    @classmethod
    def from_full(cls, full_mask: Array, score: float, offset: tuple[int, int] = (0, 0),
                  stability: float = 1.0) -> "CandidateMask | None":
        """Crop a mask given over a whole image (or tile at ``offset``) to its bounding box."""
        rows = np.flatnonzero(full_mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(full_mask.any(axis=0))
        local = full_mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return cls(int(rows[0] + offset[0]), int(cols[0] + offset[1]), local.copy(), float(score), float(stability))


def _boxes_meet(a: CandidateMask, b: CandidateMask) -> bool:
    return (a.top < b.top + b.mask.shape[0] and b.top < a.top + a.mask.shape[0]
            and a.left < b.left + b.mask.shape[1] and b.left < a.left + a.mask.shape[1])


def _overlap(a: CandidateMask, b: CandidateMask) -> int:
    """Number of pixels in both masks."""
    top, bottom = max(a.top, b.top), min(a.top + a.mask.shape[0], b.top + b.mask.shape[0])
    left, right = max(a.left, b.left), min(a.left + a.mask.shape[1], b.left + b.mask.shape[1])
    if top >= bottom or left >= right:
        return 0
    part_a = a.mask[top - a.top:bottom - a.top, left - a.left:right - a.left]
    part_b = b.mask[top - b.top:bottom - b.top, left - b.left:right - b.left]
    return int(np.count_nonzero(part_a & part_b))


def drop_pore_masks(candidates: Sequence[CandidateMask], foreground: Array,
                    min_crystal_fraction: float = 0.5) -> list[CandidateMask]:
    """Keep masks of which at least ``min_crystal_fraction`` lies on crystal ``foreground`` (bool (Y, X))."""
    return [c for c in candidates if c.area and np.count_nonzero(foreground[c.box][c.mask]) >= min_crystal_fraction * c.area]


def drop_container_masks(candidates: Sequence[CandidateMask], inside_fraction: float = 0.8,
                         covered_fraction: float = 0.6) -> list[CandidateMask]:
    """Drop masks that are clusters: two or more other masks lie in them (each at least
    ``inside_fraction`` inside) and together cover ``covered_fraction`` of them."""
    kept = []
    for index, outer in enumerate(candidates):
        contained = [inner for other, inner in enumerate(candidates) if other != index and inner.area < outer.area
                     and _boxes_meet(outer, inner) and _overlap(outer, inner) >= inside_fraction * inner.area]
        if len(contained) >= 2:
            union = np.zeros(outer.mask.shape, bool)
            for inner in contained:
                top, left = inner.top - outer.top, inner.left - outer.left
                rows = slice(max(top, 0), min(top + inner.mask.shape[0], outer.mask.shape[0]))
                cols = slice(max(left, 0), min(left + inner.mask.shape[1], outer.mask.shape[1]))
                union[rows, cols] |= inner.mask[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
            if np.count_nonzero(union & outer.mask) >= covered_fraction * outer.area:
                continue
        kept.append(outer)
    return kept


def masks_to_labels(candidates: Sequence[CandidateMask], shape: tuple[int, int],
                    duplicate_fraction: float = 0.5) -> Array:
    """Paint masks, best score first, into an int32 label image (1..N in painting order).

    A mask of which more than ``duplicate_fraction`` is already taken by better masks is a
    duplicate and skipped; otherwise it gets the pixels still free.
    """
    labels = np.zeros(shape, np.int32)
    next_label = 1
    for candidate in sorted(candidates, key=lambda c: -c.score):
        view = labels[candidate.box]
        mask = candidate.mask[:view.shape[0], :view.shape[1]]
        area = np.count_nonzero(mask)
        if area == 0:
            continue
        taken = np.count_nonzero(view[mask])
        if taken > duplicate_fraction * area:
            continue
        view[mask & (view == 0)] = next_label
        next_label += 1
    return labels


def tile_windows(shape: tuple[int, int], tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows ``(top, left, height, width)`` of at most ``tile`` px covering ``shape``.

    Neighbouring windows share at least ``overlap`` px, so any object up to ``overlap`` px across
    lies whole in at least one window.
    """
    if overlap >= tile:
        raise ValueError(f"tile overlap ({overlap} px) must be smaller than the tile ({tile} px)")

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        count = int(np.ceil((length - overlap) / (tile - overlap)))
        return [int(round(i * (length - tile) / (count - 1))) for i in range(count)]

    return [(top, left, min(tile, shape[0]), min(tile, shape[1]))
            for top in starts(shape[0]) for left in starts(shape[1])]


def inside_tile_interior(candidate: CandidateMask, window: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    """False if the mask touches an edge of its tile that is not an edge of the image."""
    top, left, height, width = window
    rows, cols = candidate.box
    if rows.start <= top and top > 0:
        return False
    if cols.start <= left and left > 0:
        return False
    if rows.stop >= top + height and top + height < shape[0]:
        return False
    if cols.stop >= left + width and left + width < shape[1]:
        return False
    return True
