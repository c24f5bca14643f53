"""A trained crystal segmenter on disk, and the default one shipped with the package.

A model file is one PyTorch file (loaded with ``weights_only=True``: loading runs no code) holding
a dict: ``format`` (:data:`FORMAT`), ``format_version``, ``architecture`` (``base``, ``depth``),
``state`` (float16 weights), ``working_diameter_px`` (the typical crystal diameter, px, the
network was trained to see: images are rescaled to it), ``thresholds`` (of the seeded watershed),
and ``training`` (what it was trained on, at which crystal size and pixel size, with how many
steps, when: written into every summary that uses the model).
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ...frameworks import import_torch

from .network import CrystalUNet

torch = import_torch()

FORMAT = "microcrystalnet-segmenter"
FORMAT_VERSION = 1
#: the shipped default segmenter (python/microcrystalnet/models/), its checksum and model card
DEFAULT_MODEL_FILENAME = "segmenter-default.pt"
DEFAULT_MODEL_SHA256 = "950fc9dd6e3a2bea134f17cb0e40eb372e894e9be6f292f3dd038894ecbbe0b4"
DEFAULT_MODEL_NAME = "default"
MODEL_CARD_FILENAME = "segmenter-default.md"


class SegmenterModelError(ValueError):
    """A segmenter model file that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class WatershedThresholds:
    """How probabilities become crystals: seeds are connected regions with interior probability
    above ``seed``, of at least ``min_seed_fraction`` of a typical crystal's area; they are grown
    by watershed over pixels with interior + boundary probability above ``foreground``; crystals
    whose mean interior + boundary probability (the network's confidence in the whole crystal,
    like StarDist's object probability) is below ``min_crystal_score`` are dropped (faint
    substrate texture the network half believes in). Model files written before
    ``min_crystal_score`` existed drop none (0)."""

    seed: float = 0.7
    foreground: float = 0.6
    min_seed_fraction: float = 0.03
    min_crystal_score: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"seed": self.seed, "foreground": self.foreground, "min_seed_fraction": self.min_seed_fraction,
                "min_crystal_score": self.min_crystal_score}


@dataclass
class SegmenterModel:
    """A trained network with the scale it works at and where it came from."""

    network: CrystalUNet
    working_diameter_px: float = 28.0
    thresholds: WatershedThresholds = WatershedThresholds()
    training: dict[str, Any] = field(default_factory=dict)
    name: str = "untrained"
    sha256: str | None = None

    def describe(self) -> dict[str, Any]:
        """For summaries: which model, its checksum, scale and training record."""
        return {"model": self.name, "sha256": self.sha256, "working_diameter_px": self.working_diameter_px,
                "thresholds": self.thresholds.as_dict(), "training": self.training}

    def to_bytes(self) -> bytes:
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
                   "architecture": {"base": self.network.base, "depth": self.network.depth},
                   "state": {key: value.detach().cpu().to(torch.float16) if value.is_floating_point()
                             else value.cpu() for key, value in self.network.state_dict().items()},
                   "working_diameter_px": float(self.working_diameter_px),
                   "thresholds": self.thresholds.as_dict(), "training": self.training}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str, sha256: str | None = None) -> SegmenterModel:
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception:  # any unpickling failure: random bytes raise IndexError, others UnpicklingError
            # (torch's own text advises loading with weights_only=False: never, for a file of unknown origin)
            raise SegmenterModelError(f"{name} is not a MicroCrystalNet segmenter model (it cannot be read as a "
                                      "PyTorch file); give a model file written by 'microcrystalnet "
                                      "train-segmenter', or 'default'") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise SegmenterModelError(f"{name} is not a MicroCrystalNet segmenter model (a PyTorch file, but "
                                      "not one written by 'microcrystalnet train-segmenter')")
        if payload.get("format_version") != FORMAT_VERSION:
            raise SegmenterModelError(f"{name} is a segmenter model of format version "
                                      f"{payload.get('format_version')}; this version reads {FORMAT_VERSION}")
        architecture = payload["architecture"]
        network = CrystalUNet(int(architecture["base"]), int(architecture["depth"]))
        try:
            network.load_state_dict({key: value.float() if value.is_floating_point() else value
                                     for key, value in payload["state"].items()})
        except RuntimeError as error:
            raise SegmenterModelError(f"{name}: its weights do not fit its architecture ({error})") from None
        network.eval()
        return cls(network, float(payload["working_diameter_px"]), WatershedThresholds(**payload["thresholds"]),
                   dict(payload.get("training", {})), name, sha256)


def save_segmenter_model(model: SegmenterModel, path: str | Path) -> str:
    """Write ``model`` to ``path`` (a new file; an existing file is refused); returns its sha256."""
    import hashlib

    path = Path(path)
    data = model.to_bytes()
    with open(path, "xb") as stream:  # never overwrite a file: the caller decides what may be replaced
        stream.write(data)
    return hashlib.sha256(data).hexdigest()


def is_segmenter_model_file(path: str | Path) -> bool:
    """Whether ``path`` is a file this program wrote as a segmenter model (its ``format`` field
    says so; any format version): such a file may be replaced by a newly trained model."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unreadable file is not ours (see SegmenterModel.from_bytes)
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def write_segmenter_model(model: SegmenterModel, path: str | Path) -> str:
    """Write ``model`` to ``path`` atomically (complete or not at all); an existing file is
    replaced only when it is a segmenter model file (:func:`is_segmenter_model_file`), any
    other raises :class:`FileExistsError` and stays as it was. Returns the file's sha256."""
    from ...io.atomic import replaced_atomically

    path = Path(path)
    if path.exists() and not is_segmenter_model_file(path):
        raise FileExistsError(f"{path} exists and is not a segmenter model file; choose another name")
    with replaced_atomically(path) as partial:
        partial.unlink(missing_ok=True)  # left by an interrupted write
        digest = save_segmenter_model(model, partial)
    return digest


def load_segmenter_model(path: str | Path | None = None, *, device: str = "cpu") -> SegmenterModel:
    """The model in ``path``, or the shipped default (None or ``"default"``), checked against its
    sha256, its network on ``device`` (a torch device: :func:`microcrystalnet.frameworks.torch_device`)."""
    model = _read_segmenter_model(path)
    model.network.to(device)
    return model


def _read_segmenter_model(path: str | Path | None) -> SegmenterModel:
    import hashlib

    if path is None or str(path) == DEFAULT_MODEL_NAME:
        try:
            data = resources.files("microcrystalnet.models").joinpath(DEFAULT_MODEL_FILENAME).read_bytes()
        except OSError:
            raise SegmenterModelError(f"the shipped segmenter {DEFAULT_MODEL_FILENAME} is not in this installation; "
                                      "give a model file, or train one (microcrystalnet train-segmenter ... "
                                      "--from scratch)") from None
        digest = hashlib.sha256(data).hexdigest()
        if DEFAULT_MODEL_SHA256 and digest != DEFAULT_MODEL_SHA256:
            raise SegmenterModelError(f"the shipped segmenter {DEFAULT_MODEL_FILENAME} is damaged (sha256 {digest}, "
                                      f"expected {DEFAULT_MODEL_SHA256}); reinstall the package")
        return SegmenterModel.from_bytes(data, name=DEFAULT_MODEL_NAME, sha256=digest)
    path = Path(path)
    if path.is_dir():
        raise SegmenterModelError(f"segmenter model {path} is a folder; give the .pt file "
                                  "'microcrystalnet train-segmenter' wrote")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SegmenterModelError(f"cannot read the segmenter model {path}: {error.strerror or error}") from None
    return SegmenterModel.from_bytes(data, name=str(path), sha256=hashlib.sha256(data).hexdigest())


def training_record(**facts: Any) -> dict[str, Any]:
    """A training record with the date: what a model file's ``training`` holds."""
    return {"date": datetime.date.today().isoformat(), **facts}
