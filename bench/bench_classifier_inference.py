"""Classifier inference: the Keras model (TensorFlow) against the same file run in torch
(`microcrystalnet.classify.torch_network`), side by side, alternating, each run in a fresh process.

For the authors' reference model (.h5) and a MicroCrystalNet (.keras, random weights: the speed
does not depend on them): seconds from the process's start to its first probabilities (imports,
loading, one batch), seconds for the patches once warm at two batch sizes, peak resident memory,
and the largest difference between the two engines' probabilities.

    scripts/bench bench/bench_classifier_inference.py [--patches 600] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE = REPOSITORY.parent / "shared" / "reference-model" / "microcrystalnet_reference_2023-11-19.h5"

#: run in a fresh process: argv = engine, model file, patches, batch sizes (comma-separated), output .npy
CHILD = """
import json, resource, sys, time
import numpy as np
engine, path, count, batches, saved = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
patches = np.random.default_rng(0).random((count, 64, 64, 1), dtype=np.float32)
if engine == "torch":
    from microcrystalnet.classify.torch_network import load_torch_network, predict
    network, _ = load_torch_network(path)
    run = lambda batch: predict(network, batch)
else:
    from microcrystalnet.classify.classifier import _load_keras_model
    network = _load_keras_model(path)
    run = lambda batch: np.asarray(network.predict_on_batch(batch))
run(patches[:16])
first = time.time()
warm = {}
for size in map(int, batches.split(",")):
    started = time.perf_counter()
    outputs = np.concatenate([run(patches[s:s + size]) for s in range(0, count, size)])
    warm[size] = time.perf_counter() - started
np.save(saved, outputs)
print(json.dumps({"first": first, "warm": warm, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def microcrystalnet_file(folder: Path) -> Path:
    """A MicroCrystalNet with random weights saved as .keras (built in a child: no TensorFlow here)."""
    path = folder / "microcrystalnet.keras"
    subprocess.run([sys.executable, "-c", "import sys; from microcrystalnet.classify.architecture import "
                    "build_microcrystalnet; build_microcrystalnet(64).save(sys.argv[1])", str(path)],
                   check=True, capture_output=True)
    return path


def spread(values: list[float]) -> str:
    """Median (min-max) of ``values``."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def run_child(engine: str, model: Path, patches: int, batches: str, saved: Path) -> dict:
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD, engine, str(model), str(patches), batches, str(saved)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["to_first"] = result.pop("first") - launched
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    batches = "256,16"
    print(f"# {date.today()}, {platform.processor() or platform.machine()}, {options.patches} patches, "
          f"{options.runs} runs each alternating, median (min-max)")
    print("| model | engine | process to probabilities s | warm, batch 256 s | warm, batch 16 s | peak RSS MB "
          "| TensorFlow loaded | max abs difference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        models = {"reference (.h5)": REFERENCE, "MicroCrystalNet (.keras)": microcrystalnet_file(Path(folder))}
        for name, model in models.items():
            results: dict[str, list[dict]] = {"keras": [], "torch": []}
            for _ in range(options.runs):
                for engine in results:
                    results[engine].append(run_child(engine, model, options.patches, batches,
                                                     Path(folder) / f"{engine}.npy"))
            difference = np.abs(np.load(Path(folder) / "keras.npy") - np.load(Path(folder) / "torch.npy")).max()
            for engine, runs in results.items():
                print(f"| {name} | {engine} | {spread([r['to_first'] for r in runs])} "
                      f"| {spread([r['warm']['256'] for r in runs])} | {spread([r['warm']['16'] for r in runs])} "
                      f"| {statistics.median(r['rss_mb'] for r in runs):.0f} | {runs[0]['tensorflow']} "
                      f"| {difference:.1e} |")


if __name__ == "__main__":
    main()
