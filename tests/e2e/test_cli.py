"""The command line, end to end: real files in, real model, all outputs out."""

import csv
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tifffile

from microcrystalnet.io.outputs import OUTPUT_NAMES
from microcrystalnet.results import RESULT_COLUMNS
from microcrystalnet.segment.learned.model_file import DEFAULT_MODEL_SHA256


def run_cli(*arguments, env_extra=None, timeout=600):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "microcrystalnet", *map(str, arguments)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def scene_tiff(tmp_path, small_scene):
    path = tmp_path / "inputs" / "scene.tif"
    path.parent.mkdir()
    size = small_scene.pixel_size_um
    tifffile.imwrite(path, small_scene.image, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    return path


def test_help_documents_every_option():
    for command in ("analyze", "batch", "demo"):
        done = run_cli(command, "--help")
        assert done.returncode == 0
        for option in ("--out", "--pixel-size-nm", "--keep-data-bar", "--model", "--no-download", "--config",
                       "--min-area-um2", "--max-area-um2", "--exclude-border", "--crystal-contrast"):
            assert option in done.stdout, f"{command} --help does not document {option}"


def test_analyze_writes_every_output_and_reports_bad_images(tmp_path, scene_tiff, small_scene, model_dir_env):
    corrupt = scene_tiff.parent / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + b"\x00" * 64)
    out = tmp_path / "results"
    done = run_cli("analyze", scene_tiff, corrupt, "--out", out, "--no-download")
    assert done.returncode == 1, done.stderr
    assert "corrupt.tif" in done.stderr and "cannot be read" in done.stderr
    assert "1 of 2 images could not be analysed" in done.stderr
    folder = out / "scene"
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUT_NAMES)
    assert sorted(p.name for p in out.iterdir()) == ["scene"]  # nothing half-written for the bad image

    with open(folder / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert abs(len(rows) - small_scene.n_crystals) <= 0.2 * small_scene.n_crystals
    assert rows[0]["Name"] == f"0001-{rows[0]['Class'].replace('/', '-')}"
    assert all(abs(sum(float(r[f"Prob_{c}"]) for c in ("RES", "PES", "AA", "RA/SA")) - 1) < 1e-4 for r in rows)
    assert float(rows[0]["Area"]) < 20  # calibrated: um^2, not pixels

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_crystals"] == len(rows) and summary["unit"] == "um"
    assert summary["pixel_size_um"] == pytest.approx(small_scene.pixel_size_um)
    assert summary["model"]["sha256"] == "374967e0e67e26e3a66dedb72fa00cf07ba411f0f36876edf21e4688fad9fcd0"
    assert sum(c["count"] for c in summary["classes"].values()) == len(rows)
    assert {"microcrystalnet", "torch", "numpy"} <= set(summary["versions"])
    assert summary["model"]["run_by"] == "torch" and "tensorflow" not in summary["versions"]  # 6-8 s spared
    assert summary["settings"]["segment"]["backend"] == "learned"
    segmenter = summary["segmentation"]["segmenter"]
    assert (segmenter["backend"], segmenter["model"], segmenter["sha256"]) == ("learned", "default",
                                                                               DEFAULT_MODEL_SHA256)
    assert segmenter["training"]["data"][0]["data"] == "synthetic scenes"  # the model says what it learned from
    assert segmenter["thresholds"]["min_crystal_score"] > 0
    contrast = summary["segmentation"]["crystal_contrast"]  # judged: bright crystals on dark pores
    assert (contrast["crystals"], contrast["source"]) == ("bright", "judged from the image")
    assert contrast["crystal_score_as_given"] > contrast["crystal_score_inverted"]
    assert contrast["pixel_certainty_as_given"] > contrast["pixel_certainty_inverted"]
    assert contrast["judge_sha256"] == DEFAULT_MODEL_SHA256  # the shipped network judged
    assert {row["Segmenter"] for row in rows} == {f"learned default {DEFAULT_MODEL_SHA256[:12]}"}

    labels = tifffile.imread(folder / "labels.tif")
    assert labels.shape == small_scene.image.shape and labels.max() == len(rows)
    with tifffile.TiffFile(folder / "labels.tif") as tif:
        assert tif.imagej_metadata["unit"] == "um"
    with zipfile.ZipFile(folder / "RoiSet.zip") as archive:
        assert len(archive.namelist()) == len(rows)


def test_analyze_again_replaces_the_results(tmp_path, scene_tiff, model_dir_env):
    out = tmp_path / "results"
    done = run_cli("analyze", scene_tiff, "--out", out, "--no-download", "--exclude-border")
    assert done.returncode == 0, done.stderr
    on_border = json.loads((out / "scene" / "summary.json").read_text())["segmentation"]["statistics"]["dropped"][
        "on_border"]
    assert on_border > 0 and f"; {on_border} touching the border left out) -> " in done.stderr, done.stderr
    done = run_cli("analyze", scene_tiff, "--out", out, "--no-download", "--exclude-border", "--crystal-contrast",
                   "bright", "-q")
    assert done.returncode == 0 and done.stderr.strip() == ""
    summary = json.loads((out / "scene" / "summary.json").read_text())
    assert summary["settings"]["segment"]["exclude_border"] is True
    assert summary["segmentation"]["crystal_contrast"] == {"crystals": "bright", "source": "crystal_contrast"}
    assert sorted(p.name for p in out.iterdir()) == ["scene"]


def test_settings_file_and_invalid_settings(tmp_path, scene_tiff, model_dir_env):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"segment": {"min_crystal_area_um2": 2.0}}))
    out = tmp_path / "results"
    assert run_cli("analyze", scene_tiff, "--out", out, "--config", settings, "--no-download").returncode == 0
    with open(out / "scene" / "results.csv", newline="") as stream:
        assert min(float(row["Area"]) for row in csv.DictReader(stream)) >= 2.0
    settings.write_text(json.dumps({"segment": {"min_crystal_area": 2.0}}))
    done = run_cli("analyze", scene_tiff, "--out", out, "--config", settings)
    assert done.returncode == 2 and "segment.min_crystal_area: unknown setting" in done.stderr
    assert run_cli("analyze", scene_tiff, "--out", out, "--min-area-um2", "5", "--max-area-um2", "1").returncode == 2


def test_missing_model_offline_exits_3_with_instructions(tmp_path, scene_tiff, monkeypatch):
    env = {"MICROCRYSTALNET_MODEL_DIR": "", "MICROCRYSTALNET_CACHE_DIR": str(tmp_path / "empty-cache")}
    done = run_cli("analyze", scene_tiff, "--out", tmp_path / "out", "--no-download", env_extra=env)
    assert done.returncode == 3
    assert "raw.githubusercontent.com" in done.stderr and "374967e0e67e26e3" in done.stderr
    assert not (tmp_path / "out" / "scene").exists()


def test_demo_produces_outputs_and_an_honest_report(tmp_path, model_dir_env):
    out = tmp_path / "demo"
    done = run_cli("demo", "--out", out, "--size", "512", "--no-download")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "demo_report.json").read_text())
    assert "synthetic" in report["note"]
    assert report["segmentation"]["f1"] >= 0.85
    assert sorted(p.name for p in (out / "synthetic_sem").iterdir()) == sorted(OUTPUT_NAMES)
    assert (out / "input" / "synthetic_sem.tif").is_file() and (out / "input" / "ground_truth_labels.tif").is_file()
    assert "segmentation F1" in done.stderr
    confusion = report["classification"]["confusion_rows_true_columns_predicted"]
    assert sum(sum(row.values()) for row in confusion.values()) == report["classification"]["matched_crystals"]
    assert np.isfinite(report["classification"]["agreement"])
    (out / "input" / "ground_truth_classes.csv").write_text("my corrected classes\n")  # now the user's file
    again = run_cli("demo", "--out", out, "--size", "512", "--no-download")
    assert again.returncode == 2 and "ground_truth_classes.csv" in again.stderr and "never replaces" in again.stderr
    assert (out / "input" / "ground_truth_classes.csv").read_text() == "my corrected classes\n"


def test_noise2void_train_denoise_and_use_in_analyze(tmp_path, small_scene, small_scene_file, n2v_model_trained_by_cli,
                                                     model_dir_env):
    scene_path = small_scene_file
    model = n2v_model_trained_by_cli  # by `n2v train SCENE --out n2v.zip --steps 20`
    assert zipfile.is_zipfile(model)
    assert json.loads(model.with_name("n2v.zip.json").read_text())["trained_after"] == ["nlm"]
    denoised = run_cli("n2v", "denoise", scene_path, "--model", model, "--out", tmp_path / "denoised", "-q")
    assert denoised.returncode == 0, denoised.stderr[-2000:]
    assert denoised.stderr == ""  # careamics' and lightning's information and warnings were its lines
    output = tifffile.imread(tmp_path / "denoised" / "scene_n2v.tif")
    assert output.shape == small_scene.image.shape and output.dtype == np.float32
    with tifffile.TiffFile(tmp_path / "denoised" / "scene_n2v.tif") as tif:
        assert tif.imagej_metadata["unit"] == "um"
    (tmp_path / "mine").mkdir()
    for name in ("scene_n2v.tif", "n2v.zip"):
        (tmp_path / "mine" / name).write_text("my own file")
    refused = [run_cli("n2v", "denoise", scene_path, "--model", model, "--out", tmp_path / "mine", "-q"),
               run_cli("n2v", "train", scene_path, "--out", tmp_path / "mine" / "n2v.zip", "--steps", "1", "-q")]
    for done, name in zip(refused, ("scene_n2v.tif", "n2v.zip")):
        assert done.returncode == 2 and name in done.stderr and "never replaces" in done.stderr
        assert (tmp_path / "mine" / name).read_text() == "my own file"
    analysed = run_cli("analyze", scene_path, "--out", tmp_path / "out", "--n2v-model", model, "--no-download",
                       "--no-overlay")
    assert analysed.returncode == 0, analysed.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "scene" / "summary.json").read_text())
    n2v_step = next(step for step in summary["preprocessing"] if step["step"] == "n2v")
    assert n2v_step["applied"] and str(model) in n2v_step["note"] and "caution" not in n2v_step["note"]
    assert "SNR after each preprocessing step" in analysed.stderr and "n2v" in analysed.stderr
    assert not any(chatter in analysed.stderr for chatter in ("GPU available", "litlogger", "lightning"))
    without = run_cli("analyze", scene_path, "--out", tmp_path / "plain", "--preprocess", "none", "--no-download",
                      "--no-overlay", "-q")
    assert without.returncode == 0
    assert [s["step"] for s in json.loads((tmp_path / "plain" / "scene" / "summary.json").read_text())
            ["preprocessing"]] == ["input"]
