"""Wall time of the Fiji round trip beyond the analysis itself: in-process, resident worker, one
process per image.

On one synthetic 2048 x 2048 scene, in one run: the analysis alone (read, analyse, write results,
in Python, models loaded once), then Plugins > MicroCrystalNet > Analyze Crystals... in a real
ImageJ 1.x with the in-process backend (this Python), the External backend (the resident Python
worker: started on its first call, which is timed on its own, then reused) and the one-process-
per-image fallback. Each path runs --repeats times (after its first call, which loads its models);
medians are reported. Needs a display (Xvfb).

    xvfb-run -a scripts/bench bench/bench_fiji_roundtrip.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tifffile

from microcrystalnet import imagej as bridge
from microcrystalnet.config import AnalysisConfig
from microcrystalnet.io import read_sem_image
from microcrystalnet.io.outputs import write_analysis
from microcrystalnet.model_cache import ModelCache
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.synth import SceneSpec, render_scene

OPTIONS = ("model=reference-2023-11-19 min_crystal_area=0.25 max_crystal_area=40 exclude_sem_data_bar "
           "roi_manager=[Replace existing ROIs] save_results_to=[]")
#: the Settings choice of each path, as the command's Settings... dialog names it
BACKENDS = {"in_process": "In-process", "resident": "External",
            "one_process_per_image": "[External (one process per image)]"}


def seconds_of(runs: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(runs), 3), "runs": [round(run, 3) for run in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcn-bench-"))
    scene = render_scene(SceneSpec(seed=0))
    path = work / "scene.tif"
    tifffile.imwrite(path, scene.image, imagej=True, resolution=(100.0, 100.0), metadata={"unit": "um"})

    config = AnalysisConfig()
    models = ModelCache().models(config)
    analysis_runs = []
    for _ in range(arguments.repeats + 1):
        started = time.perf_counter()
        analysis = analyze_image(read_sem_image(path), models.classifier, config, segmenter=models.segmenter)
        write_analysis(work / "python", analysis, overlay=False)
        analysis_runs.append(time.perf_counter() - started)
    analysis_runs = analysis_runs[1:]  # the first run warms the models up

    ij = bridge.start_imagej1(headless=False, plugin_jar=bridge.find_plugin_jar(), home=work / "imagej",
                              jvm_options=(f"-Duser.home={work / 'user'}",))
    bridge.register_backend()
    timings, first_calls = {}, {}
    for name, backend in BACKENDS.items():
        ij.run("Settings...", f"python=[{sys.executable}] backend={backend} model=reference-2023-11-19")
        runs = []
        for _ in range(arguments.repeats + (0 if name == "one_process_per_image" else 1)):
            image = ij.openImage(str(path))
            image.show()
            started = time.perf_counter()
            ij.run(image, "Analyze Crystals...", OPTIONS)
            runs.append(time.perf_counter() - started)
            error = str(bridge.jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
            assert error == "", error
            image.close()
        if name != "one_process_per_image":  # a new process every time: no first call to set apart
            first_calls[name] = round(runs.pop(0), 3)
        timings[name] = runs
    crystals = int(bridge.jimport("ij.plugin.frame.RoiManager").getRoiManager().getCount())
    analysis_median = statistics.median(analysis_runs)
    report = {
        "image": "synthetic 2048 x 2048, 10 nm/px",
        "crystals": crystals,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "analysis_s": seconds_of(analysis_runs),
        **{f"{name}_s": seconds_of(runs) for name, runs in timings.items()},
        "first_call_s": first_calls,
        "overhead_beyond_analysis_s": {name: round(statistics.median(runs) - analysis_median, 3)
                                       for name, runs in timings.items()},
    }
    print(json.dumps(report, indent=2))
    bridge.jimport("java.lang.System").exit(0)  # ImageJ's windows keep the JVM alive otherwise; stops the worker


if __name__ == "__main__":
    sys.exit(main())
