"""Preprocessing stage: the paper's denoising and sharpening chain, with the SNR after each step."""

from .chain import (N2V_MISSING, StepReport, denoise_as_trained, preprocess, reports_as_dicts,
                    train_noise2void_for_chain)
from .n2v import Noise2VoidDenoiser, Noise2VoidModel, Noise2VoidModelError, train_noise2void
from .n2v_process import Noise2VoidProcess
from .quality import reference_scores, snr_db

__all__ = ["N2V_MISSING", "StepReport", "denoise_as_trained", "preprocess", "reports_as_dicts", "Noise2VoidDenoiser",
           "Noise2VoidModel", "Noise2VoidModelError", "Noise2VoidProcess", "train_noise2void", "train_noise2void_for_chain", "reference_scores",
           "snr_db"]
