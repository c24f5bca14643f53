"""Classical crystal segmenter: pore/crystal threshold and marker-controlled watershed.

Always available (no model, no GPU) and fast, it is the baseline against which SAM is judged
and the source of SAM's prompts. Crystals on SEM images of micrite are bright against dark
pore space; touching crystals are split along the valleys of the distance to pore space, one
crystal per distance maximum (markers at least ``marker_separation_um`` apart).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects
from skimage.segmentation import watershed

from ..config import WatershedConfig

Array = np.ndarray
log = logging.getLogger(__name__)


def otsu_effectiveness(image: Array, threshold: float) -> float:
    """Share of the gray-level variance that the two classes of ``threshold`` explain (0-1)."""
    above = image > threshold
    share = float(above.mean())
    if share in (0.0, 1.0) or image.var() == 0:
        return 0.0
    separation = float(image[above].mean() - image[~above].mean())
    return share * (1 - share) * separation ** 2 / float(image.var())


def crystal_foreground(image: Array, pixel_size_um: float, config: WatershedConfig,
                       min_crystal_area_px: float) -> Array:
    """Bool (Y, X): crystal (True) or pore space. ``image``: float (Y, X) scaled to [0, 1]."""
    smoothed = ndi.gaussian_filter(np.asarray(image, np.float32), config.smoothing_um / pixel_size_um)
    if config.foreground_threshold is not None:
        threshold = config.foreground_threshold
    else:
        threshold = threshold_otsu(smoothed)
        effectiveness = otsu_effectiveness(smoothed, threshold)
        if effectiveness < config.min_otsu_effectiveness:
            log.warning("no clear contrast between crystals and pores (Otsu effectiveness %.2f < %.2f): no "
                        "crystals segmented. If there are crystals, set segment.watershed.foreground_threshold.",
                        effectiveness, config.min_otsu_effectiveness)
            return np.zeros(image.shape, bool)
    foreground = smoothed > threshold
    speck = max(int(min_crystal_area_px / 2), 1)
    foreground = remove_small_objects(foreground, max_size=speck)
    return remove_small_holes(foreground, max_size=max(int(min_crystal_area_px), 1))


#: rows of the distance map computed at once from the nearest-pore indices (bounds a float64 band)
_DISTANCE_BAND_ROWS = 256


def distance_to_pores(foreground: Array) -> Array:
    """Float32 (Y, X): Euclidean distance (px) of each crystal pixel to the nearest pore pixel, 0 on pores.

    The same values as ``scipy.ndimage.distance_transform_edt`` (rounded to float32), computed
    from its nearest-pore indices band by band: scipy's own distance output goes through four
    full-size int32/float64 arrays (~40 bytes/px), this through the indices alone (8 bytes/px).
    """
    nearest = ndi.distance_transform_edt(foreground, return_distances=False, return_indices=True)
    distance = np.empty(foreground.shape, np.float32)
    columns = np.arange(foreground.shape[1])
    for top in range(0, foreground.shape[0], _DISTANCE_BAND_ROWS):
        rows = np.arange(top, min(top + _DISTANCE_BAND_ROWS, foreground.shape[0]))
        distance[rows[0]:rows[-1] + 1] = np.hypot(nearest[0, rows[0]:rows[-1] + 1] - rows[:, None],
                                                  nearest[1, rows[0]:rows[-1] + 1] - columns)
    return distance


def segment_watershed(image: Array, pixel_size_um: float, config: WatershedConfig,
                      min_crystal_area_px: float) -> Array:
    """Label crystals: int32 (Y, X), 0 pore space, 1..N crystals (not yet tidied).

    ``image``: float (Y, X) in [0, 1]; ``pixel_size_um``: micrometres per pixel, used to turn
    the configured lengths into pixels.
    """
    foreground = crystal_foreground(image, pixel_size_um, config, min_crystal_area_px)
    distance = distance_to_pores(foreground)
    components, _ = ndi.label(foreground)
    separation_px = max(int(round(config.marker_separation_um / pixel_size_um)), 1)
    peaks = peak_local_max(distance, min_distance=separation_px, labels=components, exclude_border=False)
    del components  # full-size arrays are freed as soon as they are done with: large images
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    basins = np.negative(distance, out=distance)
    return watershed(basins, markers, mask=foreground).astype(np.int32, copy=False)
