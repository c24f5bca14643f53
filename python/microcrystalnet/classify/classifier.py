"""The classification stage: crystal patches in, class probabilities out."""

from __future__ import annotations

import functools
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import CLASS_CODES, class_by_code
from ..config import PatchConfig
from ..frameworks import import_keras
from ..weights import file_sha256, locate_weights
from .models import MODEL_CARDS, ModelCard

Array = np.ndarray
#: the input scaling of every model here: gray patches, 8-bit values / 255, in [0, 1]
INPUT_SCALING = "unit-range"


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
        scaling = description.get("input_scaling", INPUT_SCALING)
        patch = description.get("patch", {})
        margin = None if "margin_fraction" not in patch else float(patch["margin_fraction"])
        masked = None if "mask_background" not in patch else bool(patch["mask_background"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelDescriptionError(f"{sidecar}: cannot use this model description ({error})") from error
    if sorted(order) != sorted(CLASS_CODES):
        raise ModelDescriptionError(f"{sidecar}: class_order must name each of {CLASS_CODES} once, got {order}")
    if scaling != INPUT_SCALING:
        raise ModelDescriptionError(f"{sidecar}: input_scaling {scaling!r} is not supported; models here take gray "
                                    f"patches with 8-bit values / 255 ({INPUT_SCALING!r})")
    return ModelCard(name=path.stem, filename=path.name, url="", sha256=digest, class_order=order, input_size=size,
                     description=str(description.get("architecture", "")), patch_margin_fraction=margin,
                     patch_mask_background=masked)


def _is_keras_file(path: Path) -> bool:
    """Whether ``path`` has the container of a Keras model file (a zip: ``.keras``; HDF5: ``.h5``)."""
    import h5py

    return zipfile.is_zipfile(path) or h5py.is_hdf5(path)


def _load_keras_model(path: Path) -> object:
    """The Keras model in ``path`` (imports TensorFlow); a typed error for a file Keras refuses."""
    keras = import_keras()
    from . import architecture  # noqa: F401  registers the NSR layer for loading .keras files

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for unreadable model files
        if "safe_mode" in str(error):  # Keras' safe mode refused code; its advice is to turn that off
            raise ModelDescriptionError(
                f"{path}: the model holds Python code (a Lambda layer), which is not loaded because loading it "
                "could run code; use a model made of Keras' standard layers only") from None
        raise ModelDescriptionError(f"{path}: cannot be loaded as a Keras model ({error})") from error


@dataclass
class CrystalClassifier:
    """A loaded classifier; :meth:`predict` returns probabilities in ``CLASS_CODES`` order.

    ``network`` runs the model: a torch module read from the Keras file where the file holds only
    plain layers (:mod:`.torch_network`: no TensorFlow, whose import took 6-8 s of every command),
    else the Keras model itself. :attr:`keras_model` loads the Keras model on demand (activation
    and saliency maps need it).
    """

    card: ModelCard
    path: Path
    network: object
    runs_in_torch: bool

    @classmethod
    def load(cls, model: str | Path = "reference-2023-11-19", download: bool = True) -> "CrystalClassifier":
        """Load a registered model by name (fetched if needed) or a Keras model file by path."""
        return cls.load_located(*cls.locate(model, download))

    @staticmethod
    def locate(model: str | Path = "reference-2023-11-19", download: bool = True) -> tuple[ModelCard, Path]:
        """The card and file of a registered model by name (fetched if needed) or of a Keras model
        file by path, without loading it (no framework: a wrong name fails in a moment)."""
        if str(model) in MODEL_CARDS:
            card = MODEL_CARDS[str(model)]
            return card, locate_weights(card, download=download)
        path = Path(model)
        if not path.is_file():
            raise ModelDescriptionError(
                f"{model!r} is neither a known model ({', '.join(MODEL_CARDS)}) nor an existing file")
        if not _is_keras_file(path):
            raise ModelDescriptionError(f"{path}: cannot be loaded as a Keras model: it is neither a .keras archive "
                                        "(zip) nor an HDF5 (.h5) file")
        return _card_for_path(path), path

    @classmethod
    def load_located(cls, card: ModelCard, path: Path) -> "CrystalClassifier":
        """Load the Keras model file ``path`` that :meth:`locate` found for ``card``: in torch where
        the file holds only layers :mod:`.torch_network` runs, else with Keras."""
        from .torch_network import UnsupportedNetwork, load_torch_network

        try:
            network, input_shape = load_torch_network(path)
            runs_in_torch = True
        except UnsupportedNetwork:
            network = _load_keras_model(path)
            input_shape, runs_in_torch = tuple(network.input_shape), False
        expected = (None, card.input_size, card.input_size, 1)
        if tuple(input_shape) != expected:
            raise ModelDescriptionError(f"{path}: the model takes input {tuple(input_shape)}, expected {expected}")
        return cls(card, path, network, runs_in_torch)

    @functools.cached_property
    def keras_model(self) -> object:
        """The model as Keras loads it (imports TensorFlow)."""
        return self.network if not self.runs_in_torch else _load_keras_model(self.path)

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def patch_config(self, requested: PatchConfig) -> PatchConfig:
        """The patches this model takes: its input size, and its training patches' margin and
        masking where its description states them (else ``requested``'s)."""
        card = self.card
        margin = requested.margin_fraction if card.patch_margin_fraction is None else card.patch_margin_fraction
        masked = requested.mask_background if card.patch_mask_background is None else card.patch_mask_background
        return PatchConfig(size=card.input_size, margin_fraction=margin, mask_background=masked)

    def predict(self, patches: Array, batch_size: int = 16) -> Array:
        """Probabilities (N, 4), columns in ``CLASS_CODES`` order (RES, PES, AA, RA/SA).

        ``patches``: float32 (N, size, size, 1) in [0, 1]. ``batch_size``: patches per forward pass;
        small batches keep the first layers' outputs in the processor's caches (600 patches on 2 cores:
        batches of 16 took 0.5-0.65 times the time of batches of 256 in torch, 0.65-0.75 in Keras).
        """
        if patches.ndim != 4 or patches.shape[1:] != (self.input_size, self.input_size, 1):
            raise ValueError(f"patches must be (N, {self.input_size}, {self.input_size}, 1), got {patches.shape}")
        if len(patches) == 0:
            return np.zeros((0, len(CLASS_CODES)), np.float32)
        outputs = [self._outputs(patches[start:start + batch_size]) for start in range(0, len(patches), batch_size)]
        model_order = np.concatenate(outputs).astype(np.float32)
        columns = [self.card.class_order.index(code) for code in CLASS_CODES]
        return model_order[:, columns]

    def _outputs(self, patches: Array) -> Array:
        """The network's outputs for one batch, in the model's class order."""
        if self.runs_in_torch:
            from .torch_network import predict

            return predict(self.network, patches)
        return np.asarray(self.network.predict_on_batch(patches))
