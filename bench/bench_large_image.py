"""Peak memory and time of `microcrystalnet analyze` on large 8-bit images, with and without overlay.png.

Each image is a synthetic 2048 x 2048 scene (10 nm/px) tiled to the size asked for, written as a
calibrated 8-bit ImageJ TIFF. Every run is the CLI in a process of its own, as a user runs it; its
peak resident memory comes from the operating system (``os.wait4``), its seconds from the wall
clock, model loading included. Then an image too large for this machine (``--refused-side``) is
read and handed to ``analyze_image`` in this process, timing how soon it is refused. Synthetic
scenes only: nothing here is a result on real rocks.

    scripts/bench bench/bench_large_image.py [--sizes 2048 6000 12000] [--refused-side 30000] [--json out.json]

Run the 12000 px case alone on the machine: it takes minutes and several GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import tifffile

from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.io import read_sem_image
from microcrystalnet.memory import ImageTooLargeError
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.synth import SceneSpec, render_scene

SCENE = SceneSpec(shape=(2048, 2048), pixel_size_um=0.01, seed=0)


def machine_description() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def write_tiled_scene(tile: np.ndarray, side: int, path: Path) -> None:
    """``tile`` repeated to ``side`` x ``side`` px, as a calibrated 8-bit ImageJ TIFF (10 nm/px)."""
    repeats = -(-side // tile.shape[0])
    image = np.tile(tile, (repeats, repeats))[:side, :side]
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / SCENE.pixel_size_um,) * 2, metadata={"unit": "um"})


def run_analyze(image: Path, out: Path, overlay: bool) -> dict[str, float | int]:
    """One CLI analysis in its own process: exit status, wall seconds, peak resident memory (GB)."""
    command = [sys.executable, "-m", "microcrystalnet", "analyze", str(image), "--out", str(out), "--no-download",
               "-q", *([] if overlay else ["--no-overlay"])]
    started = time.perf_counter()
    with open(out.with_suffix(".log"), "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        # wait4 gives this child's own resource use (RUSAGE_CHILDREN would mix all runs)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    peak_bytes = usage.ru_maxrss * 1024  # KiB on Linux
    return {"exit": process.returncode, "seconds": round(seconds, 1), "peak_rss_gb": round(peak_bytes / 1e9, 2)}


def time_refusal(image_path: Path) -> dict[str, float | str]:
    """Seconds from reading ``image_path`` to the memory check refusing it (the model is loaded first)."""
    classifier = CrystalClassifier.load("reference-2023-11-19", download=False)
    started = time.perf_counter()
    try:
        analyze_image(read_sem_image(image_path), classifier)
    except ImageTooLargeError as error:
        return {"seconds": round(time.perf_counter() - started, 2), "message": str(error)}
    return {"seconds": round(time.perf_counter() - started, 2), "message": "not refused"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2048, 6000, 12000], help="image sides, px")
    parser.add_argument("--refused-side", type=int, default=30000,
                        help="side (px) of an image that should be refused for memory; 0 skips it")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    arguments = parser.parse_args()
    if not os.environ.get("MICROCRYSTALNET_MODEL_DIR"):
        sys.exit("set MICROCRYSTALNET_MODEL_DIR to the folder holding the reference model (scripts/bench does)")

    report: dict = {"date": date.today().isoformat(), "machine": machine_description(), "runs": []}
    tile = render_scene(SCENE).image
    with tempfile.TemporaryDirectory(prefix="mcn-large-") as work:
        for side in arguments.sizes:
            image = Path(work) / f"scene_{side}.tif"
            write_tiled_scene(tile, side, image)
            for overlay in (False, True):
                result = run_analyze(image, Path(work) / f"out_{side}_{int(overlay)}", overlay)
                row = {"side_px": side, "overlay": overlay, **result}
                report["runs"].append(row)
                print(json.dumps(row), flush=True)
            image.unlink()
        if arguments.refused_side:
            image = Path(work) / f"scene_{arguments.refused_side}.tif"
            write_tiled_scene(tile, arguments.refused_side, image)
            report["refusal"] = {"side_px": arguments.refused_side, **time_refusal(image)}
            print(json.dumps(report["refusal"]), flush=True)

    print(f"\n{report['machine']}, {report['date']}\n")
    if report["runs"]:
        print("| image | overlay.png | seconds | peak memory (GB) |")
        print("|---|---|---|---|")
    for row in report["runs"]:
        failed = "" if row["exit"] == 0 else f" (exit {row['exit']})"
        print(f"| {row['side_px']} x {row['side_px']} | {'yes' if row['overlay'] else 'no'} | {row['seconds']}{failed} "
              f"| {row['peak_rss_gb']} |")
    if "refusal" in report:
        refusal = report["refusal"]
        print(f"\n{refusal['side_px']} x {refusal['side_px']} px: read and refused in {refusal['seconds']} s: "
              f"{refusal['message']}")
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
