"""The paper's preprocessing steps, each a pure function on a float image (Y, X) in [0, 1].

Non-local means (Buades et al. 2005), unsharp mask, and grayscale morphological opening and
closing with a 5 x 5 footprint, as in the paper's section 4.2. Noise2Void lives in
:mod:`microcrystalnet.preprocess.n2v` (it needs a trained model). Every function returns a new
float32 image in [0, 1] and leaves its input untouched.

Large images: everything stays float32, and non-local means runs in bands of rows, so a
12000 x 12000 image needs a few times its float32 size rather than skimage's ~9x for the whole
image at once (see :mod:`microcrystalnet.memory`).
"""

from __future__ import annotations

import numpy as np
import pywt
from skimage.filters import unsharp_mask
from skimage.morphology import closing, footprint_rectangle, opening
from skimage.restoration import denoise_nl_means

Array = np.ndarray

#: the 75th percentile of the standard normal distribution: median |x| / this = sigma
NORMAL_QUARTILE = 0.6744897501960817
#: pixels of one band of rows that non-local means works on at a time (its memory is ~36 bytes/px)
NLM_BAND_PIXELS = 1 << 23


def _unit(image: Array) -> Array:
    """``image`` clipped to [0, 1] as float32, in place when it is float32 already (the filters'
    results are new arrays nobody else holds)."""
    image = np.asarray(image, np.float32)
    return np.clip(image, 0.0, 1.0, out=image)


def noise_sigma(image: Array) -> float:
    """Standard deviation of the image's Gaussian noise, estimated from its finest wavelet
    coefficients (Donoho & Johnstone's median absolute deviation, as skimage ``estimate_sigma``).

    The finest diagonal db2 coefficients are computed one axis at a time in float32, which needs
    about the image's own float32 size (skimage's float64 ``dwtn`` of all four sub-bands needed 6x).
    Coefficients that are exactly zero (flat regions) are left out, as skimage does.
    """
    rows_detail = pywt.dwt(np.asarray(image, np.float32), "db2", axis=0)[1]
    diagonal = pywt.dwt(rows_detail, "db2", axis=1)[1]
    del rows_detail
    coefficients = np.abs(diagonal[diagonal != 0])
    return float(np.median(coefficients)) / NORMAL_QUARTILE if coefficients.size else 0.0


def non_local_means(image: Array, sigma: float | None = None, strength: float = 0.8, patch_size: int = 5,
                    patch_distance: int = 6) -> Array:
    """Non-local means denoising.

    ``sigma``: noise standard deviation; None estimates it (:func:`noise_sigma`). ``strength``:
    the filter parameter h as a multiple of sigma (skimage recommends ~0.8 with ``sigma`` given).
    ``patch_size``/``patch_distance``: compared patches (px) and search radius (px).

    Works in bands of rows (:data:`NLM_BAND_PIXELS`) that overlap by every pixel a result pixel
    depends on (``patch_distance + patch_size``), so bands give the whole-image result (to float32
    rounding, ~1e-6) with a fraction of the memory.
    """
    image = np.asarray(image, np.float32)
    sigma = noise_sigma(image) if sigma is None else sigma
    height, width = image.shape
    band_rows = max(NLM_BAND_PIXELS // max(width, 1), 64)
    margin = patch_distance + patch_size
    denoised = np.empty(image.shape, np.float32)
    for top in range(0, height, band_rows):
        bottom = min(top + band_rows, height)
        first, last = max(top - margin, 0), min(bottom + margin, height)
        band = denoise_nl_means(image[first:last], h=strength * sigma, sigma=sigma, patch_size=patch_size,
                                patch_distance=patch_distance, fast_mode=True)
        denoised[top:bottom] = band[top - first:top - first + bottom - top]
    return _unit(denoised)


def unsharp(image: Array, radius_px: float = 2.0, amount: float = 1.0) -> Array:
    """Unsharp mask: adds ``amount`` x (image - Gaussian(image, ``radius_px``)) to sharpen edges."""
    return _unit(unsharp_mask(np.asarray(image, np.float32), radius=radius_px, amount=amount, preserve_range=True))


def open_gray(image: Array, size_px: int = 5) -> Array:
    """Grayscale opening with a ``size_px`` x ``size_px`` square: removes bright specks smaller than it."""
    return _unit(opening(np.asarray(image, np.float32), footprint_rectangle((size_px, size_px))))


def close_gray(image: Array, size_px: int = 5) -> Array:
    """Grayscale closing with a ``size_px`` x ``size_px`` square: fills dark holes smaller than it."""
    return _unit(closing(np.asarray(image, np.float32), footprint_rectangle((size_px, size_px))))
