"""Wall time of the Fiji round trip beyond the analysis itself: in-process, resident worker, one
process per image.

On one synthetic 2048 x 2048 scene, in one run: the analysis alone (read, analyse, write results,
in Python, models loaded once) and Plugins > MicroCrystalNet > Analyze Crystals... in a real
ImageJ 1.x with the in-process backend (this Python), the External backend (the resident Python
worker, started by its first call) and the one-process-per-image fallback. The paths take turns,
one image each per round, so that a change in the machine's load hits them alike; the first
round (models loading, the worker starting) is reported apart, then --repeats rounds. Reported:
medians, and each command's time beyond its backend's own analysis of the same request (in-process:
InProcessAnalysis.analyze timed in this process; resident: the "done in" time the worker logs for
the request), which the machine's load varies far less than it varies the analysis itself.
Needs a display (Xvfb).

    xvfb-run -a scripts/bench bench/bench_fiji_roundtrip.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
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


def last_worker_request_seconds() -> float:
    """The time the resident worker logged for its last request ("request N (...) done in X s"),
    from its log (standard error), which ResidentBackend keeps in the temporary folder."""
    log = max(Path(tempfile.gettempdir()).glob("microcrystalnet-worker-*.log"), key=lambda path: path.stat().st_mtime)
    done = [line for line in log.read_text().splitlines() if " done in " in line]
    return float(done[-1].rsplit(" done in ", 1)[1].split()[0])


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
    in_process_seconds = []
    analyze_in_process = bridge.InProcessAnalysis.analyze

    def timed_analyze(self, *arguments, **options):
        started = time.perf_counter()
        try:
            return analyze_in_process(self, *arguments, **options)
        finally:
            in_process_seconds.append(time.perf_counter() - started)

    bridge.InProcessAnalysis.analyze = timed_analyze  # the in-process backend's own analysis, timed
    ij = bridge.start_imagej1(headless=False, plugin_jar=bridge.find_plugin_jar(), home=work / "imagej",
                              jvm_options=(f"-Duser.home={work / 'user'}",))
    bridge.register_backend()

    def analysis_alone() -> float:
        started = time.perf_counter()
        analysis = analyze_image(read_sem_image(path), models.classifier, config, segmenter=models.segmenter)
        write_analysis(work / "python", analysis, overlay=False)
        return time.perf_counter() - started

    def fiji_command(backend: str) -> float:
        ij.run("Settings...", f"python=[{sys.executable}] backend={backend} model=reference-2023-11-19")
        image = ij.openImage(str(path))
        image.show()
        started = time.perf_counter()
        ij.run(image, "Analyze Crystals...", OPTIONS)
        seconds = time.perf_counter() - started
        error = str(bridge.jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
        assert error == "", error
        image.close()
        return seconds

    rounds = []
    for _ in range(arguments.repeats + 1):
        times = {"analysis": analysis_alone()}
        times.update({name: fiji_command(backend) for name, backend in BACKENDS.items()})
        times["in_process_backend"] = in_process_seconds[-1]
        times["resident_backend"] = last_worker_request_seconds()
        rounds.append(times)
    first, rounds = rounds[0], rounds[1:]
    crystals = int(bridge.jimport("ij.plugin.frame.RoiManager").getRoiManager().getCount())
    report = {
        "image": "synthetic 2048 x 2048, 10 nm/px",
        "crystals": crystals,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        **{f"{name}_s": seconds_of([times[name] for times in rounds]) for name in ("analysis", *BACKENDS)},
        "first_round_s": {name: round(seconds, 3) for name, seconds in first.items()},
        "beyond_analysis_alone_s": {name: seconds_of([times[name] - times["analysis"] for times in rounds])
                                    for name in BACKENDS},
        "beyond_own_analysis_s": {name: seconds_of([times[name] - times[f"{name}_backend"] for times in rounds])
                                  for name in ("in_process", "resident")},
    }
    print(json.dumps(report, indent=2))
    bridge.jimport("java.lang.System").exit(0)  # ImageJ's windows keep the JVM alive otherwise; stops the worker


if __name__ == "__main__":
    sys.exit(main())
