"""How much noise an image holds: the SNR reported after every preprocessing step.

The paper reports SNR in dB after each step (10 dB raw, 16 after non-local means, 19 after
Noise2Void, 22 after unsharp mask, 25 after opening) without defining it. Here, with no clean
reference available on real images:

    SNR_dB = 20 log10( std(image) / sigma_noise )

``std(image)`` is the spread of gray levels (crystal/pore contrast plus texture) and
``sigma_noise`` the noise estimated from the finest wavelet coefficients
(:func:`microcrystalnet.preprocess.filters.noise_sigma`), but never below
:data:`QUANTISATION_NOISE`. It rises when a step removes noise faster than contrast.

Why the floor: the wavelet estimate is the median absolute finest coefficient. Grayscale opening
and closing leave flat plateaus, where more than half of those coefficients are exactly 0, so
the estimate drops to ~0 and the SNR to hundreds of dB (600 dB after closing on a real TiO2
image). Below the rounding noise of an 8-bit image (a step of 1/255, standard deviation
1/(255 sqrt 12)) no noise can be told from the gray levels, so the SNR is capped there
(about 45-50 dB for SEM contrast). On synthetic scenes, where the clean image is known, PSNR and SSIM
against it measure the effect directly.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .filters import noise_sigma

Array = np.ndarray

#: the noise floor of the SNR: rounding noise of an 8-bit image in [0, 1]
QUANTISATION_NOISE = 1 / (255 * math.sqrt(12))


def snr_db(image: Array) -> float:
    """Blind SNR in dB (definition above) of ``image`` (float (Y, X) in [0, 1]); -inf for a flat image."""
    sigma = max(noise_sigma(image), QUANTISATION_NOISE)
    spread = float(np.std(image))
    return 20 * math.log10(spread / sigma) if spread > 0 else -math.inf


def reference_scores(image: Array, clean: Array) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``image`` against the noise-free ``clean`` (both in [0, 1])."""
    return {"psnr_db": float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
            "ssim": float(structural_similarity(clean, image, data_range=1.0))}
