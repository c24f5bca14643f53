"""The learned segmenter on a CUDA GPU against the CPU: the same probabilities and crystals, and
how much faster inference and training run there. For a session lent a GPU machine (the program
picks a GPU by itself where there is one: ``segment.learned.device``, ``train-segmenter --device``).

On one synthetic 1024 x 1024 scene (it needs no files beside the repository): the network's
probabilities on both devices (largest difference), the crystals found (F1 of the GPU's against
the CPU's), seconds of ``segment_crystals`` (median of ``--runs`` after a warm-up; the CPU with
``--threads`` torch threads), and seconds per training step at batch 8 (the recipe's) and 64 on
synthetic crops. Without a CUDA GPU it says so and exits 0 after the CPU's numbers.

    scripts/bench bench/bench_gpu.py [--runs 5] [--steps 30] [--threads 2] [--json FILE]

On the lent machine (it has torch, numpy, scipy, scikit-image, tifffile and pytest, but not
pydantic): fetch the missing wheels here once, ``bench/bench_gpu.py --fetch-wheels`` (into the
git-ignored ``.whl/``), then run there, carrying ``.whl``::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site:python python3 -m pytest -q -p no:cacheprovider tests/test_learned_segmenter.py \\
        tests/test_segmenter_training.py -k gpu && PYTHONPATH=/tmp/site:python python3 bench/bench_gpu.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: what the lent GPU machine's Python lacks of what these checks import (its package list: the
#: device tool's KINDS.md); fetched at the versions installed here
WHEELS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection")
SIDE_PX = 1024


def fetch_wheels(folder: Path) -> None:
    """The wheels of :data:`WHEELS`, at the versions installed here, for the lent machine's Python
    (3.12, x86-64 Linux) into ``folder``."""
    from importlib.metadata import version

    platforms = [argument for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014")
                 for argument in ("--platform", f"{tag}_x86_64")]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", *platforms, "-d", str(folder),
                    *(f"{name}=={version(name)}" for name in WHEELS)], check=True)


def median_seconds(function, runs: int) -> float:
    function()  # warm-up (on a GPU: kernels chosen, memory taken)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def training_step_seconds(device: str, batch_size: int, steps: int) -> float:
    from microcrystalnet.segment.learned.training import synthetic_training_crops, train_segmenter

    crops = synthetic_training_crops(n_scenes=16, first_seed=0)
    train_segmenter(crops, steps=2, batch_size=batch_size, device=device)  # warm-up
    started = time.perf_counter()
    model = train_segmenter(crops, steps=steps, batch_size=batch_size, device=device)
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    assert model.training["steps"] == steps
    return (time.perf_counter() - started) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs after a warm-up (default %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--fetch-wheels", action="store_true",
                        help=f"only download the wheels the lent machine lacks into {REPO / '.whl'} and stop")
    arguments = parser.parse_args()
    if arguments.fetch_wheels:
        fetch_wheels(REPO / ".whl")
        return 0

    import numpy as np
    import torch

    from microcrystalnet.config import SegmentConfig
    from microcrystalnet.io import to_unit_range
    from microcrystalnet.metrics import match_instances
    from microcrystalnet.segment import make_segmenter, segment_crystals
    from microcrystalnet.segment.learned.inference import median_diameter_px, working_scale_probabilities
    from microcrystalnet.synth import SceneSpec, render_scene

    torch.set_num_threads(arguments.threads)
    scene = render_scene(SceneSpec(shape=(SIDE_PX, SIDE_PX), pixel_size_um=0.05, seed=3))
    image, diameter_px = to_unit_range(scene.image), median_diameter_px(scene.labels)
    config = SegmentConfig(crystal_size_px=diameter_px)
    report: dict = {"scene": f"synthetic {SIDE_PX} x {SIDE_PX}, {scene.n_crystals} crystals of {diameter_px:.0f} px",
                    "cpu_threads": arguments.threads, "cuda": torch.cuda.is_available()}
    devices = ["cpu"] + (["cuda"] if report["cuda"] else [])
    probabilities, labels = {}, {}
    for device in devices:
        segmenter = make_segmenter(config.updated(learned={"device": device}), download=False)
        probabilities[device] = working_scale_probabilities(image, segmenter.model, crystal_diameter_px=diameter_px)
        labels[device] = segment_crystals(image, scene.pixel_size_um, config, segmenter).labels
        report[f"{device}_segment_s"] = round(median_seconds(
            lambda: segment_crystals(image, scene.pixel_size_um, config, segmenter), arguments.runs), 3)
        report[f"{device}_crystals"] = int(labels[device].max())
        report[f"{device}_f1_against_truth"] = round(match_instances(scene.labels, labels[device]).f1, 3)
        for batch_size in (8, 64):
            report[f"{device}_training_step_s_batch_{batch_size}"] = round(
                training_step_seconds(device, batch_size, arguments.steps), 4)
        print(f"{device}: {report}", file=sys.stderr, flush=True)
    if report["cuda"]:
        report["gpu"] = torch.cuda.get_device_name(0)
        report["largest_probability_difference"] = float(np.abs(probabilities["cuda"] - probabilities["cpu"]).max())
        report["gpu_crystals_f1_against_cpu"] = round(match_instances(labels["cpu"], labels["cuda"]).f1, 4)
    print(json.dumps(report, indent=1))
    if not report["cuda"]:
        print("no CUDA GPU here: the CPU's numbers only", file=sys.stderr)
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
