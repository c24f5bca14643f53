"""`microcrystalnet batch`: killed part-way and resumed, a corrupt file reported, Dask gives the same results."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3
import numpy as np
import pytest
import tifffile

from microcrystalnet.classes import CRYSTAL_CLASSES, RESULT_CODES
from microcrystalnet.results import PROBABILITY_COLUMNS
from microcrystalnet.synth import SceneSpec, render_scene

GOOD_IMAGES = 5


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sem")
    for index in range(GOOD_IMAGES):
        scene = render_scene(SceneSpec(shape=(512, 512), pixel_size_um=0.02, seed=300 + index))
        tifffile.imwrite(folder / f"sample{index}.tif", scene.image, imagej=True, resolution=(50, 50),
                         metadata={"unit": "um"})
    (folder / "corrupt.tif").write_bytes(b"II*\x00" + bytes(200))
    (folder / "notes.txt").write_text("not an image")
    return folder


def batch(input_folder: Path, out: Path, *options: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "microcrystalnet", "batch", str(input_folder), "--out", str(out),
                             "--no-download", "--no-overlay", *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def env(reference_model_path) -> dict[str, str]:
    return {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}


def batch_with_an_image_finished(input_folder: Path, out: Path, env: dict[str, str]) -> subprocess.Popen:
    """A serial batch, still running, once its first image is finished."""
    run = batch(input_folder, out, "--workers", "0", env=env)
    deadline = time.monotonic() + 300
    while not list(out.glob("sample*/summary.json")):
        assert run.poll() is None, run.communicate()[1]
        assert time.monotonic() < deadline, "no image finished in 300 s"
        time.sleep(0.05)
    return run


@pytest.fixture(scope="module")
def resumed_batch(input_folder, env, tmp_path_factory) -> Path:
    """A serial batch killed (SIGKILL) after its first finished image, then run again."""
    out = tmp_path_factory.mktemp("batch") / "out"
    first = batch_with_an_image_finished(input_folder, out, env)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    finished_before = {path.parent.name: path.stat().st_mtime_ns for path in out.glob("sample*/summary.json")}
    assert 1 <= len(finished_before) < GOOD_IMAGES, "the kill came too late to test resuming"
    second = batch(input_folder, out, "--workers", "0", env=env)
    _, log = second.communicate(timeout=600)
    assert second.returncode == 1, log  # 1: some images (the corrupt one) could not be analysed
    to_do = GOOD_IMAGES + 1 - len(finished_before)
    assert f"{to_do} image(s) to analyse, {len(finished_before)} already finished" in log
    assert len(re.findall(r"sample\d\.tif: \d+ crystals \(", log)) == to_do - 1  # no terminal: a line per image
    for name, mtime in finished_before.items():  # finished images were not analysed again
        assert (out / name / "summary.json").stat().st_mtime_ns == mtime
    return out


def test_a_batch_asked_to_stop_keeps_what_it_finished_writes_its_tables_and_lets_go_of_the_folder(
        input_folder, env, tmp_path):
    """SIGTERM (Fiji's Esc, a job scheduler) ends a batch as Ctrl-C does."""
    out = tmp_path / "out"
    run = batch_with_an_image_finished(input_folder, out, env)
    run.send_signal(signal.SIGTERM)
    _, log = run.communicate(timeout=120)
    assert run.returncode == 130 and "interrupted" in log, log
    finished = sorted(path.parent.name for path in out.glob("sample*/summary.json"))
    assert [row["Image"] for row in read_csv(out / "batch_images.csv")] == [f"{name}.tif" for name in finished]
    assert not (out / ".microcrystalnet-batch.lock").exists()


def test_a_killed_batch_resumes_with_every_good_image_done_once_and_the_corrupt_one_reported(resumed_batch):
    out = resumed_batch
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [f"sample{i}" for i in range(GOOD_IMAGES)]
    assert not list(out.glob(".*partial*")), "half-written folders of the killed run are left"
    errors = read_csv(out / "batch_errors.csv")
    assert [row["Image"] for row in errors] == ["corrupt.tif"] and "cannot be read" in errors[0]["Error"]
    images = read_csv(out / "batch_images.csv")
    assert [row["Image"] for row in images] == [f"sample{i}.tif" for i in range(GOOD_IMAGES)]
    crystals = read_csv(out / "batch_results.csv")
    for row in images:
        per_image = read_csv(out / Path(row["Image"]).stem / "results.csv")
        assert int(row["Crystals"]) == len(per_image) > 0
        assert [r["Name"] for r in crystals if r["Image"] == row["Image"]] == [r["Name"] for r in per_image]
        assert sum(int(row[f"Count_{code}"]) for code in RESULT_CODES) == len(per_image)
        assert row["Unit"] == "um" and float(row["PixelSize_um"]) == pytest.approx(0.02)
        summary = json.loads((out / Path(row["Image"]).stem / "summary.json").read_text())
        assert row["Notices"] == " | ".join(summary["notices"])


#: the classifier's outputs: a Dask worker runs torch on one thread, the serial batch on every
#: core, and on some CPUs (an Intel Xeon here) a convolution then sums in another order: the
#: probabilities differ in float32's last digits (1e-9 to 1e-7); everything else is identical
NETWORK_OUTPUT_COLUMNS = ("Confidence", *PROBABILITY_COLUMNS)


def test_the_same_batch_on_a_local_dask_cluster_gives_identical_results(resumed_batch, input_folder, env,
                                                                        tmp_path):
    run = batch(input_folder, tmp_path / "dask", "--workers", "2", env=env)
    _, log = run.communicate(timeout=900)
    assert run.returncode == 1, log
    assert "Dask: 2 worker(s)" in log
    for table in ("batch_results.csv", "batch_images.csv", "batch_errors.csv"):
        ours, serial = read_csv(tmp_path / "dask" / table), read_csv(resumed_batch / table)
        if table == "batch_images.csv":  # seconds differ from run to run
            for row in ours + serial:
                row.pop("Seconds")
        assert len(ours) == len(serial), table
        for our_row, serial_row in zip(ours, serial):
            for column in NETWORK_OUTPUT_COLUMNS:
                if column in serial_row:
                    assert float(our_row.pop(column)) == pytest.approx(float(serial_row.pop(column)), abs=1e-6)
            assert our_row == serial_row, table
    again = batch(input_folder, tmp_path / "dask", "--workers", "2", env=env)
    _, log = again.communicate(timeout=900)
    assert f"1 image(s) to analyse, {GOOD_IMAGES} already finished" in log  # only the corrupt one is retried


def test_batch_usage_errors(tmp_path, env):
    run = batch(tmp_path / "absent", tmp_path / "out", env=env)
    _, log = run.communicate(timeout=120)
    assert run.returncode == 2 and "no such folder" in log
    (tmp_path / "empty").mkdir()
    run = batch(tmp_path / "empty", tmp_path / "out", env=env)
    _, log = run.communicate(timeout=120)
    assert run.returncode == 2 and "holds no images" in log


def screenshot(page: Path, target: Path) -> np.ndarray:
    """The page as a real headless browser (Chromium) renders it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is needed to render the reports (scripts/test installs it: apt-get install chromium)"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1200,2400", f"--screenshot={target}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert target.is_file(), done.stderr[-2000:]
    return np.asarray(imageio.v3.imread(target))[..., :3]


def shows_colour(pixels: np.ndarray, colour_hex: str, at_least: int = 200) -> bool:
    colour = np.array([int(colour_hex[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(pixels.astype(int) - colour) <= 6, axis=-1))) >= at_least


def test_image_and_batch_reports_render_in_a_browser(resumed_batch, tmp_path):
    out = resumed_batch
    for page in [out / "batch_report.html", out / "sample0" / "report.html"]:
        text = page.read_text()
        pictures = re.findall(r"<img src='([^']+)'", text)
        assert pictures and all((page.parent / name).is_file() for name in pictures), page
        pixels = screenshot(page, tmp_path / f"{page.parent.name}.png")
        assert pixels.shape[:2] == (2400, 1200) and pixels.std() > 10
        for crystal_class in CRYSTAL_CLASSES:  # the plots drew every class in its colour
            assert shows_colour(pixels, crystal_class.colour_hex), (page, crystal_class.code)
    batch_page = (out / "batch_report.html").read_text()
    assert "corrupt.tif" in batch_page and "sample4/report.html" in batch_page
    image_page = (out / "sample0" / "report.html").read_text()
    assert "size_distributions.png" in image_page and "snr.png" in image_page and "SNR (dB)" in image_page
