"""Never lose a user's file (issue 12), through the real command line.

The reliability tester's reproductions are refused with every byte of every file kept; two
batches into one folder never touch each other's work; a batch killed at any moment, inside the
finishing renames included, ends after reruns with every image done once and nothing left over;
the batch tables always hold every finished image, and a damaged result folder is redone.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile

from microcrystalnet.batch import run_batch
from microcrystalnet.io.batch_lock import LOCK_NAME, lock_owner
from microcrystalnet.io.result_folder import OutputWriteError
from microcrystalnet.synth import SceneSpec, render_scene

IMAGES = ("sample0", "sample1", "sample2")
#: small, quick runs: one image after another in one process, no overlay, the model from ../shared
FAST = ("--no-overlay", "--no-download")
SERIAL = ("--workers", "0", *FAST)


def write_scene(path: Path, seed: int) -> None:
    scene = render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=seed))
    tifffile.imwrite(path, scene.image, imagej=True, resolution=(25, 25), metadata={"unit": "um"})


@pytest.fixture(scope="module")
def env(reference_model_path) -> dict[str, str]:
    return {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sem")
    for seed, name in enumerate(IMAGES, start=50):
        write_scene(folder / f"{name}.tif", seed)
    return folder


def start(*arguments: str | Path, env: dict[str, str], crash_at: str | None = None, **options) -> subprocess.Popen:
    if crash_at:
        env = {**env, "MICROCRYSTALNET_TEST_CRASH_AT": crash_at}
    return subprocess.Popen([sys.executable, "-m", "microcrystalnet", *map(str, arguments)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **options)


def run(*arguments: str | Path, env: dict[str, str], crash_at: str | None = None) -> tuple[int, str]:
    process = start(*arguments, env=env, crash_at=crash_at)
    _, log = process.communicate(timeout=600)
    return process.returncode, log


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (links as their target's name)."""
    return {str(path.relative_to(folder)): os.readlink(path) if path.is_symlink() else
            hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if not path.is_dir()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if ".partial-" in p.name or ".previous-" in p.name
                  or p.name == LOCK_NAME)


def test_the_reproductions_of_bug_1_are_refused_and_every_byte_is_kept(tmp_path, input_folder, env):
    data = tmp_path / "d"
    (data / "s").mkdir(parents=True)
    shutil.copy(input_folder / "sample0.tif", data / "s" / "s.tif")
    shutil.copy(input_folder / "sample1.tif", data / "s" / "raw2.tif")
    (data / "s" / "notes.txt").write_text("x\n")
    before = fingerprint(data)

    status, log = run("analyze", data / "s" / "s.tif", "--out", data, *FAST, env=env)
    assert status == 2, log  # 2: refused, see the README's exit statuses
    assert f"{data / 's'} exists and was not written by MicroCrystalNet" in log and "--out" in log
    assert "Traceback" not in log
    assert fingerprint(data) == before

    status, log = run("batch", data, "--recursive", "--out", data, *SERIAL, env=env)
    assert status == 2, log
    assert f"{data / 's'} exists and was not written by MicroCrystalNet" in log and "Traceback" not in log
    assert fingerprint(data) == before
    assert sorted(p.name for p in data.iterdir()) == ["s"]  # no lock, table or result left behind


def test_an_output_folder_that_is_a_file_gives_a_message_not_a_traceback(tmp_path, input_folder, env):
    blocker = tmp_path / "results"
    blocker.write_text("mine")
    status, log = run("analyze", input_folder / "sample0.tif", "--out", blocker, *FAST, env=env)
    assert status == 1, log
    assert f"cannot write the results to {blocker}: a file is in the way" in log and "Traceback" not in log
    with pytest.raises(OutputWriteError, match=f"cannot write the results to {blocker}"):
        run_batch([input_folder / "sample0.tif"], blocker, workers=0, download=False)
    assert blocker.read_text() == "mine"


def own_copy(input_folder: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in IMAGES:
        shutil.copy(input_folder / f"{name}.tif", folder)
    return folder


def test_a_second_batch_into_the_same_folder_refuses_at_once_or_waits(tmp_path, input_folder, env):
    folder = own_copy(input_folder, tmp_path / "sem")  # results beside the images: --out is the input folder
    first = start("batch", folder, "--recursive", "--out", folder, *SERIAL, env=env)
    try:
        deadline = time.monotonic() + 300
        while lock_owner(folder / LOCK_NAME) is None:  # the file exists a moment before it names its owner
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # holds the lock, alive, until the others have been seen to react
        status, log = run("batch", folder, "--recursive", "--out", folder, *SERIAL, env=env)
        assert status == 2, log
        assert f"{folder} is in use by another batch (process {first.pid}" in log and "--wait" in log
        assert "Traceback" not in log
        waiting = start("batch", folder, "--recursive", "--out", folder, *SERIAL, "--wait", env=env)
        waited_log = ""
        while "waiting for it to finish" not in waited_log:
            line = waiting.stderr.readline()
            assert line, waited_log
            waited_log += line
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_log = first.communicate(timeout=600)
    assert first.returncode == 0, first_log
    assert f"{len(IMAGES)} image(s) to analyse, 0 already finished" in first_log
    waited_log += waiting.communicate(timeout=600)[1]
    assert waiting.returncode == 0, waited_log
    assert f"0 image(s) to analyse, {len(IMAGES)} already finished" in waited_log
    assert [row["Image"] for row in read_csv(folder / "batch_images.csv")] == [f"{name}.tif" for name in IMAGES]
    assert leftovers(folder) == []


def finished_times(out: Path) -> dict[str, int]:
    return {path.parent.name: path.stat().st_mtime_ns for path in out.glob("*/summary.json")
            if not path.parent.name.startswith(".")}


def assert_finished_images_were_not_redone(before: dict[str, int], out: Path) -> None:
    after = finished_times(out)
    assert {name: after.get(name) for name in before} == before


def kill_while_writing(process: subprocess.Popen, out: Path, chance: random.Random) -> None:
    """SIGKILL ``process`` at a random moment after it began to write a result folder."""
    deadline = time.monotonic() + 300
    while not list(out.glob(f".*.partial-{process.pid}")):
        if process.poll() is not None or time.monotonic() > deadline:
            return
        time.sleep(0.01)
    time.sleep(chance.uniform(0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.communicate()


@pytest.fixture(scope="module")
def recovered_batch(input_folder, env, tmp_path_factory):
    """A batch (results beside the images, sub-folders included) killed again and again, inside
    the finishing renames too, and rerun until done; its folder, the inputs' fingerprint before,
    and the log of each run."""
    folder = own_copy(input_folder, tmp_path_factory.mktemp("killed") / "sem")
    inputs = fingerprint(folder)
    batch = ("batch", folder, "--recursive", "--out", folder, *SERIAL)
    logs: dict[str, str] = {}
    status, logs["crash after writing"] = run(*batch, env=env, crash_at="written")
    assert status == -signal.SIGKILL and finished_times(folder) == {}
    assert [name.split(".partial-")[0] for name in leftovers(folder) if ".partial-" in name] == [".sample0"]

    seed = int(os.environ.get("MICROCRYSTALNET_TEST_SEED", time.time_ns() % 10_000))
    print(f"random kill times from seed {seed} (MICROCRYSTALNET_TEST_SEED={seed} repeats them)")
    before = finished_times(folder)
    kill_while_writing(start(*batch, env=env), folder, random.Random(seed))
    assert_finished_images_were_not_redone(before, folder)

    before = finished_times(folder)
    status, logs["resumed"] = run(*batch, env=env)
    assert status == 0, logs["resumed"]
    assert_finished_images_were_not_redone(before, folder)
    assert sorted(finished_times(folder)) == list(IMAGES)

    status, logs["crash between the renames"] = run(*batch, "--force", env=env, crash_at="previous-moved")
    assert status == -signal.SIGKILL and not (folder / "sample0").exists()
    status, logs["crash after the swap"] = run(*batch, "--force", env=env, crash_at="final-placed")
    assert status == -signal.SIGKILL
    status, logs["cleaned"] = run(*batch, env=env)
    assert status == 0, logs["cleaned"]
    return folder, inputs, logs


def test_a_batch_killed_at_any_moment_ends_with_every_image_done_once_and_nothing_left_over(recovered_batch):
    folder, inputs, logs = recovered_batch
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == list(IMAGES)
    assert leftovers(folder) == []
    assert {name: digest for name, digest in fingerprint(folder).items() if name in inputs} == inputs
    assert "took over the lock of process" in logs["crash after the swap"]  # that of the run killed before
    assert "put back the last complete result" in logs["crash after the swap"]
    assert "after replacing it" in logs["cleaned"]
    assert f"0 image(s) to analyse, {len(IMAGES)} already finished" in logs["cleaned"]
    assert "own results" in logs["cleaned"] and "left out of the inputs" in logs["cleaned"]
    images = read_csv(folder / "batch_images.csv")
    assert [row["Image"] for row in images] == [f"{name}.tif" for name in IMAGES]  # each exactly once
    crystals = read_csv(folder / "batch_results.csv")
    for row in images:
        per_image = read_csv(folder / Path(row["Image"]).stem / "results.csv")
        assert int(row["Crystals"]) == len(per_image) > 0
        assert [r["Name"] for r in crystals if r["Image"] == row["Image"]] == [r["Name"] for r in per_image]


def test_a_subset_rerun_keeps_every_image_in_the_tables_and_a_damaged_folder_is_redone(recovered_batch, env,
                                                                                        input_folder, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(recovered_batch[0], out)
    (out / "sample0" / "results.csv").unlink()
    summary = out / "sample1" / "summary.json"
    summary.write_bytes(summary.read_bytes()[:100])
    subset = tmp_path / "subset"
    subset.mkdir()
    shutil.copy(input_folder / "sample1.tif", subset)
    status, log = run("batch", subset, "--out", out, *SERIAL, env=env)
    assert status == 0, log
    assert f"{out / 'sample1'}: damaged result" in log and "analysing it again" in log
    assert "1 image(s) to analyse, 0 already finished" in log
    assert f"{out / 'sample0'}: left out of the batch tables" in log and "results.csv is missing" in log
    images = read_csv(out / "batch_images.csv")  # sample2 is not in this run, and stays in the tables
    assert [row["Image"] for row in images] == ["sample1.tif", "sample2.tif"]
    assert {row["Image"] for row in read_csv(out / "batch_results.csv")} == {"sample1.tif", "sample2.tif"}


def test_ctrl_c_on_a_dask_batch_prints_one_line_and_keeps_finished_images(tmp_path, input_folder, env):
    out, many = tmp_path / "out", tmp_path / "many"  # enough images that the batch is still running at Ctrl-C
    many.mkdir()
    for copy in range(12):
        shutil.copy(input_folder / f"sample{copy % 3}.tif", many / f"sample{copy}.tif")
    # a group of its own, as a terminal's Ctrl-C reaches every process; SIGINT as a terminal gives it (a JVM
    # started by an earlier test leaves it ignored in this process, and children inherit that)
    process = start("batch", many, "--out", out, "--workers", "1", "--no-overlay", "--no-download", env=env,
                    start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not finished_times(out):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, log = process.communicate(timeout=300)
    assert process.returncode == 130, log
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert log.strip().splitlines()[-1].startswith("interrupted; results of finished images are complete")
    per_image = re.compile(r"^sample\d+\.tif: ")  # a line for each image finished (and its notices): no terminal
    assert len([line for line in log.strip().splitlines() if not per_image.match(line)]) <= 4, log
    assert finished_times(out)  # the finished images are kept
