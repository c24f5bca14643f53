"""The paper's preprocessing steps, each a pure function on a float image (Y, X) in [0, 1].

Non-local means (Buades et al. 2005), unsharp mask, and grayscale morphological opening and
closing with a 5 x 5 footprint, as in the paper's section 4.2. Noise2Void lives in
:mod:`microcrystalnet.preprocess.n2v` (it needs a trained model). Every function returns a new
float32 image in [0, 1] and leaves its input untouched.
"""

from __future__ import annotations

import numpy as np
from skimage.filters import unsharp_mask
from skimage.morphology import closing, footprint_rectangle, opening
from skimage.restoration import denoise_nl_means, estimate_sigma

Array = np.ndarray


def _unit(image: Array) -> Array:
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def noise_sigma(image: Array) -> float:
    """Standard deviation of the image's Gaussian noise, estimated from its finest wavelet
    coefficients (Donoho & Johnstone's median absolute deviation, skimage ``estimate_sigma``)."""
    return float(estimate_sigma(np.asarray(image, np.float64)))


def non_local_means(image: Array, sigma: float | None = None, strength: float = 0.8, patch_size: int = 5,
                    patch_distance: int = 6) -> Array:
    """Non-local means denoising.

    ``sigma``: noise standard deviation; None estimates it (:func:`noise_sigma`). ``strength``:
    the filter parameter h as a multiple of sigma (skimage recommends ~0.8 with ``sigma`` given).
    ``patch_size``/``patch_distance``: compared patches (px) and search radius (px).
    """
    sigma = noise_sigma(image) if sigma is None else sigma
    denoised = denoise_nl_means(np.asarray(image, np.float32), h=strength * sigma, sigma=sigma, patch_size=patch_size,
                                patch_distance=patch_distance, fast_mode=True)
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
