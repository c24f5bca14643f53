"""Crystals in a textured matrix: particles of a gray level close to the matrix's, so that their
contrast is partial, as spheroidised carbides in steel or micrite crystals in a fine cement.

The matrix has its own texture: ``speckle`` (fine and coarse mottling) or ``lamellae`` (stripes
whose orientation and period change from domain to domain, as in pearlite or layered cements).
Crystals sit in shallow pits of the matrix, which show as a dark moat around them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .crystals import CrystalLayer, lay_crystals
from .sem import add_crevices, add_edge_rims, render_sem, smooth_noise
from .spec import MatrixTexture, SceneSpec, SyntheticScene

Array = np.ndarray


def matrix_texture(rng: np.random.Generator, shape: tuple[int, int], *, texture: MatrixTexture,
                   feature_px: float) -> Array:
    """Zero-mean texture, float32 (Y, X), of magnitude about 1, with features ``feature_px`` wide."""
    mottling = (0.5 * smooth_noise(rng, shape, 0.5 * feature_px) + 0.3 * smooth_noise(rng, shape, 2 * feature_px)
                + rng.uniform(0.0, 0.2) * smooth_noise(rng, shape, 0.7))
    if texture == "speckle":
        return mottling.astype(np.float32)
    n_domains = int(rng.integers(3, 12))
    domain_seeds = rng.uniform((0, 0), shape, (n_domains, 2))
    rows, cols = np.indices(shape)
    _, domain = cKDTree(domain_seeds).query(np.stack([rows.ravel(), cols.ravel()], axis=1))
    domain = domain.reshape(shape)
    angle = rng.uniform(0, np.pi, n_domains)[domain]
    period_px = rng.uniform(2.5, 4.0, n_domains)[domain] * max(feature_px, 1.0)
    phase = rng.uniform(0, 2 * np.pi, n_domains)[domain] + 1.5 * smooth_noise(rng, shape, 4 * feature_px)
    stripes = np.tanh(2.5 * np.sin(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / period_px + phase))
    return (0.7 * stripes + 0.3 * mottling).astype(np.float32)


def _anywhere(rng: np.random.Generator, diameter_px: float, layer: CrystalLayer) -> Array:
    return rng.uniform((0, 0), layer.labels.shape)


def render_matrix(spec: SceneSpec) -> SyntheticScene:
    """Render crystals in a textured matrix with exact instance labels (0 = matrix) and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    matrix_gray = rng.uniform(0.3, 0.5)
    feature_px = rng.uniform(0.05, 0.2) * spec.median_diameter_px + 1.0
    texture = matrix_texture(rng, spec.shape, texture=spec.matrix_texture, feature_px=feature_px)
    clean = (matrix_gray + rng.uniform(0.06, 0.35) * texture).astype(np.float32)
    layer = CrystalLayer(clean)
    crystal_gray = matrix_gray + spec.matrix_contrast
    lay_crystals(rng, layer, spec, centre_for=_anywhere, base_gray=(crystal_gray - 0.04, crystal_gray + 0.04),
                 light_rad=spec.sem.detector_direction_rad)
    labels = layer.labels
    # crystals often sit in pits of the (etched or polished) matrix: a dark moat around each
    moat_px = rng.uniform(1.0, max(1.5, 0.15 * spec.median_diameter_px))
    to_crystal = ndi.distance_transform_edt(labels == 0)
    clean = (layer.clean - np.where(labels == 0, rng.uniform(0.0, 0.4) * np.exp(-to_crystal / moat_px), 0)
             ).astype(np.float32)
    clean = add_edge_rims(clean, labels, brightness=spec.sem.edge_brightness, width_px=spec.rim_width_um / px)
    clean = add_crevices(clean, labels, depth=0.3, width_px=spec.crevice_width_um / px)
    image, clean = render_sem(clean, labels, rng, effects=spec.sem, scene_blur_px=0.6,
                              electrons_at_white=spec.electrons_at_white, read_noise=spec.read_noise)
    return SyntheticScene(image, clean, labels, tuple(layer.classes), px, spec)
