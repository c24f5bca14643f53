"""The classification stage: crystal patches in, class probabilities out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import CLASS_CODES, class_by_code
from ..frameworks import import_keras
from ..weights import file_sha256, locate_weights
from .models import MODEL_CARDS, ModelCard

Array = np.ndarray


class ModelDescriptionError(ValueError):
    """A model file was given without the description needed to use it correctly."""


def _card_for_path(path: Path) -> ModelCard:
    """A card for a model file given by path: a registered model (by sha256) or its sidecar JSON.

    A model that is not registered must come with ``<file>.json`` holding at least
    ``class_order`` (class code of each output) and ``input_size``.
    """
    digest = file_sha256(path)
    for card in MODEL_CARDS.values():
        if card.sha256 == digest:
            return card
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        raise ModelDescriptionError(
            f"{path} is not a registered model and has no description file {sidecar}. Write one with "
            '{"class_order": ["RES", "PES", "AA", "RA/SA"], "input_size": 64} in the order of the '
            "model's outputs, so its outputs are not read in the wrong order.")
    try:
        description = json.loads(sidecar.read_text())
        order = tuple(class_by_code(code).code for code in description["class_order"])
        size = int(description["input_size"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelDescriptionError(f"{sidecar}: cannot use this model description ({error})") from error
    if sorted(order) != sorted(CLASS_CODES):
        raise ModelDescriptionError(f"{sidecar}: class_order must name each of {CLASS_CODES} once, got {order}")
    return ModelCard(name=path.stem, filename=path.name, url="", sha256=digest, class_order=order, input_size=size)


@dataclass
class CrystalClassifier:
    """A loaded classifier; :meth:`predict` returns probabilities in ``CLASS_CODES`` order."""

    card: ModelCard
    path: Path
    model: object

    @classmethod
    def load(cls, model: str | Path = "reference-2023-11-19", download: bool = True) -> "CrystalClassifier":
        """Load a registered model by name (fetched if needed) or a Keras model file by path."""
        if str(model) in MODEL_CARDS:
            card = MODEL_CARDS[str(model)]
            path = locate_weights(card, download=download)
        else:
            path = Path(model)
            if not path.is_file():
                raise ModelDescriptionError(
                    f"{model!r} is neither a known model ({', '.join(MODEL_CARDS)}) nor an existing file")
            card = _card_for_path(path)
        keras = import_keras()
        try:
            network = keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for unreadable model files
            raise ModelDescriptionError(f"{path}: cannot be loaded as a Keras model ({error})") from error
        expected = (None, card.input_size, card.input_size, 1)
        if tuple(network.input_shape) != expected:
            raise ModelDescriptionError(f"{path}: the model takes input {network.input_shape}, expected {expected}")
        return cls(card, path, network)

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def predict(self, patches: Array, batch_size: int = 256) -> Array:
        """Probabilities (N, 4), columns in ``CLASS_CODES`` order (RES, PES, AA, RA/SA).

        ``patches``: float32 (N, size, size, 1) in [0, 1].
        """
        if patches.ndim != 4 or patches.shape[1:] != (self.input_size, self.input_size, 1):
            raise ValueError(f"patches must be (N, {self.input_size}, {self.input_size}, 1), got {patches.shape}")
        if len(patches) == 0:
            return np.zeros((0, len(CLASS_CODES)), np.float32)
        outputs = [np.asarray(self.model.predict_on_batch(patches[start:start + batch_size]))
                   for start in range(0, len(patches), batch_size)]
        model_order = np.concatenate(outputs).astype(np.float32)
        columns = [self.card.class_order.index(code) for code in CLASS_CODES]
        return model_order[:, columns]
