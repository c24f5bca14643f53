"""The analysis of one image: preprocess -> segment -> classify -> measure. Composes the stages; no science here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .classify import CrystalClassifier
from .databar import burned_in_marks
from .config import AnalysisConfig, SegmentConfig, default_of
from .io import SEMImage, read_sem_image, to_unit_range
from .measure import measure_crystals
from .memory import MemoryLimit, check_analysis_memory, estimate_analysis_bytes
from .notices import (GIVE_CRYSTAL_SIZE_IN_PX, GIVE_CRYSTAL_SIZE_PX, GIVE_CRYSTAL_SIZE_UM, GIVE_OTHER_CRYSTAL_SIZE,
                      KEEP_MARKS, MAX_AREA, MIN_AREA, SET_BRIGHT_CRYSTALS, SET_DARK_CRYSTALS, SET_PIXEL_SIZE, Notice)
from .outline import outlines_from_labels
from .patches import extract_patches
from .preprocess import N2V_MISSING, Noise2VoidDenoiser, Noise2VoidModel, preprocess, reports_as_dicts
from .results import results_rows, segmenter_label
from .segment import (CrystalSegmenter, empty_result_notice, make_segmenter, segment_crystals, sparse_result_notice,
                      working_scale)
from .segment.contrast import SET, CrystalContrast, judged_crystal_contrast, with_bright_crystals
from .segment.scale import REFERENCE_CRYSTAL_DIAMETER_UM, CrystalScale, crystal_scale, scaled_config

if TYPE_CHECKING:
    from .segment.sam import SamCrystalSegmenter
    from .segment.sam_tuning import TuningImage

Array = np.ndarray
T = TypeVar("T")
log = logging.getLogger(__name__)

#: called with (stage name, fraction of the image's work done) as the analysis advances
ProgressCallback = Callable[[str, float], None]


@dataclass
class CrystalAnalysis:
    """Everything one analysis produced.

    ``labels``: int32 (Y, X) of the whole image (data bar rows are 0), crystals 1..N;
    ``outlines[n]``: traced outline of crystal n (``(x, y)`` pixel vertices); ``rows``: the
    results table (:mod:`microcrystalnet.results`); ``pixel_size_um``: calibration of the
    results (None: pixel units); ``segmentation_pixel_size_um``: the pixel size segmentation
    worked with (the assumed one when the image has none).
    """

    image: SEMImage
    labels: Array
    outlines: dict[int, Array]
    rows: list[dict[str, object]]
    pixel_size_um: float | None
    segmentation_pixel_size_um: float
    config: AnalysisConfig
    classifier: CrystalClassifier
    segmentation: dict[str, Any] = field(default_factory=dict)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def n_crystals(self) -> int:
        return len(self.rows)

    @property
    def unit(self) -> str:
        return "um" if self.pixel_size_um is not None else "pixel"


@dataclass
class AnalysisModels:
    """The classifier, segmenter and Noise2Void model one configuration needs, loaded once and
    reused for every image."""

    classifier: CrystalClassifier
    segmenter: CrystalSegmenter
    n2v: Noise2VoidDenoiser | None = None

    @classmethod
    def load(cls, config: AnalysisConfig, download: bool = True) -> "AnalysisModels":
        classifier_file = CrystalClassifier.locate(config.classify.model, download=download)  # a wrong one fails now
        n2v = Noise2VoidModel.load(config.preprocess.n2v_model) if config.preprocess.runs_n2v_model else None
        segmenter = make_segmenter(config.segment, download=download)  # before any Keras classifier: see frameworks
        return cls(CrystalClassifier.load_located(*classifier_file), segmenter, n2v)


def settings_for_image(analysed: Array, pixel_size_um: float | None, config: AnalysisConfig,
                       segmenter: CrystalSegmenter | None = None, *, texture_estimate_px: float | None = None
                       ) -> tuple[AnalysisConfig, CrystalScale, list[str]]:
    """``config`` scaled to the typical crystal diameter of an image (float (Y, X) in [0, 1], the
    analysed part; ``pixel_size_um`` None: uncalibrated), that diameter, and notices for the user
    (:mod:`microcrystalnet.segment.scale`). Where the diameter must be estimated, ``segmenter``'s
    own refinement of the estimate is used if it has one (the learned segmenter's);
    ``texture_estimate_px``: the image's texture-scale estimate where it is known already."""
    scale = crystal_scale(analysed, config.segment, pixel_size_um, config.input.assumed_pixel_size_um,
                          refine_diameter_px=getattr(segmenter, "refine_crystal_diameter_px", None),
                          search_diameter_px=getattr(segmenter, "search_crystal_diameter_px", None),
                          texture_estimate_px=texture_estimate_px)
    if scale.source == "micrite default":
        return config, scale, []
    config = scaled_config(config, scale.diameter_px * (pixel_size_um or config.input.assumed_pixel_size_um))
    if scale.source != "estimated from the image":
        return config, scale, []
    if pixel_size_um is not None:
        return config, scale, [Notice.of(
            f"the crystals look about {scale.diameter_px * pixel_size_um:.3g} um across, not the micrite "
            f"default of {REFERENCE_CRYSTAL_DIAMETER_UM:g} um: the settings follow the estimate; if it is wrong, ",
            GIVE_CRYSTAL_SIZE_UM)]
    return config, scale, [Notice.of(f"typical crystal diameter estimated from the image: {scale.diameter_px:.1f} px; "
                                     "if it is wrong, ", GIVE_CRYSTAL_SIZE_PX)]


def scaled_with_bright_crystals(analysed: Array, pixel_size_um: float | None, config: AnalysisConfig,
                                segmenter: CrystalSegmenter, contrast: CrystalContrast, texture_px: float | None
                                ) -> tuple[Array, AnalysisConfig, CrystalScale, list[str]]:
    """The image segmentation and classification see (``analysed``, or a new array with its gray
    levels inverted where ``contrast`` says the crystals are dark), the settings scaled to its
    typical crystal diameter (:func:`settings_for_image`, on that image), that diameter and
    notices for the user (one more where the crystals were judged dark)."""
    bright = with_bright_crystals(analysed, contrast)
    scaled, scale, notices = settings_for_image(bright, pixel_size_um, config, segmenter,
                                                texture_estimate_px=texture_px)
    if contrast.judged_dark:
        notices = [*notices, Notice.of("the crystals look darker than what surrounds them: they were segmented and "
                                       "classified with the gray levels inverted; if they are not, ",
                                       SET_BRIGHT_CRYSTALS)]
    return bright, scaled, scale, notices


def contrast_judged_for(analysed: Array, pixel_size_um: float | None, config: AnalysisConfig,
                        segmenter: CrystalSegmenter) -> tuple[CrystalContrast, float | None]:
    """The crystal contrast of ``analysed`` (float (Y, X) in [0, 1]) by ``segmenter``'s judge, and
    the texture-scale estimate made on the way (:func:`.segment.contrast.judged_crystal_contrast`)."""
    return judged_crystal_contrast(analysed, pixel_size_um, config.segment,
                                   assumed_pixel_size_um=config.input.assumed_pixel_size_um,
                                   judge=getattr(segmenter, "contrast_judge", None))


def _run_now(stage: str, fraction: float, work: Callable[[], T]) -> T:
    return work()


def prepared_for_segmentation(analysed: Array, pixel_size_um: float | None, config: AnalysisConfig,
                              segmenter: CrystalSegmenter, *,
                              staged: Callable[[str, float, Callable[[], Any]], Any] = _run_now
                              ) -> tuple[Array, AnalysisConfig, CrystalScale, CrystalContrast, list[str]]:
    """What :func:`analyze_image` does before preprocessing: the crystal contrast
    (:func:`.segment.contrast.judged_crystal_contrast`), then the image with bright crystals, its scaled settings,
    its crystal diameter and notices (:func:`scaled_with_bright_crystals`); returned as (image,
    settings, scale, contrast, notices). ``staged(stage, fraction, work)`` runs each of the two
    stages (for progress and timing)."""
    contrast, texture_px = staged("crystal contrast", 0.0, lambda: contrast_judged_for(
        analysed, pixel_size_um, config, segmenter))
    bright, scaled, scale, notices = staged("crystal size", 0.02, lambda: scaled_with_bright_crystals(
        analysed, pixel_size_um, config, segmenter, contrast, texture_px))
    return bright, scaled, scale, contrast, notices


@dataclass
class SegmentationInputs:
    """An image as the analysis hands it to segmentation (:func:`segmentation_inputs`).

    ``image``: what the segmenter segments, ``prompt_image``: what its prompter segments where
    that is another image (else None), ``preprocessed``: what classification sees (all float
    (Y, X) in [0, 1], bright crystals); ``config``: the settings scaled to the image's crystal
    diameter ``scale``; ``pixel_size_um``: the one segmentation works with (the assumed one where
    the image has none); ``step_reports``: the preprocessing steps' reports."""

    image: Array
    prompt_image: Array | None
    preprocessed: Array
    config: AnalysisConfig
    pixel_size_um: float
    scale: CrystalScale
    contrast: CrystalContrast
    notices: list[str]
    step_reports: list[Any]


def segmentation_inputs(analysed: Array, pixel_size_um: float | None, config: AnalysisConfig,
                        segmenter: CrystalSegmenter, n2v: Noise2VoidDenoiser | None = None, *,
                        staged: Callable[[str, float, Callable[[], T]], T] = _run_now) -> SegmentationInputs:
    """What :func:`analyze_image` does before segmenting ``analysed`` (float (Y, X) in [0, 1], the
    analysed part of an image; ``pixel_size_um`` None: uncalibrated): the crystal contrast, the
    settings scaled to the crystal diameter (:func:`prepared_for_segmentation`), preprocessing
    with them (``n2v``: the loaded Noise2Void model, where the settings run one), and the image
    each segmenter sees: the learned segmenter, and the learned prompter of SAM, the image as read
    (trained on raw images; BENCHMARKS.md), the others the preprocessed one. ``staged(stage,
    fraction, work)`` runs each stage (for progress and timing)."""
    bright, config, scale, contrast, notices = prepared_for_segmentation(analysed, pixel_size_um, config, segmenter,
                                                                         staged=staged)
    del analysed  # where the crystals are dark, only the inverted copy lives on: large images
    segmentation_pixel_size = pixel_size_um or config.input.assumed_pixel_size_um
    preprocessed, step_reports = staged("preprocess", 0.05, lambda: preprocess(
        bright, segmentation_pixel_size, config.preprocess, n2v))
    image = bright if segmenter.sees_raw_image else preprocessed
    prompt_image = bright if getattr(segmenter, "prompter_sees_raw_image", False) and image is not bright else None
    return SegmentationInputs(image, prompt_image, preprocessed, config, segmentation_pixel_size, scale, contrast,
                              notices, step_reports)


def not_sample_of(pixels: Array, config: AnalysisConfig) -> Array | None:
    """Where the analysed part of an image (``pixels``, (Y, X)) holds burned-in marks, not sample
    (:func:`.databar.burned_in_marks`; bool (Y, X)), or None where it holds none or the settings
    keep them (``input.exclude_data_bar`` off)."""
    if not config.input.exclude_data_bar:
        return None
    marks = burned_in_marks(pixels)
    return marks if marks.any() else None


def load_tuning_images(pairs: Sequence[tuple[str | Path, str | Path]], config: AnalysisConfig,
                       segmenter: SamCrystalSegmenter, n2v: Noise2VoidDenoiser | None = None,
                       progress: Callable[[str], None] = lambda message: None) -> list[TuningImage]:
    """SAM tuning images (:mod:`.segment.sam_tuning`) from (image file, Fiji RoiSet.zip of its
    reference crystals) pairs, read and prepared as :func:`analyze_image` prepares them for
    ``segmenter`` (:func:`segmentation_inputs`: pixel size, data bar, crystal contrast, settings
    scaled to each image's crystal diameter, preprocessing, the image the prompter sees).
    Raises ImageInputError or RoiInputError."""
    from .io.roiset import read_reference_crystals
    from .segment.sam_tuning import TuningImage

    images = []
    for image_path, roi_path in pairs:
        image = read_sem_image(image_path, config.input.pixel_size_um, config.input.exclude_data_bar)
        reference = read_reference_crystals(roi_path, image.analysed_pixels.shape)
        prepared = segmentation_inputs(to_unit_range(image.analysed_pixels), image.pixel_size_um, config, segmenter,
                                       n2v)
        images.append(TuningImage(Path(image_path).name, prepared.image, prepared.pixel_size_um, reference.labels,
                                  prepared.config.segment, prepared.prompt_image,
                                  not_sample_of(image.analysed_pixels, config)))
        progress(f"{Path(image_path).name}: {reference.labels.max()} reference crystals, typical crystal "
                 f"{prepared.scale.diameter_px:.1f} px ({prepared.scale.source})")
    return images


def analyze_image(image: SEMImage, classifier: CrystalClassifier, config: AnalysisConfig = AnalysisConfig(),
                  progress: ProgressCallback | None = None,
                  segmenter: CrystalSegmenter | None = None, n2v: Noise2VoidDenoiser | None = None
                  ) -> CrystalAnalysis:
    """Preprocess, segment, classify and measure every crystal of ``image``.

    ``segmenter``: a loaded segmenter (:func:`microcrystalnet.segment.make_segmenter`) to reuse
    across images; by default the one ``config.segment`` names is made for this call.
    ``n2v``: a loaded Noise2Void model to reuse; by default ``config.preprocess.n2v_model`` is
    loaded for this call when given. Classification and the watershed and SAM segmenters see the
    preprocessed image, the learned segmenter the image as read (both with the gray levels inverted
    where the crystals are dark: :func:`.segment.contrast.judged_crystal_contrast`); Mean is measured on the image as
    given.

    First the memory the analysis will need is estimated (:mod:`microcrystalnet.memory`); an image
    needing more than ``config.input.memory_limit_gb`` (None: 80 % of the memory available now) is
    refused at once with :class:`microcrystalnet.memory.ImageTooLargeError` (an ``ImageInputError``).
    """
    described = segmenter.describe() if segmenter is not None else {
        "backend": config.segment.backend, **({"prompts": config.segment.sam.prompts_from}
                                              if config.segment.sam.mode == "prompt" else {})}

    memory_limit = MemoryLimit.of(config.input.memory_limit_gb)  # the memory free now, not after loading

    def check_memory(scale_factor: float = 1.0, why: str = "") -> None:
        check_analysis_memory(image.path, image.analysed_pixels.shape, estimate_analysis_bytes(
            image.analysed_pixels.shape, described["backend"], config.segment.sam.model_type,
            n2v is not None or config.preprocess.runs_n2v_model, working_scale=scale_factor,
            learned_prompts=described.get("prompts") == "learned"), memory_limit, why)

    check_memory()
    report = progress or (lambda stage, fraction: None)
    notices = list(image.notices)
    seconds: dict[str, float] = {}
    segmentation_pixel_size = image.pixel_size_um or config.input.assumed_pixel_size_um
    segmenter = segmenter or make_segmenter(config.segment)

    def timed(stage: str, fraction: float, work: Callable[[], T]) -> T:
        report(stage, fraction)
        log.info("%s: %s", image.path.name, stage)
        started = time.perf_counter()
        result = work()
        seconds[stage] = time.perf_counter() - started
        return result

    given_area_limits = [wording for wording, name in ((MIN_AREA, "min_crystal_area_um2"),
                                                       (MAX_AREA, "max_crystal_area_um2"))
                         if getattr(config.segment, name) != default_of(SegmentConfig, name)]
    if n2v is None and config.preprocess.runs_n2v_model:
        n2v = Noise2VoidModel.load(config.preprocess.n2v_model)
    prepared = segmentation_inputs(to_unit_range(image.analysed_pixels), image.pixel_size_um, config, segmenter, n2v,
                                   staged=timed)
    config, scale, contrast, preprocessed = prepared.config, prepared.scale, prepared.contrast, prepared.preprocessed
    notices += prepared.notices
    if image.pixel_size_um is None and scale.source in ("micrite default", "crystal_size_um"):
        # (a size in px, given or estimated, sets every limit in px: the assumed pixel size cancels out)
        notices.append(Notice.of(f"segmentation assumed {segmentation_pixel_size * 1000:g} nm/px to apply the "
                                 f"crystal-size limits (typical crystal {scale.diameter_px:.0f} px across); if that is "
                                 "wrong, ", SET_PIXEL_SIZE, " or ", GIVE_CRYSTAL_SIZE_IN_PX))
    elif image.pixel_size_um is None and given_area_limits:
        named = [part for index, wording in enumerate(given_area_limits) for part in ((" and ", wording) if index
                                                                                      else (wording,))]
        notices.append(Notice.of(f"segmentation assumed {segmentation_pixel_size * 1000:g} nm/px to apply the area "
                                 "limits given in um² (", *named, "); if that is wrong, ", SET_PIXEL_SIZE))
    if any(r.step == "n2v" and not r.applied for r in prepared.step_reports):
        notices.append(N2V_MISSING)
    enlarged = working_scale(segmenter, scale.diameter_px)
    if enlarged > 1:  # small crystals: the learned segmenter works on the image enlarged
        check_memory(enlarged, f"Its crystals are about {scale.diameter_px:.1f} px across, so the learned segmenter "
                               f"works on it enlarged {enlarged:.1f} times per side (the watershed does not: "
                               + ("--sam-prompts-from watershed" if described["backend"] == "sam" else
                                  "--segmenter watershed") + ").")
    marks = not_sample_of(image.analysed_pixels, config)
    segmentation = timed("segment", 0.3, lambda: segment_crystals(
        prepared.image, segmentation_pixel_size, config.segment, segmenter, prompt_image=prepared.prompt_image,
        not_sample=marks))
    step_reports = prepared.step_reports
    del prepared, marks  # what only segmentation needs: large images
    on_marks = segmentation.statistics["dropped"]["on_marks"]
    if on_marks:
        notices.append(Notice.of(f"{on_marks} of the regions found lay on a scale bar or label box burned into the "
                                 "image (not sample) and were left out; if they are crystals, ", KEEP_MARKS))
    labels = segmentation.labels
    outlines = timed("outline", 0.6, lambda: outlines_from_labels(labels))
    patch_config = classifier.patch_config(config.patch)
    patches = timed("patches", 0.7, lambda: extract_patches(preprocessed, labels, patch_config))
    probabilities = timed("classify", 0.75, lambda: classifier.predict(patches, config.classify.batch_size))
    measurements = timed("measure", 0.85, lambda: measure_crystals(labels, outlines, image.analysed_pixels,
                                                                   image.pixel_size_um))
    report("done", 1.0)
    backend = described["backend"]
    empty_notice = empty_result_notice(segmentation.statistics, int(labels.max()), backend)
    if empty_notice and scale.source == "micrite default":
        empty_notice = Notice.of(empty_notice, f"; the settings assumed micrite crystals of "
                                 f"{REFERENCE_CRYSTAL_DIAMETER_UM:g} um ({scale.diameter_px:.0f} px here): for other "
                                 "crystals ", GIVE_OTHER_CRYSTAL_SIZE)
    if empty_notice:
        notices.append(empty_notice)
    else:
        sparse_notice = sparse_result_notice(labels, scale.diameter_px, backend)
        if sparse_notice:
            notices.append(sparse_notice)
    found_nothing = segmentation.statistics.get("candidates", 0) == 0  # not dropped by a known cause
    if found_nothing and not contrast.dark and contrast.source != SET:  # the crystals may be dark
        notices.append(Notice.of("if the crystals are darker than what surrounds them, ", SET_DARK_CRYSTALS))
    full_labels = labels
    if labels.shape != image.pixels.shape:  # data bar rows: no crystals
        full_labels = np.zeros(image.pixels.shape, np.int32)
        full_labels[: labels.shape[0]] = labels
    rows = results_rows(probabilities, measurements, segmenter_label(segmentation.segmenter),
                        config.classify.unclear_below)
    return CrystalAnalysis(image, full_labels, outlines, rows, image.pixel_size_um, segmentation_pixel_size, config,
                           classifier, {"segmenter": segmentation.segmenter, "statistics": segmentation.statistics,
                                        "crystal_scale": scale.as_dict(), "crystal_contrast": contrast.as_dict()},
                           reports_as_dicts(step_reports), seconds, notices)


def analyze_file(path: str | Path, out_dir: str | Path, models: AnalysisModels,
                 config: AnalysisConfig = AnalysisConfig(), *, image_name: str | None = None, overlay: bool = True,
                 progress: ProgressCallback | None = None, metadata_file: str | Path | None = None
                 ) -> tuple[CrystalAnalysis, Path]:
    """Read an image file, analyse it and write its result folder ``out_dir/<image name>/``
    (:func:`microcrystalnet.io.outputs.write_analysis`); returns the analysis and the folder.

    ``image_name`` names the image in the outputs instead of the file name (the Fiji command
    passes the image title); ``metadata_file``: the original of an image file that lost its pixel
    size (see :func:`microcrystalnet.io.read_sem_image`). Raises ``ImageInputError`` for an image that cannot be read or
    analysed, ``OutputFolderError``/``OutputWriteError`` when its results cannot be written.
    """
    from .io.outputs import write_analysis

    image = read_sem_image(path, config.input.pixel_size_um, config.input.exclude_data_bar, metadata_file)
    if image_name:
        image.path = Path(image_name)
    analysis = analyze_image(image, models.classifier, config, progress, models.segmenter, models.n2v)
    return analysis, write_analysis(Path(out_dir), analysis, overlay=overlay)
