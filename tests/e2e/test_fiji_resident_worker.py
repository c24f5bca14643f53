"""The Fiji command's resident Python worker (``ResidentBackend``), in a real ImageJ 1.x.

ImageJ runs in a JVM of its own (``ImageJ -batch``, as a plain ImageJ or Fiji without Python
would), with the Settings pointing at this project's Python: the worker starts on the first
analysis, keeps its models for the next one, is started again after it was killed, and stops
with ImageJ. A Python audit hook (``sitecustomize`` on the worker's path) records every TIFF the
worker opens, which shows that the image reaches it in memory, not through a file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microcrystalnet.imagej import find_ij_jar, jimport, plugins_folder_with

from .test_fiji_command import OPTIONS, cancelling_progress, read_rows, write_scene

pytestmark = pytest.mark.imagej

#: sitecustomize.py for the worker: appends every TIFF it opens (mode, flags, path) to $MCN_TEST_OPENED
AUDIT_HOOK = '''import os, sys
_record = os.environ.get("MCN_TEST_OPENED")
def _opened(event, arguments):
    if event == "open" and _record and isinstance(arguments[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(arguments[0])
        if path.lower().endswith((".tif", ".tiff")):
            with open(_record, "a") as lines:
                lines.write(f"{arguments[1]} {arguments[2]} {path}\\n")
if _record:
    sys.addaudithook(_opened)
'''


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped) is not running
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


def imagej_command(tmp_path: Path, plugin_jar: Path, macro: str,
                   model_dir: Path) -> tuple[list[str], dict[str, str]]:
    """``ImageJ -batch`` on ``macro`` in its own JVM, and its environment (this project's Python, the
    models in ``model_dir``, the audit hook)."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    script = tmp_path / "run.ijm"
    script.write_text(macro)
    home = plugins_folder_with(plugin_jar, tmp_path / "imagej")
    env = {**os.environ, "MICROCRYSTALNET_PYTHON": sys.executable, "MICROCRYSTALNET_MODEL_DIR": str(model_dir),
           "MCN_TEST_OPENED": str(tmp_path / "opened.txt"),
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    temporary = tmp_path / "temporary"  # the worker's log and result folders: what a killed ImageJ leaves is here
    temporary.mkdir(exist_ok=True)
    env["TMPDIR"] = str(temporary)
    command = ["java", f"-Dplugins.dir={home}", f"-Duser.home={tmp_path / 'user'}", f"-Djava.io.tmpdir={temporary}",
               "-cp", str(find_ij_jar()), "ij.ImageJ", "-batch", str(script)]
    return command, env


def macro_run(image: Path, out: Path, label: str) -> str:
    """Macro lines: analyse ``image`` saving to ``out``, then print the worker's PID and the error."""
    options = OPTIONS.replace("save_results_to=[]", f"save_results_to=[{out}]") + " roi_manager=[Replace existing ROIs]"
    return f'''open("{image}");
run("Analyze Crystals...", "{options}");
close();
print("TEST {label} pid=" + call("microcrystalnet.fiji.ResidentBackend.workerPid") + " error="
    + call("microcrystalnet.fiji.AnalyzeCrystals.lastError"));
'''


def reported(log: str, label: str) -> tuple[int, str]:
    line = next(line for line in log.splitlines() if line.startswith(f"TEST {label} pid="))
    pid, error = line.split(" pid=", 1)[1].split(" error=", 1)
    return int(pid), error


def test_the_worker_keeps_its_models_restarts_after_a_kill_and_stops_with_imagej(
        x_display, plugin_jar, tmp_path, small_scene, reference_model_path):
    scene = write_scene(tmp_path / "scene.tif", small_scene.spec)
    cli_out = tmp_path / "cli"
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(scene), "--out", str(cli_out),
                           "--no-download", "-q"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    cli_rows = read_rows(cli_out / "scene" / "results.csv")
    macro = (macro_run(scene, tmp_path / "first", "first") + 'print("TEST second starts");\n'
             + macro_run(scene, tmp_path / "second", "second")
             + 'exec("kill", "-9", call("microcrystalnet.fiji.ResidentBackend.workerPid"));\nwait(1000);\n'
             + 'print("TEST third starts");\n' + macro_run(scene, tmp_path / "third", "third"))
    command, env = imagej_command(tmp_path, plugin_jar, macro, reference_model_path.parent)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log

    first_pid, error = reported(log, "first")
    assert error == "" and first_pid > 0, log
    second_pid, error = reported(log, "second")
    assert error == "" and second_pid == first_pid, log  # the same worker answered
    first_part, second_part = log.split("TEST second starts")
    second_part, third_part = second_part.split("TEST third starts")
    assert "loading the classifier reference-2023-11-19" in first_part, log
    assert "loading the learned segmenter" in first_part, log
    assert "loading" not in second_part, log  # the models stayed loaded
    assert f"started the Python worker (PID {first_pid}" in first_part and "started" not in second_part

    third_pid, error = reported(log, "third")
    assert error == "" and third_pid not in (0, first_pid), log
    assert f"the Python worker (PID {first_pid}) had stopped" in third_part, log
    assert f"started the Python worker (PID {third_pid}" in third_part, log
    for run in ("first", "second", "third"):
        assert read_rows(tmp_path / run / "scene" / "results.csv") == cli_rows, run
        summary = json.loads((tmp_path / run / "scene" / "summary.json").read_text())
        assert summary["pixel_size_um"] == pytest.approx(small_scene.spec.pixel_size_um), run

    assert wait_until_gone(third_pid), "the worker outlived ImageJ"
    opened = (tmp_path / "opened.txt").read_text().splitlines() if (tmp_path / "opened.txt").exists() else []
    # every TIFF the worker touched is its own label image (written, then checked): the image came
    # through its input, never through a file
    assert all(Path(line.split(" ", 2)[2]).name in ("labels.tif", ".labels.tif.partial.tif") for line in opened), opened
    assert any(line.endswith("labels.tif") for line in opened), opened  # the hook saw them


def test_the_worker_stops_when_imagej_is_killed(x_display, plugin_jar, tmp_path, small_scene, reference_model_path):
    scene = write_scene(tmp_path / "scene.tif", small_scene.spec)
    macro = (macro_run(scene, tmp_path / "out", "only") + 'wait(600000);\n')
    command, env = imagej_command(tmp_path, plugin_jar, macro, reference_model_path.parent)
    imagej = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in imagej.stdout:
            lines.append(line)
            if line.startswith("TEST only pid="):
                break
        pid, error = reported("".join(lines), "only")
        assert error == "" and alive(pid), "".join(lines)
    finally:
        imagej.send_signal(signal.SIGKILL)  # no shutdown hook runs: the worker sees its input close
        imagej.wait(30)
    assert wait_until_gone(pid), "the worker outlived a killed ImageJ"


def never_cancelled():
    from jpype import JImplements, JOverride

    @JImplements("microcrystalnet.fiji.Progress")
    class NeverCancelled:
        @JOverride
        def update(self, fraction, stage):
            pass

        @JOverride
        def isCancelled(self):
            return False

    return NeverCancelled()


def test_esc_stops_the_request_and_the_worker_answers_the_next(imagej1, tmp_path, small_scene):
    from jpype import JException

    resident_backend = jimport("microcrystalnet.fiji.ResidentBackend")
    resident = resident_backend.forPython(sys.executable)
    settings = jimport("microcrystalnet.fiji.AnalyzeCrystals").settingsJson(
        "reference-2023-11-19", 0.5, 0.25, 40.0, None, None, None, False, True, "nlm,n2v,unsharp,opening,closing", "",
        "Default", "", "")
    image = imagej1.openImage(str(write_scene(tmp_path / "scene.tif", small_scene.spec)))

    def analysed_and_removed() -> bool:
        """Whether an analysis wrote its results (removed after, as the Fiji command does)."""
        folder = Path(str(resident.analyze(image, settings, False, never_cancelled())))
        written = (folder / "RoiSet.zip").is_file()
        shutil.rmtree(folder.parent)
        return written

    assert analysed_and_removed()
    pid = str(resident_backend.workerPid())
    stages: list = []
    started = time.perf_counter()
    with pytest.raises(JException) as raised:
        resident.analyze(image, settings, False, cancelling_progress(stages))
    assert "Cancelled" in str(raised.type) + str(raised.value) and stages and time.perf_counter() - started < 30
    assert str(resident_backend.workerPid()) == pid  # stopped at a stage: the worker and its models stay
    assert analysed_and_removed()
    blank = tmp_path / "blank.tif"
    tifffile.imwrite(blank, np.full((128, 128), 9, np.uint8))
    with pytest.raises(JException) as raised:  # the worker's message reaches the user; the worker goes on
        resident.analyze(imagej1.openImage(str(blank)), settings, False, never_cancelled())
    assert "blank.tif: the image is blank (every pixel is 9)" in str(raised.value)
    assert str(resident_backend.workerPid()) == pid
    resident_backend.stopWorker()
    assert str(resident_backend.workerPid()) == "" and wait_until_gone(int(pid))
