"""Learned segmenter: seconds and peak memory on one 1024 x 1024 real SEM image (issue 13:
"inference ≤ 2 s per 1024x1024 image on the 2-core CPU, including post-processing; peak RSS ≤ 3 GB").

The image: tio2 1908268 (../shared/real-sem; 209 touching particles, the densest), its 1024 x 704
analysed rows reflect-padded to 1024 x 1024, preprocessed once as ``analyze`` does at its real
crystal size (not timed). Timed: :func:`microcrystalnet.segment.segment_crystals` with a loaded
segmenter (learned: rescale to the working scale, network tile by tile, seeded watershed, labels
back to the image's size, then the label tidying every backend gets), at crystal_size_px = the
model's working diameter (no rescale) and = the image's median diameter (25.6 px); torch threads
1 and 2; the boundary watershed on the same image for comparison. Minimum and median of
``--runs`` after one warm-up, and the network alone (``working_scale_probabilities``) likewise;
and the learned segmenter's judgement of the crystal contrast (``segment.crystal_contrast: auto``,
the default: two network passes of a central tile), which the analysis adds before segmenting.
Every configuration runs in a fresh process: its peak RSS (``ru_maxrss``) and its RSS before the
model was loaded (Python, the libraries and the image). The network keeps freed memory for reuse
while it runs, as the program does (:mod:`microcrystalnet.allocator`); ``--allocator both`` also
runs every configuration without that (freed blocks handed back at once), side by side.

    scripts/bench bench/bench_learned_speed.py [--segmenter-model MODEL] [--runs 5] [--allocator kept|system|both]
                                               [--device cpu|cuda|mps] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_real_sem import REAL_SEM, load_entry, machine

IMAGE = "tio2/images/1908268.tif"
SIDE_PX = 1024
#: the issue's targets
TARGET_SECONDS, TARGET_PEAK_GB = 2.0, 3.0


def current_rss_mb() -> float:
    """This process's resident memory now, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_image() -> tuple[np.ndarray, float, float]:
    """The preprocessed 1024 x 1024 image (float32 (Y, X), 0-1), its pixel size (um) and its
    median crystal diameter (px)."""
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.io import to_unit_range
    from microcrystalnet.pipeline import settings_for_image
    from microcrystalnet.preprocess import preprocess

    entry = next(e for e in json.loads((REAL_SEM / "manifest.json").read_text()) if e["image"] == IMAGE)
    image, _ = load_entry(entry)
    padded = np.pad(image.pixels, ((0, SIDE_PX - image.pixels.shape[0]), (0, SIDE_PX - image.pixels.shape[1])),
                    mode="reflect")
    analysed = to_unit_range(padded)
    config = AnalysisConfig().updated(segment={"crystal_size_px": entry["median_diameter_px"]})
    config, _, _ = settings_for_image(analysed, image.pixel_size_um, config)
    preprocessed, _ = preprocess(analysed, image.pixel_size_um, config.preprocess)
    return preprocessed.astype(np.float32), image.pixel_size_um, entry["median_diameter_px"]


def timed(function, runs: int) -> list[float]:
    """Seconds of ``runs`` calls of ``function`` after one warm-up call."""
    function()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def run_configuration(backend: str, crystal_size_px: float | None, threads: int, image: np.ndarray,
                      pixel_size_um: float, segmenter_model: str | None, runs: int,
                      allocator: str = "kept", device: str = "cpu") -> dict[str, Any]:
    """One backend at one crystal size and thread count; runs in a fresh process.
    ``crystal_size_px`` None: the learned model's working diameter. ``allocator``: "kept" (freed
    memory kept while the network runs, as the program does) or "system" (the system's default).
    ``device``: where the learned segmenter's network runs."""
    import contextlib

    import torch

    import microcrystalnet.segment.learned.inference as inference

    if allocator == "system":  # the block that keeps freed memory, replaced by one that does nothing
        import microcrystalnet.segment as segment

        inference.freed_memory_kept = segment.freed_memory_kept = lambda *a, **k: contextlib.nullcontext(False)
    else:
        with inference.freed_memory_kept() as active:
            if not active:
                raise RuntimeError("this system's malloc has no mallopt: run with --allocator system")
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.pipeline import settings_for_image
    from microcrystalnet.segment import make_segmenter, segment_crystals
    from microcrystalnet.segment.learned.inference import working_scale_probabilities

    torch.set_num_threads(threads)
    rss_before_model_mb = current_rss_mb()
    settings = {"backend": backend} if backend == "learned" else {"backend": "watershed",
                                                                   "watershed": {"mode": "boundary"}}
    config = AnalysisConfig().updated(segment={**settings, "learned": {"device": device}})
    if segmenter_model:
        config = config.updated(segment={"learned": {"model": segmenter_model}})
    segmenter = make_segmenter(config.segment, download=False)
    if crystal_size_px is None:
        crystal_size_px = segmenter.model.working_diameter_px
    config, _, _ = settings_for_image(image, pixel_size_um, config.updated(segment={"crystal_size_px": crystal_size_px}))
    found = []
    seconds = timed(lambda: found.append(segment_crystals(image, pixel_size_um, config.segment, segmenter)), runs)
    network_seconds = judge_seconds = None
    if backend == "learned":
        network_seconds = timed(lambda: working_scale_probabilities(image, segmenter.model,
                                                                     crystal_diameter_px=crystal_size_px), runs)
        judge_seconds = timed(lambda: segmenter.contrast_judge(image, crystal_size_px), runs)
    return {"backend": backend if backend == "learned" else "watershed-boundary", "allocator": allocator,
            "device": device if backend == "learned" else None,
            "crystal_size_px": round(float(crystal_size_px), 1), "threads": threads if backend == "learned" else None,
            "crystals": int(found[-1].labels.max()), "seconds": [round(s, 3) for s in seconds],
            "min_s": round(min(seconds), 3), "median_s": round(statistics.median(seconds), 3),
            "network_median_s": round(statistics.median(network_seconds), 3) if network_seconds else None,
            "contrast_judgement_median_s": round(statistics.median(judge_seconds), 3) if judge_seconds else None,
            "rss_before_model_mb": round(rss_before_model_mb),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    from microcrystalnet.config import LearnedConfig, choices_of

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter-model", help="the learned segmenter's model file (default: the shipped one)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (default %(default)s)")
    parser.add_argument("--allocator", choices=("kept", "system", "both"), default="kept",
                        help="freed memory kept while the network runs as the program does, the system's "
                             "default, or both side by side (default %(default)s)")
    parser.add_argument("--device", choices=choices_of(LearnedConfig, "device"), default="cpu",
                        help="where the learned segmenter's network runs (default %(default)s: the issue's target "
                             "is a 2-core CPU; the program itself takes the fastest device there is)")
    parser.add_argument("--json", type=Path, help="write every number here")
    arguments = parser.parse_args()
    if not (REAL_SEM / "manifest.json").is_file():
        sys.exit(f"skipped: no real SEM images at {REAL_SEM.resolve()} (see the issue: ../shared/real-sem/ "
                 "next to the repository)")
    image, pixel_size_um, diameter_px = test_image()
    allocators = ("kept", "system") if arguments.allocator == "both" else (arguments.allocator,)
    configurations = [("learned", size, threads) for size in (None, diameter_px) for threads in (1, 2)]
    configurations += [("watershed", size, 2) for size in (28.0, diameter_px)]
    results = []
    for backend, size, threads in configurations:
        for allocator in allocators:  # side by side: each configuration under each allocator in turn
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                result = pool.apply(run_configuration, (backend, size, threads, image, pixel_size_um,
                                                        arguments.segmenter_model, arguments.runs, allocator,
                                                        arguments.device))
            print(f"{result['backend']}, {result['crystal_size_px']} px, {result['threads']} thread(s), freed memory "
                  f"{allocator}: median {result['median_s']} s", file=sys.stderr, flush=True)
            results.append(result)

    print(f"\n{machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}; {IMAGE} padded to {SIDE_PX} x {SIDE_PX}, "
          f"{arguments.runs} runs after a warm-up; learned segmenter on {arguments.device}\n")
    print("| segmenter | crystal size px | torch threads | freed memory | crystals | min s | median s | network alone, "
          "median s | + contrast judgement (auto), median s | RSS before model MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def seconds(value: float | None) -> str:
        return "-" if value is None else format(value, ".2f")

    for result in results:
        print(f"| {result['backend']} | {result['crystal_size_px']} | {result['threads'] or '-'} | "
              f"{result['allocator']} | {result['crystals']} | {result['min_s']:.2f} | {result['median_s']:.2f} | "
              f"{seconds(result['network_median_s'])} | {seconds(result['contrast_judgement_median_s'])} | "
              f"{result['rss_before_model_mb']} | {result['peak_rss_mb']} |")
    learned = [result for result in results if result["backend"] == "learned"]
    print()
    for allocator in allocators:
        mine = [result for result in learned if result["allocator"] == allocator]
        for threads in sorted({result["threads"] for result in mine}):  # with the judgement: the default (auto)
            slowest = max(result["median_s"] + result["contrast_judgement_median_s"] for result in mine
                          if result["threads"] == threads)
            print(f"target ≤ {TARGET_SECONDS:g} s with {threads} torch thread(s), freed memory {allocator}: "
                  f"{'met' if slowest <= TARGET_SECONDS else 'missed'} (slowest median {slowest:.2f} s)")
        peak_gb = max(result["peak_rss_mb"] for result in mine) / 1024
        print(f"peak RSS ≤ {TARGET_PEAK_GB:g} GB, freed memory {allocator}: "
              f"{'met' if peak_gb <= TARGET_PEAK_GB else 'missed'} ({peak_gb:.2f} GB)")
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine(), "image": IMAGE, "runs": arguments.runs,
                                              "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
