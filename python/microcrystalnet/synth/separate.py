"""Synthetic SEM scenes of micrite crystals with exact ground truth.

The paper's data set (lmcDB) is not public, so tests, the demo and the benchmarks run on
scenes rendered here. A scene is a secondary-electron-like image of low-Mg calcite
microcrystals of the four classes of the paper, touching and partly overlapping, over dark
pore space, together with the exact instance label image of what is visible and the class of
every crystal. Nothing measured on these scenes is a result on real rocks.

What is rendered, and why:

* crystal outlines per class: rhombic (RES) parallelograms with the ~75/105 degree face angles
  of calcite rhombs; polyhedral (PES) convex polygons with 7-10 sides; amorphous (AA) lobed,
  non-convex blobs; rounded/spherical (RA/SA) near-circular ellipses;
* faceted crystals (RES, PES) drawn as a top face inside a ring of side faces whose brightness
  depends on their orientation to the detector, as on SEM images of real rhombs;
* SEM edge effect: bright rims along every crystal edge; dark crevices where a crystal
  disappears under a neighbour; dim, blurred "pore backs" (crystals deep in the pores);
* texture, a small beam blur, and Poisson (shot) + Gaussian (read-out) noise.

Crystals are placed one after the other on top of the earlier ones (painter's order). A
placement is kept only if every crystal it covers stays in one piece and keeps at least
``min_visible_fraction`` of its area, so the label image holds one connected region per crystal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as fill_polygon
from skimage.segmentation import find_boundaries

from .classes import CLASS_CODES

Array = np.ndarray


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines a synthetic scene; the same spec and seed give the same scene.

    Lengths are in micrometres so a scene keeps its physical content at any pixel size.
    """

    shape: tuple[int, int] = (2048, 2048)
    pixel_size_um: float = 0.01
    #: range of crystal diameters (largest extent), micrometres; micrite is 1-4 um
    crystal_size_um: tuple[float, float] = (1.0, 4.0)
    #: fraction of the image covered by crystals at which placement stops
    coverage: float = 0.62
    #: relative frequency of RES, PES, AA, RA/SA
    class_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    #: a crystal keeps at least this fraction of its area visible when others cover it
    min_visible_fraction: float = 0.6
    #: a new crystal may cover others with at most this fraction of its own area
    max_overlap_fraction: float = 0.15
    #: a crystal cut by the image border keeps at least this fraction of its area
    min_inside_fraction: float = 0.35
    #: mean detected electrons per pixel at intensity 1 (shot noise); lower is noisier
    electrons_at_white: float = 40.0
    #: standard deviation of the read-out noise, in intensity units (0-1)
    read_noise: float = 0.02
    #: width of the bright edge rim, micrometres
    rim_width_um: float = 0.03
    #: width of the dark crevice where a crystal passes under a neighbour, micrometres
    crevice_width_um: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 32:
            raise ValueError(f"shape must be (height, width) of at least 32 px, got {self.shape}")
        if self.pixel_size_um <= 0:
            raise ValueError("pixel_size_um must be positive")
        low, high = self.crystal_size_um
        if not 0 < low <= high:
            raise ValueError(f"crystal_size_um must be (low, high) with 0 < low <= high, got {self.crystal_size_um}")
        if not 0 < self.coverage < 1:
            raise ValueError("coverage must be between 0 and 1")
        if len(self.class_weights) != len(CLASS_CODES) or min(self.class_weights) < 0 or sum(self.class_weights) <= 0:
            raise ValueError("class_weights needs 4 non-negative weights, not all zero")


@dataclass
class SyntheticScene:
    """A rendered scene and its ground truth.

    ``image``: uint8 (Y, X), the noisy SEM-like image. ``clean``: float32 (Y, X) in [0, 1], the
    same without noise. ``labels``: int32 (Y, X), 0 for pore space and 1..N for the visible
    part of each crystal. ``crystal_classes[i]`` is the class code of crystal ``i + 1``.
    """

    image: Array
    clean: Array
    labels: Array
    crystal_classes: tuple[str, ...]
    pixel_size_um: float
    spec: SceneSpec = field(repr=False)

    @property
    def n_crystals(self) -> int:
        return len(self.crystal_classes)


# --- crystal outlines, centred on (0, 0), in pixels as (row, col) vertex arrays -----------------

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


# --- shading of one crystal inside its bounding box ----------------------------------------------

@dataclass
class _Crystal:
    code: str
    outline: Array          # (n, 2) vertices in image (row, col) coordinates
    box: tuple[slice, slice]
    mask: Array             # bool, inside the box
    shading: Array          # float32, inside the box


def _mask_in_box(vertices: Array, box: tuple[slice, slice]) -> Array:
    height = box[0].stop - box[0].start
    width = box[1].stop - box[1].start
    rows, cols = fill_polygon(vertices[:, 0] - box[0].start, vertices[:, 1] - box[1].start, (height, width))
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
        face = _mask_in_box(quad, box)
        shading[face] = base + 0.2 * np.cos(normal_angle - light) + rng.normal(0, 0.02)
    top = _mask_in_box(inner, box)
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


def _polygon_area(vertices: Array) -> float:
    y, x = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# --- placement --------------------------------------------------------------------------------

def _make_crystal(rng, spec: SceneSpec, light: float) -> _Crystal | None:
    code = CLASS_CODES[rng.choice(len(CLASS_CODES), p=np.asarray(spec.class_weights) / sum(spec.class_weights))]
    diameter_px = rng.uniform(*spec.crystal_size_um) / spec.pixel_size_um
    outline = _OUTLINES[code](rng, diameter_px) + rng.uniform((0, 0), spec.shape)
    low = np.floor(outline.min(axis=0)).astype(int) - 1
    high = np.ceil(outline.max(axis=0)).astype(int) + 2
    low = np.maximum(low, 0)
    high = np.minimum(high, spec.shape)
    if np.any(high - low < 3):
        return None
    box = (slice(low[0], high[0]), slice(low[1], high[1]))
    mask = _mask_in_box(outline, box)
    if mask.sum() < spec.min_inside_fraction * _polygon_area(outline):
        return None
    shading = _SHADINGS[code](rng, outline, box, mask, rng.uniform(0.5, 0.68), light)
    return _Crystal(code, outline, box, mask, shading)


def _union_box(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice]:
    return tuple(slice(min(p.start, q.start), max(p.stop, q.stop)) for p, q in zip(a, b))  # type: ignore[return-value]


def _covers_acceptably(labels: Array, crystal: _Crystal, boxes: dict[int, tuple[slice, slice]],
                       areas: dict[int, int], spec: SceneSpec) -> bool:
    under = labels[crystal.box][crystal.mask]
    covered = under[under > 0]
    if covered.size > spec.max_overlap_fraction * crystal.mask.sum():
        return False
    for crystal_id, n_covered in zip(*np.unique(covered, return_counts=True)):
        if areas[crystal_id] - n_covered < spec.min_visible_fraction * areas[crystal_id]:
            return False
        box = _union_box(boxes[crystal_id], crystal.box)
        remaining = labels[box] == crystal_id
        offset = (crystal.box[0].start - box[0].start, crystal.box[1].start - box[1].start)
        region = remaining[offset[0]:offset[0] + crystal.mask.shape[0], offset[1]:offset[1] + crystal.mask.shape[1]]
        region &= ~crystal.mask
        if ndi.label(remaining)[1] != 1:
            return False
    return True


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> Array:
    field_ = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return field_ / (np.abs(field_).max() + 1e-9)


def render_scene(spec: SceneSpec = SceneSpec()) -> SyntheticScene:
    """Render a synthetic SEM scene with its exact instance labels and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    light = rng.uniform(0, 2 * np.pi)  # azimuth of the detector, as seen in the image

    # pore space: dark, uneven, with blurred crystals deep in the pores ("pore backs")
    clean = (0.12 + 0.05 * _smooth_noise(rng, spec.shape, 0.5 / px)).astype(np.float32)
    pore_backs = np.zeros(spec.shape, np.float32)
    for _ in range(int(spec.shape[0] * spec.shape[1] * px * px / 8) + 1):
        back = _make_crystal(rng, spec, light)
        if back is not None:
            pore_backs[back.box][back.mask] = 0.08 + 0.08 * rng.random()
    clean += ndi.gaussian_filter(pore_backs, 0.08 / px)

    labels = np.zeros(spec.shape, np.int32)
    classes: list[str] = []
    boxes: dict[int, tuple[slice, slice]] = {}
    areas: dict[int, int] = {}
    mean_area_px = np.pi / 4 * np.mean(spec.crystal_size_um) ** 2 * 0.7 / px ** 2
    max_attempts = int(60 * spec.coverage * labels.size / mean_area_px) + 50
    for _ in range(max_attempts):
        if np.count_nonzero(labels) >= spec.coverage * labels.size:
            break
        crystal = _make_crystal(rng, spec, light)
        if crystal is None or not _covers_acceptably(labels, crystal, boxes, areas, spec):
            continue
        crystal_id = len(classes) + 1
        view = labels[crystal.box]
        for covered_id, n in zip(*np.unique(view[crystal.mask], return_counts=True)):
            if covered_id:
                areas[covered_id] -= int(n)
        view[crystal.mask] = crystal_id
        clean[crystal.box][crystal.mask] = crystal.shading[crystal.mask]
        classes.append(crystal.code)
        boxes[crystal_id] = crystal.box
        areas[crystal_id] = int(crystal.mask.sum())

    inside = labels > 0
    # SEM edge effect: bright rims inside every crystal edge
    edges = find_boundaries(labels, mode="inner") & inside
    to_edge = ndi.distance_transform_edt(~edges)
    clean += np.where(inside, 0.22 * np.exp(-to_edge / (spec.rim_width_um / px)), 0).astype(np.float32)
    # dark crevices where a crystal passes under a later (upper) neighbour
    upper_neighbour = ndi.maximum_filter(labels, size=3) > labels
    crevice = upper_neighbour & inside
    to_crevice = ndi.distance_transform_edt(~crevice)
    clean -= np.where(inside, 0.3 * np.exp(-to_crevice / (spec.crevice_width_um / px)), 0).astype(np.float32)
    # surface texture and a small beam blur
    clean *= 1 + 0.06 * _smooth_noise(rng, spec.shape, 0.06 / px)
    clean = np.clip(ndi.gaussian_filter(clean, max(0.5, 0.008 / px)), 0, 1).astype(np.float32)

    electrons = rng.poisson(clean * spec.electrons_at_white) / spec.electrons_at_white
    noisy = electrons + rng.normal(0, spec.read_noise, spec.shape)
    image = np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)
    return SyntheticScene(image, clean, labels, tuple(classes), spec.pixel_size_um, spec)
