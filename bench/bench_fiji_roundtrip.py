"""Wall time of the Fiji round trip beyond the backend's own compute, in-process vs external.

On one synthetic 2048 x 2048 scene, in one run: the backend compute alone (read, analyse,
write results, in Python), then Plugins > MicroCrystalNet > Analyze Crystals... in a real
ImageJ 1.x with the in-process backend (this Python) and with the external backend (a new
Python process per image). Each is repeated; medians are reported. Needs a display (Xvfb).

    xvfb-run -a scripts/bench bench/bench_fiji_roundtrip.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tifffile

from microcrystalnet import imagej as bridge
from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.config import AnalysisConfig
from microcrystalnet.io import read_sem_image
from microcrystalnet.io.outputs import write_analysis
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.synth import SceneSpec, render_scene

OPTIONS = ("model=reference-2023-11-19 min_crystal_area=0.25 max_crystal_area=40 exclude_sem_data_bar "
           "roi_manager=[Replace existing ROIs] save_results_to=[]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcn-bench-"))
    scene = render_scene(SceneSpec(seed=0))
    path = work / "scene.tif"
    tifffile.imwrite(path, scene.image, imagej=True, resolution=(100.0, 100.0), metadata={"unit": "um"})

    classifier = CrystalClassifier.load()
    compute = []
    for _ in range(arguments.repeats + 1):
        started = time.perf_counter()
        analysis = analyze_image(read_sem_image(path), classifier, AnalysisConfig())
        write_analysis(work / "python", analysis, overlay=False)
        compute.append(time.perf_counter() - started)
    compute = compute[1:]  # the first run warms the model up

    ij = bridge.start_imagej1(headless=False, plugin_jar=bridge.find_plugin_jar(), home=work / "imagej",
                              jvm_options=(f"-Duser.home={work / 'user'}",))
    bridge.register_backend()
    timings = {}
    for backend in ("In-process", "External"):
        ij.run("Settings...", f"python=[{sys.executable}] backend={backend} model=reference-2023-11-19")
        runs = []
        for _ in range(arguments.repeats + (1 if backend == "In-process" else 0)):
            image = ij.openImage(str(path))
            image.show()
            started = time.perf_counter()
            ij.run(image, "Analyze Crystals...", OPTIONS)
            runs.append(time.perf_counter() - started)
            error = str(bridge.jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
            assert error == "", error
            image.close()
        timings[backend] = runs[1:] if backend == "In-process" else runs
    crystals = int(bridge.jimport("ij.plugin.frame.RoiManager").getRoiManager().getCount())
    report = {
        "image": "synthetic 2048 x 2048, 10 nm/px",
        "crystals": crystals,
        "backend_compute_s": {"median": statistics.median(compute), "runs": compute},
        "in_process_s": {"median": statistics.median(timings["In-process"]), "runs": timings["In-process"]},
        "external_s": {"median": statistics.median(timings["External"]), "runs": timings["External"]},
    }
    report["in_process_overhead_s"] = report["in_process_s"]["median"] - report["backend_compute_s"]["median"]
    report["external_overhead_s"] = report["external_s"]["median"] - report["backend_compute_s"]["median"]
    print(json.dumps(report, indent=2))
    bridge.jimport("java.lang.System").exit(0)  # ImageJ's windows keep the JVM alive otherwise


if __name__ == "__main__":
    sys.exit(main())
