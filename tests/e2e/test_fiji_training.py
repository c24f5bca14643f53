"""Train Segmenter from ROIs..., Train Classifier from ROIs... and Batch Analyze Folder... in a real
ImageJ 1.x: crystals outlined in the ROI Manager train models (tiny budgets) that Analyze Crystals...
then uses, and a folder of images (path with spaces) is analysed by the menu command."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tifffile

from microcrystalnet.io.outputs import write_roiset
from microcrystalnet.io.owned_files import claim_output_folder
from microcrystalnet.outline import outlines_from_labels
from microcrystalnet.segment.learned.model_file import load_segmenter_model
from microcrystalnet.synth import SceneSpec

from .test_fiji_command import click, wait_for_dialog, wait_until, write_scene

pytestmark = pytest.mark.imagej

#: the analysis of the tests: the reference classifier from ../shared, results saved
OPTIONS = "classifier=reference-2023-11-19 min_crystal_area=0.25 max_crystal_area=400 exclude_sem_data_bar"
OUTLINED = 30


def jimport(name: str):
    from microcrystalnet.imagej import jimport as imported

    return imported(name)


def last_error() -> str:
    return str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())


@pytest.fixture(scope="module")
def ij(imagej1):
    """ImageJ whose training and batch commands run this Python; Analyze Crystals runs in-process.
    The preferences the commands set (the Analyze dialog's models) are put back afterwards."""
    from microcrystalnet.imagej import register_backend

    field = jimport("ij.Prefs").class_.getDeclaredField("ijPrefs")
    field.setAccessible(True)
    prefs = field.get(None)
    before = {str(key): str(prefs.get(key)) for key in prefs.keySet() if str(key).startswith(".microcrystalnet.")}
    register_backend()
    imagej1.run("Settings...", f"python=[{sys.executable}] backend=In-process model=reference-2023-11-19")
    yield imagej1
    for key in [str(key) for key in prefs.keySet() if str(key).startswith(".microcrystalnet.")]:
        prefs.remove(key)
    for key, value in before.items():
        prefs.put(key, value)


@pytest.fixture
def recorder(ij):
    """The macro recorder, recording (without its window), closed afterwards. A recorder left open
    (closing is what clears ImageJ's one instance) would make a new one a no-op that records nothing."""
    Recorder = jimport("ij.plugin.frame.Recorder")
    if Recorder.getInstance() is not None:
        Recorder.getInstance().close()
    recorder = Recorder(False)
    assert Recorder.record
    yield recorder
    recorder.close()


def analyze_dialog_fields(image) -> tuple[list[str], list[str]]:
    """The text fields and choices the Analyze Crystals dialog shows for ``image`` (then cancelled)."""
    jimport("ij.WindowManager").setCurrentWindow(image.getWindow())
    jimport("ij.IJ").doCommand("Analyze Crystals...")  # as from the menu: the dialog with its remembered values
    dialog = wait_for_dialog("Analyze Crystals")
    texts = [str(field.getText()) for field in dialog.getStringFields()]
    choices = [str(choice.getSelectedItem()) for choice in dialog.getChoices()]
    click(dialog, 1)
    return texts, choices


@pytest.fixture(scope="module")
def outlined(tmp_path_factory, small_scene):
    """The small scene as a calibrated TIFF in a folder with a space, and a RoiSet.zip of its first
    crystals named by their true class ("0001-RES"), as a user outlines and names them."""
    folder = tmp_path_factory.mktemp("fiji training") / "my scenes"
    folder.mkdir()
    image = write_scene(folder / "scene one.tif", small_scene.spec)
    labels = small_scene.labels.copy()
    labels[labels > OUTLINED] = 0
    classes = small_scene.crystal_classes
    rows = [{"Crystal": n, "Name": f"{n:04d}-{classes[n - 1].replace('/', '-')}", "Class": classes[n - 1],
             "Confidence": 1.0} for n in range(1, OUTLINED + 1)]
    write_roiset(folder / "outlines.zip", outlines_from_labels(labels), rows)
    return image, folder / "outlines.zip"


def open_with_outlines(ij, image_path: Path, roiset: Path, keep: int | None = None):
    """The image in front and the ROI Manager holding the outlines (the first ``keep`` of them)."""
    manager = jimport("ij.plugin.frame.RoiManager").getRoiManager()
    manager.reset()
    assert manager.runCommand("Open", str(roiset))
    while keep is not None and manager.getCount() > keep:
        manager.select(manager.getCount() - 1)
        manager.runCommand("Delete")
    image = ij.openImage(str(image_path))
    image.show()
    return image, manager


def results_column(column: str) -> list[str]:
    table = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Results")
    return [str(table.getStringValue(column, row)) for row in range(table.size())]


def train_segmenter_from_rois(ij, outlined, model: Path, options: str):
    """The outlined scene, open with its outlines in the ROI Manager, and the segmenter model that
    *Train Segmenter from ROIs...* wrote to ``model`` with ``options`` (and no error)."""
    image, _ = open_with_outlines(ij, *outlined)
    ij.run(image, "Train Segmenter from ROIs...", f"outlines=[Some crystals] crystal_size=0 {options} "
           f"model_file=[{model}]")
    assert last_error() == ""
    return image, load_segmenter_model(model)


def test_train_segmenter_from_rois_then_analyze_with_it(ij, outlined, tmp_path):
    model = tmp_path / "my crystals.pt"
    image, trained = train_segmenter_from_rois(ij, outlined, model, "steps=2 minutes=0 start_from=default")
    (source,) = trained.training["data"]
    assert source["outlined_crystals"] == OUTLINED and source["complete_outlines"] is False
    assert Path(source["image"]).name == "scene one.tif"  # the model names the image it learned from
    assert source["pixel_size_um"] == pytest.approx(0.04)  # the image's calibration reached the backend
    assert trained.training["steps"] == 2 and trained.training["base_model"] is not None  # fine-tuned the default
    # no crystals= in the macro: auto, judged by the default model (bright crystals on dark pores)
    assert (source["crystal_contrast"]["crystals"], source["crystal_contrast"]["source"]) == ("bright",
                                                                                             "judged from the image")
    texts, choices = analyze_dialog_fields(image)  # the Analyze dialog offers the new model
    assert texts[3] == str(model) and choices[1] == "Learned"  # choice 0: Crystals

    ij.run(image, "Analyze Crystals...", f"{OPTIONS} segmenter=Learned segmenter_model=[{model}] "
           "roi_manager=[Replace existing ROIs] save_results_to=[]")
    assert last_error() == ""
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    segmenters = results_column("Segmenter")
    assert segmenters and set(segmenters) == {f"learned {model.name} {digest[:12]}"}
    image.close()


def test_train_segmenter_learns_dark_crystals_inverted_when_told(ij, outlined, tmp_path):
    image, trained = train_segmenter_from_rois(ij, outlined, tmp_path / "dark.pt",
                                               "crystals=dark steps=1 minutes=0 start_from=scratch")
    (source,) = trained.training["data"]
    assert source["crystal_contrast"] == {"crystals": "dark", "source": "crystal_contrast"}
    image.close()


def test_train_segmenter_refuses_a_file_that_is_not_a_model(ij, outlined, tmp_path):
    image_path, roiset = outlined
    image, _ = open_with_outlines(ij, image_path, roiset, keep=5)
    notes = tmp_path / "notes.pt"
    notes.write_bytes(b"my notes")
    ij.run(image, "Train Segmenter from ROIs...", f"outlines=[Some crystals] steps=1 minutes=0 model_file=[{notes}]")
    assert "not a segmenter model file" in last_error() and notes.read_bytes() == b"my notes"
    # outlines that Analyze Crystals' Add mode named after another open image are not this image's
    other = ij.openImage(str(image_path))
    other.setTitle("other.tif")
    other.show()
    manager = jimport("ij.plugin.frame.RoiManager").getRoiManager()
    for index in range(manager.getCount()):
        manager.rename(index, f"other.tif:{index + 1:04d}-RES")
    ij.run(image, "Train Segmenter from ROIs...", f"steps=1 minutes=0 model_file=[{tmp_path / 'new.pt'}]")
    assert "no crystal outlines in the ROI Manager" in last_error() and not (tmp_path / "new.pt").exists()
    other.close()
    image.close()


def test_esc_stops_training_and_writes_no_model(ij, outlined, tmp_path):
    image_path, roiset = outlined
    image, _ = open_with_outlines(ij, image_path, roiset, keep=5)
    model = tmp_path / "stopped.pt"
    training = threading.Thread(target=ij.run, args=(image, "Train Segmenter from ROIs...",
                                                     f"steps=0 minutes=5 model_file=[{model}]"))
    training.start()
    time.sleep(8)  # the backend process runs: files written, Python starting or training
    assert training.is_alive()
    started = time.perf_counter()
    ij.setKeyDown(jimport("java.awt.event.KeyEvent").VK_ESCAPE)
    training.join(30)
    assert not training.is_alive() and time.perf_counter() - started < 5
    ij.resetEscape()
    assert last_error() == "" and not model.exists()
    image.close()


def test_train_classifier_from_roi_names_then_analyze_with_it(ij, outlined, small_scene, tmp_path):
    image_path, roiset = outlined
    image, manager = open_with_outlines(ij, image_path, roiset)
    manager.rename(0, "blob")  # a ROI without a class is left out
    run = tmp_path / "my classifier"
    claim_output_folder(run)  # as a cancelled training leaves it: claimed, some of its files, no model
    (run / "config.json").write_text("{}")
    ij.run(image, "Train Classifier from ROIs...", f"class_from=[ROI name] epochs=1 run_folder=[{run}]")
    assert last_error() == ""
    model = run / "model.keras"
    assert model.is_file() and (run / "evaluation" / "report.html").is_file()
    settings = json.loads((run / "config.json").read_text())
    assert settings["training"]["split_by"] == "crystal" and settings["training"]["epochs"] == 1
    assert settings["dropped"] == {"without a class": 1}
    outlined_classes = small_scene.crystal_classes[1:OUTLINED]  # every other outline, its class from its name
    assert settings["class_counts"] == {code: outlined_classes.count(code) for code in ("RES", "PES", "AA", "RA/SA")}
    texts, _ = analyze_dialog_fields(image)
    assert texts[0] == str(model)  # the Analyze dialog's Model field offers it

    saved = tmp_path / "results"
    saved.mkdir()
    ij.run(image, "Analyze Crystals...", f"{OPTIONS.replace('classifier=reference-2023-11-19', f'classifier=[{model}]')} "
           f"roi_manager=[Replace existing ROIs] save_results_to=[{saved}]")
    assert last_error() == ""
    summary = json.loads((saved / "scene one" / "summary.json").read_text())
    assert summary["model"]["file"] == str(model)
    assert summary["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert summary["model"]["run_by"] == "torch"  # a MicroCrystalNet trained here runs without TensorFlow
    assert len(results_column("Class")) == summary["n_crystals"] > 0
    image.close()


def test_train_classifier_says_how_many_crystals_it_needs(ij, outlined, tmp_path):
    image_path, roiset = outlined
    image, manager = open_with_outlines(ij, image_path, roiset, keep=6)
    run = tmp_path / "too few"
    # the class from a ROI property this time (the names give the same classes)
    ij.run(image, "Train Classifier from ROIs...", f"class_from=[ROI property] property=Class epochs=1 "
           f"run_folder=[{run}]")
    error = last_error()
    assert "6 labelled crystals" in error and "needs at least 10" in error, error
    assert not run.exists()
    ij.run(image, "Train Classifier from ROIs...", f"class_from=[ROI property] property=mineral epochs=1 "
           f"run_folder=[{run}]")
    assert "None of the 6 ROIs has a property 'mineral'" in last_error()
    ij.run(image, "Train Classifier from ROIs...", f"class_from=[ROI group name] epochs=1 run_folder=[{run}]")
    assert "None of the 6 ROIs has a group with a name" in last_error()
    # a folder with someone else's files is left alone
    other = tmp_path / "theirs"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    ij.run(image, "Train Classifier from ROIs...", f"class_from=[ROI name] epochs=1 run_folder=[{other}]")
    assert "holds files MicroCrystalNet did not write" in last_error()  # the backend's rule, not a twin in Java
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    image.close()


def test_batch_analyze_folder_with_spaces_reports_results_and_failures(ij, tmp_path, recorder):
    images = tmp_path / "sem images"
    images.mkdir()
    for seed in (3, 4):
        spec = SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=seed)
        write_scene(images / f"scene {seed}.tif", spec)
    out = tmp_path / "batch results"
    ij.doCommand("Batch Analyze Folder...")  # from the menu, through its dialog
    dialog = wait_for_dialog("Batch Analyze Folder")
    texts = dialog.getStringFields()  # input, output, settings file, model, segmenter model
    for index, text in enumerate((images, out, "", "reference-2023-11-19", "")):
        texts.get(index).setText(str(text))
    click(dialog, 0)
    wait_until(lambda: "Batch Analyze Folder" in str(recorder.getText()), 300)  # recorded when the command ends
    recording = str(recorder.getText())
    lines = [line for line in recording.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('run("Batch Analyze Folder...", '), recording
    assert f"input=[{images}]" in lines[0] and f"output=[{out}]" in lines[0]
    assert last_error() == ""
    with open(out / "batch_images.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["Image"] for row in rows) == ["scene 3.tif", "scene 4.tif"]
    for row in rows:
        assert (out / Path(row["Image"]).stem / "results.csv").is_file() and int(row["Crystals"]) > 0
    table = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Batch")
    assert table is not None and table.size() == 2

    # the recording replays verbatim, here in an ImageJ that 'microcrystalnet imagej' starts, which runs
    # this Python for the batch unprompted; an image that cannot be read is reported by name, with
    # exit status 1, and the finished ones are kept (and skipped)
    (images / "broken.tif").write_bytes(b"not a TIFF")
    macro = tmp_path / "recorded.ijm"
    macro.write_text(recording)
    env = {key: value for key, value in os.environ.items() if key != "MICROCRYSTALNET_PYTHON"}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "imagej", "--macro", str(macro)],
                          capture_output=True, text=True, env=env, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert "1 image(s) could not be analysed" in log and "broken.tif: " in log and "not a TIFF file" in log, log
    assert "2 image(s) with results, 1 failed" in log
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["scene 3", "scene 4"]
    ij.run("Batch Analyze Folder...", f"input=[{tmp_path / 'no such folder'}] output=[{out}]")
    assert "does not exist" in last_error()
    assert all((out / name).is_file() for name in ("batch_results.csv", "batch_errors.csv"))
