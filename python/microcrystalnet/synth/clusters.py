"""Touching and partly hidden particles in clusters on a substrate (particle agglomerates, powders).

Each new particle either starts a cluster at a random place or is laid against a particle already
there, so that it touches or overlaps it; later particles hide parts of earlier ones (painter's
order) and the labels hold what stays visible. Particles are rounded or angular as their class
says (:mod:`.crystals`), with a fine surface texture, on a dark substrate with a faint relief.
"""

from __future__ import annotations

import numpy as np

from .crystals import CrystalLayer, lay_crystals
from .sem import add_crevices, add_edge_rims, render_sem, smooth_noise
from .spec import SceneSpec, SyntheticScene

Array = np.ndarray

#: chance that a new particle starts a new cluster instead of joining one
_NEW_CLUSTER_CHANCE = 0.12


def _next_to_a_particle(rng: np.random.Generator, diameter_px: float, layer: CrystalLayer) -> Array:
    """A new cluster's first particle anywhere, or a particle overlapping one already laid."""
    if not layer.centres or rng.random() < _NEW_CLUSTER_CHANCE:
        return rng.uniform((0, 0), layer.labels.shape)
    anchor = int(rng.integers(len(layer.centres)))
    direction = rng.uniform(0, 2 * np.pi)
    reach = rng.uniform(0.6, 1.0) * (layer.diameters_px[anchor] + diameter_px) / 2
    return layer.centres[anchor] + reach * np.array([np.sin(direction), np.cos(direction)])


def render_clusters(spec: SceneSpec) -> SyntheticScene:
    """Render clusters of touching, partly hidden particles with exact instance labels
    (0 = substrate) and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    substrate = rng.uniform(0.06, 0.28)
    relief_px = rng.uniform(1.0, 3.0)
    clean = (substrate + 0.04 * smooth_noise(rng, spec.shape, min(0.3 * min(spec.shape), 64.0))
             + 0.03 * smooth_noise(rng, spec.shape, relief_px)).astype(np.float32)
    layer = CrystalLayer(clean)
    lay_crystals(rng, layer, spec, centre_for=_next_to_a_particle, base_gray=(0.5, 0.75),
                 light_rad=spec.sem.detector_direction_rad)
    labels = layer.labels
    clean = add_edge_rims(layer.clean, labels, brightness=spec.sem.edge_brightness, width_px=spec.rim_width_um / px)
    clean = add_crevices(clean, labels, depth=0.3, width_px=spec.crevice_width_um / px)
    surface = rng.uniform(0.0, 0.1) * smooth_noise(rng, spec.shape, 1.0)  # dimpled particle surfaces
    clean = np.where(labels > 0, clean * (1 + surface), clean).astype(np.float32)
    image, clean = render_sem(clean, labels, rng, effects=spec.sem, scene_blur_px=0.6,
                              electrons_at_white=spec.electrons_at_white, read_noise=spec.read_noise)
    return SyntheticScene(image, clean, labels, tuple(layer.classes), px, spec)
