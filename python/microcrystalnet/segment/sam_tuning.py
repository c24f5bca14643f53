"""Tuning SAM's automatic mode on a few images with reference crystals ("custom-tuned SAM").

SAM runs once per image and grid density with the grid's lowest thresholds and no box NMS
(:func:`proposal_settings`), encoding each tile once for all of them; every combination of
thresholds is then a cheap selection from those proposals (:meth:`SamCrystalSegmenter.finish`),
scored by F1 at IoU 0.5 against the reference crystals, summed over all images. Prompt mode is
scored too: the best of all becomes the configuration, written as settings that
``microcrystalnet analyze --config`` and the Fiji command use.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SamConfig, SegmentConfig
from ..metrics import match_instances
from .postprocess import tidy_segmentation
from .sam import SamCrystalSegmenter

Array = np.ndarray


@dataclass(frozen=True)
class TuningGrid:
    """The automatic-mode values tried; every combination is scored."""

    points_per_side: tuple[int, ...] = (16, 32)
    pred_iou_thresh: tuple[float, ...] = (0.7, 0.8, 0.86, 0.92)
    stability_score_thresh: tuple[float, ...] = (0.8, 0.86, 0.92, 0.95)
    box_nms_thresh: tuple[float, ...] = (0.5, 0.7)


QUICK_GRID = TuningGrid(points_per_side=(16,), pred_iou_thresh=(0.8, 0.88), stability_score_thresh=(0.9, 0.95),
                        box_nms_thresh=(0.7,))


@dataclass
class TuningImage:
    """One tuning image as the analysis hands it to SAM (:func:`microcrystalnet.pipeline.load_tuning_images`):
    ``image`` float (Y, X) in [0, 1] (preprocessed, bright crystals), its pixel size, reference
    labels (Y, X), the segmentation settings scaled to its crystal diameter, what the prompter of
    prompt mode segments where that is another image (the image as read; None: ``image``), and
    where it holds burned-in marks, not sample (bool (Y, X); None: nowhere)."""

    name: str
    image: Array
    pixel_size_um: float
    reference: Array
    segment: SegmentConfig = SegmentConfig()
    prompt_image: Array | None = None
    not_sample: Array | None = None


def _tidy(labels: Array, item: TuningImage) -> Array:
    """``labels`` of ``item`` tidied as the analysis tidies them (:func:`..segment.segment_crystals`)."""
    return tidy_segmentation(labels, item.pixel_size_um, item.segment, item.not_sample)[0]


def _f1(matches: Sequence[Any]) -> dict[str, float]:
    true_positives = sum(m.true_positives for m in matches)
    n_true = sum(m.n_true for m in matches)
    n_predicted = sum(m.n_predicted for m in matches)
    return {"f1": 2 * true_positives / (n_true + n_predicted) if n_true + n_predicted else 0.0,
            "precision": true_positives / n_predicted if n_predicted else 0.0,
            "recall": true_positives / n_true if n_true else 0.0}


def proposal_settings(base: SamConfig, grid: TuningGrid, points_per_side: int) -> SamConfig:
    """Automatic-mode settings whose proposals hold every mask any combination of ``grid`` keeps:
    its lowest predicted-IoU and stability thresholds (SAM's generator keeps an IoU above its
    threshold, the selection one at or above it: hence the next float below) and no box NMS, which
    each combination applies itself. Lower thresholds give the same results, only slower: SAM's
    generator stores every mask it keeps, and with thresholds of 0 that was half the time of a
    tuning run (a vit_b with random weights, whose masks are noisy; BENCHMARKS.md, "Tuning
    (`tune-sam`)")."""
    return base.updated(mode="automatic", points_per_side=points_per_side,
                        pred_iou_thresh=float(np.nextafter(min(grid.pred_iou_thresh), 0.0)),
                        stability_score_thresh=min(grid.stability_score_thresh), box_nms_thresh=1.0)


def tune_sam(segmenter: SamCrystalSegmenter, images: Sequence[TuningImage], grid: TuningGrid = TuningGrid(),
             progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Score prompt mode (prompted by ``segmenter``'s prompter, as the analysis prompts) and every
    automatic-mode combination of ``grid``; return the report with the best :class:`SamConfig`
    (as a dict) under ``"best"``. Each image is segmented and tidied with its own settings."""
    with segmenter.embeddings_kept():
        return _tune(segmenter, images, grid, progress)


def _tune(segmenter: SamCrystalSegmenter, images: Sequence[TuningImage], grid: TuningGrid,
          progress: Callable[[str], None]) -> dict[str, Any]:
    base = segmenter.config
    results = []
    progress("prompt mode")
    prompt = base.updated(mode="prompt")
    matches = []
    for item in images:
        proposals = segmenter.propose(item.image, item.pixel_size_um, item.segment, prompt,
                                      prompt_image=item.prompt_image)
        labels = _tidy(segmenter.finish(proposals, prompt), item)
        matches.append(match_instances(item.reference, labels))
    results.append({"sam": {"mode": "prompt"}, **_f1(matches)})
    for points in grid.points_per_side:
        progress(f"automatic mode, {points} x {points} points")
        permissive = proposal_settings(base, grid, points)
        proposals = [segmenter.propose(item.image, item.pixel_size_um, item.segment, permissive) for item in images]
        for iou, stability, nms in itertools.product(grid.pred_iou_thresh, grid.stability_score_thresh,
                                                     grid.box_nms_thresh):
            candidate = permissive.updated(pred_iou_thresh=iou, stability_score_thresh=stability, box_nms_thresh=nms)
            matches = [match_instances(item.reference, _tidy(segmenter.finish(p, candidate), item))
                       for item, p in zip(images, proposals)]
            results.append({"sam": {"mode": "automatic", "points_per_side": points, "pred_iou_thresh": iou,
                                    "stability_score_thresh": stability, "box_nms_thresh": nms}, **_f1(matches)})
    # ties go to prompt mode (first), which is ~10x cheaper
    best = max(results, key=lambda result: result["f1"])
    return {"images": [item.name for item in images], "reference_crystals": int(sum(item.reference.max() for item in images)),
            "results": results, "best": {**best["sam"], "f1": best["f1"]}}


def tuned_settings(report: dict[str, Any], base: SamConfig, crystal_contrast_setting: str = "auto") -> dict[str, Any]:
    """Settings (``AnalysisConfig`` JSON) that select the best SAM configuration of ``report``, for
    images of the crystal contrast it was tuned on (``crystal_contrast_setting``, kept where set)."""
    chosen = {key: value for key, value in report["best"].items() if key != "f1"}
    sam = {"model_type": base.model_type, **chosen}
    if chosen["mode"] == "prompt":  # as it was tuned
        sam["prompts_from"] = base.prompts_from
    if base.checkpoint:
        sam["checkpoint"] = base.checkpoint
    contrast = {} if crystal_contrast_setting == "auto" else {"crystal_contrast": crystal_contrast_setting}
    return {"segment": {"backend": "sam", "sam": sam, **contrast}}
