"""Dense micrite mosaics: space-filling polygonal to rhombic crystals separated by thin dark
intercrystalline boundaries, with micropores at some triple junctions.

The tessellation is a power diagram (a Voronoi diagram whose cells grow with a per-crystal
weight) of a jittered hexagonal lattice of seeds, measured in a sheared L_p norm: p = 2 gives
equant polygons, p towards 1 turns the unit "circle" into a rhomb, which biases crystal outlines
to the rhombic habit of calcite. The weights spread crystal sizes around the requested median.
Each crystal is lit as a slightly tilted face of its own gray level; boundaries are dark gaps of
randomised width and depth (sometimes faint, as where crystals touch closely).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.segmentation import find_boundaries, relabel_sequential

from ..classes import UNCLEAR
from .sem import add_edge_rims, render_sem, smooth_noise
from .spec import SceneSpec, SyntheticScene

Array = np.ndarray

#: smallest crystal kept, pixels; smaller slivers at the image border become boundary
_MIN_CRYSTAL_PX = 6


def _lattice_seeds(rng: np.random.Generator, shape: tuple[int, int], spacing_px: float) -> Array:
    """Jittered hexagonal lattice of (row, col) seeds covering ``shape`` with one spacing margin."""
    angle = rng.uniform(0, np.pi)
    basis = spacing_px * np.array([[np.sin(angle), np.cos(angle)],
                                   [np.sin(angle + np.pi / 3), np.cos(angle + np.pi / 3)]])
    reach = int(np.ceil(np.hypot(*shape) / spacing_px)) + 2
    steps = np.arange(-reach, reach + 1)
    i, j = np.meshgrid(steps, steps, indexing="ij")
    seeds = np.stack([i.ravel(), j.ravel()], axis=1) @ basis + np.array(shape) / 2
    seeds += rng.normal(0, 0.25 * spacing_px, seeds.shape)
    margin = spacing_px
    keep = np.all((seeds > -margin) & (seeds < np.array(shape) + margin), axis=1)
    return seeds[keep]


def tessellate(rng: np.random.Generator, shape: tuple[int, int], *, median_diameter_px: float,
               size_spread: float, rhombic_bias: float) -> Array:
    """Space-filling crystal labels, int32 (Y, X), 1..N, no background.

    ``median_diameter_px``: median equivalent diameter of the cells; ``size_spread``: standard
    deviation of the log cell diameter; ``rhombic_bias`` 0..1: from equant polygons to rhombs.
    """
    spacing_px = median_diameter_px * np.sqrt(np.pi / 4 / np.sin(np.pi / 3))  # hexagonal cell area
    seeds = _lattice_seeds(rng, shape, spacing_px)
    p_norm = 2.0 - 0.9 * rhombic_bias
    shear = np.array([[1.0, 0.0], [rng.uniform(-0.3, 0.3) * rhombic_bias, 1.0]])
    turn = rng.uniform(0, np.pi)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    metric = shear @ rotation
    weights = (0.5 * spacing_px) ** 2 * (np.exp(2 * size_spread * rng.standard_normal(len(seeds))) - 1)
    pixels = np.indices(shape).reshape(2, -1).T.astype(np.float32)
    k = min(10, len(seeds))
    distances, nearest = cKDTree(seeds @ metric.T).query(pixels @ metric.T, k=k, p=p_norm)
    power = distances.reshape(-1, k) ** 2 - weights[nearest.reshape(-1, k)]
    owner = nearest.reshape(-1, k)[np.arange(len(pixels)), np.argmin(power, axis=1)]
    return relabel_sequential(owner.reshape(shape).astype(np.int32) + 1)[0]


def _triple_junctions(cells: Array) -> Array:
    """(row, col) of points where three or more cells meet (one per junction)."""
    a, b, c, d = cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1], cells[1:, 1:]
    distinct = 1 + (b != a) + ((c != a) & (c != b)) + ((d != a) & (d != b) & (d != c))
    junctions, n = ndi.label(ndi.binary_dilation(distinct >= 3, iterations=1))
    if n == 0:
        return np.zeros((0, 2))
    return np.array(ndi.center_of_mass(junctions > 0, junctions, range(1, n + 1))) + 0.5


def _largest_piece_per_crystal(labels: Array) -> Array:
    """Keep each crystal's largest 4-connected piece (at least ``_MIN_CRYSTAL_PX``); number 1..N."""
    pieces, n = ndi.label(labels > 0)
    if n == 0:
        return labels
    sizes = np.bincount(pieces.ravel())
    owner = ndi.maximum(labels, pieces, np.arange(n + 1)).astype(np.int64)
    best = np.zeros(labels.max() + 1, np.int64)
    best_size = np.zeros(labels.max() + 1, np.int64)
    for piece in np.argsort(sizes[1:])[::-1] + 1:
        if sizes[piece] > best_size[owner[piece]]:
            best[owner[piece]], best_size[owner[piece]] = piece, sizes[piece]
    kept = np.zeros(n + 1, bool)
    kept[best[best_size >= _MIN_CRYSTAL_PX]] = True
    kept[0] = False
    return relabel_sequential(np.where(kept[pieces], labels, 0))[0].astype(np.int32)


def render_mosaic(spec: SceneSpec) -> SyntheticScene:
    """Render a dense crystal mosaic with exact instance labels (0 = boundary or micropore)."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    low, high = spec.crystal_size_um
    half_width_px = max(0.5, spec.boundary_width_um / px / 2)
    # the boundary takes a band of half its width from every crystal: cells are grown by that much
    cells = tessellate(rng, spec.shape, median_diameter_px=spec.median_diameter_px + 2 * half_width_px,
                       size_spread=np.log(high / low) / 4, rhombic_bias=spec.rhombic_bias)
    n_cells = int(cells.max())

    # each crystal a tilted face of its own gray level, lit from the detector side
    centres = np.array(ndi.center_of_mass(np.ones(spec.shape), cells, range(1, n_cells + 1)))
    gray = np.concatenate([[0.0], rng.uniform(0.45, 0.72, n_cells)])
    tilt = np.concatenate([np.zeros((1, 2)), rng.normal(0, 0.12 / spec.median_diameter_px, (n_cells, 2))])
    centres = np.concatenate([np.zeros((1, 2)), centres])
    rows, cols = np.indices(spec.shape)
    clean = (gray[cells] + tilt[cells, 0] * (rows - centres[cells, 0])
             + tilt[cells, 1] * (cols - centres[cells, 1])).astype(np.float32)
    clean *= 1 + 0.05 * smooth_noise(rng, spec.shape, max(1.0, 0.1 * spec.median_diameter_px))

    # dark boundaries: everything within half the boundary width of a cell edge
    to_boundary = ndi.distance_transform_edt(~find_boundaries(cells, mode="thick"))
    labels = np.where(to_boundary < half_width_px, 0, cells)
    darkness = spec.boundary_darkness * rng.uniform(0.6, 1.0, n_cells + 1)[cells]  # uneven along boundaries
    # the dark valley may reach into the crystals beyond the gap, as along rounded crystal edges
    valley_px = max(half_width_px, 0.8) * rng.uniform(1.0, 2.5)
    clean *= 1 - darkness * np.exp(-(to_boundary / valley_px) ** 2)

    junctions = _triple_junctions(cells)
    pores = junctions[rng.random(len(junctions)) < spec.micropore_fraction]
    if len(pores):
        radii = np.minimum(half_width_px * rng.uniform(1.5, 3.0, len(pores)) + 1.0, 0.15 * spec.median_diameter_px)
        to_pore, nearest = cKDTree(pores).query(np.stack([rows.ravel(), cols.ravel()], axis=1), k=1)
        in_pore = (to_pore < radii[nearest]).reshape(spec.shape)
        labels[in_pore] = 0
        clean = np.where(in_pore, rng.uniform(0.03, 0.12), clean).astype(np.float32)

    labels = _largest_piece_per_crystal(labels)
    clean = add_edge_rims(clean, labels, brightness=0.5 * spec.sem.edge_brightness, width_px=spec.rim_width_um / px)
    image, clean = render_sem(clean, labels, rng, effects=spec.sem, scene_blur_px=0.6,
                              electrons_at_white=spec.electrons_at_white, read_noise=spec.read_noise)
    return SyntheticScene(image, clean, labels, (UNCLEAR.code,) * int(labels.max()), px, spec)
