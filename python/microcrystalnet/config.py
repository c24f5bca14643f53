"""Every parameter of the analysis, with its default, as validated data.

One :class:`AnalysisConfig` describes a run completely; it is written into ``summary.json`` so a
result can always be traced back to its settings, and it is read back from JSON
(``microcrystalnet analyze --config FILE``, the Fiji command's settings file). Lengths and areas
are physical (micrometres), so the same settings work at any magnification; they are converted
to pixels with the image's pixel size once, where a stage needs pixels.

The sections are pydantic models (as careamics keeps its configuration): frozen, unknown keys
refused, types strict (``"8"`` is no integer, ``"no"`` and ``true`` are no numbers or booleans
but what they say they are), ranges checked, every field documented where it is declared. A bad
value raises :class:`ConfigError`, whose message names the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the file (if any), the field and the problem."""


class Settings(BaseModel):
    """Base of every settings section."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples as lists)."""
        return self.model_dump(mode="json")

    def updated(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (nested sections as dicts merge into the current ones)."""
        return _validated(type(self), _merged(self.to_dict(), changes))


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` (or ``Literal | None``) annotation."""
    literal = next((arg for arg in get_args(annotation) if get_args(arg)), annotation)
    return tuple(get_args(literal))


def choices_of(section: type[Settings], name: str) -> tuple[str, ...]:
    """The allowed values of a choice field, for command-line choices and dialogs."""
    return _choices(section.model_fields[name].annotation)


def default_of(section: type[Settings], name: str) -> Any:
    """A field's default value, for command-line help and dialogs."""
    field = section.model_fields[name]
    return field.get_default(call_default_factory=True)


PreprocessStep = Literal["nlm", "n2v", "unsharp", "opening", "closing"]
PREPROCESS_STEPS: tuple[str, ...] = get_args(PreprocessStep)
SegmenterName = Literal["watershed", "learned", "sam"]
SEGMENTATION_BACKENDS: tuple[str, ...] = get_args(SegmenterName)
WatershedMode = Literal["auto", "boundary", "threshold"]
SamMode = Literal["prompt", "automatic"]
SamPrompter = Literal["watershed", "learned"]
SamModelType = Literal["vit_b", "vit_l", "vit_h"]
TorchDevice = Literal["cuda", "mps", "cpu"]
CrystalContrastSetting = Literal["auto", "bright", "dark"]
SplitBy = Literal["image", "crystal"]
Architecture = Literal["microcrystalnet", "reference", "vgg16", "resnet50", "inceptionv3", "densenet121",
                       "efficientnetb0"]


class InputConfig(Settings):
    """How an image is read."""

    pixel_size_um: float | None = Field(default=None, gt=0)
    """Pixel size in micrometres; overrides what the file says. None: the file's calibration or
    instrument metadata, else unknown (results in pixels)."""

    exclude_data_bar: bool = True
    """Find the instrument's data bar at the bottom of the image and leave it out, and leave out
    what segmentation finds on scale bars and label boxes burned into the image
    (:func:`microcrystalnet.databar.burned_in_marks`)."""

    memory_limit_gb: float | None = Field(default=None, gt=0)
    """An image whose analysis is estimated to need more memory than this (GB, 10^9 bytes) is
    refused before any work, with the estimate (microcrystalnet.memory); None: 80 % of the memory
    available when the analysis starts."""

    assumed_pixel_size_um: float = Field(default=0.01, gt=0)
    """For images without a pixel size: segmentation converts its crystal-size limits with this
    (the paper's 10 nm), and the summary says so."""


class WatershedConfig(Settings):
    """Classical segmenter: a marker-controlled watershed, boundary-aware or on a pore/crystal threshold."""

    mode: WatershedMode = "auto"
    """boundary: split crystals along dark boundary lines found at the crystal scale (touching
    crystals, grain mosaics; every parameter a fraction of the crystal diameter). threshold: the
    first version, bright crystals on dark pores split at distance-map valleys (the settings
    below apply to it only). auto: boundary when a crystal size is set (``segment.crystal_size_um``
    or ``_px``, or estimated for an image without pixel size), threshold with the micrite
    defaults. Measured (BENCHMARKS.md): boundary is far better on real SEM images of four
    materials, threshold on synthetic micrite scenes (F1 0.95 vs 0.55-0.85)."""

    smoothing_um: float = Field(default=0.025, ge=0)
    """Gaussian sigma applied first, um (SEM shot noise is strong at the pixel scale; 0.02-0.03 um
    scored best on synthetic scenes)."""

    foreground_threshold: float | None = Field(default=None, gt=0, lt=1)
    """Gray level (0-1, after scaling the image to its 0.5-99.5 percentiles) above which a pixel is
    crystal; None picks it with Otsu's method."""

    min_otsu_effectiveness: float = Field(default=0.68, ge=0, lt=1)
    """Otsu's threshold is used only if it explains this fraction of the gray-level variance
    (between-class / total: 0.64 for unimodal noise, where there is nothing to separate; 0.74-0.86
    on synthetic micrite scenes with 30-85 % crystal cover); below it no crystal is reported."""

    marker_separation_um: float = Field(default=0.35, gt=0)
    """Two crystal centres closer than this (um) are one crystal; about the radius of the smallest
    crystals (0.35 um for 1-4 um micrite)."""


class PreprocessConfig(Settings):
    """The preprocessing chain of the paper (section 4.2), in ``steps`` order."""

    steps: tuple[PreprocessStep, ...] = Field(default=PREPROCESS_STEPS, strict=False)
    """Any of nlm, n2v, unsharp, opening, closing, in any order; an empty list switches the chain
    off. Default: the paper's order."""

    nlm_strength: float = Field(default=0.8, gt=0)
    """Non-local means' h as a multiple of the estimated noise sigma (0.8, skimage's recommendation)."""

    nlm_patch_px: int = Field(default=5, ge=1)
    """Side of the patches non-local means compares, px."""

    nlm_search_px: int = Field(default=6, ge=1)
    """Radius non-local means searches for similar patches, px."""

    n2v_model: str | None = None
    """A Noise2Void model (bioimage.io zip or careamics .ckpt); without one the n2v step is skipped
    with a notice."""

    n2v_tile_px: int = Field(default=256, ge=32)
    """Tile side for Noise2Void prediction, px."""

    unsharp_radius_um: float = Field(default=0.02, gt=0)
    """Gaussian radius of the unsharp mask, um."""

    unsharp_amount: float = Field(default=1.0, ge=0)
    """Strength of the unsharp mask."""

    morphology_um: float = Field(default=0.05, gt=0)
    """Side of the square footprint of opening and closing, um (0.05: the paper's 5 x 5 px at its
    10 nm/px; rounded to an odd number of pixels at other pixel sizes)."""

    @property
    def runs_n2v_model(self) -> bool:
        """Whether the chain has an n2v step and a model for it."""
        return bool(self.n2v_model) and "n2v" in self.steps


class SamConfig(Settings):
    """Segment Anything (SAM) crystal segmentation.

    Working scale: SAM sees images of 1024 px. The image is shrunk as far as it fits one 1024-px
    tile, but never so far that the smallest crystal (diameter from the minimum crystal area)
    spans fewer than ``min_crystal_px`` pixels; larger images are cut into ``tile_px`` tiles
    overlapping by four typical crystal diameters (at most the largest crystal, half a tile).

    Post-processing (both modes): a mask with less than ``min_crystal_fraction`` of its area on
    crystal (not pore) pixels is dropped; a mask made of two or more other masks is a cluster and
    dropped; masks are painted best first and one of which more than ``duplicate_fraction`` is
    already taken is a duplicate.
    """

    mode: SamMode = "prompt"
    """prompt: SAM is prompted with every crystal candidate of another segmenter
    (``prompts_from``: a point at its innermost pixel plus its box), then a second pass prompts the
    crystal area no mask covers yet: about one decoder call per crystal. automatic: SAM's own automatic mask generator on a
    grid of points_per_side x points_per_side points."""

    prompts_from: SamPrompter = "learned"
    """prompt mode: the segmenter whose crystals prompt SAM: learned (the learned segmenter with
    ``segment.learned``'s model, the best segmenter without SAM) or watershed (the threshold
    watershed of the first version)."""

    model_type: SamModelType = "vit_b"
    """The official checkpoint of this type is used (downloaded and checked) unless ``checkpoint``
    names another."""

    checkpoint: str | None = None
    """A SAM-format file fine-tuned elsewhere (e.g. micro-sam's electron-microscopy models; no
    checksum is known for those)."""

    device: TorchDevice | None = None
    """cuda, mps or cpu; None picks the fastest available."""

    min_crystal_px: float = Field(default=24.0, ge=4)
    """The smallest crystal spans at least this many pixels in the image SAM sees."""

    tile_px: int = Field(default=1024, ge=64, le=1024)
    """Tile side for images larger than SAM's 1024-px input, px."""

    decoder_batch: int | None = Field(default=None, ge=1)
    """Prompts decoded together (twice as many in automatic mode); None: 2 on a CPU and 64 on a GPU.
    On a CPU small batches are no slower and need less memory: the mask decoder works on its own
    copy of the image embedding for each prompt (2 cores: 105 ms per prompt at 2 to 16 in our
    processes; 110 ms at 2 and 170 ms at 8 where freed memory goes back to the system at once,
    see :mod:`microcrystalnet.allocator`; BENCHMARKS, "SAM")."""

    box_margin_fraction: float = Field(default=0.1, ge=0, le=1)
    """Prompt boxes are enlarged by this fraction of their size on every side."""

    second_pass: bool = True
    """Prompt the crystal area that no mask of the first pass covers (prompt mode)."""

    points_per_side: int = Field(default=32, ge=1)
    """Automatic mode: the point grid's side (SAM's 32)."""

    pred_iou_thresh: float = Field(default=0.86, ge=0, le=1)
    """Automatic mode: SAM's predicted-IoU threshold (SAM's 0.88; lower because crystal edges on
    SEM images are low-contrast where crystals touch and SAM scores such masks lower; the
    duplicates this lets through are removed by the post-processing). Refine with tune-sam."""

    stability_score_thresh: float = Field(default=0.92, ge=0, le=1)
    """Automatic mode: SAM's stability-score threshold (SAM's 0.95; lower for the same reason)."""

    box_nms_thresh: float = Field(default=0.7, ge=0, le=1)
    """Automatic mode: box IoU above which SAM's non-maximum suppression drops a mask (SAM's 0.7)."""

    min_crystal_fraction: float = Field(default=0.5, ge=0, le=1)
    """A mask with less than this fraction of its area on crystal (not pore) pixels is dropped."""

    duplicate_fraction: float = Field(default=0.5, ge=0, le=1)
    """A mask of which more than this fraction is already taken by better masks is a duplicate."""


class LearnedConfig(Settings):
    """Learned segmenter: a small U-Net predicts crystal interior, crystal boundary and background
    with every image rescaled so its typical crystal spans the model's working diameter; a seeded
    watershed grows interior cores into crystals (microcrystalnet.segment.learned)."""

    model: str = "default"
    """default: the segmenter shipped with the package (trained on synthetic scenes only; its model
    card is python/microcrystalnet/models/segmenter-default.md); or the
    path of a model file written by ``microcrystalnet train-segmenter``."""

    seed_threshold: float | None = Field(default=None, gt=0, lt=1)
    """Interior probability above which a pixel can seed a crystal; None: the model's own (chosen
    when it was trained). Higher: fewer, surer crystals; lower: more, with more splits."""

    foreground_threshold: float | None = Field(default=None, gt=0, lt=1)
    """Interior + boundary probability above which a pixel belongs to a crystal; None: the model's own."""

    min_crystal_score: float | None = Field(default=None, ge=0, lt=1)
    """Crystals whose mean interior + boundary probability is below this are dropped (faint
    texture the network half believes in); None: the model's own (chosen when it was trained);
    0 keeps every crystal."""

    device: TorchDevice | None = None
    """Where the network runs: cuda (an NVIDIA GPU), mps (Apple's GPU) or cpu; None picks the
    fastest available. The crystal-contrast judgement runs there too, for every segmenter."""


class SegmentConfig(Settings):
    """Which segmenter runs, and the crystal limits every segmenter applies.

    Area limits are for the visible part of a crystal: micrite crystals of 1-4 um are
    ~0.8-13 um^2 when whole; partly hidden ones are smaller, elongated ones larger.
    """

    backend: SegmenterName = "learned"
    """learned (a small trained network, the shipped one or your own from ``train-segmenter``; the
    best on real SEM images of four materials and the fastest: BENCHMARKS.md), watershed
    (classical, no model) or sam (Segment Anything)."""

    crystal_size_um: float | None = Field(default=None, gt=0)
    """Typical crystal diameter, um. Scales every length and area of the settings (written for
    2-um micrite) and the boundary watershed. None: 2 um when the image has a pixel size, else
    estimated from the image (the summary says which)."""

    crystal_size_px: float | None = Field(default=None, gt=0)
    """Typical crystal diameter in pixels, for images without a pixel size; instead of
    ``crystal_size_um``."""

    min_crystal_area_um2: float = Field(default=0.25, ge=0)
    """Smallest crystal area kept, um^2."""

    max_crystal_area_um2: float = Field(default=400.0, gt=0)
    """Largest crystal area kept, um^2: 11 times the diameter of a 2-um crystal, since real
    crystals and particles come in wide size ranges (the largest outlined object of the real SEM
    images is up to 7 times their median diameter; a limit of 3.6 times, 40 um^2, lost
    0.01-0.014 F1 on two materials: BENCHMARKS.md)."""

    exclude_border: bool = False
    """Drop crystals cut by the image border."""

    crystal_contrast: CrystalContrastSetting = "auto"
    """bright: crystals brighter than what surrounds them (secondary-electron images of micrite and
    of most particles); dark: darker (e.g. some backscattered-electron images): segmentation and
    classification see the gray levels inverted (measured intensities stay as given); auto: the
    shipped learned network judges each image, whichever segmenter and model segment it (it segments
    the central part as given and inverted, and takes dark only where it is clearly surer of the
    inverted crystals and pixels; the summary says which)."""

    watershed: WatershedConfig = WatershedConfig()
    """Settings of the watershed segmenter."""

    learned: LearnedConfig = LearnedConfig()
    """Settings of the learned segmenter."""

    sam: SamConfig = SamConfig()
    """Settings of the SAM segmenter."""

    @model_validator(mode="after")
    def _area_limits_in_order(self) -> Self:
        if self.crystal_size_um is not None and self.crystal_size_px is not None:
            raise ValueError("give crystal_size_um or crystal_size_px, not both")
        if self.min_crystal_area_um2 >= self.max_crystal_area_um2:
            raise ValueError(f"min_crystal_area_um2 ({self.min_crystal_area_um2}) must be smaller than "
                             f"max_crystal_area_um2 ({self.max_crystal_area_um2})")
        return self


class PatchConfig(Settings):
    """Crystal patches for the classifier (the reference model's convention).

    The crystal's bounding box, enlarged by ``margin_fraction`` of its size on every side, is cut
    from the image and resized to ``size`` x ``size`` (aspect not kept, as Keras'
    ``flow_from_directory`` did for the authors' training patches), gray, in [0, 1]. The authors
    do not state their cropping; on synthetic crystals of known class the reference model agreed
    best with tight, masked crops (BENCHMARKS.md).
    """

    size: int = Field(default=64, ge=8, le=512)
    """Patch side, px."""

    margin_fraction: float = Field(default=0.0, ge=0, le=1)
    """The box is enlarged by this fraction of its size on every side."""

    mask_background: bool = True
    """Pixels outside the crystal are set to 0 (a cut-out crystal on black)."""


class ClassifyConfig(Settings):
    """Which classifier, and when its answer counts as unclear."""

    model: str = "reference-2023-11-19"
    """A model name from the model registry, or the path of a Keras file with its .json description."""

    batch_size: int = Field(default=256, ge=1)
    """Patches classified together."""

    unclear_below: float = Field(default=0.5, ge=0, le=1)
    """A crystal whose most probable class has a probability below this is labelled ``unclear``
    rather than forced into a class (0 turns this off). Below 0.5 the model itself finds its best
    class less likely than all the others together. On held-out synthetic crystals few labels fell
    below it (0.7-1.8 %) and 4 of those 11 were right (BENCHMARKS.md)."""


SETTINGS_VERSION = 1


class AnalysisConfig(Settings):
    """A complete analysis: input, preprocessing, segmentation, patches and classification settings.

    A settings file may start from another: ``{"extends": "base.json", ...}`` takes that file's
    settings (a relative path is relative to the file naming it) and overrides what it gives.
    """

    version: Literal[1] = SETTINGS_VERSION
    """Version of this settings layout; files without it are read as version 1."""

    input: InputConfig = InputConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    segment: SegmentConfig = SegmentConfig()
    patch: PatchConfig = PatchConfig()
    classify: ClassifyConfig = ClassifyConfig()

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None) -> AnalysisConfig:
        """Settings from JSON data; ``source`` (the file it came from) names it in errors and is
        where a relative ``extends`` path starts."""
        return _validated(cls, _resolve_extends(data, source, ()), source)

    @classmethod
    def from_json(cls, path: str | Path) -> AnalysisConfig:
        """Settings from a JSON file: a settings file, or a result's summary.json (its
        ``settings`` object: the settings of that analysis)."""
        return cls.from_dict(_read_settings_file(Path(path), ()), source=path)


class TrainingConfig(Settings):
    """How a classifier is trained; defaults are the paper's recipe (section 4.3)."""

    architecture: Architecture = "microcrystalnet"
    """The network: microcrystalnet (the paper's, with the NSR block), reference (the authors'
    released one) or a keras.applications baseline trained from scratch."""

    epochs: int = Field(default=30, ge=1)
    """Epochs at most."""

    batch_size: int = Field(default=32, ge=1)
    """Patches per batch."""

    learning_rate: float = Field(default=1e-3, gt=0)
    """Adam's learning rate."""

    reduce_lr_factor: float = Field(default=0.1, gt=0, lt=1)
    """The learning rate is multiplied by this after ``reduce_lr_patience`` epochs without a lower
    validation loss."""

    reduce_lr_patience: int = Field(default=5, ge=1)
    """Epochs without a lower validation loss before the learning rate is reduced."""

    early_stopping_patience: int = Field(default=10, ge=1)
    """Epochs without a lower validation loss before training stops (the paper: "several"; 10 lets
    the learning-rate reduction act first); the best weights are kept."""

    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    """Share of the images held out for validation (split by source image, stratified by class)."""

    test_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    """Share of the images held out for the final test."""

    folds: int = Field(default=1, ge=1)
    """1: one split; k >= 3: k-fold cross-validation by image (the paper: 5)."""

    split_by: SplitBy = "image"
    """image: every crystal of an image on one side of the split (honest scores; needs 10 images or
    more); crystal: crystals split one by one, for training on the crystals of one or a few images
    (at least 10 labelled crystals; the test scores are optimistic, as test crystals share their
    images with training)."""

    augment: bool = True
    """Random 90-degree rotations and flips, which map a crystal patch onto a valid one exactly (no
    interpolation, no cut corners); no brightness changes (SEM gray levels carry meaning)."""

    seed: int = 0
    """Random seed of the split, the augmentation and the weights."""

    @model_validator(mode="after")
    def _folds_make_sense(self) -> Self:
        if self.folds == 2:
            raise ValueError("folds must be 1 (one split) or >= 3 (cross-validation)")
        return self


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merged(base[key], value) if nested else value
    return merged


def _read_settings_file(path: Path, chain: tuple[Path, ...]) -> Any:
    """A settings file's data; of a result's summary.json, its settings (those of that analysis)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        via = f" (named by 'extends' in {chain[-1]})" if chain else ""
        raise ConfigError(f"cannot read the settings file {path}{via}: {error}") from error
    if isinstance(data, dict) and isinstance(data.get("settings"), dict) and "n_crystals" in data:
        return data["settings"]
    return data


def _resolve_extends(data: Any, source: str | Path | None, chain: tuple[Path, ...]) -> Any:
    """``data`` with its ``extends`` chain merged in, base first; loops are refused."""
    if not isinstance(data, dict) or "extends" not in data:
        return data
    where = f"settings file {source}" if source else "settings"
    data = dict(data)
    base_name = data.pop("extends")
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{where}: 'extends' must be the path of a settings file, got {base_name!r}")
    base_path = Path(base_name)
    if not base_path.is_absolute() and source is not None:
        base_path = Path(source).parent / base_path
    here = (Path(source).resolve(),) if source is not None else ()
    seen = chain + here
    if base_path.resolve() in seen:
        loop = " -> ".join(str(path) for path in (*seen, base_path.resolve()))
        raise ConfigError(f"{where}: 'extends' makes a loop ({loop}); a settings file cannot extend itself")
    base = _resolve_extends(_read_settings_file(base_path, seen), base_path, seen)
    if not isinstance(base, dict):
        raise ConfigError(f"settings file {base_path}: must hold a JSON object, got {type(base).__name__}")
    return _merged(base, data)


def _validated(kind: type[Settings], data: Any, source: str | Path | None = None) -> Any:
    try:
        return kind.model_validate(data)
    except ValidationError as error:
        where = f"settings file {source}: " if source else ""
        raise ConfigError(where + "; ".join(_describe(problem) for problem in error.errors())) from None


def _describe(problem: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
    if problem["type"] == "extra_forbidden":
        return f"{field}: unknown setting (misspelt, or from another program?)"
    if problem["type"] == "model_type":
        return f"{field}: must be an object of settings (got {problem['input']!r})"
    if problem["type"] == "value_error":  # a rule across fields: its message says it all
        return f"{field}: {problem['msg'].removeprefix('Value error, ')}"
    return f"{field}: {problem['msg']} (got {problem['input']!r})"
