"""Segmentation stage: one label image of crystals from a gray SEM image.

Backends ("watershed", "learned", "sam") are segmenter objects with the same two methods (see
:class:`CrystalSegmenter`); their raw labels all go through :func:`.postprocess.tidy_labels`, so
every backend hands on the same contract: int32 (Y, X), 0 for pore space, crystals 1..N, each
one solid 8-connected region within the area limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..allocator import freed_memory_kept
from ..config import LearnedConfig, SegmentConfig
from ..notices import (CRYSTAL_SIZE, CRYSTAL_SIZE_SHORT, KEEP_BORDER_CRYSTALS, KEEP_MARKS,
                       MAX_AREA, MIN_AREA, Notice, Wording, other_segmenter)
from .boundary import segment_boundary_watershed
from .contrast import ContrastJudge, ShippedNetworkJudge
from .postprocess import tidy_labels, tidy_segmentation
from .scale import configured_diameter_px
from .watershed import segment_watershed

Array = np.ndarray


class CrystalSegmenter(Protocol):
    """A segmentation backend."""

    #: whether it segments the image as read rather than the preprocessed one (the analysis hands
    #: it the image it was made for; the classifier always sees the preprocessed image)
    sees_raw_image: bool

    #: the judge of ``crystal_contrast: auto`` (:mod:`.contrast`); None: the crystals are taken to
    #: be bright
    contrast_judge: ContrastJudge | None

    def describe(self) -> dict[str, Any]:
        """What segments (backend, mode, checkpoint and its sha256 ...), for summaries."""

    def segment(self, image: Array, pixel_size_um: float, config: SegmentConfig) -> tuple[Array, dict[str, Any]]:
        """Raw labels of ``image`` (float (Y, X) in [0, 1]) and statistics of the run."""


class WatershedSegmenter:
    """The classical segmenter: always available, no model of its own (the crystal contrast is
    judged by the shipped learned network, :class:`.contrast.ShippedNetworkJudge`). Mode
    ``boundary`` (:mod:`.boundary`) or ``threshold`` (:mod:`.watershed`)."""

    sees_raw_image = False

    def __init__(self, mode: str = "auto", contrast_judge: ContrastJudge | None = None) -> None:
        """``contrast_judge``: default :class:`ShippedNetworkJudge` on the CPU."""
        self.mode = mode
        self.contrast_judge = contrast_judge or ShippedNetworkJudge()

    def describe(self) -> dict[str, Any]:
        return {"backend": "watershed", "mode": self.mode}

    def segment(self, image: Array, pixel_size_um: float, config: SegmentConfig) -> tuple[Array, dict[str, Any]]:
        """Raw labels and, in ``statistics["watershed_mode"]``, the mode that ran (auto resolved)."""
        mode = self.mode
        if mode == "auto":
            size_set = config.crystal_size_um is not None or config.crystal_size_px is not None
            mode = "boundary" if size_set else "threshold"
        if mode == "boundary":
            diameter_px = configured_diameter_px(config, pixel_size_um)
            labels = segment_boundary_watershed(image, crystal_diameter_px=diameter_px)
        else:
            labels = segment_watershed(image, pixel_size_um, config.watershed,
                                       config.min_crystal_area_um2 / pixel_size_um ** 2)
        return labels, {"watershed_mode": mode}


class LearnedSegmenter:
    """A trained network (:mod:`.learned`): crystal interior / boundary / background at the model's
    working scale, crystals from a seeded watershed. Loaded once, reused for every image. It sees
    the image as read: it was trained on raw images, and scored higher on them than on the
    preprocessed ones on every material of the real set (BENCHMARKS.md)."""

    sees_raw_image = True

    def __init__(self, model: Any, config: LearnedConfig = LearnedConfig(),
                 contrast_judge: ContrastJudge | None = None) -> None:
        """``contrast_judge``: default :class:`ShippedNetworkJudge` with ``model`` itself where it is
        the shipped network (with its own thresholds, whatever ``config`` sets), else the shipped
        one on ``model``'s device: whichever model segments, the shipped network judges."""
        from dataclasses import replace

        from .learned.contrast import shipped_judge_reusing

        self.contrast_judge = contrast_judge or shipped_judge_reusing(
            model, device=str(next(model.network.parameters()).device))
        thresholds = model.thresholds
        if config.seed_threshold is not None:
            thresholds = replace(thresholds, seed=config.seed_threshold)
        if config.foreground_threshold is not None:
            thresholds = replace(thresholds, foreground=config.foreground_threshold)
        if config.min_crystal_score is not None:
            thresholds = replace(thresholds, min_crystal_score=config.min_crystal_score)
        self.model = replace(model, thresholds=thresholds)

    def describe(self) -> dict[str, Any]:
        return {"backend": "learned", **self.model.describe()}

    def refine_crystal_diameter_px(self, image: Array, first_guess_px: float) -> float:
        """The typical crystal diameter of ``image`` (float (Y, X)), px, from a first guess (the
        image's texture scale), by segmenting at it (:func:`.learned.inference.refined_crystal_diameter_px`)."""
        from .learned.inference import refined_crystal_diameter_px

        return refined_crystal_diameter_px(image, self.model, first_guess_px=first_guess_px)

    def search_crystal_diameter_px(self, image: Array) -> float:
        """The typical crystal diameter of ``image`` (float (Y, X)), px, without a first guess
        (:func:`.learned.inference.self_consistent_crystal_diameter_px`); NaN where none is found."""
        from .learned.inference import self_consistent_crystal_diameter_px

        return self_consistent_crystal_diameter_px(image, self.model)

    def segment(self, image: Array, pixel_size_um: float, config: SegmentConfig) -> tuple[Array, dict[str, Any]]:
        from .learned.inference import segment_with_model

        diameter_px = configured_diameter_px(config, pixel_size_um)
        with freed_memory_kept():  # the seeded watershed and rescaling reuse the network's memory too
            labels = segment_with_model(image, self.model, crystal_diameter_px=diameter_px)
        return labels, {"crystal_diameter_px": round(float(diameter_px), 2)}


def shipped_network_judge(config: SegmentConfig = SegmentConfig(),
                          reuse: Callable[[str, tuple[Any, ...], Callable[[], Any]], Any] | None = None
                          ) -> ShippedNetworkJudge:
    """The judge of ``crystal_contrast: auto`` (:class:`.contrast.ShippedNetworkJudge`) on the
    learned segmenter's device (``config.learned.device``), its network from ``reuse`` (as in
    :func:`make_segmenter`) when the first image is judged."""
    device = config.learned.device

    def load() -> Any:
        from ..frameworks import torch_device
        from .learned.contrast import load_contrast_judge
        from .learned.model_file import DEFAULT_MODEL_NAME

        chosen = torch_device(device, user="learned segmenter")
        load_model = reuse or (lambda kind, settings, load: load())
        return load_model("learned segmenter", (DEFAULT_MODEL_NAME, device), lambda: load_contrast_judge(device=chosen))

    return ShippedNetworkJudge(load)


def working_scale(segmenter: CrystalSegmenter, crystal_diameter_px: float) -> float:
    """How many times the image's size, per side, ``segmenter`` works at on an image whose typical
    crystal is ``crystal_diameter_px`` across: the learned segmenter (also as SAM's prompter)
    rescales it so the crystal spans its working diameter, above 1 for small crystals; the
    watershed and SAM itself work at the image's size or below it."""
    learned = segmenter if isinstance(segmenter, LearnedSegmenter) else getattr(segmenter, "prompter", None)
    if isinstance(learned, LearnedSegmenter):
        return learned.model.working_diameter_px / crystal_diameter_px
    return 1.0


def make_segmenter(config: SegmentConfig = SegmentConfig(), download: bool = True,
                   reuse: Callable[[str, tuple[Any, ...], Callable[[], Any]], Any] | None = None) -> CrystalSegmenter:
    """The segmenter ``config`` asks for, with its model loaded (SAM: checkpoint found or fetched).

    ``reuse(kind, settings, load)``: where the model comes from, e.g. a
    :class:`microcrystalnet.model_cache.ModelCache` that keeps it for the next image; by default
    ``load()`` loads it now. Every segmenter's ``contrast_judge`` is :func:`shipped_network_judge`'s
    (the learned segmenter's with the shipped model: that model itself), loaded when first needed."""
    from ..frameworks import torch_device

    load_model = reuse or (lambda kind, settings, load: load())
    device = config.learned.device
    judge = shipped_network_judge(config, reuse)
    if config.backend == "sam":
        from .sam import SamCrystalSegmenter, load_sam

        sam_settings = (config.sam.model_type, config.sam.checkpoint, config.sam.device)
        sam = load_model("SAM", sam_settings, lambda: load_sam(*sam_settings, download=download))
        prompter = None
        if config.sam.mode == "prompt" and config.sam.prompts_from == "learned":
            prompter = make_segmenter(config.updated(backend="learned"), download, reuse)
        return SamCrystalSegmenter(sam, config.sam, prompter, prompter.contrast_judge if prompter else judge)
    if config.backend == "learned":
        from .learned.contrast import is_contrast_judge
        from .learned.model_file import load_segmenter_model

        model = config.learned.model
        chosen = torch_device(device, user="learned segmenter")  # a device torch cannot use: refused before loading
        loaded = load_model("learned segmenter", (model, device), lambda: load_segmenter_model(model, device=chosen))
        return LearnedSegmenter(loaded, config.learned, None if is_contrast_judge(loaded) else judge)
    return WatershedSegmenter(config.watershed.mode, judge)


@dataclass
class Segmentation:
    """The tidy crystal labels of one image, who made them and what it cost."""

    labels: Array
    segmenter: dict[str, Any]
    statistics: dict[str, Any] = field(default_factory=dict)


def segment_crystals(image: Array, pixel_size_um: float, config: SegmentConfig = SegmentConfig(),
                     segmenter: CrystalSegmenter | None = None, *, prompt_image: Array | None = None,
                     not_sample: Array | None = None) -> Segmentation:
    """Segment every crystal.

    ``image``: float (Y, X) scaled to [0, 1]; ``pixel_size_um``: micrometres per pixel (the
    area limits and lengths of ``config`` are physical). ``segmenter`` defaults to the one
    ``config`` names (loading SAM each call: pass a segmenter from :func:`make_segmenter` to
    analyse many images). ``prompt_image``: for SAM whose prompter sees another image than SAM
    (``prompter_sees_raw_image``), that image (the image as read; ``image`` the preprocessed one).
    ``not_sample``: bool (Y, X), where the image is no sample (burned-in marks): crystals found
    mostly there are dropped (``dropped["on_marks"]``).
    """
    if image.ndim != 2:
        raise ValueError(f"segmentation needs a 2D gray image, got shape {image.shape}")
    segmenter = segmenter or make_segmenter(config)
    raw, statistics = (segmenter.segment(image, pixel_size_um, config) if prompt_image is None
                       else segmenter.segment(image, pixel_size_um, config, prompt_image=prompt_image))
    labels, dropped = tidy_segmentation(raw, pixel_size_um, config, not_sample)
    statistics = {**statistics, "candidates": int(labels.max()) + sum(dropped.values()), "dropped": dropped}
    return Segmentation(labels, segmenter.describe(), statistics)


def empty_result_notice(statistics: dict[str, Any], n_kept: int, backend: str = "learned") -> str | None:
    """What to tell the user when segmentation kept nothing or dropped most candidates, or None.

    ``statistics``: a :class:`Segmentation`'s (``candidates``, ``dropped`` by reason); ``backend``:
    the segmenter that ran (the advice names the other)."""
    candidates = int(statistics.get("candidates", 0))
    if candidates == 0:
        return Notice.of("no crystals found: the segmenter found no candidate at all. If there are crystals, give "
                         "their typical diameter (", CRYSTAL_SIZE, ") or try ", other_segmenter(backend))
    dropped = statistics.get("dropped", {})
    if n_kept > candidates / 2:
        return None
    advice: dict[str, tuple[str | Wording, ...]] = {
        "too_small": ("smaller than ", MIN_AREA, " (lower it, or set ", CRYSTAL_SIZE_SHORT, ")"),
        "too_large": ("larger than ", MAX_AREA, " (raise it, or set ", CRYSTAL_SIZE_SHORT, ")"),
        "on_border": ("touching the border (", KEEP_BORDER_CRYSTALS, ")"),
        "on_marks": ("on burned-in scale bars or label boxes (", KEEP_MARKS, ")")}
    reasons: list[str | Wording] = []
    for reason, count in dropped.items():
        if count:
            reasons += ["; " if reasons else "", f"{count} ", *advice[reason]]
    return Notice.of(f"{n_kept} of {candidates} crystal candidates kept; dropped: ", *reasons)


#: crystals covering less than this fraction of the image are worth a word (a sparse image of
#: particles on a substrate: 1-2 %; 5 crystals found in a 2048-px mosaic of 88,000: 0.002 %)
SPARSE_COVERAGE = 0.001


def sparse_result_notice(labels: Array, crystal_diameter_px: float, backend: str = "learned") -> str | None:
    """What to tell the user when a few crystals were found that cover almost none of the image
    (``labels``, int (Y, X)), segmented by ``backend`` at a typical diameter of
    ``crystal_diameter_px``, or None."""
    found = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
    coverage = float(np.count_nonzero(labels)) / labels.size
    if found == 0 or coverage >= SPARSE_COVERAGE:
        return None
    return Notice.of(f"only {found} crystal{'s' if found > 1 else ''} found, covering {coverage:.2%} of the image; "
                     f"if there are more, check the typical crystal diameter ({crystal_diameter_px:.1f} px used: "
                     "crystals far larger or smaller are not found; ", CRYSTAL_SIZE, ") or try ",
                     other_segmenter(backend))


__all__ = ["CrystalSegmenter", "LearnedSegmenter", "Segmentation", "WatershedSegmenter", "empty_result_notice",
           "make_segmenter", "segment_crystals", "sparse_result_notice", "tidy_labels"]
