"""Fine-tuning the learned segmenter from ONE outlined image of a material (issue 13: "≥ 0.80 on
the other images of it"), on the real SEM images of ../shared/real-sem.

For every material with at least two images, and for ``--choices`` of its images (spread evenly
over the manifest's order), the model (``--segmenter-model``, default: the shipped one) is
fine-tuned on that one image's outlines through the library call ``train-segmenter`` makes
(:func:`microcrystalnet.segment.learned.training.train_on_outlines`: crystal size = the median of
the outlines, synthetic replay, ``--minutes`` of training, default the command's; with complete
outlines the watershed thresholds are then chosen on that image, as ``train-segmenter
--complete-outlines`` does), and every OTHER image of the material is scored before (the model
as given) and after (and, for complete outlines, after with the base model's thresholds kept: the
same network, side by side), with the size hint
(the manifest's median_diameter_px as crystal_size_px), through what bench_real_sem.py runs
(crystal scale, preprocessing, segmentation). Outlines are complete (every object: all other
pixels are background) except where bench/train_default_segmenter.py treats a material as
partial (loss only on the outlined particles and a ring around them; no material since the
spheroidite outlines were found complete). Each fine-tuning runs in a process of its own with
``--threads`` torch threads; ``--jobs`` of them at once.

    scripts/bench bench/bench_fine_tune_one.py [--segmenter-model MODEL] [--minutes M] [--choices K]
                                               [--training-images NAME ...] [--threads T] [--jobs N]
                                               [--datasets tio2 ...] [--config SETTINGS.json] [--json FILE]

``--config`` scores with those analysis settings (before and after), e.g. ``{"segment":
{"exclude_border": true}}`` for outlines that leave out the crystals cut by the image edge.

The shipped model is synthetic-only (its model card), so "before" is on images it never saw.
tio2 (CC BY-NC-ND) is used here for evaluation and fine-tuning experiments only; the fine-tuned
models are written to a temporary folder and deleted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_real_sem import REAL_SEM, load_entry, machine, segment_entry
from train_default_segmenter import MIT_DATASETS


def is_partial(dataset: str) -> bool:
    """Whether a material's outlines leave objects out (as the default model's recipe treats it)."""
    return MIT_DATASETS.get(dataset, {}).get("partial", False)


def size_hinted_f1(entries: list[dict[str, Any]], segmenter_model: str | None, threads: int,
                   settings: Path | None = None) -> dict[str, float]:
    """F1 at IoU 0.5 of each entry (by image path), the learned segmenter with ``segmenter_model``
    (None: the shipped one) and the size hint, on the settings file ``settings`` (None: the defaults)."""
    import torch

    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.metrics import score_segmentation
    from microcrystalnet.segment import make_segmenter

    torch.set_num_threads(threads)
    config = (AnalysisConfig.from_json(settings) if settings else AnalysisConfig()).updated(segment={"backend": "learned"})
    if segmenter_model:
        config = config.updated(segment={"learned": {"model": segmenter_model}})
    segmenter = make_segmenter(config.segment, download=False)
    f1 = {}
    for entry in entries:
        hinted = config.updated(segment={"crystal_size_px": entry["median_diameter_px"]})
        true, segmentation, _, _, _ = segment_entry(entry, hinted, segmenter)
        f1[entry["image"]] = round(score_segmentation(true, segmentation.labels).match.f1, 3)
    return f1


def fine_tune_and_score(training: dict[str, Any], others: list[dict[str, Any]], segmenter_model: str | None,
                        minutes: float, threads: int, seed: int, settings: Path | None = None) -> dict[str, Any]:
    """Fine-tune on ``training``'s outlines (complete outlines: the watershed thresholds are then
    chosen on that image, as ``train-segmenter --complete-outlines`` does), then score ``others``
    with the thresholds of the fine-tuned model ("after") and, for complete outlines, with the
    base model's on the same network ("after, base thresholds"); runs in a fresh process."""
    import dataclasses

    import torch

    from microcrystalnet.segment.learned.model_file import load_segmenter_model, write_segmenter_model
    from microcrystalnet.segment.learned.training import OutlinedImage, crops_of_outlined_images, train_on_outlines

    torch.set_num_threads(threads)
    base = load_segmenter_model(segmenter_model)
    image, labels = load_entry(training)
    outlined = [OutlinedImage(image.pixels, labels, None, image.pixel_size_um, {"image": training["image"]})]
    complete = not is_partial(training["dataset"])
    crops = crops_of_outlined_images(outlined, working_diameter_px=base.working_diameter_px, complete=complete)
    model = train_on_outlines(crops, base_model=base, minutes=minutes, seed=seed,
                              choose_thresholds_on=outlined if complete else ())
    scores = {}
    with tempfile.TemporaryDirectory() as folder:
        variants = {"after": model}
        if complete:
            variants["after, base thresholds"] = dataclasses.replace(model, thresholds=base.thresholds)
        for name, variant in variants.items():
            path = Path(folder) / f"{len(scores)}.pt"
            write_segmenter_model(variant, path)
            scores[name] = size_hinted_f1(others, str(path), threads, settings)
    print(f"{training['image']}: {model.training['steps']} steps in {model.training['minutes']} min, "
          f"F1 on the others {statistics.mean(scores['after'].values()):.3f}", file=sys.stderr, flush=True)
    return {"dataset": training["dataset"], "training_image": training["image"],
            "outlines": "complete" if complete else "partial",
            "training_crops": len(crops), "steps": model.training["steps"], "minutes": model.training["minutes"],
            "threads": threads, "thresholds": model.thresholds.as_dict(), **scores}


def _mean_f1(run: dict[str, Any], key: str) -> str:
    """A run's mean F1 over its other images under ``key`` ("before", "after", ...), or "-"."""
    return f"{statistics.mean(run[key].values()):.3f}" if key in run else "-"


def training_choices(entries: list[dict[str, Any]], count: int, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``entries`` whose file is one of ``names``, or (``names`` None) ``count`` of them spread
    evenly over their order (first and last included)."""
    if names is not None:
        return [entry for entry in entries if Path(entry["image"]).name in names]
    indices = sorted({int(i) for i in np.linspace(0, len(entries) - 1, min(count, len(entries))).round()})
    return [entries[i] for i in indices]


def main() -> None:
    from microcrystalnet.cli.train_segmenter import DEFAULT_MINUTES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter-model", help="the model to fine-tune (default: the shipped one)")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                        help="fine-tuning time per training image (default: train-segmenter's, %(default)s)")
    parser.add_argument("--choices", type=int, default=3, help="training images per material (default %(default)s)")
    parser.add_argument("--training-images", nargs="+", metavar="NAME",
                        help="fine-tune on these images (file names) instead of --choices per material")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="fine-tunings at once (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--config", type=Path, metavar="SETTINGS.json",
                        help="score with these analysis settings (as analyze --config reads them), e.g. "
                             "exclude_border for outlines that leave out the crystals cut by the image edge")
    arguments = parser.parse_args()
    if not (REAL_SEM / "manifest.json").is_file():
        sys.exit(f"skipped: no real SEM images at {REAL_SEM.resolve()} (see the issue: ../shared/real-sem/ "
                 "next to the repository)")
    by_material: dict[str, list[dict[str, Any]]] = {}
    for entry in json.loads((REAL_SEM / "manifest.json").read_text()):
        if not arguments.datasets or entry["dataset"] in arguments.datasets:
            by_material.setdefault(entry["dataset"], []).append(entry)
    by_material = {material: entries for material, entries in by_material.items() if len(entries) >= 2
                   and (not arguments.training_images or training_choices(entries, 0, arguments.training_images))}

    context = multiprocessing.get_context("spawn")
    with context.Pool(arguments.jobs, maxtasksperchild=1) as pool:
        before_jobs = pool.apply_async(size_hinted_f1, ([e for es in by_material.values() for e in es],
                                                        arguments.segmenter_model, arguments.threads,
                                                        arguments.config))
        tuned_jobs = [pool.apply_async(fine_tune_and_score,
                                       (training, [e for e in entries if e is not training], arguments.segmenter_model,
                                        arguments.minutes, arguments.threads, arguments.seed, arguments.config))
                      for entries in by_material.values()
                      for training in training_choices(entries, arguments.choices, arguments.training_images)]
        before = before_jobs.get()
        runs = [job.get() for job in tuned_jobs]
    for run in runs:
        run["before"] = {image: before[image] for image in run["after"]}

    from microcrystalnet.segment.learned.model_file import load_segmenter_model

    trained_on = {source["dataset"] for source in load_segmenter_model(arguments.segmenter_model).training["data"]
                  if "dataset" in source}
    print(f"\n{machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}; {arguments.minutes:g} min per fine-tuning, "
          f"{arguments.threads} torch thread(s), {arguments.jobs} at once"
          f"{f'; scored with the settings of {arguments.config}' if arguments.config else ''}\n")
    print("| material | trained on (one image) | outlines | other images | F1 before | F1 after, base thresholds "
          "| F1 after | thresholds (seed / foreground / smallest seed / crystal score) | steps | minutes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        note = " *" if run["dataset"] in trained_on else ""
        thresholds = " / ".join(f"{value:g}" for value in run["thresholds"].values())
        print(f"| {run['dataset']} | {Path(run['training_image']).name} | {run['outlines']} | {len(run['after'])} | "
              f"{_mean_f1(run, 'before')}{note} | {_mean_f1(run, 'after, base thresholds')} | "
              f"{_mean_f1(run, 'after')} | "
              f"{thresholds} | {run['steps']} | {run['minutes']} |")
    print("\n| material | training images | mean F1 before | mean F1 after, base thresholds | mean F1 after | target |")
    print("|---|---|---|---|---|---|")
    for material in by_material:
        mine = [run for run in runs if run["dataset"] == material]
        after = statistics.mean(statistics.mean(run["after"].values()) for run in mine)
        before_mean = statistics.mean(statistics.mean(run["before"].values()) for run in mine)
        kept = ([statistics.mean(run["after, base thresholds"].values()) for run in mine
                 if "after, base thresholds" in run])
        note = " *" if material in trained_on else ""
        print(f"| {material} | {len(mine)} | {before_mean:.3f}{note} | "
              f"{f'{statistics.mean(kept):.3f}' if kept else '-'} | {after:.3f} | "
              f"{'met' if after >= 0.80 else 'missed'} (≥ 0.80) |")
    if trained_on:
        print("\n* the model as given was trained on these images")
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine(), "minutes": arguments.minutes,
                                              "threads": arguments.threads, "jobs": arguments.jobs,
                                              "settings": str(arguments.config) if arguments.config else None,
                                              "before": before, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
