"""Batch throughput: images per minute, serial vs a local Dask cluster, and memory per worker.

Renders N synthetic 2048 x 2048 scenes (10 nm/px) once, then analyses them with
``microcrystalnet.batch.run_batch`` twice into fresh folders: serially in this process
(``workers=0``) and on a local Dask cluster of W single-threaded worker processes. Model loading
is included in both (once in this process; once per worker). Peak resident memory of each worker
is read from the workers after the run; the serial figure is this process's peak.

    scripts/bench bench/bench_batch.py [--images 20] [--workers 2] [--out bench-batch]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import tifffile

from microcrystalnet.batch import run_batch
from microcrystalnet.config import AnalysisConfig
from microcrystalnet.synth import SceneSpec, render_scene


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=Path("bench-batch"))
    arguments = parser.parse_args()
    images_dir = arguments.out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    images = []
    for index in range(arguments.images):
        path = images_dir / f"scene{index:03d}.tif"
        if not path.exists():
            scene = render_scene(SceneSpec(shape=(arguments.size, arguments.size), pixel_size_um=0.01, seed=500 + index))
            tifffile.imwrite(path, scene.image, imagej=True, resolution=(100, 100), metadata={"unit": "um"})
        images.append(path)
    print(f"{len(images)} images of {arguments.size}^2 ready ({time.perf_counter() - started:.0f} s)", flush=True)
    config = AnalysisConfig()
    report: dict[str, object] = {"images": len(images), "size_px": arguments.size}

    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=arguments.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=0)
    client = Client(cluster)
    out = arguments.out / "dask"
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    outcomes = run_batch(images, out, config, overlay=False, scheduler=cluster.scheduler_address)
    seconds = time.perf_counter() - began
    peaks = client.run(lambda: __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1e6)
    client.close()
    cluster.close()
    assert not any(o.error for o in outcomes)
    report["dask"] = {"workers": arguments.workers, "seconds": seconds, "images_per_minute": 60 * len(images) / seconds,
                      "peak_rss_gb_per_worker": sorted(peaks.values())}
    print(json.dumps(report["dask"]), flush=True)

    out = arguments.out / "serial"
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    outcomes = run_batch(images, out, config, overlay=False, workers=0)
    seconds = time.perf_counter() - began
    assert not any(o.error for o in outcomes)
    report["serial"] = {"seconds": seconds, "images_per_minute": 60 * len(images) / seconds,
                        "peak_rss_gb": _peak_rss_gb()}
    print(json.dumps(report["serial"]), flush=True)
    same = (arguments.out / "serial" / "batch_results.csv").read_text() == \
        (arguments.out / "dask" / "batch_results.csv").read_text()
    report["identical_results"] = same
    report["speed-up"] = report["dask"]["images_per_minute"] / report["serial"]["images_per_minute"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
