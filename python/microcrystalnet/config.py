"""Every parameter of the analysis, with its default, as validated data.

One :class:`AnalysisConfig` describes a run completely; it is written into ``summary.json`` so a
result can always be traced back to its settings, and it can be read back from JSON
(``microcrystalnet analyze --config FILE``). Lengths and areas are physical (micrometres), so the
same settings work at any magnification; they are converted to pixels with the image's pixel
size once, where a stage needs pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class InputConfig:
    """How an image is read.

    ``pixel_size_um`` overrides what the file says. Without it and without calibration in the
    file, results stay in pixels and segmentation assumes ``assumed_pixel_size_um`` (the
    paper's 10 nm) to convert its crystal-size limits; the summary says so.
    """

    pixel_size_um: float | None = None
    exclude_data_bar: bool = True
    assumed_pixel_size_um: float = 0.01

    def __post_init__(self) -> None:
        _require(self.pixel_size_um is None or self.pixel_size_um > 0, "pixel_size_um must be positive")
        _require(self.assumed_pixel_size_um > 0, "assumed_pixel_size_um must be positive")


@dataclass(frozen=True)
class WatershedConfig:
    """Classical segmenter: pore/crystal threshold, then a marker-controlled watershed.

    ``smoothing_um``: Gaussian sigma applied first (SEM shot noise is strong at the pixel
    scale; 0.02-0.03 um scored best on synthetic scenes). ``foreground_threshold``: gray level
    (0-1, after scaling the image to its 0.5-99.5 percentiles) above which a pixel is crystal;
    None picks it with Otsu's method. ``min_otsu_effectiveness``: Otsu's threshold is used only
    if it explains this fraction of the gray-level variance (between-class / total variance:
    0.64 for unimodal noise, where there is nothing to separate; 0.74-0.86 on synthetic micrite
    scenes with 30-85 % crystal cover); below it no crystal is reported.
    ``marker_separation_um``: two crystal centres closer than this are one crystal; about the
    radius of the smallest crystals (0.35 um for 1-4 um micrite).
    """

    smoothing_um: float = 0.025
    foreground_threshold: float | None = None
    min_otsu_effectiveness: float = 0.68
    marker_separation_um: float = 0.35

    def __post_init__(self) -> None:
        _require(self.smoothing_um >= 0, "smoothing_um must be >= 0")
        _require(self.foreground_threshold is None or 0 < self.foreground_threshold < 1,
                 "foreground_threshold must be between 0 and 1, or None for Otsu")
        _require(0 <= self.min_otsu_effectiveness < 1, "min_otsu_effectiveness must be in [0, 1)")
        _require(self.marker_separation_um > 0, "marker_separation_um must be positive")


PREPROCESS_STEPS = ("nlm", "n2v", "unsharp", "opening", "closing")


@dataclass(frozen=True)
class PreprocessConfig:
    """The preprocessing chain of the paper (section 4.2), in ``steps`` order.

    ``steps``: any of nlm, n2v, unsharp, opening, closing, in any order; () switches it off.
    Defaults: the paper's order. ``nlm_strength``: non-local means' h as a multiple of the
    estimated noise sigma (0.8, skimage's recommendation); ``nlm_patch_px``/``nlm_search_px``:
    compared patches and search radius. ``n2v_model``: a Noise2Void model (bioimage.io zip or
    careamics .ckpt); without one the n2v step is skipped with a notice. ``unsharp_radius_um`` /
    ``unsharp_amount``: Gaussian radius and strength of the unsharp mask. ``morphology_um``:
    side of the square footprint of opening and closing (0.05 um: the paper's 5 x 5 px at its
    10 nm/px; rounded to an odd number of pixels at other pixel sizes).
    """

    steps: tuple[str, ...] = PREPROCESS_STEPS
    nlm_strength: float = 0.8
    nlm_patch_px: int = 5
    nlm_search_px: int = 6
    n2v_model: str | None = None
    n2v_tile_px: int = 256
    unsharp_radius_um: float = 0.02
    unsharp_amount: float = 1.0
    morphology_um: float = 0.05

    def __post_init__(self) -> None:
        unknown = [step for step in self.steps if step not in PREPROCESS_STEPS]
        _require(not unknown, f"unknown preprocessing step(s) {unknown}; known: {', '.join(PREPROCESS_STEPS)}")
        _require(self.nlm_strength > 0 and self.nlm_patch_px >= 1 and self.nlm_search_px >= 1,
                 "non-local means parameters must be positive")
        _require(self.n2v_tile_px >= 32, "n2v_tile_px must be at least 32")
        _require(self.unsharp_radius_um > 0 and self.unsharp_amount >= 0 and self.morphology_um > 0,
                 "unsharp and morphology sizes must be positive")

    @property
    def runs_n2v_model(self) -> bool:
        """Whether the chain has an n2v step and a model for it."""
        return bool(self.n2v_model) and "n2v" in self.steps


SEGMENTATION_BACKENDS = ("watershed", "sam")
SAM_MODES = ("prompt", "automatic")
SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")


@dataclass(frozen=True)
class SamConfig:
    """Segment Anything (SAM) crystal segmentation.

    ``mode``: "prompt" (default) prompts SAM with every crystal candidate of the classical
    segmenter (a point at the candidate's innermost pixel plus its box), then a second pass
    prompts the crystal area no mask covers yet: about one decoder call per crystal instead of
    SAM's 1,024-point grid. "automatic" runs SAM's own automatic mask generator on a grid of
    ``points_per_side`` x ``points_per_side`` points.

    ``model_type``/``checkpoint``: the official checkpoint of that type is used (downloaded and
    checked), or ``checkpoint`` names a SAM-format file fine-tuned elsewhere (e.g. micro-sam's
    electron-microscopy models; no checksum is known for those). ``device``: "cuda", "mps",
    "cpu", or None to pick the fastest available.

    Working scale: SAM sees images of 1024 px. The image is shrunk as far as it fits one
    1024-px tile, but never so far that the smallest crystal (diameter from the minimum crystal
    area) spans fewer than ``min_crystal_px`` pixels; larger images are cut into ``tile_px``
    tiles overlapping by the largest crystal's size.

    Automatic-mode defaults (SAM's in brackets), chosen for SEM crystals and meant to be
    refined with ``microcrystalnet tune-sam`` on reference crystals: ``pred_iou_thresh`` 0.86
    (0.88) and ``stability_score_thresh`` 0.92 (0.95), because crystal edges on SEM images are
    low-contrast where crystals touch and SAM scores such masks lower; the duplicates this lets
    through are removed by the post-processing. ``points_per_side`` 32 and ``box_nms_thresh``
    0.7 as SAM.

    ``decoder_batch``: prompts decoded together; None: 8 on a CPU (fastest per prompt on 2 cores:
    68 ms vs 80 ms at 32) and 64 on a GPU.

    Post-processing (both modes): a mask with less than ``min_crystal_fraction`` of its area on
    crystal (not pore) pixels is dropped; a mask made of two or more other masks is a cluster and
    dropped; masks are painted best first and one of which more than ``duplicate_fraction`` is
    already taken is a duplicate.
    """

    mode: str = "prompt"
    model_type: str = "vit_b"
    checkpoint: str | None = None
    device: str | None = None
    min_crystal_px: float = 24.0
    tile_px: int = 1024
    decoder_batch: int | None = None
    box_margin_fraction: float = 0.1
    second_pass: bool = True
    points_per_side: int = 32
    pred_iou_thresh: float = 0.86
    stability_score_thresh: float = 0.92
    box_nms_thresh: float = 0.7
    min_crystal_fraction: float = 0.5
    duplicate_fraction: float = 0.5

    def __post_init__(self) -> None:
        _require(self.mode in SAM_MODES, f"SAM mode must be one of {SAM_MODES}, got {self.mode!r}")
        _require(self.model_type in SAM_MODEL_TYPES, f"SAM model type must be one of {SAM_MODEL_TYPES}")
        _require(self.device in (None, "cuda", "mps", "cpu"), "SAM device must be cuda, mps, cpu or None")
        _require(self.min_crystal_px >= 4, "min_crystal_px must be >= 4")
        _require(64 <= self.tile_px <= 1024, "tile_px must be between 64 and 1024 (SAM's input size)")
        _require((self.decoder_batch is None or self.decoder_batch >= 1) and self.points_per_side >= 1,
                 "batch and grid sizes must be >= 1")
        for name in ("box_margin_fraction", "pred_iou_thresh", "stability_score_thresh", "box_nms_thresh",
                     "min_crystal_fraction", "duplicate_fraction"):
            _require(0 <= getattr(self, name) <= 1, f"{name} must be between 0 and 1")


@dataclass(frozen=True)
class SegmentConfig:
    """Which segmenter runs ("watershed" or "sam"), and the crystal limits every segmenter applies.

    Area limits are for the visible part of a crystal: micrite crystals of 1-4 um are
    ~0.8-13 um^2 when whole; partly hidden ones are smaller, elongated ones larger.
    """

    backend: str = "watershed"
    min_crystal_area_um2: float = 0.25
    max_crystal_area_um2: float = 40.0
    exclude_border: bool = False
    watershed: WatershedConfig = field(default_factory=WatershedConfig)
    sam: SamConfig = field(default_factory=SamConfig)

    def __post_init__(self) -> None:
        _require(self.backend in SEGMENTATION_BACKENDS,
                 f"unknown segmentation backend {self.backend!r}; known: {', '.join(SEGMENTATION_BACKENDS)}")
        _require(0 <= self.min_crystal_area_um2 < self.max_crystal_area_um2,
                 "need 0 <= min_crystal_area_um2 < max_crystal_area_um2")


@dataclass(frozen=True)
class PatchConfig:
    """Crystal patches for the classifier (the reference model's convention).

    The crystal's bounding box, enlarged by ``margin_fraction`` of its size on every side, is
    cut from the image and resized to ``size`` x ``size`` (aspect not kept, as Keras'
    ``flow_from_directory`` did for the authors' training patches), gray, in [0, 1]. With
    ``mask_background`` the pixels outside the crystal are set to 0 (a cut-out crystal on
    black). Defaults: the authors do not state their cropping; on synthetic crystals of known
    class the reference model agreed best with tight, masked crops (BENCHMARKS.md).
    """

    size: int = 64
    margin_fraction: float = 0.0
    mask_background: bool = True

    def __post_init__(self) -> None:
        _require(8 <= self.size <= 512, "patch size must be between 8 and 512")
        _require(0 <= self.margin_fraction <= 1, "margin_fraction must be in [0, 1]")


@dataclass(frozen=True)
class ClassifyConfig:
    """Which classifier: a model name from the model registry, or a path to a Keras file.

    ``unclear_below``: a crystal whose most probable class has a probability below this is
    labelled ``unclear`` rather than forced into a class (0 turns this off). Default 0.5: below
    it the model itself finds its best class less likely than all the others together. On
    held-out synthetic crystals few labels fell below it (0.7-1.8 %) and 4 of those 11 were
    right; higher thresholds flag more crystals that are mostly right (BENCHMARKS.md).
    """

    model: str = "reference-2023-11-19"
    batch_size: int = 256
    unclear_below: float = 0.5

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, "batch_size must be >= 1")
        _require(0 <= self.unclear_below <= 1, "unclear_below must be in [0, 1]")


@dataclass(frozen=True)
class AnalysisConfig:
    """A complete analysis: input, preprocessing, segmentation, patches and classification settings."""

    input: InputConfig = field(default_factory=InputConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnalysisConfig":
        """Settings from a dict; ``{"extends": "base.json", ...}`` starts from that file's settings
        (e.g. the output of ``tune-sam``) and overrides what the dict gives."""
        if isinstance(data, dict) and "extends" in data:
            data = dict(data)
            base = cls.from_json(data.pop("extends")).to_dict()
            data = _merged(base, data)
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, path: str | Path) -> "AnalysisConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read the configuration {path}: {error}") from error
        return cls.from_dict(data)


@dataclass(frozen=True)
class TrainingConfig:
    """How a classifier is trained; defaults are the paper's recipe (section 4.3).

    Adam at ``learning_rate`` 1e-3, batch 32, 30 epochs, learning rate x ``reduce_lr_factor`` (0.1)
    after ``reduce_lr_patience`` (5) epochs without a lower validation loss, early stopping after
    ``early_stopping_patience`` epochs without one (the paper: "several"; 10 lets the learning-rate
    reduction act first) with the best weights kept, 80/10/10 split stratified by class and grouped
    by source image. ``folds`` > 1: k-fold cross-validation instead of one split (the paper: 5).
    ``augment``: random 90-degree rotations and flips, which map a crystal patch onto a valid one
    exactly (no interpolation, no cut corners); no brightness or colour changes (SEM gray levels
    carry meaning). ``architecture``: one of ``classify.architecture.ARCHITECTURES``.
    """

    architecture: str = "microcrystalnet"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    reduce_lr_factor: float = 0.1
    reduce_lr_patience: int = 5
    early_stopping_patience: int = 10
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    folds: int = 1
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1")
        _require(self.learning_rate > 0, "learning_rate must be > 0")
        _require(0 < self.validation_fraction < 0.5 and 0 < self.test_fraction < 0.5,
                 "validation_fraction and test_fraction must be in (0, 0.5)")
        _require(self.folds == 1 or self.folds >= 3, "folds must be 1 (one split) or >= 3 (cross-validation)")


T = TypeVar("T")


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _from_dict(kind: type[T], data: dict[str, Any], where: str = "") -> T:
    if not isinstance(data, dict):
        raise ValueError(f"configuration section {where or 'root'} must be an object, got {type(data).__name__}")
    known = {f.name: f for f in fields(kind)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown configuration key(s) {sorted(unknown)} in {where or 'root'}; "
                         f"known: {sorted(known)}")
    values = {}
    for name, value in data.items():
        default = getattr(kind(), name)  # type: ignore[call-arg]
        if is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}".lstrip("."))
        elif isinstance(default, tuple):
            values[name] = tuple(value)
        else:
            values[name] = value
    return kind(**values)  # type: ignore[call-arg]
