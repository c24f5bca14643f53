"""Particles in a textured matrix: bright, smooth particles (spheroidised carbides in steel,
micrite crystals in a fine cement) partly sunk in a matrix full of structure that is not particles.

The matrix is a height field lit as a secondary-electron image lights relief (:func:`matrix_relief`,
:func:`light_relief`): relief rough at several scales; a dominant fine texture (``speckle``:
mottling; ``lamellae``: patches of stripes whose orientation and period change from domain to
domain, as in pearlite; ``flakes``: short flakes aligned per domain, as in etched ferrite or layered
cements); thin bright ridges and long dark grooves; dark pits of several sizes. Dim, soft
"ghosts" of particles sunk below the surface lie under its texture. Its crests reach the particles' brightness in
places, so that a particle is told from the matrix by its smooth interior, its outline and the dark
moat around it, not by brightness alone.

Particles range from tiny to large (``SceneSpec.crystal_size_um``), may be elongated
(``SceneSpec.max_elongation``) and sit in the matrix: it covers their edges unevenly
(``SceneSpec.burial_fraction``), and the labels hold only what stays visible.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.draw import ellipse
from skimage.segmentation import relabel_sequential

from .crystals import CrystalLayer, lay_crystals
from .sem import add_crevices, add_edge_rims, render_sem
from .spec import MatrixTexture, SceneSpec, SyntheticScene

Array = np.ndarray

#: most shifted copies averaged to smear a field into streaks (their cost grows with the count)
_MAX_STREAK_STEPS = 16
#: most sunken particle ghosts drawn in a matrix
_MAX_GHOSTS = 300


def _standardised(field_: Array) -> Array:
    """``field_`` with zero mean and unit standard deviation, float32."""
    field_ = field_ - field_.mean()
    return (field_ / (field_.std() + 1e-9)).astype(np.float32)


def noise_field(rng: np.random.Generator, shape: tuple[int, int], widths_px: tuple[float, ...],
                weights: tuple[float, ...] | None = None) -> Array:
    """White noise smoothed by Gaussians ``widths_px`` wide (their sum, weighted by ``weights``, each
    first scaled to unit standard deviation), periodic at the borders; float32 (Y, X), zero mean,
    unit standard deviation. Filtered in Fourier space, so wide features cost no more than narrow ones."""
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    filters = sum(weight * 2 * np.sqrt(np.pi) * width * ndi.fourier_gaussian(np.ones_like(spectrum), width, n=shape[1])
                  for width, weight in zip(widths_px, weights or (1.0,) * len(widths_px)))
    return _standardised(np.fft.irfft2(spectrum * filters, s=shape))


def _domains(rng: np.random.Generator, shape: tuple[int, int], n_domains: int) -> Array:
    """Voronoi domains of ``n_domains`` random seeds, int (Y, X), 0..n_domains - 1."""
    seeds = rng.uniform((0, 0), shape, (n_domains, 2))
    pixels = np.indices(shape).reshape(2, -1).T
    return cKDTree(seeds).query(pixels)[1].reshape(shape)


def streaks(field_: Array, *, direction_rad: float, length_px: float) -> Array:
    """``field_`` averaged over ``length_px`` along ``direction_rad`` (periodic at the borders):
    blobs become streaks and single points line segments."""
    n_steps = int(np.clip(round(length_px), 2, _MAX_STREAK_STEPS))
    step = np.array([np.sin(direction_rad), np.cos(direction_rad)])
    total = np.zeros_like(field_)
    for distance in np.linspace(-length_px / 2, length_px / 2, n_steps):
        total += np.roll(field_, tuple(np.round(distance * step).astype(int)), axis=(0, 1))
    return total / n_steps


def _aligned_per_domain(rng: np.random.Generator, field_: Array, domain: Array, angles: Array, *,
                        length_px: float) -> Array:
    """``field_`` smeared into streaks along each domain's angle (on the domain's bounding box, with
    a margin that keeps the periodic smearing from wrapping into the domain)."""
    aligned = np.zeros_like(field_)
    for index, box in enumerate(ndi.find_objects(domain + 1)):
        if box is None:
            continue
        length = length_px * rng.uniform(0.7, 1.4)
        margin = int(np.ceil(length / 2)) + 1
        padded = tuple(slice(max(0, b.start - margin), min(n, b.stop + margin)) for b, n in zip(box, field_.shape))
        inner = tuple(slice(b.start - p.start, b.stop - p.start) for b, p in zip(box, padded))
        smeared = streaks(field_[padded], direction_rad=angles[index], length_px=length)[inner]
        inside = domain[box] == index
        aligned[box][inside] = smeared[inside]
    return aligned


def fractal_relief(rng: np.random.Generator, shape: tuple[int, int], *, finest_px: float, octaves: int = 4) -> Array:
    """Relief rough at several scales: smooth noise ``finest_px * 2**k`` wide for k < ``octaves``,
    each with a random weight; float32 (Y, X), zero mean, unit standard deviation."""
    return noise_field(rng, shape, tuple(finest_px * 2.0 ** k for k in range(octaves)),
                       tuple(rng.uniform(0.2, 1.0, octaves)))


def fine_texture(rng: np.random.Generator, shape: tuple[int, int], *, texture: MatrixTexture, feature_px: float,
                 domain: Array, angles: Array) -> Array:
    """The matrix's dominant texture, ``feature_px`` wide, float32 (Y, X), zero mean, unit standard
    deviation; lamellae and flakes are aligned per ``domain`` along ``angles``."""
    mottling = noise_field(rng, shape, (0.5 * feature_px, 2 * feature_px, 0.7), (0.5, 0.3, rng.uniform(0.0, 0.2)))
    if texture == "speckle":
        return mottling
    if texture == "flakes":
        grain = noise_field(rng, shape, (0.5 * feature_px,))
        flakes = _aligned_per_domain(rng, grain, domain, angles, length_px=rng.uniform(3.0, 8.0) * feature_px)
        return _standardised(np.tanh(1.5 * _standardised(flakes)) + 0.3 * mottling)
    rows, cols = np.indices(shape)
    n_domains = len(angles)
    angle = angles[domain]
    period_px = rng.uniform(2.5, 4.0, n_domains)[domain] * max(feature_px, 1.0)
    phase = rng.uniform(0, 2 * np.pi, n_domains)[domain] + 0.5 * noise_field(rng, shape, (4 * feature_px,))
    stripes = np.tanh(2.5 * np.sin(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / period_px + phase))
    # lamellae come in colonies: patches of stripes among rougher matrix
    patches = 0.5 + 0.5 * np.tanh(noise_field(rng, shape, (6 * feature_px,)) + rng.uniform(-0.5, 1.5))
    return _standardised(0.8 * stripes * patches + 0.4 * mottling)


def _segments(rng: np.random.Generator, shape: tuple[int, int], *, per_px2: float, width_px: float,
              domain: Array, angles: Array, length_px: float) -> Array:
    """Thin line segments at random places, aligned per domain, float32 (Y, X), 0 to 1."""
    points = (rng.random(shape) < per_px2).astype(np.float32)
    blurred = ndi.gaussian_filter(points, width_px)
    segments = _aligned_per_domain(rng, blurred, domain, angles, length_px=length_px)
    return np.minimum(segments / (segments.max() + 1e-9), 1.0)


def _pits(rng: np.random.Generator, shape: tuple[int, int], *, widths_px: tuple[float, ...], area_fraction: float) -> Array:
    """Dark pits, ``widths_px`` wide, covering about ``area_fraction`` of the image: the deepest
    hollows of smooth noise; float32 (Y, X), 0 outside pits up to 1 at their bottom."""
    pits = np.zeros(shape, np.float32)
    for width_px in widths_px:
        hollows = noise_field(rng, shape, (width_px,))
        threshold = np.quantile(hollows, 1 - area_fraction / len(widths_px))
        pits = np.maximum(pits, np.clip((hollows - threshold) / 0.6, 0, 1))
    return pits


def _ghosts(rng: np.random.Generator, spec: SceneSpec, *, count: int) -> Array:
    """Soft, rounded to elongated bumps of the particles' sizes (particles sunk below the surface,
    or cut away by the section), float32 (Y, X), 0 outside to about 1 inside."""
    ghosts = np.zeros(spec.shape, np.float32)
    for diameter_px in spec.draw_diameters_px(rng, count):
        stretch = np.sqrt(rng.uniform(1.0, 2.5))
        rows, cols = ellipse(*rng.uniform((0, 0), spec.shape), diameter_px / 2 * stretch, diameter_px / 2 / stretch,
                             shape=spec.shape, rotation=rng.uniform(0, np.pi))
        ghosts[rows, cols] = np.maximum(ghosts[rows, cols], rng.uniform(0.4, 1.0))
    return ndi.gaussian_filter(ghosts, rng.uniform(0.7, 2.0))


def matrix_relief(rng: np.random.Generator, spec: SceneSpec, *, feature_px: float) -> Array:
    """Height of the matrix, float32 (Y, X), about unit standard deviation: relief at several
    scales, the fine texture of ``spec.matrix_texture``, ridges, grooves and pits, each with a
    random strength."""
    shape = spec.shape
    n_domains = int(rng.integers(3, 12))
    domain = _domains(rng, shape, n_domains)
    angles = rng.uniform(0, np.pi, n_domains)
    octaves = int(np.clip(np.log2(spec.median_diameter_px / feature_px) + 1, 2, 6))
    height = (rng.uniform(0.3, 1.0) * fractal_relief(rng, shape, finest_px=max(1.0, 0.5 * feature_px), octaves=octaves)
              + rng.uniform(0.5, 1.0) * fine_texture(rng, shape, texture=spec.matrix_texture, feature_px=feature_px,
                                                    domain=domain, angles=angles))
    segment_px = rng.uniform(4.0, 12.0) * feature_px
    lines_per_px2 = rng.uniform(0.2, 2.0) / (segment_px * feature_px) / 4
    height += rng.uniform(0.0, 2.0) * _segments(rng, shape, per_px2=lines_per_px2, width_px=rng.uniform(0.6, 1.5),
                                                domain=domain, angles=angles, length_px=segment_px)
    height -= rng.uniform(0.0, 2.5) * _segments(rng, shape, per_px2=0.5 * lines_per_px2, width_px=rng.uniform(0.7, 2.0),
                                                domain=domain, angles=angles + rng.normal(0, 0.3, n_domains),
                                                length_px=2 * segment_px)
    height -= rng.uniform(1.0, 3.5) * _pits(rng, shape, widths_px=(0.7 * feature_px, 2 * feature_px, 0.5 * spec.median_diameter_px),
                                            area_fraction=rng.uniform(0.01, 0.08))
    return height.astype(np.float32)


def light_relief(height: Array, *, direction_rad: float, slope_gain: float, edge_gain: float) -> Array:
    """Secondary-electron look of a height field: the height itself, slopes facing the detector
    (``direction_rad``) brighter and those turned away darker, and steep slopes bright (edge
    effect); float32 (Y, X), zero mean, unit standard deviation."""
    d_row, d_col = np.gradient(ndi.gaussian_filter(height, 0.7))
    facing = _standardised(d_row * np.sin(direction_rad) + d_col * np.cos(direction_rad))
    steepness = _standardised(np.hypot(d_row, d_col))
    return _standardised(height + slope_gain * facing + edge_gain * steepness)


def _anywhere(rng: np.random.Generator, diameter_px: float, layer: CrystalLayer) -> Array:
    return rng.uniform((0, 0), layer.labels.shape)


def sink_into_matrix(rng: np.random.Generator, labels: Array, *, burial_fraction: float, unevenness_px: float,
                     min_visible_fraction: float) -> Array:
    """Particle labels, int32 (Y, X), after the matrix has covered each particle's edge up to
    ``burial_fraction`` of its radius (unevenly, varying over ``unevenness_px``); a particle keeps
    its largest 4-connected piece, or nothing when less than ``min_visible_fraction`` of its area
    stays visible. Ids are not renumbered; 0 is matrix."""
    inside = labels > 0
    areas = np.bincount(labels.ravel())
    radius_px = np.sqrt(areas / np.pi)[labels]
    depth = burial_fraction * radius_px * np.clip(0.5 + 0.25 * noise_field(rng, labels.shape, (unevenness_px,)), 0, 1)
    sunk = np.where(inside & (ndi.distance_transform_edt(inside) <= depth), 0, labels).astype(np.int32)
    for index, box in enumerate(ndi.find_objects(sunk), start=1):
        if box is None:
            continue
        pieces, n_pieces = ndi.label(sunk[box] == index)
        sizes = np.bincount(pieces.ravel())[1:]
        keep = 1 + int(sizes.argmax())
        view = sunk[box]
        if sizes.max() < min_visible_fraction * areas[index]:
            view[pieces > 0] = 0
        elif n_pieces > 1:
            view[(pieces > 0) & (pieces != keep)] = 0
    return sunk


def render_matrix(spec: SceneSpec) -> SyntheticScene:
    """Render particles in a textured matrix with exact instance labels (0 = matrix) and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    light_rad = spec.sem.detector_direction_rad
    matrix_gray = rng.uniform(0.3, 0.5)
    # the matrix's grain is as fine as the scan shows, or coarser at high magnification
    feature_px = float(np.exp(rng.uniform(np.log(1.5), np.log(max(2.0, 0.2 * spec.median_diameter_px)))))
    height = matrix_relief(rng, spec, feature_px=feature_px)
    lit = light_relief(height, direction_rad=light_rad, slope_gain=rng.uniform(0.0, 1.0), edge_gain=rng.uniform(0.0, 0.5))
    # the matrix's brightest crests (about +3 standard deviations) reach the particles' gray level
    texture_gray = rng.uniform(0.2, 0.4) * spec.matrix_contrast + rng.uniform(0.02, 0.04)
    # dim ghosts of particles, never as bright as the particles themselves
    n_ghosts = int(rng.uniform(0.3, 1.5) * spec.coverage * spec.shape[0] * spec.shape[1]
                   / (np.pi / 4 * spec.median_diameter_px ** 2))
    ghost_gray = rng.uniform(0.2, 0.6) * spec.matrix_contrast
    matrix = (matrix_gray + texture_gray * lit
              + ghost_gray * _ghosts(rng, spec, count=min(n_ghosts, _MAX_GHOSTS))).astype(np.float32)
    layer = CrystalLayer(matrix.copy())
    crystal_gray = matrix_gray + spec.matrix_contrast
    lay_crystals(rng, layer, spec, centre_for=_anywhere, base_gray=(crystal_gray - 0.04, crystal_gray + 0.04),
                 light_rad=light_rad)
    sunk = sink_into_matrix(rng, layer.labels, burial_fraction=spec.burial_fraction,
                            unevenness_px=max(1.0, 0.2 * spec.median_diameter_px), min_visible_fraction=0.3)
    classes = tuple(layer.classes[old - 1] for old in np.unique(sunk) if old > 0)
    labels = relabel_sequential(sunk)[0]
    clean = np.where(labels > 0, layer.clean, matrix)
    # particles sit in pits of the (etched or polished) matrix: a dark moat around each
    moat_px = rng.uniform(1.0, max(1.5, 0.15 * spec.median_diameter_px))
    to_particle = ndi.distance_transform_edt(labels == 0)
    clean = (clean - np.where(labels == 0, rng.uniform(0.1, 0.4) * np.exp(-to_particle / moat_px), 0)).astype(np.float32)
    clean = add_edge_rims(clean, labels, brightness=spec.sem.edge_brightness, width_px=spec.rim_width_um / px)
    clean = add_crevices(clean, labels, depth=0.3, width_px=spec.crevice_width_um / px)
    image, clean = render_sem(clean, labels, rng, effects=spec.sem, scene_blur_px=0.6,
                              electrons_at_white=spec.electrons_at_white, read_noise=spec.read_noise)
    return SyntheticScene(image, clean, labels.astype(np.int32), classes, px, spec)
