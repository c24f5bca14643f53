"""Touching and partly hidden particles in clusters on a substrate (particle agglomerates, powders).

Each new particle either starts a cluster at a random place or is laid against a particle already
there, so that it touches or overlaps it; later particles hide parts of earlier ones (painter's
order) and the labels hold what stays visible. Particles are rounded or angular as their class
says (:mod:`.crystals`), with a fine surface texture, on a dark substrate with a faint relief and,
optionally, a thin film whose step edges draw bright curved lines (``SceneSpec.substrate_film``):
the look of real particle samples whose substrate is not clean, which a model must learn is not
particles.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .crystals import CrystalLayer, lay_crystals
from .matrix import light_relief, noise_field
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


def substrate_film(rng: np.random.Generator, shape: tuple[int, int], *, feature_px: float,
                   direction_rad: float) -> Array:
    """A thin film on the substrate as a secondary-electron image shows it, float32 (Y, X) in
    [0, 1]: islands and holes about ``feature_px`` across, flat, with bright rims along their step
    edges (edge effect; the slope facing the detector at ``direction_rad`` brighter), in patches
    that leave the rest of the substrate bare."""
    steps = (noise_field(rng, shape, (feature_px / 4,)) > rng.uniform(-0.8, 0.8)).astype(np.float32)
    steps = ndi.gaussian_filter(steps, rng.uniform(0.5, 2.0))  # rims 1-4 px wide
    lit = light_relief(steps, direction_rad=direction_rad, slope_gain=rng.uniform(0.3, 1.5), edge_gain=2.0)
    lit -= np.median(lit)  # the flat film and the bare substrate stay at the substrate's gray
    patches = ndi.gaussian_filter((noise_field(rng, shape, (2 * feature_px,)) > rng.uniform(-0.5, 1.0))
                                  .astype(np.float32), 2.0)
    return np.clip(patches * lit / max(float(lit.max()), 1e-6), 0, 1).astype(np.float32)


def render_clusters(spec: SceneSpec) -> SyntheticScene:
    """Render clusters of touching, partly hidden particles with exact instance labels
    (0 = substrate) and classes."""
    rng = np.random.default_rng(spec.seed)
    px = spec.pixel_size_um
    substrate = rng.uniform(0.06, 0.28)
    relief_px = rng.uniform(1.0, 3.0)
    clean = (substrate + 0.04 * smooth_noise(rng, spec.shape, min(0.3 * min(spec.shape), 64.0))
             + 0.03 * smooth_noise(rng, spec.shape, relief_px)).astype(np.float32)
    if spec.substrate_film > 0:  # its own random stream: scenes without a film stay as they were
        film_rng = np.random.default_rng([spec.seed, 1])
        feature_px = float(np.exp(film_rng.uniform(np.log(0.3), np.log(1.5)))) * spec.median_diameter_px
        clean = clean + spec.substrate_film * substrate_film(film_rng, spec.shape, feature_px=feature_px,
                                                             direction_rad=spec.sem.detector_direction_rad)
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
