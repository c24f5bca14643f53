"""One crystal of a synthetic scene: its outline per class, its mask and its shading, and the rule
for laying it over earlier crystals.

What is drawn, and why:

* outlines per class: rhombic (RES) parallelograms with the ~75/105 degree face angles of calcite
  rhombs; polyhedral (PES) convex polygons with 7-10 sides; amorphous (AA) lobed, non-convex blobs;
  rounded/spherical (RA/SA) near-circular ellipses;
* faceted crystals (RES, PES) as a top face inside a ring of side faces whose brightness depends
  on their orientation to the detector, as on SEM images of real rhombs; amorphous ones with a
  mottled, pitted surface; rounded ones with a sphere-like profile lit from the detector side.

Crystals are laid one after the other on top of the earlier ones (painter's order). A placement is
kept only if every crystal it covers stays in one piece and keeps enough of its area
(:func:`covers_acceptably`), so the label image holds one connected region per crystal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..classes import CLASS_CODES
from ..polygon_fill import filled_polygon
from .spec import SceneSpec

Array = np.ndarray
Box = tuple[slice, slice]


# --- outlines, centred on (0, 0), in pixels as (row, col) vertex arrays ---------------------------

def _rotate(points: Array, angle: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _scale_to_diameter(points: Array, diameter_px: float) -> Array:
    points = points - points.mean(axis=0)
    extent = np.max(np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1))
    return points * (diameter_px / extent)


def _rhombic_outline(rng: np.random.Generator, diameter_px: float) -> Array:
    angle = np.deg2rad(rng.uniform(72.0, 84.0))  # acute face angle of calcite rhombs ~78 deg
    u = np.array([0.0, 1.0])
    v = rng.uniform(0.8, 1.2) * np.array([np.sin(angle), np.cos(angle)])
    outline = np.array([[0.0, 0.0], u, u + v, v])
    return _rotate(_scale_to_diameter(outline, diameter_px), rng.uniform(0, np.pi))


def _polyhedral_outline(rng: np.random.Generator, diameter_px: float) -> Array:
    n_sides = int(rng.integers(7, 11))
    gaps = rng.uniform(0.6, 1.4, n_sides)
    angles = np.cumsum(gaps) / gaps.sum() * 2 * np.pi
    radii = rng.uniform(0.9, 1.1, n_sides)
    outline = np.stack([radii * np.sin(angles), radii * np.cos(angles)], axis=1)
    outline *= np.array([rng.uniform(0.75, 1.0), 1.0])  # slightly elongated habits
    return _rotate(_scale_to_diameter(outline, diameter_px), rng.uniform(0, np.pi))


def _amorphous_outline(rng: np.random.Generator, diameter_px: float) -> Array:
    phi = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    radius = np.ones_like(phi)
    for k in range(2, 6):
        radius += rng.uniform(0.04, 0.16) / np.sqrt(k - 1) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    outline = np.stack([radius * np.sin(phi), radius * np.cos(phi)], axis=1)
    return _rotate(_scale_to_diameter(outline, diameter_px), rng.uniform(0, np.pi))


def _rounded_outline(rng: np.random.Generator, diameter_px: float) -> Array:
    phi = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    outline = np.stack([rng.uniform(0.8, 1.0) * np.sin(phi), np.cos(phi)], axis=1)
    return _rotate(_scale_to_diameter(outline, diameter_px), rng.uniform(0, np.pi))


_OUTLINES = {"RES": _rhombic_outline, "PES": _polyhedral_outline, "AA": _amorphous_outline, "RA/SA": _rounded_outline}


def stretch_outline(outline: Array, factor: float, direction_rad: float) -> Array:
    """``outline`` (centred on (0, 0)) stretched by ``factor`` along ``direction_rad`` and shrunk by
    it across, so that its area stays the same."""
    along = np.array([np.sin(direction_rad), np.cos(direction_rad)])
    across = np.array([along[1], -along[0]])
    return (np.outer(outline @ along * np.sqrt(factor), along)
            + np.outer(outline @ across / np.sqrt(factor), across))


def polygon_area(vertices: Array) -> float:
    """Area of a simple polygon given as (n, 2) vertices, in squared vertex units."""
    y, x = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def crystal_outline(rng: np.random.Generator, code: str, diameter_px: float, *,
                    equivalent_diameter: bool = False) -> Array:
    """Outline of a crystal of class ``code`` centred on (0, 0), (n, 2) (row, col) vertices, pixels.

    ``diameter_px`` is the largest extent, or with ``equivalent_diameter`` the diameter of the
    circle of the same area (what the scene kinds other than ``separate`` control).
    """
    outline = _OUTLINES[code](rng, diameter_px)
    if equivalent_diameter:
        outline *= diameter_px / np.sqrt(4 * polygon_area(outline) / np.pi)
    return outline


# --- shading of one crystal inside its bounding box -----------------------------------------------

def mask_in_box(vertices: Array, box: Box) -> Array:
    """Boolean mask of a polygon (image (row, col) vertices) inside ``box``."""
    height = box[0].stop - box[0].start
    width = box[1].stop - box[1].start
    rows, cols = filled_polygon(vertices[:, 0] - box[0].start, vertices[:, 1] - box[1].start, (height, width))
    mask = np.zeros((height, width), bool)
    mask[rows, cols] = True
    return mask


def _faceted_shading(rng, outline, box, mask, base, light) -> Array:
    """Top face inside a ring of side faces, each lit by its orientation to the detector."""
    centre = outline.mean(axis=0)
    spread = np.ptp(outline, axis=0).max()
    inner = (outline - centre) * rng.uniform(0.5, 0.75) + centre + rng.normal(0, 0.06, 2) * spread
    shading = np.full(mask.shape, base, np.float32)
    n = len(outline)
    for i in range(n):
        quad = np.array([outline[i], outline[(i + 1) % n], inner[(i + 1) % n], inner[i]])
        edge = outline[(i + 1) % n] - outline[i]
        normal_angle = np.arctan2(-edge[1], edge[0])  # outward normal for counter-clockwise rows/cols
        face = mask_in_box(quad, box)
        shading[face] = base + 0.2 * np.cos(normal_angle - light) + rng.normal(0, 0.02)
    top = mask_in_box(inner, box)
    shading[top] = base + rng.normal(0, 0.02)
    return shading


def _amorphous_shading(rng, outline, box, mask, base, light) -> Array:
    noise = ndi.gaussian_filter(rng.standard_normal(mask.shape), max(2.0, mask.shape[0] / 10))
    noise /= np.abs(noise).max() + 1e-9
    pits = ndi.gaussian_filter((rng.random(mask.shape) < 0.002).astype(float), 1.5)
    return (base + 0.12 * noise - 2.5 * pits).astype(np.float32)


def _rounded_shading(rng, outline, box, mask, base, light) -> Array:
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    depth = np.sqrt(np.clip(distance / max(distance.max(), 1.0), 0, 1))  # sphere-like profile
    rows, cols = np.indices(mask.shape)
    centre = np.array(mask.shape) / 2
    direction = ((rows - centre[0]) * np.sin(light) + (cols - centre[1]) * np.cos(light)) / max(mask.shape)
    return (base - 0.1 + 0.18 * (1 - depth) ** 2 + 0.12 * depth + 0.2 * direction).astype(np.float32)


_SHADINGS = {"RES": _faceted_shading, "PES": _faceted_shading, "AA": _amorphous_shading, "RA/SA": _rounded_shading}


@dataclass
class Crystal:
    """A crystal ready to be laid on a scene."""

    code: str
    outline: Array          # (n, 2) vertices in image (row, col) coordinates
    box: Box
    mask: Array             # bool, inside the box
    shading: Array          # float32 intensity, inside the box


def crystal_footprint(outline: Array, shape: tuple[int, int], *, min_inside_fraction: float) -> tuple[Box, Array] | None:
    """Bounding box and mask of ``outline`` (image coordinates, pixels) in an image of ``shape``;
    None when less than ``min_inside_fraction`` of it lies inside the image."""
    low = np.floor(outline.min(axis=0)).astype(int) - 1
    high = np.ceil(outline.max(axis=0)).astype(int) + 2
    low = np.maximum(low, 0)
    high = np.minimum(high, shape)
    if np.any(high - low < 3):
        return None
    box = (slice(low[0], high[0]), slice(low[1], high[1]))
    mask = mask_in_box(outline, box)
    if mask.sum() < min_inside_fraction * polygon_area(outline):
        return None
    return box, mask


def shade_crystal(rng: np.random.Generator, code: str, outline: Array, box: Box, mask: Array, *,
                  base_gray: tuple[float, float], light_rad: float) -> Crystal:
    """The crystal of class ``code``, shaded around a gray level drawn from ``base_gray`` and lit
    from azimuth ``light_rad``."""
    shading = _SHADINGS[code](rng, outline, box, mask, rng.uniform(*base_gray), light_rad)
    return Crystal(code, outline, box, mask, shading)


def crystal_at(rng: np.random.Generator, code: str, outline: Array, shape: tuple[int, int], *,
               min_inside_fraction: float, base_gray: tuple[float, float], light_rad: float) -> Crystal | None:
    """:func:`crystal_footprint` and :func:`shade_crystal` in one."""
    footprint = crystal_footprint(outline, shape, min_inside_fraction=min_inside_fraction)
    if footprint is None:
        return None
    return shade_crystal(rng, code, outline, *footprint, base_gray=base_gray, light_rad=light_rad)


def _union_box(a: Box, b: Box) -> Box:
    return tuple(slice(min(p.start, q.start), max(p.stop, q.stop)) for p, q in zip(a, b))  # type: ignore[return-value]


def covers_acceptably(labels: Array, box: Box, mask: Array, boxes: dict[int, Box], areas: dict[int, int], *,
                      max_overlap_fraction: float, min_visible_fraction: float) -> bool:
    """Whether a crystal with ``mask`` in ``box`` may be laid over ``labels``: it covers earlier
    crystals with at most ``max_overlap_fraction`` of its area, and each of them stays one piece
    with at least ``min_visible_fraction`` of its area (``areas``: visible pixels per id) visible."""
    under = labels[box][mask]
    covered = under[under > 0]
    if covered.size > max_overlap_fraction * mask.sum():
        return False
    for crystal_id, n_covered in zip(*np.unique(covered, return_counts=True)):
        if areas[crystal_id] - n_covered < min_visible_fraction * areas[crystal_id]:
            return False
        union = _union_box(boxes[crystal_id], box)
        remaining = labels[union] == crystal_id
        offset = (box[0].start - union[0].start, box[1].start - union[1].start)
        region = remaining[offset[0]:offset[0] + mask.shape[0], offset[1]:offset[1] + mask.shape[1]]
        region &= ~mask
        if ndi.label(remaining)[1] != 1:
            return False
    return True


class CrystalLayer:
    """Crystals laid in painter's order: the instance labels of what is visible, the clean image
    under them, and the class, centre ((row, col), pixels) and equivalent diameter (pixels, whole
    outline) of every crystal."""

    def __init__(self, clean: Array) -> None:
        self.clean = clean
        self.labels = np.zeros(clean.shape, np.int32)
        self.classes: list[str] = []
        self.centres: list[Array] = []
        self.diameters_px: list[float] = []
        self._boxes: dict[int, Box] = {}
        self._areas: dict[int, int] = {}

    @property
    def covered_fraction(self) -> float:
        return np.count_nonzero(self.labels) / self.labels.size

    def fits(self, box: Box, mask: Array, *, max_overlap_fraction: float, min_visible_fraction: float) -> bool:
        """Whether :func:`covers_acceptably` allows a crystal with ``mask`` in ``box`` on top."""
        return covers_acceptably(self.labels, box, mask, self._boxes, self._areas,
                                 max_overlap_fraction=max_overlap_fraction, min_visible_fraction=min_visible_fraction)

    def try_lay(self, crystal: Crystal, *, max_overlap_fraction: float, min_visible_fraction: float) -> bool:
        """Lay ``crystal`` on top if it :meth:`fits`; whether it was laid."""
        if not self.fits(crystal.box, crystal.mask, max_overlap_fraction=max_overlap_fraction,
                         min_visible_fraction=min_visible_fraction):
            return False
        self.lay(crystal)
        return True

    def lay(self, crystal: Crystal) -> None:
        """Lay ``crystal`` on top, whether it fits or not."""
        crystal_id = len(self.classes) + 1
        view = self.labels[crystal.box]
        for covered_id, n in zip(*np.unique(view[crystal.mask], return_counts=True)):
            if covered_id:
                self._areas[covered_id] -= int(n)
        view[crystal.mask] = crystal_id
        self.clean[crystal.box][crystal.mask] = crystal.shading[crystal.mask]
        self.classes.append(crystal.code)
        self.centres.append(crystal.outline.mean(axis=0))
        self.diameters_px.append(float(np.sqrt(4 * polygon_area(crystal.outline) / np.pi)))
        self._boxes[crystal_id] = crystal.box
        self._areas[crystal_id] = int(crystal.mask.sum())
        return True


def lay_crystals(rng: np.random.Generator, layer: CrystalLayer, spec: SceneSpec, *,
                 centre_for: Callable[[np.random.Generator, float, CrystalLayer], Array],
                 base_gray: tuple[float, float], light_rad: float) -> None:
    """Lay crystals of ``spec``'s classes and log-normal sizes on ``layer`` until it covers
    ``spec.coverage`` of the image or enough attempts failed; each one is stretched by up to
    ``spec.max_elongation``.

    ``centre_for(rng, diameter_px, layer)`` says where the next crystal goes ((row, col), pixels);
    ``base_gray`` is the range of the crystals' gray levels, ``light_rad`` the detector azimuth.
    """
    weights = np.asarray(spec.class_weights) / sum(spec.class_weights)
    mean_area_px = np.pi / 4 * spec.median_diameter_px ** 2
    max_attempts = int(10 * spec.coverage * layer.labels.size / mean_area_px) + 50
    for _ in range(max_attempts):
        if layer.covered_fraction >= spec.coverage:
            break
        code = CLASS_CODES[rng.choice(len(CLASS_CODES), p=weights)]
        diameter_px = float(spec.draw_diameters_px(rng, 1)[0])
        outline = crystal_outline(rng, code, diameter_px, equivalent_diameter=True)
        if spec.max_elongation > 1:
            outline = stretch_outline(outline, float(np.exp(rng.uniform(0, np.log(spec.max_elongation)))),
                                      rng.uniform(0, np.pi))
        outline = outline + centre_for(rng, diameter_px, layer)
        footprint = crystal_footprint(outline, spec.shape, min_inside_fraction=spec.min_inside_fraction)
        # shading is the costly part: only for crystals that fit
        if footprint is not None and layer.fits(*footprint, max_overlap_fraction=spec.max_overlap_fraction,
                                                min_visible_fraction=spec.min_visible_fraction):
            layer.lay(shade_crystal(rng, code, outline, *footprint, base_gray=base_gray, light_rad=light_rad))
