"""What the reference classifier says about synthetic crystals of known class.

Two questions: (1) which raw output index does the model give rounded and rhombic crystals
(a check of the class order assumed in microcrystalnet.classify.models), and (2) which patch
convention (margin, background masked or not) agrees best with the synthetic truth.
Synthetic crystals only; the model was trained on real SEM crystals, so agreement is limited
by the difference between the two.

    scripts/bench bench/bench_class_order.py [--scenes 6]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from microcrystalnet.classes import CLASS_CODES
from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.config import PatchConfig
from microcrystalnet.patches import extract_patches
from microcrystalnet.synth import SceneSpec, render_scene

CONVENTIONS = [PatchConfig(margin_fraction=m, mask_background=b) for m in (0.0, 0.05, 0.1) for b in (True, False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6)
    arguments = parser.parse_args()
    classifier = CrystalClassifier.load("reference-2023-11-19")
    scenes = [render_scene(SceneSpec(shape=(1024, 1024), pixel_size_um=0.02, seed=100 + s))
              for s in range(arguments.scenes)]
    truth = np.concatenate([[CLASS_CODES.index(c) for c in scene.crystal_classes] for scene in scenes])
    report = {"crystals": int(len(truth)), "per_class": {c: int((truth == i).sum()) for i, c in enumerate(CLASS_CODES)},
              "conventions": []}
    for convention in CONVENTIONS:
        patches = np.concatenate([extract_patches(scene.image.astype(np.float32) / 255, scene.labels, convention)
                                  for scene in scenes])
        raw = np.asarray(classifier.model.predict_on_batch(patches)).argmax(axis=1)
        histogram = {CLASS_CODES[t]: np.bincount(raw[truth == t], minlength=4).tolist() for t in range(4)}
        agreement = float(np.mean(classifier.predict(patches).argmax(axis=1) == truth))
        report["conventions"].append({"margin_fraction": convention.margin_fraction,
                                      "mask_background": convention.mask_background,
                                      "agreement_with_truth": agreement,
                                      "raw_output_index_counts_by_true_class": histogram})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
