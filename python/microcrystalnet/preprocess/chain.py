"""The preprocessing chain: the paper's steps in a configurable order, with the SNR after each.

``nlm -> n2v -> unsharp -> opening -> closing`` by default (the paper's order); steps can be
left out or reordered in :class:`microcrystalnet.config.PreprocessConfig`. Noise2Void needs a
trained model: without one the step is skipped and the report says so and how to train one;
it never trains silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PreprocessConfig
from ..notices import PASS_N2V_MODEL, Notice
from .filters import close_gray, non_local_means, open_gray, unsharp
from .n2v import Noise2VoidDenoiser, check_model_files_replaceable, train_noise2void
from .quality import reference_scores, snr_db

Array = np.ndarray

N2V_MISSING = Notice.of("Noise2Void skipped: no model given. Train one on your own noisy images with "
                        "'microcrystalnet n2v train IMAGES --out n2v.zip' and ", PASS_N2V_MODEL)


@dataclass
class StepReport:
    """One step of the chain: whether it ran, the SNR after it, its time; PSNR/SSIM on synthetic data."""

    step: str
    applied: bool
    snr_db: float
    seconds: float
    note: str = ""
    psnr_db: float | None = None
    ssim: float | None = None


#: an unsharp mask whose radius is under this (px) changes no gray level by more than 0.2 % of the
#: range (measured on white noise, the worst case): it leaves the image as it is
UNSHARP_NO_EFFECT_PX = 0.25


def _odd_pixels(length_um: float, pixel_size_um: float) -> int:
    """A footprint size in px: the physical length, rounded to an odd number of at least 1."""
    pixels = max(1, int(round(length_um / pixel_size_um)))
    return pixels if pixels % 2 else pixels + 1


def preprocess(image: Array, pixel_size_um: float, config: PreprocessConfig = PreprocessConfig(),
               n2v: Noise2VoidDenoiser | None = None, clean: Array | None = None) -> tuple[Array, list[StepReport]]:
    """Run the chain on ``image`` (float (Y, X) in [0, 1]); return the result and a report per step.

    The first report ("input") describes the image as given. ``clean``: the noise-free image,
    when known (synthetic scenes), for PSNR/SSIM after every step.
    """

    def report(step: str, applied: bool, seconds: float, note: str = "") -> StepReport:
        scores = reference_scores(current, clean) if clean is not None else {}
        return StepReport(step, applied, snr_db(current), seconds, note, scores.get("psnr_db"), scores.get("ssim"))

    current = np.asarray(image, np.float32)
    reports = [report("input", False, 0.0)]
    footprint = _odd_pixels(config.morphology_um, pixel_size_um)
    footprint_note = f"{footprint} x {footprint} px" + (
        ": leaves the image as it is (the footprint follows the pixel and crystal size)" if footprint == 1 else "")
    for step in config.steps:
        started = time.perf_counter()
        note = ""
        if step == "nlm":
            current = non_local_means(current, strength=config.nlm_strength, patch_size=config.nlm_patch_px,
                                      patch_distance=config.nlm_search_px)
        elif step == "n2v":
            if n2v is None:
                reports.append(report(step, False, 0.0, N2V_MISSING))
                continue
            current = n2v.denoise(current, config.n2v_tile_px)
            note = f"model {n2v.source}"
            before = tuple(r.step for r in reports if r.applied)
            if before != tuple(n2v.trained_after):
                note += (f"; caution: trained on images after {list(n2v.trained_after) or 'no step'}, "
                         f"used after {list(before) or 'no step'}")
        elif step == "unsharp":
            radius_px = config.unsharp_radius_um / pixel_size_um
            current = unsharp(current, radius_px, config.unsharp_amount)
            note = f"radius {radius_px:.2g} px" + (
                ": leaves the image as it is (the radius follows the pixel and crystal size)"
                if radius_px < UNSHARP_NO_EFFECT_PX else "")
        elif step == "opening":
            current = open_gray(current, footprint)
            note = footprint_note
        elif step == "closing":
            current = close_gray(current, footprint)
            note = footprint_note
        reports.append(report(step, True, time.perf_counter() - started, note))
    return current, reports


def denoise_as_trained(model: Noise2VoidDenoiser, image: Array, pixel_size_um: float, tile_px: int = 256) -> Array:
    """Noise2Void on ``image`` (float (Y, X) in [0, 1]) after the steps the model was trained after
    (default parameters), so it sees images like its training images."""
    prepared, _ = preprocess(image, pixel_size_um, PreprocessConfig(steps=tuple(model.trained_after)))
    return model.denoise(prepared, tile_px)


def train_noise2void_for_chain(images: Sequence[Array], pixel_sizes_um: Sequence[float], chain: Sequence[str],
                               out: str | Path, steps: int = 1000, patch_px: int = 64, batch_size: int = 16,
                               progress: Callable[[int, int | None, float], None] | None = None) -> Path:
    """Train Noise2Void for its place in ``chain``: each training image (float (Y, X) in [0, 1])
    first goes through the chain's steps before ``n2v`` (default parameters, as analyses apply
    them), and the model records them so :func:`denoise_as_trained` repeats them. ``progress``:
    as :func:`.n2v.train_noise2void` takes it."""
    if "n2v" not in chain:
        raise ValueError(f"the chain {', '.join(chain) or '(empty)'} has no n2v step to train a model for")
    check_model_files_replaceable(out)  # before the chain's steps run on every image
    before = PreprocessConfig(steps=tuple(chain[:list(chain).index("n2v")]))
    prepared = [preprocess(image, size, before)[0] for image, size in zip(images, pixel_sizes_um)]
    train_noise2void(prepared, out, steps, patch_px, batch_size, trained_after=before.steps, progress=progress)
    return Path(out)


def reports_as_dicts(reports: list[StepReport]) -> list[dict[str, Any]]:
    return [asdict(r) for r in reports]
