"""How much noise an image holds: the SNR reported after every preprocessing step.

The paper reports SNR in dB after each step (10 dB raw, 16 after non-local means, 19 after
Noise2Void, 22 after unsharp mask, 25 after opening) without defining it. Here, with no clean
reference available on real images:

    SNR_dB = 20 log10( std(image) / sigma_noise )

``std(image)`` is the spread of gray levels (crystal/pore contrast plus texture) and
``sigma_noise`` the noise estimated from the finest wavelet coefficients
(:func:`microcrystalnet.preprocess.filters.noise_sigma`). It rises when a step removes noise
faster than contrast. On synthetic scenes, where the clean image is known, PSNR and SSIM
against it measure the effect directly.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .filters import noise_sigma

Array = np.ndarray


def snr_db(image: Array) -> float:
    """Blind SNR in dB (definition above); inf for an image without measurable noise."""
    sigma = noise_sigma(image)
    spread = float(np.std(image))
    if sigma <= 0:
        return math.inf
    return 20 * math.log10(spread / sigma) if spread > 0 else -math.inf


def reference_scores(image: Array, clean: Array) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``image`` against the noise-free ``clean`` (both in [0, 1])."""
    return {"psnr_db": float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
            "ssim": float(structural_similarity(clean, image, data_range=1.0))}
