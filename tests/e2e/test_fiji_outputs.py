"""What Analyze Crystals... gives back in a real ImageJ 1.x: the Outputs choice (ROI Manager,
overlay with a class legend, label image), ImageJ's own Results table, tables accumulated over
images with different units, notices in the Fiji dialog's words, the unit column of the batch
tables, and a batch that never ends the ImageJ or Python session hosting it.

Small synthetic scenes (256 x 256 px) and the in-process backend keep it short.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microcrystalnet.classes import RESULT_CLASSES, class_by_code
from microcrystalnet.imagej import jimport
from microcrystalnet.synth import SceneSpec, render_scene

from .test_fiji_command import (MICROMETRE, OPTIONS, REPO, analyze, click, forgetting_dialog,  # noqa: F401 (fixtures)
                                ij, open_in_front, read_rows, recorder, roi_manager, use_backend, wait_for_dialog,
                                wait_until, write_scene)

pytestmark = pytest.mark.imagej

LEGEND = "MicroCrystalNet legend"
SPEC = SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=32)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The same small scene calibrated (um) and without pixel size."""
    folder = tmp_path_factory.mktemp("outputs")
    calibrated = write_scene(folder / "scene.tif", SPEC)
    uncalibrated = folder / "nopixelsize.tif"
    tifffile.imwrite(uncalibrated, render_scene(SPEC).image)
    return calibrated, uncalibrated


def error_of_last_run() -> str:
    return str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())


def analyze_in_nm(ij, path: Path, options: str):
    """``path`` opened, calibrated in nm (the same pixel size), and analysed."""
    image = ij.openImage(str(path))
    calibration = image.getCalibration()
    calibration.pixelWidth, calibration.pixelHeight = calibration.pixelWidth * 1000, calibration.pixelHeight * 1000
    calibration.setUnit("nm")
    image.show()
    ij.run(image, "Analyze Crystals...", options)
    return image


def table(title: str | None = None):
    ResultsTable = jimport("ij.measure.ResultsTable")
    return ResultsTable.getResultsTable() if title is None else ResultsTable.getResultsTable(title)


def headings(results) -> list[str]:
    return [str(h) for h in results.getHeadings()]


def roi_names(manager) -> list[str]:
    return [str(manager.getRoi(i).getName()) for i in range(manager.getCount())]


def label_pixels(image) -> np.ndarray:
    return np.array(image.getProcessor().getPixels(), dtype=np.int16).view(np.uint16).reshape(
        image.getHeight(), image.getWidth())


def label_under(roi, labels: np.ndarray) -> int:
    """The label value most of the ROI's pixels have."""
    box = roi.getBounds()
    inside = labels[box.y:box.y + box.height, box.x:box.x + box.width]
    mask = roi.getMask()
    if mask is not None:
        inside = inside[np.array(mask.getPixels(), dtype=np.int8).reshape(box.height, box.width) != 0]
    return int(np.bincount(inside.ravel()).argmax())


def test_all_outputs_give_the_crystals_in_the_roi_manager_overlay_label_image_and_imagejs_results_table(ij, scenes):
    use_backend(ij, "In-process")
    manager = roi_manager()
    image = analyze_in_nm(ij, scenes[0], OPTIONS + " roi_manager=[Replace existing ROIs] outputs=All "
                                                   "fill_imagej_results_table")
    assert error_of_last_run() == ""
    ours = table("MicroCrystalNet Results")
    crystals = ours.size()
    assert crystals > 3
    names = roi_names(manager)
    assert len(names) == crystals and names == [str(ours.getLabel(i)) for i in range(crystals)]

    overlay = image.getOverlay()
    elements = [overlay.get(i) for i in range(overlay.size())]
    outlines = [e for e in elements if str(e.getName()) != LEGEND]
    legend = [e for e in elements if str(e.getName()) == LEGEND]
    assert [str(e.getName()) for e in outlines] == names
    display = jimport("microcrystalnet.fiji.ResultsDisplay")
    for outline, row in zip(outlines, range(crystals)):
        assert str(display.strokeColour(outline)) == class_by_code(str(ours.getStringValue("Class", row))).colour_hex
    # a box, then a colour square and a text per class, in the lower right corner
    assert len(legend) == 1 + 2 * len(RESULT_CLASSES)
    texts = [str(e.getText()) for e in legend if e.getClass().getSimpleName() == "TextRoi"]
    for result_class in RESULT_CLASSES:
        assert any(text.startswith(f"{result_class.code}  {result_class.name}  (n=") for text in texts), texts
    fills = {f"#{e.getFillColor().getRGB() & 0xFFFFFF:06X}" for e in legend if e.getFillColor() is not None}
    assert {c.colour_hex for c in RESULT_CLASSES} <= fills
    box = legend[0].getBounds()
    assert box.x >= 0 and box.y > image.getHeight() / 2
    assert image.getWidth() - 10 < box.x + box.width <= image.getWidth()
    assert image.getHeight() - 10 < box.y + box.height <= image.getHeight()

    labels = jimport("ij.WindowManager").getImage("scene-labels")
    assert labels is not None, "no label image"
    assert (labels.getWidth(), labels.getHeight(), labels.getBitDepth()) == (image.getWidth(), image.getHeight(), 16)
    assert str(labels.getCalibration().getUnit()) == "nm"
    assert labels.getCalibration().pixelWidth == pytest.approx(SPEC.pixel_size_um * 1000)
    pixels = label_pixels(labels)
    assert pixels.max() == crystals
    for index in range(crystals):  # crystal n: value n, ROI 000n-..., row with Crystal n
        number = int(names[index].split("-")[0])
        assert label_under(manager.getRoi(index), pixels) == number == int(ours.getValue("Crystal", index))

    standard = table()
    assert standard.size() == crystals
    assert {"Area", "Perim.", "Feret", "Class", "Confidence", "Image", "Unit"} <= set(headings(standard))
    assert [str(standard.getLabel(i)) for i in range(crystals)] == names
    for row in range(crystals):
        assert str(standard.getStringValue("Unit", row)) == "nm"
        assert standard.getValue("Area", row) == pytest.approx(ours.getValue("Area (nm^2)", row))
        assert standard.getValue("Feret", row) == pytest.approx(ours.getValue("Feret (nm)", row))
        assert str(standard.getStringValue("Class", row)) == str(ours.getStringValue("Class", row))
    labels.close()
    image.close()


def test_each_output_alone_gives_only_what_it_says(ij, scenes):
    use_backend(ij, "In-process")
    WindowManager = jimport("ij.WindowManager")
    manager = roi_manager()
    manager.reset()
    manager.addRoi(jimport("ij.gui.Roi")(0, 0, 5, 5))  # the user's: only the ROI Manager output touches it
    table().reset()
    options = OPTIONS + " roi_manager=[Replace existing ROIs]"

    image, error = analyze(ij, scenes[0], options + " outputs=Overlay")
    assert error == ""
    crystals = table("MicroCrystalNet Results").size()
    assert manager.getCount() == 1 and WindowManager.getImage("scene-labels") is None
    names = [str(image.getOverlay().get(i).getName()) for i in range(image.getOverlay().size())]
    assert len([name for name in names if name != LEGEND]) == crystals and names.count(LEGEND) == 1 + 2 * len(RESULT_CLASSES)
    assert table().size() == 0  # ImageJ's Results table only on request
    image.close()

    image, error = analyze(ij, scenes[0], options + " outputs=[Label image]")
    assert error == ""
    assert manager.getCount() == 1 and image.getOverlay() is None
    labels = WindowManager.getImage("scene-labels")
    assert labels is not None and label_pixels(labels).max() == crystals
    assert str(labels.getCalibration().getUnit()) in (MICROMETRE, "micron", "um")
    labels.close()
    image.close()

    image, error = analyze(ij, scenes[0], options)  # a macro without outputs=: the ROI Manager, as before
    assert error == ""
    overlay = image.getOverlay()  # none, or the ROI Manager's own "Show All" where the image has a window
    assert manager.getCount() == crystals
    assert overlay is None or (overlay.size() == crystals and not any(
        str(overlay.get(i).getName()) == LEGEND for i in range(overlay.size())))
    assert WindowManager.getImage("scene-labels") is None
    image.close()


def test_add_mode_keeps_one_unit_per_table_and_refuses_to_mix_pixels_with_lengths(ij, scenes, capfd):
    calibrated, uncalibrated = scenes
    use_backend(ij, "In-process")
    manager = roi_manager()
    add, replace = " roi_manager=[Add to existing ROIs]", " roi_manager=[Replace existing ROIs]"
    fill = " fill_imagej_results_table"

    image, error = analyze(ij, calibrated, OPTIONS + replace + fill)
    assert error == ""
    ours = table("MicroCrystalNet Results")
    crystals = ours.size()
    first_areas = [ours.getValue(f"Area ({MICROMETRE}^2)", row) for row in range(crystals)]
    image.close()

    # the same pixel size in nm: converted to the table's um, not a second set of columns
    image = analyze_in_nm(ij, calibrated, OPTIONS + add + fill)
    assert error_of_last_run() == ""
    ours = table("MicroCrystalNet Results")
    assert ours.size() == 2 * crystals and not [h for h in headings(ours) if "nm" in h]
    assert [ours.getValue(f"Area ({MICROMETRE}^2)", row) for row in range(crystals, 2 * crystals)] == \
        pytest.approx(first_areas)
    assert {str(table().getStringValue("Unit", row)) for row in range(table().size())} == {MICROMETRE}
    image.close()

    capfd.readouterr()
    image, error = analyze(ij, uncalibrated, OPTIONS + add + fill)  # results in pixels
    assert "no pixel size" in error and "Image > Properties..." in error and "Replace existing ROIs" in error
    assert table("MicroCrystalNet Results").size() == 2 * crystals and table().size() == 2 * crystals
    assert manager.getCount() == 2 * crystals
    # notices in the Log name the dialog's fields and ImageJ's commands, not the command line's options
    log = capfd.readouterr().out
    assert "nopixelsize.tif: pixel size unknown: results are in pixels (set the pixel size in Image > Properties..." \
        in log
    assert "give it in the Crystal size field" in log
    assert "--pixel-size-nm" not in log and "--crystal-size" not in log
    image.close()

    image, error = analyze(ij, uncalibrated, OPTIONS + replace + fill)
    assert error == ""
    assert "Area (px^2)" in headings(table("MicroCrystalNet Results"))
    assert {str(table().getStringValue("Unit", row)) for row in range(table().size())} == {"px"}
    image.close()
    image, error = analyze(ij, calibrated, OPTIONS + add)
    assert "holds results in pixels" in error and "Replace existing ROIs" in error
    assert "Area (px^2)" in headings(table("MicroCrystalNet Results"))
    image.close()


def choice_with(dialog, item: str):
    """The dialog's choice that offers ``item``."""
    choices = [dialog.getChoices().get(i) for i in range(dialog.getChoices().size())]
    return next(c for c in choices if any(str(c.getItem(i)) == item for i in range(c.getItemCount())))


def test_outputs_and_the_results_checkbox_are_recorded_replayed_and_remembered(ij, scenes, recorder,
                                                                                forgetting_dialog):
    use_backend(ij, "In-process")
    WindowManager = jimport("ij.WindowManager")
    image = open_in_front(ij, scenes[0])
    ij.doCommand("Analyze Crystals...")
    dialog = wait_for_dialog("Analyze Crystals")
    outputs = choice_with(dialog, "Overlay + Label image")
    assert str(outputs.getSelectedItem()) == "ROI Manager"  # the default: what the command did before
    outputs.select("Overlay + Label image")
    fill = next(box for box in dialog.getCheckboxes() if str(box.getLabel()) == "Fill ImageJ Results table")
    assert not fill.getState()
    fill.setState(True)
    choice_with(dialog, "Replace existing ROIs").select("Replace existing ROIs")
    click(dialog, 0)
    wait_until(lambda: "Analyze Crystals" in str(recorder.getText()))
    time.sleep(1)
    lines = [line for line in str(recorder.getText()).splitlines()
             if line.strip() and not line.startswith("selectWindow(")]
    assert len(lines) == 1 and "outputs=[Overlay + Label image]" in lines[0] and \
        "fill_imagej_results_table" in lines[0], lines
    crystals = table("MicroCrystalNet Results").size()
    assert table().size() == crystals and image.getOverlay() is not None
    WindowManager.getImage("scene-labels").close()
    image.setOverlay(None)
    table().reset()

    ij.runMacro(lines[0])  # verbatim, on the image in front
    assert error_of_last_run() == ""
    assert table().size() == crystals and WindowManager.getImage("scene-labels") is not None
    assert image.getOverlay().size() == crystals + 1 + 2 * len(RESULT_CLASSES)
    WindowManager.getImage("scene-labels").close()

    ij.doCommand("Analyze Crystals...")  # reopens with what was chosen
    dialog = wait_for_dialog("Analyze Crystals")
    assert str(choice_with(dialog, "All").getSelectedItem()) == "Overlay + Label image"
    assert next(box for box in dialog.getCheckboxes() if str(box.getLabel()) == "Fill ImageJ Results table").getState()
    click(dialog, 1)
    image.close()


def dialog_labels(container) -> set[str]:
    """The labels of a dialog's fields and checkboxes, as the dialog shows them."""
    Label, Checkbox, Container = (jimport(f"java.awt.{name}") for name in ("Label", "Checkbox", "Container"))
    found = set()
    for component in container.getComponents():
        if isinstance(component, Label):
            found.add(str(component.getText()).strip())
        elif isinstance(component, Checkbox):
            found.add(str(component.getLabel()).strip())
        if isinstance(component, Container):
            found |= dialog_labels(component)
    return found


def test_the_fields_fijis_notices_name_are_the_dialogs(ij, scenes):
    """microcrystalnet.notices names Analyze Crystals fields by their labels: each must be one."""
    from microcrystalnet.notices import FIJI_FIELDS

    use_backend(ij, "In-process")
    image = open_in_front(ij, scenes[0])
    ij.doCommand("Analyze Crystals...")
    dialog = wait_for_dialog("Analyze Crystals")
    shown = dialog_labels(dialog)
    click(dialog, 1)
    assert {"Outputs", "Fill ImageJ Results table"} <= shown
    assert set(FIJI_FIELDS) <= shown, set(FIJI_FIELDS) - shown
    image.close()


def test_batch_tables_say_the_unit_of_every_row(ij, scenes, tmp_path, reference_model_path):
    """batch_summary.csv (the batch macro's) and batch_results.csv (the batch command's) over an
    image with and one without pixel size: a Unit column tells their rows apart."""
    import os

    images = tmp_path / "images"
    images.mkdir()
    for scene in scenes:
        images.joinpath(scene.name).write_bytes(scene.read_bytes())
    use_backend(ij, "In-process")
    ij.runMacroFile(str(REPO / "macros" / "batch_analyze_folder.ijm"),
                    f"input=[{images}] output=[{tmp_path / 'macro'}]")
    assert error_of_last_run() == ""
    rows = read_rows(tmp_path / "macro" / "batch_summary.csv")
    assert {(row["Image"], row["Unit"]) for row in rows} == {("scene.tif", "um"), ("nopixelsize.tif", "pixel")}
    assert len(rows) == 2 * len(RESULT_CLASSES)

    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "batch", str(images), "--out", str(tmp_path / "cli"),
                           "--workers", "0", "--no-download", "-q"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    rows = read_rows(tmp_path / "cli" / "batch_results.csv")
    assert list(rows[0])[:2] == ["Image", "Unit"]
    assert {(row["Image"], row["Unit"]) for row in rows} == {("scene.tif", "um"), ("nopixelsize.tif", "pixel")}


HOSTED_BATCH_END = """
import sys
from microcrystalnet.imagej import jimport, start_imagej1
ij = start_imagej1(headless=True, plugin_jar=sys.argv[1], home=sys.argv[2])
ij.runMacro('setBatchMode(true); call("microcrystalnet.fiji.AnalyzeCrystals.endBatch", "1 of 2 images failed: a.tif");')
print("still running:", jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
"""


def test_a_failed_batch_never_ends_the_python_session_hosting_imagej(plugin_jar, tmp_path):
    """A batch macro run by a Python session that hosts ImageJ without a window (as pyimagej's
    headless mode, no MicroCrystalNet backend registered) ends with endBatch: that ended the
    whole session with System.exit(1); only 'ImageJ -batch' may exit (test_fiji_command tests it)."""
    done = subprocess.run([sys.executable, "-c", HOSTED_BATCH_END, str(plugin_jar), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "still running: 1 of 2 images failed: a.tif" in done.stdout


@pytest.fixture(scope="module")
def saved_result(scenes, reference_model_path, tmp_path_factory):
    """The scene analysed by the command line: its result folder, as a batch of thousands leaves them."""
    import json
    import os

    out = tmp_path_factory.mktemp("cli-results")
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(scenes[0]), "--out", str(out),
                           "--no-overlay", "--no-download", "-q"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    folder = out / scenes[0].stem
    return folder, json.loads((folder / "summary.json").read_text())["n_crystals"], read_rows(folder / "results.csv")


SHOW_SAVED_HEADLESS = """
import sys
from microcrystalnet.imagej import jimport, start_imagej1
IJ = start_imagej1(headless=True, plugin_jar=sys.argv[1], home=sys.argv[2])
image = IJ.openImage(sys.argv[3])
jimport("ij.WindowManager").setTempCurrentImage(image)
shown = IJ.runMacro('return call("microcrystalnet.fiji.ResultsDisplay.showResultFolder", getArgument(), '
                    '"ROI Manager + Overlay", "true");', sys.argv[4])
print("SHOWN", shown)
overlay = image.getOverlay()
print("CRYSTALS ON THE OVERLAY", sum(str(overlay.get(i).getName()) != sys.argv[5] for i in range(overlay.size())))
print("RESULTS", IJ.runMacro('return "" + nResults + " " + getResultString("Class", 0) + " " + getResult("Area", 0);', ""))
"""


def test_a_headless_imagej_puts_saved_results_on_the_overlay_and_in_its_results_table(plugin_jar, scenes, saved_result,
                                                                                      tmp_path):
    """A script's ImageJ without a display (pyimagej's headless mode) has no ROI Manager or table
    windows: the crystals still come back where it can hold them, on the image's overlay and in
    ImageJ's Results table that macros and scripts read, and the Log says what was left out."""
    folder, n_crystals, rows = saved_result
    done = subprocess.run([sys.executable, "-c", SHOW_SAVED_HEADLESS, str(plugin_jar), str(tmp_path), str(scenes[0]),
                           str(folder), LEGEND], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    said = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("SHOWN", "RESULTS")))
    assert said["SHOWN"] == str(n_crystals) and n_crystals > 0, done.stdout + done.stderr
    assert f"CRYSTALS ON THE OVERLAY {n_crystals}" in done.stdout
    count, first_class, first_area = said["RESULTS"].split()
    assert int(count) == n_crystals and first_class == rows[0]["Class"]
    assert float(first_area) == pytest.approx(float(rows[0]["Area"]), rel=1e-3)
    logged = next(line for line in done.stdout.splitlines() if "headless (no display)" in line)  # the Log, on stdout
    assert "no ROI Manager" in logged and "on the image's overlay" in logged and "ImageJ's Results table" in logged


def test_saved_results_come_back_on_their_image_adding_to_the_roi_manager_and_not_on_another(ij, scenes, saved_result,
                                                                                           tmp_path, recorder):
    folder, n_crystals, rows = saved_result
    manager = roi_manager()
    manager.reset()
    Roi = jimport("ij.gui.Roi")
    mine = Roi(1, 1, 4, 4)
    mine.setName("my outline")
    manager.addRoi(mine)
    image = open_in_front(ij, scenes[0])
    ij.doCommand("Show Saved Results...")  # as from the menu: its dialog, recorded
    dialog = wait_for_dialog("Show Saved Results")
    dialog.getStringFields().get(0).setText(str(folder))
    click(dialog, 0)
    wait_until(lambda: "Show Saved Results" in str(recorder.getText()))
    wait_until(lambda: manager.getCount() == 1 + n_crystals)
    assert error_of_last_run() == ""
    names = roi_names(manager)
    assert names[0] == "my outline" and names[1] == f"scene.tif:{rows[0]['Name']}"  # added to, never emptied
    lines = [line for line in str(recorder.getText()).splitlines() if line.startswith("run(")]
    assert lines == [f'run("Show Saved Results...", "result_folder={folder} outputs=[ROI Manager]");'], lines
    manager.reset()
    rows_before = table().size()  # rows of earlier analyses stay: added to, never emptied
    ij.run(image, "Show Saved Results...", f"result_folder=[{folder}] outputs=[ROI Manager + Overlay] "
           "fill_imagej_results_table")
    assert error_of_last_run() == "" and manager.getCount() == n_crystals
    assert image.getOverlay() is not None and table().size() == rows_before + n_crystals
    manager.reset()
    call = 'return call("microcrystalnet.fiji.ResultsDisplay.showResultFolder", getArgument(), "ROI Manager", "false");'
    assert str(ij.runMacro(call, str(folder))) == str(n_crystals), error_of_last_run()  # a macro's way
    assert len(roi_names(manager)) == n_crystals
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((64, 80), np.uint8))
    other = open_in_front(ij, small)
    assert str(ij.runMacro(call, str(folder))) == "" and "80 x 64 px" in error_of_last_run()
    assert str(ij.runMacro(call, str(tmp_path))) == "" and "not a MicroCrystalNet result folder" in error_of_last_run()
    Dialog = jimport("java.awt.Dialog")
    assert not [w for w in jimport("java.awt.Window").getWindows() if isinstance(w, Dialog) and w.isVisible()]
    for shown in (image, other):
        shown.changes = False
        shown.close()
    manager.reset()
