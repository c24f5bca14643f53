"""How right is a classifier's label at each confidence? Evidence for the 'unclear' threshold.

On the held-out scenes of bench_classifiers.py's synthetic data set and split (same scenes, same
seed), for each model: accuracy of the crystals whose top probability falls in each bin, and for
thresholds t: the share of crystals labelled unclear (top probability < t), the accuracy of those,
and the accuracy of the rest. Synthetic crystals only.

    scripts/bench bench/bench_unclear.py --model bench-out/microcrystalnet.keras [--model reference-2023-11-19]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from microcrystalnet.classify.architecture import keras
from microcrystalnet.classify.classifier import CrystalClassifier
from microcrystalnet.classify.dataset import synthetic_dataset
from microcrystalnet.classify.splits import train_validation_test_split

BINS = (0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
THRESHOLDS = (0.4, 0.5, 0.6, 0.7)


def predictions(model: str, patches: np.ndarray) -> np.ndarray:
    """Probabilities in CLASS_CODES order: registered models through CrystalClassifier, a bare
    ``.keras`` file from bench_classifiers (trained with CLASS_CODES order) directly."""
    if model.endswith(".keras"):
        return np.asarray(keras.models.load_model(model).predict(patches, batch_size=256, verbose=0))
    return CrystalClassifier.load(model).predict(patches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--scenes", type=int, default=22)
    arguments = parser.parse_args()
    data = synthetic_dataset(arguments.scenes)
    test = data.subset(train_validation_test_split(data.labels, data.groups).test)
    report = {"test_patches": len(test), "models": {}}
    for model in arguments.model:
        probabilities = predictions(model, test.patches)
        confidence = probabilities.max(axis=1)
        correct = probabilities.argmax(axis=1) == test.labels
        bins = []
        for low, high in zip(BINS[:-1], BINS[1:]):
            inside = (confidence >= low) & (confidence < high)
            bins.append({"confidence": f"[{low:.2f}, {min(high, 1):.2f})", "crystals": int(inside.sum()),
                         "accuracy": float(correct[inside].mean()) if inside.any() else None})
        thresholds = []
        for threshold in THRESHOLDS:
            unclear = confidence < threshold
            thresholds.append({"threshold": threshold, "unclear_share": float(unclear.mean()),
                               "accuracy_of_unclear": float(correct[unclear].mean()) if unclear.any() else None,
                               "accuracy_of_rest": float(correct[~unclear].mean()) if (~unclear).any() else None})
        report["models"][model] = {"accuracy": float(correct.mean()), "bins": bins, "thresholds": thresholds}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
