"""Learned segmenter ablation: F1 by what the network sees (the image alone; averaged with the
image turned by 180 degrees, as shipped; averaged over four flips) and by the lowest crystal
score kept (mean interior + boundary probability of a crystal), on the real SEM images of
../shared/real-sem or held-out synthetic scenes, with the size hint (the outlines' median
diameter). The network runs once per orientation and image; the model's seed and foreground
thresholds stay fixed, and so does its smallest seed unless ``--min-seed-fraction`` sets
another; no label tidying (area limits, border), so numbers are within a few thousandths of
bench_real_sem.py's.

    scripts/bench bench/bench_learned_ablation.py [--segmenter-model MODEL] [--synthetic N]
        [--min-seed-fraction F] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from bench_real_sem import REAL_SEM, load_entry, machine, synthetic_entries

SCORES = (0.0, 0.8, 0.85, 0.9)
ORIENTATIONS = ("image alone", "+ turned 180 degrees", "4 flips")


def orientation_probabilities(model, small) -> dict[str, np.ndarray]:
    """The network's probabilities of ``small`` (at working scale) for each of :data:`ORIENTATIONS`."""
    from microcrystalnet.segment.learned.inference import class_probabilities

    upright = class_probabilities(model, small)
    turned = class_probabilities(model, np.ascontiguousarray(small[::-1, ::-1]))[:, ::-1, ::-1]
    mirrored = class_probabilities(model, np.ascontiguousarray(small[:, ::-1]))[:, :, ::-1]
    flipped = class_probabilities(model, np.ascontiguousarray(small[::-1]))[:, ::-1]
    return {ORIENTATIONS[0]: upright, ORIENTATIONS[1]: (upright + turned) / 2,
            ORIENTATIONS[2]: (upright + turned + mirrored + flipped) / 4}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter-model", help="model file (default: the shipped one)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="N held-out synthetic scenes instead")
    parser.add_argument("--min-seed-fraction", type=float, metavar="F",
                        help="smallest seed, a fraction of a typical crystal's area (default: the model's)")
    parser.add_argument("--json", type=Path, help="write every number here")
    arguments = parser.parse_args()
    import torch

    from microcrystalnet.io import to_unit_range
    from microcrystalnet.metrics import match_instances
    from microcrystalnet.segment.learned.inference import (confident_crystals, crystal_instances, crystal_scores,
                                                           labels_at_shape, working_scale_image)
    from microcrystalnet.segment.learned.model_file import WatershedThresholds, load_segmenter_model

    torch.set_num_threads(1)
    model = load_segmenter_model(arguments.segmenter_model)
    if arguments.synthetic:
        entries = synthetic_entries(arguments.synthetic)
    elif (REAL_SEM / "manifest.json").is_file():
        entries = json.loads((REAL_SEM / "manifest.json").read_text())
    else:
        sys.exit(f"skipped: no real SEM images at {REAL_SEM.resolve()}")
    thresholds = WatershedThresholds(model.thresholds.seed, model.thresholds.foreground,
                                     model.thresholds.min_seed_fraction if arguments.min_seed_fraction is None
                                     else arguments.min_seed_fraction)
    f1: dict[tuple[str, str, float], list[float]] = {}
    for entry in entries:
        image, true = load_entry(entry)
        pixels = to_unit_range(image.pixels)
        small = working_scale_image(pixels, model, crystal_diameter_px=entry["median_diameter_px"])
        for orientation, probabilities in orientation_probabilities(model, small).items():
            found = crystal_instances(probabilities, thresholds=thresholds,
                                      crystal_diameter_px=model.working_diameter_px)
            scores = crystal_scores(probabilities, found)
            for score in SCORES:
                kept = confident_crystals(found, scores, score)
                f1.setdefault((entry["dataset"], orientation, score), []).append(
                    match_instances(true, labels_at_shape(kept, pixels.shape)).f1)
        print(f"{entry['image']} done", file=sys.stderr, flush=True)
    print(f"{machine()}; model {model.name} ({model.sha256 or 'no checksum'}); seed {thresholds.seed}, foreground "
          f"{thresholds.foreground}, smallest seed {thresholds.min_seed_fraction}; F1 by lowest crystal score kept "
          f"{' / '.join(map(str, SCORES))}\n")
    print(f"| material | {' | '.join(ORIENTATIONS)} |\n|---|{'---|' * len(ORIENTATIONS)}")
    for dataset in dict.fromkeys(entry["dataset"] for entry in entries):
        cells = [" / ".join(f"{statistics.mean(f1[(dataset, orientation, score)]):.3f}" for score in SCORES)
                 for orientation in ORIENTATIONS]
        print(f"| {dataset} | {' | '.join(cells)} |")
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine(), "model": model.name, "scores": SCORES,
                                              "f1": [{"dataset": d, "orientation": o, "min_crystal_score": s,
                                                      "images": v} for (d, o, s), v in f1.items()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
