"""The typical crystal diameter of an image, and settings scaled to it.

Every length and area in :class:`microcrystalnet.config.AnalysisConfig` is written for micrite
crystals of :data:`REFERENCE_CRYSTAL_DIAMETER_UM` (1-4 um, typically 2 um). One number, the
typical crystal diameter, rescales them all (area limits, marker separation, smoothing,
preprocessing footprints), so the same settings fit 25-nm TiO2 particles or 60-px grains.

Where it comes from, in this order: ``segment.crystal_size_px``, ``segment.crystal_size_um``,
the micrite default when the image has a pixel size and its crystals look micrite-sized (within
a factor :data:`MICRITE_DEFAULT_TOLERANCE`), else an estimate from the image
(:func:`estimate_crystal_diameter_px`, refined by the segmenter where it can: the learned one
segments at the guess and takes the 40th percentile of the diameters of what it finds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..config import AnalysisConfig, ConfigError, PreprocessConfig, SegmentConfig, WatershedConfig, default_of

Array = np.ndarray

#: the crystal diameter the default settings are written for, um (micrite: 1-4 um)
REFERENCE_CRYSTAL_DIAMETER_UM = 2.0

#: settings that are lengths (scale with the diameter) and areas (with its square)
_LENGTHS = ((("preprocess", "unsharp_radius_um"), PreprocessConfig),
            (("preprocess", "morphology_um"), PreprocessConfig),
            (("segment", "watershed", "smoothing_um"), WatershedConfig),
            (("segment", "watershed", "marker_separation_um"), WatershedConfig))
_AREAS = ((("segment", "min_crystal_area_um2"), SegmentConfig),
          (("segment", "max_crystal_area_um2"), SegmentConfig))

#: a blob of diameter d answers the scale-normalised Laplacian of Gaussian most at sigma = d / (2 sqrt 2)
_DIAMETER_PER_SIGMA = 2 * np.sqrt(2)


@dataclass(frozen=True)
class CrystalScale:
    """The typical crystal diameter an analysis works with, and where it came from."""

    diameter_px: float
    source: str  # "crystal_size_px", "crystal_size_um", "micrite default" or "estimated from the image"

    def as_dict(self) -> dict[str, Any]:
        """The diameter to 0.1 px, as the notices print it (two roundings, 20.1547 -> 20.15 -> "20.1",
        had the summary and the run disagree with the notice's "20.2")."""
        return {"diameter_px": round(self.diameter_px, 1), "source": self.source}


#: the texture-scale estimate filters each scale on an image halved until its Gaussian would be
#: narrower than this, px (block means then widen it by under 1 %), but no image under this side
_LOG_MIN_SIGMA_PX, _LOG_MIN_LEVEL_PX = 4.0, 32


def _halved(image: Array) -> Array:
    """``image`` at half its size, each pixel the mean of 2 x 2 (an odd last row or column dropped)."""
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def estimate_crystal_diameter_px(image: Array, *, min_diameter_px: float = 8.0, max_diameter_px: float | None = None,
                                 n_scales: int = 24) -> float:
    """Typical crystal diameter of ``image`` (float (Y, X)), px, from the scale of maximal
    Laplacian-of-Gaussian energy.

    The mean squared scale-normalised LoG response is computed at ``n_scales`` diameters from
    ``min_diameter_px`` to ``max_diameter_px`` (default: a quarter of the shorter side); the
    diameter with the most energy is returned; NaN when there is no crystal scale (a featureless
    image, or noise, whose energy peaks at the finest scale searched). Images over 768 px are
    shrunk first, and each scale is filtered on the image halved (2 x 2 means) as often as its
    Gaussian keeps at least :data:`_LOG_MIN_SIGMA_PX` px (the scale-normalised response is the same
    at every level; 6x faster than at full size on the real development images, 1024 x 768 px:
    3.0 -> 0.5 s).
    Measured error (BENCHMARKS.md): within 25 % on synthetic micrite scenes; on real images it
    follows the scale of the strongest structure, which is the clusters for sparse TiO2 particles
    (2-3x too large) and half the grain size for a mosaic.
    """
    image = np.asarray(image, np.float32)
    max_diameter_px = max_diameter_px or min(image.shape) / 4
    if not 0 < min_diameter_px < max_diameter_px:
        raise ValueError(f"need 0 < min_diameter_px < max_diameter_px, got {min_diameter_px}, {max_diameter_px}")
    shrink = max(1, int(min(image.shape) // 768) + (1 if min(image.shape) > 768 else 0))
    pyramid = [image[::shrink, ::shrink] - image.mean()]  # level n: halved n times
    diameters = np.geomspace(min_diameter_px, max_diameter_px, n_scales)
    energy = []
    for diameter in diameters:
        sigma = diameter / _DIAMETER_PER_SIGMA / shrink
        level = 0
        while sigma / 2 ** (level + 1) >= _LOG_MIN_SIGMA_PX and min(pyramid[level].shape) >= 2 * _LOG_MIN_LEVEL_PX:
            level += 1
            if level == len(pyramid):
                pyramid.append(_halved(pyramid[-1]))
        sigma_at_level = sigma / 2 ** level
        response = (sigma_at_level ** 2 * ndi.gaussian_laplace(pyramid[level], sigma_at_level) if sigma >= 0.5
                    else np.zeros(1))
        energy.append(float(np.mean(response ** 2)))
    best = int(np.argmax(energy))
    if energy[best] <= 0 or best == 0:  # featureless, or noise (most energy at the finest scale): no crystal scale
        return float("nan")
    return float(diameters[best])


#: with a pixel size and no crystal size, the micrite default stays unless the image's estimated
#: crystal diameter is more than this factor away from it. Micrite crystals are 1-4 um: with 3
#: (before), calibrated synthetic micrite scenes of 1.2-1.4 or 4-5 um kept the 2-um default and
#: scored F1 0.06-0.6; with 1.5, the refined estimate deciding and the search in
#: :func:`crystal_scale`, held-out scenes without settings scored 0.784 -> 0.878 and 48 fresh ones
#: 0.787 -> 0.856 (BENCHMARKS.md, "Twelfth round"). The refined estimate is 0.83-1.28x the
#: outlines' median on the real sets, 0.76-1.45x (5th-95th percentile) on held-out synthetic ones
MICRITE_DEFAULT_TOLERANCE = 1.5

#: a calibrated image whose refined estimate is 1.5-3x off the micrite default asks the learned
#: segmenter's self-consistent search too, and keeps the default if the search finds micrite: the
#: refinement can lock on part of a crystal (a 20.8-px mosaic at exactly 2 um: first guess 9 px,
#: refined 10.1 px, F1 0.114; the search finds 20.75 px, F1 0.921). 96 held-out calibrated scenes
#: without settings: 0.878 -> 0.879 and 0.856 -> 0.874, three better, none worse. Farther than 3x
#: off (TiO2's 0.18 um against 2 um) nothing more is asked (BENCHMARKS.md, "Thirteenth round")
MICRITE_SECOND_OPINION_FACTOR = 3.0


def configured_diameter_px(segment: SegmentConfig, pixel_size_um: float) -> float:
    """The crystal diameter the settings give, px: ``crystal_size_px``, ``crystal_size_um`` at
    ``pixel_size_um``, else the micrite default. Never estimated (segmenters use this; the
    analysis has set the size already where it was estimated)."""
    if segment.crystal_size_px is not None:
        return segment.crystal_size_px
    return (segment.crystal_size_um or REFERENCE_CRYSTAL_DIAMETER_UM) / pixel_size_um


def size_is_set(segment: SegmentConfig) -> bool:
    return segment.crystal_size_px is not None or segment.crystal_size_um is not None


def first_guess_diameter_px(segment: SegmentConfig, pixel_size_um: float | None, assumed_pixel_size_um: float,
                            texture_estimate_px: float | None) -> float:
    """The typical crystal diameter before anything is segmented, px: the one set, else
    ``texture_estimate_px`` (:func:`estimate_crystal_diameter_px` of the image, the same for the
    image with its gray levels inverted), else the micrite default."""
    if size_is_set(segment) or texture_estimate_px is None or not np.isfinite(texture_estimate_px):
        return configured_diameter_px(segment, pixel_size_um or assumed_pixel_size_um)
    return texture_estimate_px


def crystal_scale(image: Array, segment: SegmentConfig, pixel_size_um: float | None,
                  assumed_pixel_size_um: float, *,
                  refine_diameter_px: Callable[[Array, float], float] | None = None,
                  search_diameter_px: Callable[[Array], float] | None = None,
                  texture_estimate_px: float | None = None) -> CrystalScale:
    """The crystal diameter for ``image`` (float (Y, X)): set by the user; for a calibrated image the
    micrite default unless the image's crystals look more than :data:`MICRITE_DEFAULT_TOLERANCE`
    times larger or smaller; else estimated: :func:`estimate_crystal_diameter_px`, refined by
    ``refine_diameter_px(image, first_guess_px)`` where the segmenter has a refinement (the
    learned segmenter's; it costs two segmentations of a tile). The refined estimate, where there
    is one, decides whether the crystals are micrite-sized (the texture's first guess is 0.6-3x
    off on real images: a guess within the tolerance kept 3.2-um crystals at 2 um; BENCHMARKS.md,
    "Twelfth round"); where that estimate is 1.5-3x off on a calibrated image, the search below is
    asked too, and the default stays if it finds micrite. Where the texture gives no scale,
    ``search_diameter_px(image)`` looks for it without a guess (the learned segmenter's
    self-consistent search; NaN: none either), and what it finds counts unless the image is
    calibrated and it finds micrite (without it, an uncalibrated image would take the assumed pixel
    size's 200 px, a calibrated one 2 um). ``pixel_size_um`` None: the image has none, and
    ``crystal_size_um`` is converted with ``assumed_pixel_size_um``.
    ``texture_estimate_px``: :func:`estimate_crystal_diameter_px` of ``image`` where it is known already."""
    if size_is_set(segment):
        source = "crystal_size_px" if segment.crystal_size_px is not None else "crystal_size_um"
        return CrystalScale(configured_diameter_px(segment, pixel_size_um or assumed_pixel_size_um), source)
    micrite_px = REFERENCE_CRYSTAL_DIAMETER_UM / (pixel_size_um or assumed_pixel_size_um)

    def micrite_sized(diameter_px: float, tolerance: float = MICRITE_DEFAULT_TOLERANCE) -> bool:
        return pixel_size_um is not None and 1 / tolerance <= diameter_px / micrite_px <= tolerance

    estimate = estimate_crystal_diameter_px(image) if texture_estimate_px is None else texture_estimate_px
    if not np.isfinite(estimate) and search_diameter_px is not None:
        searched = search_diameter_px(image)  # crystals too small or boundaries too fine for the texture
        if np.isfinite(searched) and not micrite_sized(searched):
            return CrystalScale(searched, "estimated from the image")
    if not np.isfinite(estimate):  # nothing to measure: the micrite default (at the assumed pixel size)
        return CrystalScale(micrite_px, "micrite default")
    if refine_diameter_px is not None:
        estimate = refine_diameter_px(image, estimate)
    if micrite_sized(estimate):
        return CrystalScale(micrite_px, "micrite default")
    if search_diameter_px is not None and micrite_sized(estimate, MICRITE_SECOND_OPINION_FACTOR):
        searched = search_diameter_px(image)  # a second opinion: the refinement can lock on part of a grain
        if np.isfinite(searched) and micrite_sized(searched):
            return CrystalScale(micrite_px, "micrite default")
    return CrystalScale(estimate, "estimated from the image")


def scaled_config(config: AnalysisConfig, crystal_diameter_um: float) -> AnalysisConfig:
    """``config`` with its lengths and areas rescaled from the reference micrite diameter to
    ``crystal_diameter_um``, and ``segment.crystal_size_um`` set to it. Settings the user changed
    from their defaults are kept as given."""
    factor = crystal_diameter_um / REFERENCE_CRYSTAL_DIAMETER_UM
    data = config.to_dict()
    changes: dict[str, Any] = {"segment": {"crystal_size_um": crystal_diameter_um, "crystal_size_px": None}}
    for paths, power in ((_LENGTHS, 1), (_AREAS, 2)):
        for path, section in paths:
            value = data
            for key in path:
                value = value[key]
            if value != default_of(section, path[-1]):
                continue
            target = changes
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value * factor ** power
    try:
        return config.updated(**changes)
    except ConfigError as error:  # an area limit set, the other scaled from its default past it
        scaled = [path[-1] for path, _ in _AREAS if path[-1] in changes["segment"]]
        raise ConfigError(f"{error} ({', '.join(scaled)} scaled from the default for crystals of "
                          f"{crystal_diameter_um:.3g} um; set it too)") from None
