"""Separate crystals over dark pore space: the default scene, the paper's micrite look.

Crystals of the four classes of the paper, touching and partly overlapping, over dark, uneven pore
space with dim, blurred "pore backs" (crystals deep in the pores); SEM edge rims along every
crystal edge and dark crevices where a crystal disappears under a neighbour; texture, a small beam
blur and detector noise (:mod:`.sem`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..classes import CLASS_CODES
from .crystals import Crystal, CrystalLayer, crystal_at, crystal_outline
from .sem import add_crevices, add_edge_rims, render_sem, smooth_noise
from .spec import SceneSpec, SyntheticScene


def _random_crystal(rng: np.random.Generator, spec: SceneSpec, light_rad: float) -> Crystal | None:
    code = CLASS_CODES[rng.choice(len(CLASS_CODES), p=np.asarray(spec.class_weights) / sum(spec.class_weights))]
    diameter_px = rng.uniform(*spec.crystal_size_um) / spec.pixel_size_um
    outline = crystal_outline(rng, code, diameter_px) + rng.uniform((0, 0), spec.shape)
    return crystal_at(rng, code, outline, spec.shape, min_inside_fraction=spec.min_inside_fraction,
                      base_gray=(0.5, 0.68), light_rad=light_rad)


def render_separate(spec: SceneSpec) -> SyntheticScene:
    """Render separate crystals over pore space, with exact instance labels and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    light = rng.uniform(0, 2 * np.pi)  # azimuth of the detector, as seen in the image

    clean = (0.12 + 0.05 * smooth_noise(rng, spec.shape, 0.5 / px)).astype(np.float32)
    pore_backs = np.zeros(spec.shape, np.float32)
    for _ in range(int(spec.shape[0] * spec.shape[1] * px * px / 8) + 1):
        back = _random_crystal(rng, spec, light)
        if back is not None:
            pore_backs[back.box][back.mask] = 0.08 + 0.08 * rng.random()
    clean += ndi.gaussian_filter(pore_backs, 0.08 / px)

    layer = CrystalLayer(clean)
    mean_area_px = np.pi / 4 * np.mean(spec.crystal_size_um) ** 2 * 0.7 / px ** 2
    max_attempts = int(60 * spec.coverage * clean.size / mean_area_px) + 50
    for _ in range(max_attempts):
        if layer.covered_fraction >= spec.coverage:
            break
        crystal = _random_crystal(rng, spec, light)
        if crystal is not None:
            layer.try_lay(crystal, max_overlap_fraction=spec.max_overlap_fraction,
                          min_visible_fraction=spec.min_visible_fraction)

    labels = layer.labels
    clean = add_edge_rims(layer.clean, labels, brightness=spec.sem.edge_brightness, width_px=spec.rim_width_um / px)
    clean = add_crevices(clean, labels, depth=0.3, width_px=spec.crevice_width_um / px)
    clean *= 1 + 0.06 * smooth_noise(rng, spec.shape, 0.06 / px)
    image, clean = render_sem(clean, labels, rng, effects=spec.sem, scene_blur_px=max(0.5, 0.008 / px),
                              electrons_at_white=spec.electrons_at_white, read_noise=spec.read_noise)
    return SyntheticScene(image, clean, labels, tuple(layer.classes), px, spec)
