"""Classification stage: MicroCrystalNet models, where their weights come from, and inference."""

from .classifier import CrystalClassifier, ModelDescriptionError
from ..weights import ModelUnavailableError, cache_dir, locate_weights
from .models import DEFAULT_MODEL, MODEL_CARDS, ModelCard

__all__ = ["CrystalClassifier", "ModelDescriptionError", "ModelUnavailableError", "cache_dir", "locate_weights",
           "DEFAULT_MODEL", "MODEL_CARDS", "ModelCard"]
