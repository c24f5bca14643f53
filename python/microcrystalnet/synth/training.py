"""Randomised training scenes: every scene kind, a wide range of crystal sizes in pixels and of
microscope renderings, so that a model trained only on them meets real SEM images prepared.

The ranges are chosen to span the looks of real SEM images of crystals and particles (dense
mosaics with thin dark boundaries, particles on a substrate, particles in a textured matrix,
touching spheres), not fitted to any image; ``bench/bench_synth_realism.py`` measures how well
they cover real images.
"""

from __future__ import annotations

import numpy as np

from .render import render_scene
from .spec import MATRIX_TEXTURES, SCENE_KINDS, SceneSpec, SemEffects, SyntheticScene

#: how often each kind of :data:`SCENE_KINDS` is drawn
KIND_WEIGHTS = (0.2, 0.3, 0.3, 0.2)
#: range of median crystal diameters, pixels (drawn log-uniformly; at most 40 % of the image side)
DIAMETER_RANGE_PX = (8.0, 120.0)
#: smallest median diameter of ``separate`` scenes, pixels: their placement slows with the number
#: of crystals (about 2 s for 8 px crystals on 256 x 256); the other kinds cover small crystals
SEPARATE_MIN_DIAMETER_PX = 24.0
#: range of the noise standard deviation at mid-gray (intensity units), drawn log-uniformly
NOISE_SIGMA_RANGE = (0.004, 0.15)
#: range of the log-normal sigma of particle diameters in ``matrix`` scenes (drawn uniformly): the
#: 2-sigma range is the median */ 2.2-5, so one scene holds particles from tiny to large
MATRIX_LOG_SIZE_SIGMA_RANGE = (0.4, 0.8)
#: ``matrix``: class weights are multiplied by these (RES, PES, AA, RA/SA): mostly rounded, some
#: faceted, few rough amorphous particles, whose mottled surface looks like the matrix
MATRIX_CLASS_BIAS = np.array([0.3, 0.5, 0.1, 1.0])
#: ``matrix``: range of particle brightness over the matrix, intensity units; fainter particles in a
#: rough matrix are hardly there to see and teach a model to find particles in any texture
MATRIX_CONTRAST_RANGE = (0.1, 0.5)
#: ``matrix``: particles are stretched by up to 1 to this (drawn log-uniformly per scene)
MATRIX_MAX_ELONGATION = 3.5
#: ``clusters``: share of scenes whose substrate carries a thin film with bright step edges, and the
#: range of its rims' brightness (intensity units): substrate texture that is not particles
CLUSTERS_FILM_CHANCE, CLUSTERS_FILM_RANGE = 0.6, (0.05, 0.3)
#: most crystals laid in a ``clusters`` or ``matrix`` scene (lower cover for small crystals): each
#: costs about 1-2 ms to place
MAX_LAID_CRYSTALS = 300


def random_sem_effects(rng: np.random.Generator, *, median_diameter_px: float) -> SemEffects:
    """A random microscope rendering; each effect is off in part of the scenes."""
    def sometimes(chance: float, value: float) -> float:
        return value if rng.random() < chance else 0.0

    contrast = rng.uniform(0.5, 1.6)
    return SemEffects(
        edge_brightness=rng.uniform(0.0, 0.35),
        detector_direction_rad=rng.uniform(0, 2 * np.pi),
        shading_strength=sometimes(0.6, rng.uniform(0.03, 0.25)),
        shadow_length_px=rng.uniform(1.0, max(1.5, 0.25 * median_diameter_px)),
        charging_streaks=int(sometimes(0.3, rng.integers(1, 8))),
        charging_brightness=rng.uniform(0.1, 0.4),
        row_offset_std=sometimes(0.4, rng.uniform(0.005, 0.03)),
        row_jitter_px=sometimes(0.3, rng.uniform(0.2, 0.7)),
        blur_px=rng.uniform(0.0, 2.5),
        contrast=contrast,
        offset=0.5 * (1 - contrast) + rng.uniform(-0.1, 0.1),  # about mid-gray, so few scenes clip
        gamma=float(np.exp(rng.uniform(-0.4, 0.4))),
    )


def random_training_scene(seed: int, shape: tuple[int, int] = (256, 256)) -> SyntheticScene:
    """A randomised synthetic scene: kind, crystal size, scene look and microscope rendering all
    drawn from ``seed`` (the same seed gives the same scene). ``shape`` is (height, width), pixels.

    The median crystal diameter is 8-120 px (:data:`DIAMETER_RANGE_PX`, capped at 40 % of the
    shorter side); the physical diameter is 1-3 um (micrite), which sets the pixel size.
    """
    rng = np.random.default_rng(seed)
    kind = str(rng.choice(SCENE_KINDS, p=KIND_WEIGHTS))
    low, high = DIAMETER_RANGE_PX
    if kind == "separate":
        low = SEPARATE_MIN_DIAMETER_PX
    median_px = float(np.exp(rng.uniform(np.log(low), np.log(min(high, max(low, min(shape) / 2.5))))))
    median_um = rng.uniform(1.0, 3.0)
    pixel_size_um = median_um / median_px
    spread = float(np.exp(2 * rng.uniform(0.08, 0.35)))  # range = median */ exp(2 sigma)
    weights = rng.uniform(0.2, 1.0, 4) * (rng.random(4) < 0.85)
    if weights.sum() == 0:
        weights[int(rng.integers(4))] = 1.0
    kind_look: dict = {
        "separate": dict(coverage=rng.uniform(0.35, 0.55)),
        "mosaic": dict(boundary_width_um=rng.uniform(1.0, max(1.5, min(6.0, 0.12 * median_px))) * pixel_size_um,
                       boundary_darkness=rng.uniform(0.1, 0.9), micropore_fraction=rng.uniform(0.0, 0.5),
                       rhombic_bias=rng.uniform(0.0, 1.0)),
        # sparse particles on a substrate, or dense powders
        "clusters": dict(coverage=float(np.exp(rng.uniform(np.log(0.02), np.log(0.3)))) if rng.random() < 0.5
                         else rng.uniform(0.3, 0.8), max_overlap_fraction=rng.uniform(0.15, 0.5),
                         min_visible_fraction=rng.uniform(0.35, 0.6)),
        "matrix": dict(coverage=rng.uniform(0.1, 0.4), matrix_texture=str(rng.choice(MATRIX_TEXTURES)),
                       matrix_contrast=rng.uniform(*MATRIX_CONTRAST_RANGE), max_overlap_fraction=rng.uniform(0.0, 0.15)),
    }[kind]
    if kind == "matrix":
        # particles in a matrix (precipitates, spheroidised carbides) span tiny to large, are mostly
        # rounded, rarely rough, and partly sunk (the largest no wider than the image); drawn last, so
        # that other kinds' scenes stay as they were
        spread = min(float(np.exp(2 * rng.uniform(*MATRIX_LOG_SIZE_SIGMA_RANGE))), min(shape) / median_px)
        weights = weights * MATRIX_CLASS_BIAS
        kind_look.update(burial_fraction=rng.uniform(0.0, 0.4),
                         max_elongation=float(np.exp(rng.uniform(0.0, np.log(MATRIX_MAX_ELONGATION)))))
    if kind == "clusters":  # drawn here, so that other kinds' scenes stay as they were
        kind_look["substrate_film"] = (rng.uniform(*CLUSTERS_FILM_RANGE) if rng.random() < CLUSTERS_FILM_CHANCE
                                       else 0.0)
    # noise level at mid-gray from frame-averaged (0.004) to fast-scan (0.15) images, part shot noise
    noise_sigma = float(np.exp(rng.uniform(np.log(NOISE_SIGMA_RANGE[0]), np.log(NOISE_SIGMA_RANGE[1]))))
    shot_share = rng.uniform(0.3, 1.0)
    if kind in ("clusters", "matrix"):
        most = MAX_LAID_CRYSTALS * np.pi / 4 * median_px ** 2 / (shape[0] * shape[1])
        kind_look["coverage"] = min(kind_look["coverage"], most)
    spec = SceneSpec(
        shape=tuple(shape), pixel_size_um=pixel_size_um, kind=kind,  # type: ignore[arg-type]
        crystal_size_um=(median_um / spread, median_um * spread), class_weights=tuple(weights),  # type: ignore[arg-type]
        electrons_at_white=0.5 / (shot_share * noise_sigma ** 2), read_noise=np.sqrt(1 - shot_share) * noise_sigma,
        rim_width_um=rng.uniform(0.5, 3.0) * pixel_size_um,
        crevice_width_um=rng.uniform(0.5, 1.5) * pixel_size_um,
        sem=random_sem_effects(rng, median_diameter_px=median_px), seed=int(rng.integers(2**31)), **kind_look)
    return render_scene(spec)
