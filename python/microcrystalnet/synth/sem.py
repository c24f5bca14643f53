"""How a scanning electron microscope shows a scene: the effects laid over a clean scene, and the
detector noise that turns it into an 8-bit image.

Each function takes and returns float32 (Y, X) intensities where 0 is black and 1 is white;
lengths are in pixels (they belong to the scan). Effects are skipped exactly when their strength
is zero, so a scene rendered without them is bit for bit what it was before they existed.

Why each effect: secondary-electron images show bright rims at edges (more electrons escape near
an edge); the side of a crystal facing the (Everhart-Thornley) detector is brighter and the far
side casts a shadow; insulating samples charge, which smears bright streaks along the scan
direction; the scan itself adds per-line offsets and line jitter; the beam has a finite spot
(blur); the operator sets contrast and brightness; detection adds shot (Poisson) and read-out
(Gaussian) noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from .spec import SemEffects

Array = np.ndarray


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> Array:
    """Gaussian-smoothed white noise scaled to a largest magnitude of 1, float32 (Y, X)."""
    field_ = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return field_ / (np.abs(field_).max() + 1e-9)


def add_edge_rims(clean: Array, labels: Array, *, brightness: float, width_px: float) -> Array:
    """Bright rims inside every crystal edge (SE edge effect), fading over ``width_px``."""
    inside = labels > 0
    edges = find_boundaries(labels, mode="inner") & inside
    to_edge = ndi.distance_transform_edt(~edges)
    return clean + np.where(inside, brightness * np.exp(-to_edge / width_px), 0).astype(np.float32)


def add_crevices(clean: Array, labels: Array, *, depth: float, width_px: float) -> Array:
    """Dark crevices where a crystal passes under a later (higher-numbered) neighbour."""
    inside = labels > 0
    crevice = (ndi.maximum_filter(labels, size=3) > labels) & inside
    to_crevice = ndi.distance_transform_edt(~crevice)
    return clean - np.where(inside, depth * np.exp(-to_crevice / width_px), 0).astype(np.float32)


def _direction(direction_rad: float) -> Array:
    return np.array([np.sin(direction_rad), np.cos(direction_rad)])


def add_detector_shading(clean: Array, labels: Array, *, direction_rad: float, strength: float,
                         shadow_length_px: float) -> Array:
    """Brighten crystal sides facing the detector, darken the far sides and cast a shadow on the
    background (label 0) behind each crystal, up to ``shadow_length_px`` long."""
    toward = _direction(direction_rad)
    interiors = (labels > 0) & ~find_boundaries(labels, mode="inner")
    relief = np.minimum(ndi.distance_transform_edt(interiors), max(shadow_length_px, 2.0))
    slope_toward = (np.gradient(relief, axis=0) * toward[0] + np.gradient(relief, axis=1) * toward[1])
    shaded = clean - strength * np.clip(slope_toward, -1, 1).astype(np.float32)
    # a background pixel is in shadow when a crystal lies between it and the detector
    crystals = labels > 0
    shadow = np.zeros(labels.shape, np.float32)
    height, width = labels.shape
    for step in range(1, int(round(shadow_length_px)) + 1):
        dr, dc = np.round(toward * step).astype(int)
        if abs(dr) >= height or abs(dc) >= width:
            break
        blocked = np.zeros_like(crystals)  # crystals seen from `step` px further towards the detector
        blocked[max(0, -dr):height - max(0, dr), max(0, -dc):width - max(0, dc)] = \
            crystals[max(0, dr):height - max(0, -dr), max(0, dc):width - max(0, -dc)]
        shadow = np.maximum(shadow, blocked * (1 - (step - 1) / max(shadow_length_px, 1)))
    return np.where(crystals, shaded, shaded * (1 - 1.5 * strength * shadow)).astype(np.float32)


def add_charging_streaks(clean: Array, rng: np.random.Generator, *, n_streaks: int, brightness: float) -> Array:
    """Bright smears along the scan direction (left to right) trailing from charged spots on
    bright parts of the image, 1-3 rows high, decaying over a random fraction of the width."""
    height, width = clean.shape
    streaks = np.zeros_like(clean)
    bright = np.flatnonzero(clean > np.quantile(clean, 0.8))
    for _ in range(n_streaks):
        row, col = np.unravel_index(rng.choice(bright), clean.shape)
        rows = slice(row, min(height, row + int(rng.integers(1, 4))))
        decay_px = rng.uniform(0.05, 0.5) * width
        trail = np.exp(-np.arange(width - col) / decay_px) * brightness * rng.uniform(0.5, 1.0)
        streaks[rows, col:] += trail.astype(np.float32)
    return clean + streaks


def adjust_contrast(clean: Array, *, contrast: float, offset: float, gamma: float) -> Array:
    """``offset + contrast * clean ** gamma``, clipped to [0, 1]."""
    return np.clip(offset + contrast * np.clip(clean, 0, 1) ** gamma, 0, 1).astype(np.float32)


def detect(clean: Array, rng: np.random.Generator, *, electrons_at_white: float, read_noise: float) -> Array:
    """Shot noise (``electrons_at_white`` electrons per pixel at intensity 1) and Gaussian read-out
    noise (standard deviation ``read_noise``), float64 (Y, X), not clipped."""
    electrons = rng.poisson(clean * electrons_at_white) / electrons_at_white
    return electrons + rng.normal(0, read_noise, clean.shape)


def add_scan_line_noise(image: Array, rng: np.random.Generator, *, row_offset_std: float,
                        row_jitter_px: float) -> Array:
    """A brightness offset per row, and rows shifted sideways by whole pixels (scan jitter)."""
    rows = image.shape[0]
    noisy = image + rng.normal(0, row_offset_std, (rows, 1)) if row_offset_std > 0 else image
    if row_jitter_px > 0:
        shifts = np.round(rng.normal(0, row_jitter_px, rows)).astype(int)
        noisy = np.stack([np.roll(row, shift) for row, shift in zip(noisy, shifts)])
    return noisy


def to_uint8(image: Array) -> Array:
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def render_sem(clean: Array, labels: Array, rng: np.random.Generator, *, effects: SemEffects,
               scene_blur_px: float, electrons_at_white: float, read_noise: float) -> tuple[Array, Array]:
    """The microscope's view of a clean scene: (uint8 image, float32 clean image in [0, 1]).

    ``scene_blur_px`` is the scene kind's own beam blur; ``effects.blur_px`` adds to it in quadrature.
    """
    if effects.shading_strength > 0:
        clean = add_detector_shading(clean, labels, direction_rad=effects.detector_direction_rad,
                                     strength=effects.shading_strength, shadow_length_px=effects.shadow_length_px)
    blur_px = float(np.hypot(scene_blur_px, effects.blur_px))
    clean = np.clip(ndi.gaussian_filter(clean, blur_px), 0, 1).astype(np.float32)
    if effects.charging_streaks > 0:
        clean = add_charging_streaks(clean, rng, n_streaks=effects.charging_streaks,
                                     brightness=effects.charging_brightness)
    # also after streaks alone: they may push intensities above 1
    if (effects.contrast, effects.offset, effects.gamma) != (1.0, 0.0, 1.0) or effects.charging_streaks > 0:
        clean = adjust_contrast(clean, contrast=effects.contrast, offset=effects.offset, gamma=effects.gamma)
    noisy = detect(clean, rng, electrons_at_white=electrons_at_white, read_noise=read_noise)
    noisy = add_scan_line_noise(noisy, rng, row_offset_std=effects.row_offset_std, row_jitter_px=effects.row_jitter_px)
    return to_uint8(noisy), clean
