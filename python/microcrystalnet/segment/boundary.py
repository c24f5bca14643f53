"""Boundary-aware watershed: crystals split along dark boundary lines, at the crystal scale.

On real SEM images crystals touch: grains of a mosaic, particles in clusters. What separates them
is a thin dark line (a crevice or grain boundary), not pore space. A dark-ridge filter
(Sato's tubeness, ``skimage.filters.sato`` with ``black_ridges``) tuned to the crystal scale finds
those lines; crystal centres are the maxima of the distance to lines and background; the
watershed floods the ridge response from them. Background is only dark area wider than a
fraction of a crystal, so the dark lines between grains stay inside the crystal area. (Gray
level added to the marker score was measured and did not help: BENCHMARKS.md.)

Every parameter is a fraction of the typical crystal diameter ``crystal_diameter_px``, so one
number adapts it to any magnification and material (chosen on real images of four materials,
BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import sato, threshold_otsu
from skimage.morphology import disk
from skimage.segmentation import watershed
from skimage.transform import rescale, resize

Array = np.ndarray

#: crystals larger than this are segmented on a shrunken image: the same result at the crystal
#: scale, without ridge filters and openings hundreds of pixels wide (24 s and 2.3 GB per
#: 1024 x 704 image at 272 px)
MAX_WORKING_DIAMETER_PX = 64.0


def boundary_strength(image: Array, *, crystal_diameter_px: float, ridge_width_fraction: float = 1 / 12) -> Array:
    """Dark-line response of ``image`` (float (Y, X)), scaled so its 99th percentile is 1.

    Sato's filter at sigma = ``ridge_width_fraction`` x diameter (at least 1 px): thin boundaries
    are about a twelfth of a crystal wide on the real images measured.
    """
    ridge = sato(image, sigmas=[max(crystal_diameter_px * ridge_width_fraction, 1.0)], black_ridges=True,
                 mode="reflect")
    return ridge / max(float(np.percentile(ridge, 99)), 1e-9)


def crystal_area(smoothed: Array, *, crystal_diameter_px: float, background_width_fraction: float = 0.25) -> Array:
    """Bool (Y, X): where crystals can be. Background is the area darker than Otsu's threshold
    that is wider than ``background_width_fraction`` x diameter (an opening with a disk of that
    radius), so dark lines between touching crystals are not background."""
    if float(smoothed.max()) <= float(smoothed.min()):
        return np.zeros(smoothed.shape, bool)
    dark = smoothed < threshold_otsu(smoothed)
    radius = max(int(round(crystal_diameter_px * background_width_fraction)), 1)
    return ~ndi.binary_opening(dark, disk(radius))


def segment_boundary_watershed(image: Array, *, crystal_diameter_px: float, smoothing_fraction: float = 1 / 20,
                               boundary_level: float = 0.5, marker_separation_fraction: float = 0.5,
                               ridge_width_fraction: float = 1 / 12,
                               background_width_fraction: float = 0.25) -> Array:
    """Label crystals of ``image`` (float (Y, X) in [0, 1]): int32 (Y, X), 0 background, 1..N (not tidied).

    ``crystal_diameter_px``: typical crystal diameter, px (above :data:`MAX_WORKING_DIAMETER_PX`
    the work is done on a shrunken image); the other parameters are fractions of
    it: Gaussian smoothing sigma, the width of the dark lines, markers at least
    ``marker_separation_fraction`` x diameter apart and at least 0.15 x diameter away from any line,
    and the narrowest background. A pixel whose boundary strength
    (:func:`boundary_strength`, 0-1 scale) exceeds ``boundary_level`` is on a line.
    """
    if crystal_diameter_px <= 0:
        raise ValueError(f"crystal_diameter_px must be positive, got {crystal_diameter_px}")
    if crystal_diameter_px > MAX_WORKING_DIAMETER_PX:
        shrink = MAX_WORKING_DIAMETER_PX / crystal_diameter_px
        small = rescale(np.asarray(image, np.float32), shrink, anti_aliasing=True)
        labels = segment_boundary_watershed(
            small, crystal_diameter_px=MAX_WORKING_DIAMETER_PX, smoothing_fraction=smoothing_fraction,
            boundary_level=boundary_level, marker_separation_fraction=marker_separation_fraction,
            ridge_width_fraction=ridge_width_fraction, background_width_fraction=background_width_fraction)
        return resize(labels, image.shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    smoothed = ndi.gaussian_filter(np.asarray(image, np.float32), max(crystal_diameter_px * smoothing_fraction, 0.5))
    ridge = boundary_strength(smoothed, crystal_diameter_px=crystal_diameter_px,
                              ridge_width_fraction=ridge_width_fraction)
    area = crystal_area(smoothed, crystal_diameter_px=crystal_diameter_px,
                        background_width_fraction=background_width_fraction)
    interior = area & (ridge <= boundary_level)
    distance = ndi.distance_transform_edt(interior)
    # a 1-px blur merges the twin maxima a distance map has on even-width crystals
    peaks = peak_local_max(ndi.gaussian_filter(distance, 1.0),
                           min_distance=max(int(round(crystal_diameter_px * marker_separation_fraction)), 1),
                           threshold_abs=0.15 * crystal_diameter_px, labels=ndi.label(interior)[0],
                           exclude_border=False)
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    landscape = ridge - distance / (crystal_diameter_px / 2)
    return watershed(landscape, markers, mask=area).astype(np.int32)
