"""``microcrystalnet train-segmenter`` end to end: images and outlines in, a model file out."""

from __future__ import annotations

import hashlib
import re

import pytest
import tifffile

from microcrystalnet.io.outputs import write_roiset
from microcrystalnet.outline import outlines_from_labels
from microcrystalnet.segment.learned.model_file import load_segmenter_model

from .test_cli import run_cli

OUTLINED = 10


@pytest.fixture
def outlined_scene(tmp_path, small_scene):
    """The small synthetic scene as a TIFF, its first crystals as a Fiji RoiSet.zip (a user's few
    outlines) and all its crystals as a label image."""
    tifffile.imwrite(tmp_path / "scene.tif", small_scene.image)
    tifffile.imwrite(tmp_path / "labels.tif", small_scene.labels.astype("uint16"))
    few = small_scene.labels.copy()
    few[few > OUTLINED] = 0
    rows = [{"Crystal": n, "Name": f"{n:04d}", "Class": "RES", "Confidence": 1.0} for n in range(1, OUTLINED + 1)]
    write_roiset(tmp_path / "RoiSet.zip", outlines_from_labels(few), rows)
    return tmp_path


def test_trains_a_loadable_model_that_names_its_outlines_and_replaces_only_models(outlined_scene):
    folder = outlined_scene
    model_path = folder / "crystals.pt"
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "RoiSet.zip", "--out", model_path,
                   "--from", "scratch", "--steps", "3")
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert f"wrote {model_path} (sha256 {digest})" in done.stdout
    assert f"--segmenter learned --segmenter-model {model_path}" in done.stdout
    assert re.search(r"training: step 3/3, loss \d", done.stderr)
    model = load_segmenter_model(model_path)
    (source,) = model.training["data"]
    assert source["outlines"].endswith("RoiSet.zip") and source["image"].endswith("scene.tif")
    assert source["outlined_crystals"] == OUTLINED and source["complete_outlines"] is False
    assert model.training["steps"] == 3 and model.training["base_model"] is None
    # judged by the shipped network, as the analysis judges, also for a model trained from scratch
    assert (source["crystal_contrast"]["crystals"], source["crystal_contrast"]["source"]) == (
        "bright", "judged from the image")
    assert "thresholds" not in model.training  # partial outlines: no F1 to choose thresholds by

    # fine-tune it on every outline, writing over the model file: a model may be replaced
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif", "--out", model_path,
                   "--from", model_path, "--complete-outlines", "--steps", "2", "--crystal-size-px", "36",
                   "--progress", "machine")
    assert done.returncode == 0, done.stderr
    tuned = load_segmenter_model(model_path)
    # complete outlines: the thresholds are chosen on them, said and recorded
    assert tuned.training["thresholds"]["chosen_on"] == "1 outlined image(s) (complete outlines)"
    assert tuned.training["thresholds"]["replaced"] == model.thresholds.as_dict()
    assert (f"watershed thresholds: seed {tuned.thresholds.seed:g}, foreground {tuned.thresholds.foreground:g}"
            in done.stderr), done.stderr
    choosing = "choosing the watershed thresholds: image 1 of 1"
    assert choosing in done.stderr and f"MCN-PROGRESS 1.0000 {choosing}" in done.stdout.splitlines()
    assert done.stdout.index("training: step 2/2") < done.stdout.index(choosing)
    assert tuned.training["base_model"]["sha256"] == digest
    assert tuned.training["data"][0]["complete_outlines"] is True
    assert tuned.training["data"][0]["crystal_diameter_px"] == 36.0
    assert tuned.training["replay"] and tuned.training["replay"][0]["data"] == "synthetic scenes"


def test_images_of_dark_crystals_are_learned_from_inverted_and_say_so(outlined_scene, small_scene):
    folder = outlined_scene
    tifffile.imwrite(folder / "dark.tif", (small_scene.image.max() - small_scene.image).astype(small_scene.image.dtype))
    done = run_cli("train-segmenter", folder / "dark.tif", "--outlines", folder / "RoiSet.zip", "--out",
                   folder / "dark.pt", "--from", "scratch", "--steps", "1", "--crystal-contrast", "dark")
    assert done.returncode == 0, done.stderr
    assert "dark.tif: dark crystals (set): learned from with the gray levels inverted" in done.stderr
    (source,) = load_segmenter_model(folder / "dark.pt").training["data"]
    assert source["crystal_contrast"] == {"crystals": "dark", "source": "crystal_contrast"}
    # not set: judged (by the shipped network, though this model starts from scratch)
    done = run_cli("train-segmenter", folder / "dark.tif", "--outlines", folder / "RoiSet.zip", "--out",
                   folder / "judged.pt", "--from", "scratch", "--steps", "1")
    assert done.returncode == 0, done.stderr
    assert "dark.tif: dark crystals (judged): learned from with the gray levels inverted" in done.stderr
    (source,) = load_segmenter_model(folder / "judged.pt").training["data"]
    assert (source["crystal_contrast"]["crystals"], source["crystal_contrast"]["source"]) == (
        "dark", "judged from the image")


def test_trains_on_the_device_asked_for_and_refuses_one_that_is_not_there(outlined_scene):
    folder = outlined_scene
    arguments = ("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif", "--from", "scratch",
                 "--steps", "1")
    done = run_cli(*arguments, "--out", folder / "on-cpu.pt", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "training from scratch (1 steps, on cpu)" in done.stderr
    assert load_segmenter_model(folder / "on-cpu.pt").training["device"] == "cpu"
    done = run_cli(*arguments, "--out", folder / "on-gpu.pt", "--device", "cuda",
                   env_extra={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, on any machine
    assert done.returncode == 2, done.stderr
    assert "train-segmenter device 'cuda' was asked for, but torch sees no CUDA GPU" in done.stderr
    assert not (folder / "on-gpu.pt").exists()


def test_refuses_to_overwrite_a_file_that_is_not_a_model(outlined_scene):
    folder = outlined_scene
    other = folder / "notes.pt"
    other.write_bytes(b"my notes, not a model")
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif", "--out", other,
                   "--from", "scratch", "--steps", "1")
    assert done.returncode == 2 and "not a segmenter model file" in done.stderr
    assert other.read_bytes() == b"my notes, not a model"


def test_refuses_images_and_outlines_that_do_not_pair_up(outlined_scene):
    folder = outlined_scene
    done = run_cli("train-segmenter", folder / "scene.tif", folder / "scene.tif", "--outlines", folder / "labels.tif",
                   "--out", folder / "model.pt", "--from", "scratch", "--steps", "1")
    assert done.returncode == 2 and "2 images but 1 outline files" in done.stderr
    assert not (folder / "model.pt").exists()


def test_outlines_drawn_as_a_mask_are_refused_with_the_option_that_reads_them(outlined_scene):
    folder = outlined_scene
    labels = tifffile.imread(folder / "labels.tif")
    tifffile.imwrite(folder / "mask.tif", ((labels > 0) * 255).astype("uint8"))
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "mask.tif",
                   "--out", folder / "model.pt", "--from", "scratch", "--steps", "1")
    assert done.returncode == 2 and "binary_4conn" in done.stderr and "(--outlines-kind)" in done.stderr
    assert not (folder / "model.pt").exists()


def test_a_model_that_cannot_be_read_exits_3(outlined_scene):
    folder = outlined_scene
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif",
                   "--out", folder / "model.pt", "--from", folder / "labels.tif", "--steps", "1")
    assert done.returncode == 3 and "is not a MicroCrystalNet segmenter model" in done.stderr
    assert not (folder / "model.pt").exists()


def test_a_crystal_size_in_um_needs_a_pixel_size(outlined_scene):
    folder = outlined_scene
    arguments = ("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif", "--out",
                 folder / "model.pt", "--from", "scratch", "--steps", "1", "--crystal-size-um", "1.44", "-q")
    done = run_cli(*arguments)
    assert done.returncode == 2 and "has no pixel size" in done.stderr and not (folder / "model.pt").exists()
    done = run_cli(*arguments, "--pixel-size-nm", "40")
    assert done.returncode == 0, done.stderr
    (source,) = load_segmenter_model(folder / "model.pt").training["data"]
    assert source["crystal_diameter_px"] == pytest.approx(36.0) and source["pixel_size_um"] == pytest.approx(0.04)


def test_complete_outlines_that_leave_out_the_crystals_cut_by_the_edge_are_learned_from_off_the_edge_only(
        outlined_scene, small_scene):
    from skimage.segmentation import clear_border

    folder = outlined_scene
    tifffile.imwrite(folder / "off-edge.tif", clear_border(small_scene.labels).astype("uint16"))
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "off-edge.tif", "--out",
                   folder / "model.pt", "--from", "scratch", "--steps", "1", "--complete-outlines",
                   "--crystal-size-px", "36")
    assert done.returncode == 0, done.stderr
    assert "no outlined crystal touches the image edge" in done.stderr and "--exclude-border" in done.stderr
    (source,) = load_segmenter_model(folder / "model.pt").training["data"]
    assert source["edge_band_px"] == 36.0
    # outlines with crystals on the edge: everything off the outlines is background
    done = run_cli("train-segmenter", folder / "scene.tif", "--outlines", folder / "labels.tif", "--out",
                   folder / "model.pt", "--from", "scratch", "--steps", "1", "--complete-outlines")
    assert done.returncode == 0 and "touches the image edge" not in done.stderr, done.stderr
    assert load_segmenter_model(folder / "model.pt").training["data"][0]["edge_band_px"] == 0.0
