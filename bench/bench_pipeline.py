"""Benchmark of the foundation pipeline on synthetic 2048 x 2048 SEM scenes (10 nm/px).

Times every stage of one analysis, the classifier's throughput on a large batch of patches,
the watershed segmenter's F1 at IoU 0.5 over several scenes, and the process's peak RSS.
Synthetic scenes only: nothing here is a result on real rocks.

    scripts/bench bench/bench_pipeline.py [--scenes 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import tifffile

from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.config import AnalysisConfig, PreprocessConfig
from microcrystalnet.io import read_sem_image, to_unit_range
from microcrystalnet.io.outputs import write_analysis
from microcrystalnet.metrics import match_instances
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.preprocess import preprocess
from microcrystalnet.segment import segment_crystals
from microcrystalnet.synth import SceneSpec, render_scene


def machine_description() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=5, help="scenes for the segmentation F1 (default 5)")
    parser.add_argument("--model", default="reference-2023-11-19")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    arguments = parser.parse_args()

    report: dict = {"date": date.today().isoformat(), "machine": machine_description()}
    started = time.perf_counter()
    scene = render_scene(SceneSpec(seed=0))
    report["render_scene_s"] = time.perf_counter() - started

    classifier = CrystalClassifier.load(arguments.model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.tif"
        tifffile.imwrite(path, scene.image, imagej=True, resolution=(100.0, 100.0), metadata={"unit": "um"})
        started = time.perf_counter()
        image = read_sem_image(path)
        report["read_s"] = time.perf_counter() - started
        analysis = analyze_image(image, classifier, AnalysisConfig())
        started = time.perf_counter()
        write_analysis(Path(folder) / "out", analysis)
        report["write_outputs_s"] = time.perf_counter() - started
    report["stages_s"] = analysis.seconds
    report["crystals"] = analysis.n_crystals
    report["classify_crystals_per_s_in_pipeline"] = analysis.n_crystals / analysis.seconds["classify"]

    patches = np.random.default_rng(0).random((2048, 64, 64, 1), dtype=np.float32)
    classifier.predict(patches[:256])  # warm-up (graph tracing)
    started = time.perf_counter()
    classifier.predict(patches)
    report["classify_patches_per_s_batch_2048"] = len(patches) / (time.perf_counter() - started)

    raw_scores, chain_scores = [], []
    for seed in range(1, arguments.scenes + 1):
        other = render_scene(SceneSpec(seed=seed))
        image = to_unit_range(other.image)
        raw_scores.append(match_instances(other.labels, segment_crystals(image, other.pixel_size_um).labels, 0.5))
        preprocessed, _ = preprocess(image, other.pixel_size_um, PreprocessConfig())
        chain_scores.append(match_instances(other.labels, segment_crystals(preprocessed, other.pixel_size_um).labels))
    for key, scores in (("watershed_f1_iou50", raw_scores), ("watershed_after_preprocessing_f1_iou50", chain_scores)):
        report[key] = {"per_scene": [round(s.f1, 4) for s in scores], "mean": statistics.mean(s.f1 for s in scores),
                       "min": min(s.f1 for s in scores), "precision_mean": statistics.mean(s.precision for s in scores),
                       "recall_mean": statistics.mean(s.recall for s in scores),
                       "true_crystals_mean": statistics.mean(s.n_true for s in scores)}
    report["peak_rss_mib"] = peak_rss_mib()

    print(json.dumps(report, indent=2, default=float))
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    sys.exit(main())
