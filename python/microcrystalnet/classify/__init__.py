"""Classification stage: MicroCrystalNet models, where their weights come from, and inference."""

from .classifier import CrystalClassifier, ModelDescriptionError
from .model_store import ModelUnavailableError, cache_dir, locate_model
from .models import DEFAULT_MODEL, MODEL_CARDS, ModelCard

__all__ = ["CrystalClassifier", "ModelDescriptionError", "ModelUnavailableError", "cache_dir", "locate_model",
           "DEFAULT_MODEL", "MODEL_CARDS", "ModelCard"]
