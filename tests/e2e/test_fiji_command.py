"""Plugins > MicroCrystalNet > Analyze Crystals... in a real ImageJ 1.x, on both backends.

In-process: this Python process started ImageJ and registered itself as the backend.
Out-of-process: the command runs the configured Python (`Settings...`) as a separate process,
and the folder macro runs in a separate `ImageJ -batch` JVM.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microcrystalnet.classes import class_by_code
from microcrystalnet.imagej import find_ij_jar, jimport, register_backend
from microcrystalnet.measure import AREA_COLUMNS, LENGTH_COLUMNS, MEASUREMENT_COLUMNS
from microcrystalnet.results import RESULT_COLUMNS
from microcrystalnet.synth import SceneSpec, render_scene

pytestmark = pytest.mark.imagej

REPO = Path(__file__).resolve().parents[2]
OPTIONS = ("classifier=reference-2023-11-19 min_crystal_area=0.25 max_crystal_area=400 exclude_sem_data_bar "
           "save_results_to=[]")
TEXT_COLUMNS = ("Name", "Class", "Segmenter")
MICROMETRE = "\u00b5m"


def write_scene(path: Path, spec: SceneSpec) -> Path:
    scene = render_scene(spec)
    size = spec.pixel_size_um
    tifffile.imwrite(path, scene.image, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    return path


def write_zeiss_scene(path: Path, spec: SceneSpec) -> Path:
    """A scene as a Zeiss SEM writes it: the pixel size in Zeiss's metadata tag only, which ImageJ does not read."""
    zeiss = "\r\n".join(["0", "AP_IMAGE_PIXEL_SIZE", f"Image Pixel Size = {spec.pixel_size_um * 1000:g} nm", "AP_MAG",
                         "Mag = 10.00 K X", ""])
    tifffile.imwrite(path, render_scene(spec).image, extratags=[(34118, "s", 0, zeiss, True)])
    return path


def cli_analysis(image: Path, out: Path, *options: str) -> tuple[list[dict[str, str]], dict]:
    """The CLI's results.csv rows and summary.json of ``image``."""
    import json

    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(image), "--out", str(out),
                           "--no-download", "-q", *options], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return read_rows(out / image.stem / "results.csv"), json.loads((out / image.stem / "summary.json").read_text())


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory, small_scene):
    folder = tmp_path_factory.mktemp("fiji")
    return write_scene(folder / "scene.tif", small_scene.spec)


@pytest.fixture(scope="module")
def cli_rows(scene_file, reference_model_path):
    out = scene_file.parent / "cli"
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(scene_file), "--out", str(out),
                           "--no-download", "-q"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return read_rows(out / "scene" / "results.csv")


@pytest.fixture(scope="module")
def ij(imagej1, reference_model_path):
    """ImageJ with this process registered as the in-process backend."""
    register_backend()
    return imagej1


def use_backend(ij, backend: str) -> None:
    ij.run("Settings...", f"python=[{sys.executable}] backend={backend} model=reference-2023-11-19")


def analyze(ij, image_path: Path, options: str):
    image = ij.openImage(str(image_path))
    image.show()
    ij.run(image, "Analyze Crystals...", options)
    error = str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
    return image, error


def denoise(ij, image_path: Path, model):
    image = ij.openImage(str(image_path))
    image.show()
    ij.run(image, "Denoise...", f"model=[{model}] tile_size=256")
    return image, str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())


def table_heading(column: str, unit: str) -> str:
    """The Results table's heading of a results.csv column: lengths and areas carry their unit."""
    if column in LENGTH_COLUMNS:
        return f"{column} ({unit})"
    return f"{column} ({unit}^2)" if column in AREA_COLUMNS else column


def results_table_rows(unit: str = MICROMETRE, title: str = "MicroCrystalNet Results"):
    """The rows of the Results table keyed by results.csv's columns ("Name": the row label), as shown."""
    table = jimport("ij.measure.ResultsTable").getResultsTable(title)
    assert table is not None, "the MicroCrystalNet Results table is not shown"
    rows = []
    for index in range(table.size()):
        row = {column: (str(table.getStringValue(column, index)) if column in TEXT_COLUMNS
                        else float(table.getValue(table_heading(column, unit), index)))
               for column in RESULT_COLUMNS if column != "Name"}
        row["Name"] = str(table.getLabel(index))
        row["Image"] = str(table.getStringValue("Image", index))
        rows.append(row)
    return rows


def assert_same_as_cli(rows, cli_rows, per_micrometre: float = 1.0):
    """``per_micrometre``: units of the table per micrometre of the CLI's results."""
    assert len(rows) == len(cli_rows)
    for ours, theirs in zip(rows, cli_rows):
        for column in RESULT_COLUMNS:
            if column in TEXT_COLUMNS:
                assert ours[column] == theirs[column], column
            else:
                power = 1 if column in LENGTH_COLUMNS else 2 if column in AREA_COLUMNS else 0
                expected = float(theirs[column]) * per_micrometre ** power
                assert ours[column] == pytest.approx(expected, rel=1e-12, abs=1e-12), column


def roi_manager():
    return jimport("ij.plugin.frame.RoiManager").getRoiManager()


#: a class probability below which some of the test scene's crystals fall, so that "unclear" is shown
UNCLEAR_BELOW = 0.6


def test_in_process_command_gives_the_clis_crystals_names_colours_and_results(ij, scene_file, small_scene, tmp_path):
    use_backend(ij, "In-process")
    manager = roi_manager()
    manager.reset()
    cli_rows = cli_analysis(scene_file, tmp_path / "cli", "--unclear-below", str(UNCLEAR_BELOW))[0]
    assert any(row["Class"] == "unclear" for row in cli_rows), f"no crystal below {UNCLEAR_BELOW}: test says nothing"
    image, error = analyze(ij, scene_file,
                           OPTIONS + f" unclear_below={UNCLEAR_BELOW} roi_manager=[Replace existing ROIs]")
    try:
        assert error == ""
        count = manager.getCount()
        assert abs(count - small_scene.n_crystals) <= 0.2 * small_scene.n_crystals
        display = jimport("microcrystalnet.fiji.ResultsDisplay")
        for index in range(count):
            roi = manager.getRoi(index)
            row = cli_rows[index]
            assert str(roi.getName()) == row["Name"]
            assert str(display.strokeColour(roi)) == class_by_code(row["Class"]).colour_hex
            assert str(roi.getProperty("Class")) == row["Class"]
        assert_same_as_cli(results_table_rows(), cli_rows)
        summary = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Summary")
        assert [str(summary.getStringValue("Class", i)) for i in range(summary.size())] == \
            ["RES", "PES", "AA", "RA/SA", "unclear"]
        assert sum(summary.getValue("Count", i) for i in range(5)) == count
        steps = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Preprocessing")
        assert [str(steps.getStringValue("Step", i)) for i in range(steps.size())] == \
            ["input", "nlm", "n2v", "unsharp", "opening", "closing"]
        assert steps.getValue("Applied", 2) == 0 and "n2v train" in str(steps.getStringValue("Note", 2))
    finally:  # a window left open would stand in front of the next test's image
        image.close()


def assert_four_significant_digits_shown(table) -> None:
    """Every number of ``table`` as shown keeps 4 significant digits (no 0.004 for 0.004123),
    probabilities and fractions 4 decimals."""
    for heading in (str(h) for h in table.getHeadings() if str(h) != "Label"):
        probability = heading.startswith("Prob_") or heading.endswith("Confidence") or heading == "Fraction"
        for row in range(table.size()):
            value = float(table.getValue(heading, row))
            if value == value:  # not a text column (NaN)
                shown = float(str(table.getStringValue(heading, row)))
                # rounding moves a number by at most half its last shown digit (0.03125 shows as 0.0312)
                half_digit = (5e-5 if probability else 5e-4 * abs(value)) * (1 + 1e-9)
                assert abs(shown - value) <= half_digit, (heading, row, value, shown)


def test_results_table_is_in_the_images_unit_measurements_first_with_four_significant_digits(ij, scene_file,
                                                                                           cli_rows):
    use_backend(ij, "In-process")
    ResultsTable = jimport("ij.measure.ResultsTable")
    image = ij.openImage(str(scene_file))
    calibration = image.getCalibration()  # the same pixel size, 40 nm, in nm
    calibration.pixelWidth, calibration.pixelHeight = calibration.pixelWidth * 1000, calibration.pixelHeight * 1000
    calibration.setUnit("nm")
    image.show()
    try:
        ij.run(image, "Analyze Crystals...", OPTIONS + " roi_manager=[Replace existing ROIs]")
        assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
        table = ResultsTable.getResultsTable("MicroCrystalNet Results")
        headings = [str(h) for h in table.getHeadings() if str(h) != "Label"]
        measurements = headings[:len(MEASUREMENT_COLUMNS)]
        assert measurements[:3] == ["Area (nm^2)", "Perim. (nm)", "Feret (nm)"]
        assert sorted(measurements) == sorted(table_heading(column, "nm") for column in MEASUREMENT_COLUMNS)
        assert headings[len(MEASUREMENT_COLUMNS):len(MEASUREMENT_COLUMNS) + 6] == \
            ["Class", "Confidence", "Prob_RES", "Prob_PES", "Prob_AA", "Prob_RA/SA"]
        assert_same_as_cli(results_table_rows("nm"), cli_rows, per_micrometre=1000)
        assert_four_significant_digits_shown(table)
        summary = ResultsTable.getResultsTable("MicroCrystalNet Summary")
        assert {"MeanArea (nm^2)", "MeanFeret (nm)"} <= {str(h) for h in summary.getHeadings()}
        assert_four_significant_digits_shown(summary)

        calibration.pixelWidth, calibration.pixelHeight = calibration.pixelWidth / 1e6, calibration.pixelHeight / 1e6
        calibration.setUnit("mm")  # areas of 1E-7 mm^2: beyond 9 decimals, in scientific notation
        ij.run(image, "Analyze Crystals...", OPTIONS + " roi_manager=[Replace existing ROIs]")
        assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
        table = ResultsTable.getResultsTable("MicroCrystalNet Results")
        assert_same_as_cli(results_table_rows("mm"), cli_rows, per_micrometre=1e-3)
        assert "E" in str(table.getStringValue("Area (mm^2)", 0))
        assert_four_significant_digits_shown(table)

        image.setCalibration(None)  # uncalibrated: results in pixels, and the headings say so
        ij.run(image, "Analyze Crystals...", OPTIONS + " roi_manager=[Replace existing ROIs]")
        assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
        table = ResultsTable.getResultsTable("MicroCrystalNet Results")
        assert [str(h) for h in table.getHeadings() if str(h) != "Label"][:2] == ["Area (px^2)", "Perim. (px)"]
        assert_four_significant_digits_shown(table)
    finally:  # an image left open would be the next test's "scene.tif"
        image.close()


@pytest.fixture(scope="module")
def zeiss_scene_and_cli(tmp_path_factory, reference_model_path):
    folder = tmp_path_factory.mktemp("zeiss")
    image = write_zeiss_scene(folder / "zeiss.tif", SceneSpec(shape=(384, 384), pixel_size_um=0.04, seed=12))
    rows, summary = cli_analysis(image, folder / "cli")
    assert summary["pixel_size_source"] == "Zeiss SEM metadata" and summary["unit"] == "um"
    return image, rows


@pytest.mark.parametrize("backend", ["In-process", "External"])
def test_an_uncalibrated_sem_image_is_calibrated_by_its_files_metadata_as_on_the_command_line(
        ij, zeiss_scene_and_cli, tmp_path, capfd, backend):
    """ImageJ opens a Zeiss SEM TIFF uncalibrated; the backend reads the file's metadata as the
    CLI does, so Fiji finds the CLI's crystals with the CLI's areas (before: analysed in pixels at
    an assumed 10 nm/px, other crystals), and the image gets the calibration, said in the Log."""
    path, cli_rows = zeiss_scene_and_cli
    use_backend(ij, backend)
    capfd.readouterr()
    file_calibration = jimport("microcrystalnet.fiji.FileCalibration")
    image = ij.openImage(str(path))
    assert not file_calibration.hasPixelSize(image)  # as the SEM's own files open: 1 " " per pixel
    image.show()
    ij.run(image, "Analyze Crystals...", OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
    assert_same_as_cli(results_table_rows(), cli_rows)
    calibration = image.getCalibration()
    assert calibration.scaled() and calibration.pixelWidth == pytest.approx(0.04) and \
        str(calibration.getUnit()) == MICROMETRE
    log = capfd.readouterr().out
    assert "MicroCrystalNet: zeiss.tif had no calibration: set to 40 nm/px from the Zeiss SEM metadata of zeiss.tif" \
        in log, log
    assert "MicroCrystalNet: zeiss.tif: pixel size 40 nm from the Zeiss SEM metadata of zeiss.tif" in log, log
    image.close()

    cropped = ij.openImage(str(path))  # a crop has the file's pixel size, but no way to know it is one
    cropped.setRoi(0, 0, 300, 300)
    cropped = cropped.crop()
    cropped.setTitle("zeiss-crop.tif")
    cropped.show()
    ij.run(cropped, "Analyze Crystals...", OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
    assert not file_calibration.hasPixelSize(cropped)
    assert "pixel size unknown: results are in pixels" in capfd.readouterr().out
    cropped.close()


REAL_ZEISS_IMAGE = REPO.parent / "shared" / "real-sem" / "tio2" / "images" / "1908250.tif"


@pytest.fixture(scope="module")
def real_zeiss_cli_rows(tmp_path_factory):
    """The CLI's results of the real Zeiss image (once for both backends)."""
    cli_rows, summary = cli_analysis(REAL_ZEISS_IMAGE, tmp_path_factory.mktemp("zeiss-cli"))
    assert summary["pixel_size_source"] == "Zeiss SEM metadata"
    return cli_rows


@pytest.mark.skipif(not REAL_ZEISS_IMAGE.is_file(), reason=f"{REAL_ZEISS_IMAGE} (the project's shared real SEM "
                    "images, beside the repository) is not here")
@pytest.mark.parametrize("backend", ["In-process", "External"])
def test_a_real_zeiss_sem_file_gives_the_clis_crystals_in_fiji(ij, real_zeiss_cli_rows, backend):
    """A TiO2 image from a Zeiss SEM, read in place: 8-bit with a colour table and the pixel size in
    Zeiss's tag; ImageJ opens it uncalibrated (before: 24 crystals in pixels instead of the CLI's)."""
    cli_rows = real_zeiss_cli_rows
    use_backend(ij, backend)
    roi_manager().reset()
    image, error = analyze(ij, REAL_ZEISS_IMAGE, OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert error == ""
    assert_same_as_cli(results_table_rows(), cli_rows)
    image.close()


def test_java_knows_pythons_lengths_areas_and_units(imagej1):
    """The plugin converts lengths and areas to the image's unit: its lists must be the backend's."""
    from microcrystalnet.io.image_file import _UNIT_TO_UM

    display = jimport("microcrystalnet.fiji.ResultsDisplay")
    assert set(LENGTH_COLUMNS) | {"MeanFeret"} == {str(c) for c in display.LENGTHS}
    assert set(AREA_COLUMNS) | {"MeanArea"} == {str(c) for c in display.AREAS}
    assert sorted(str(c) for c in display.RESULTS_FIRST) == sorted((*MEASUREMENT_COLUMNS, "Class", "Confidence"))
    for unit, micrometres in _UNIT_TO_UM.items():
        assert float(display.unitsPerMicrometre(unit)) == pytest.approx(1 / micrometres), unit
    assert display.unitsPerMicrometre("inch") is None


def test_add_mode_names_rois_by_image_and_accumulates_the_tables(ij, scene_file, tmp_path, cli_rows):
    second = write_scene(tmp_path / "second.tif", SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=32))
    use_backend(ij, "In-process")
    manager = roi_manager()
    first_image, error = analyze(ij, scene_file, OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert error == ""
    second_image, error = analyze(ij, second, OPTIONS + " roi_manager=[Add to existing ROIs]")
    assert error == ""
    third_image, error = analyze(ij, scene_file, OPTIONS + " roi_manager=[Add to existing ROIs]")
    assert error == ""
    names = [str(manager.getRoi(i).getName()) for i in range(manager.getCount())]
    first_count = len(cli_rows)
    assert names[:first_count] == [row["Name"] for row in cli_rows]
    added = names[first_count:]
    assert added and len(set(added)) == len(added)
    second_names = [name for name in added if name.startswith("second.tif:")]
    assert second_names and all(name.startswith("scene.tif:") for name in added[len(second_names):])
    assert [name.split(":", 1)[1] for name in added[len(second_names):]] == [row["Name"] for row in cli_rows]
    rows = results_table_rows()
    assert [row["Name"] for row in rows] == names
    assert [row["Image"] for row in rows] == \
        ["scene.tif"] * first_count + ["second.tif"] * len(second_names) + ["scene.tif"] * first_count
    summary = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Summary")
    assert [str(summary.getStringValue("Image", i)) for i in range(summary.size())] == \
        ["scene.tif"] * 5 + ["second.tif"] * 5 + ["scene.tif"] * 5
    for image in (first_image, second_image, third_image):
        image.close()


def test_a_settings_file_from_the_dialog_applies_as_on_the_command_line(ij, scene_file, tmp_path, reference_model_path):
    import json

    settings = tmp_path / "coarse.json"
    settings.write_text(json.dumps({"segment": {"watershed": {"marker_separation_um": 0.7}}}))
    out = tmp_path / "cli"
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(scene_file), "--out", str(out),
                           "--config", str(settings), "--no-download", "-q"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    expected = read_rows(out / "scene" / "results.csv")
    use_backend(ij, "In-process")
    manager = roi_manager()
    manager.reset()
    image, error = analyze(ij, scene_file, OPTIONS + f" segmenter=Default settings_file=[{settings}] "
                                                     "roi_manager=[Replace existing ROIs]")
    assert error == ""
    assert_same_as_cli(results_table_rows(), expected)
    image.close()
    image, error = analyze(ij, scene_file, OPTIONS + f" settings_file=[{tmp_path / 'absent.json'}]")
    assert "does not exist" in error
    image.close()


def test_a_macro_without_the_classifier_gets_the_default_not_another_model_field(ij, scene_file):
    """ImageJ reads key= out of any_key= (an underscore does not start a key to it): model= once came
    out of segmenter_model= or n2v_model=."""
    use_backend(ij, "In-process")
    for options in ("segmenter_model=default min_crystal_area=0.25 exclude_sem_data_bar save_results_to=[]",
                    "n2v_model=[] preprocessing=[nlm] min_crystal_area=0.25 save_results_to=[]"):
        image, error = analyze(ij, scene_file, options + " outputs=Overlay roi_manager=[Replace existing ROIs]")
        assert error == ""
        assert results_table_rows()
        image.close()


def test_crystal_size_0_asks_for_an_automatic_size_over_the_settings_files(ij, tmp_path):
    from microcrystalnet.config import AnalysisConfig

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"segment": {"crystal_size_um": 0.5}}))
    build = jimport("microcrystalnet.fiji.AnalyzeCrystals").settingsJson
    automatic, left_out = (str(build("reference-2023-11-19", None, None, None, size, None, None, False, True, "nlm", "",
                                     "Default", "", str(settings))) for size in (0.0, None))
    assert AnalysisConfig.from_dict(json.loads(automatic)).segment.crystal_size_um is None
    assert AnalysisConfig.from_dict(json.loads(left_out)).segment.crystal_size_um == 0.5  # the field not given


@pytest.fixture(scope="module")
def n2v_model_and_cli_result(scene_file, n2v_model_trained_by_cli, tmp_path_factory):
    """A small Noise2Void model trained by the CLI, and the CLI's denoised image of the scene."""
    folder = tmp_path_factory.mktemp("n2v")
    model = n2v_model_trained_by_cli
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "n2v", "denoise", str(scene_file), "--model",
                           str(model), "--out", str(folder / "cli"), "--keep-data-bar", "-q"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return model, tifffile.imread(folder / "cli" / "scene_n2v.tif")


def test_denoise_command_opens_the_denoised_image(ij, scene_file, n2v_model_and_cli_result):
    model, expected = n2v_model_and_cli_result
    use_backend(ij, "External")
    image, error = denoise(ij, scene_file, model)
    assert error == ""
    denoised = jimport("ij.WindowManager").getCurrentImage()
    assert str(denoised.getTitle()) == "scene-n2v" and denoised.getBitDepth() == 32
    assert denoised.getCalibration().pixelWidth == pytest.approx(image.getCalibration().pixelWidth)
    pixels = np.array(denoised.getProcessor().getPixels(), dtype=np.float32).reshape(expected.shape)
    assert np.allclose(pixels, expected, atol=1e-5)
    denoised.close()
    ij.run(image, "Denoise...", "model=[/nonexistent/n2v.zip] tile_size=256")
    assert "does not exist" in str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
    image.close()


def test_in_process_denoise_and_analysis_run_noise2void_in_a_worker_process(ij, scene_file, n2v_model_and_cli_result):
    """PyTorch beside the JVM crashed this process later on; the worker process keeps it out.
    The tests after this one run in the same process, so they would see such a crash."""
    model, expected = n2v_model_and_cli_result
    use_backend(ij, "In-process")
    image, error = denoise(ij, scene_file, model)
    assert error == ""
    denoised = jimport("ij.WindowManager").getCurrentImage()
    assert str(denoised.getTitle()) == "scene-n2v"
    pixels = np.array(denoised.getProcessor().getPixels(), dtype=np.float32).reshape(expected.shape)
    assert np.allclose(pixels, expected, atol=1e-5)
    denoised.close()
    image.close()
    analysed, error = analyze(ij, scene_file, OPTIONS + f" preprocessing=[nlm,n2v] n2v_model=[{model}]")
    assert error == ""
    steps = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Preprocessing")
    assert steps.getValue("Applied", 2) == 1 and str(model) in str(steps.getStringValue("Note", 2))
    analysed.close()


def test_the_log_states_the_snr_after_every_step(ij, scene_file, capfd):
    # without an ImageJ window, ImageJ writes its Log to standard output
    use_backend(ij, "In-process")
    capfd.readouterr()
    image, error = analyze(ij, scene_file, OPTIONS + " preprocessing=[nlm,n2v,unsharp]")
    assert error == ""
    log = capfd.readouterr().out
    steps = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Preprocessing")
    snr = [steps.getValue("SNR_dB", row) for row in range(steps.size())]
    assert (f"MicroCrystalNet: SNR after preprocessing: input {snr[0]:.1f} dB, nlm {snr[1]:.1f} dB, n2v skipped, "
            f"unsharp {snr[3]:.1f} dB\n") in log
    # a notice of the analysis, as every notice (the next test: "pixel size ...")
    assert "MicroCrystalNet: scene.tif: Noise2Void skipped: no model given" in log and "n2v train" in log
    image.close()


def test_every_notice_of_an_analysis_is_in_the_log(ij, scene_file, tmp_path, capfd):
    """summary.json's notices (pixel size unknown, crystal size estimated, nothing found and what to
    set) were in the file only; each is a Log line now, named by the image."""
    import json

    use_backend(ij, "In-process")
    # Replace: an Add to tables in um would refuse the uncalibrated image's results in pixels (test_fiji_outputs.py)
    options = OPTIONS.replace("save_results_to=[]", f"save_results_to=[{tmp_path}] roi_manager=[Replace existing ROIs]")
    for calibrated, area_limits, expected in (
            (False, "min_crystal_area=0.25", ("pixel size unknown", "typical crystal diameter estimated from the image")),
            (True, "min_crystal_area=30", ("crystal candidates kept; dropped:", "--min-area-um2"))):
        capfd.readouterr()
        image = ij.openImage(str(scene_file))
        if not calibrated:
            image.setCalibration(None)
        image.show()
        ij.run(image, "Analyze Crystals...", options.replace("min_crystal_area=0.25", area_limits))
        assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
        log = capfd.readouterr().out
        summary = json.loads((tmp_path / "scene" / "summary.json").read_text())
        notices = summary["notices"]
        for part in expected:
            assert any(part in notice for notice in notices), (part, notices)
        assert len(summary["fiji_notices"]) == len(notices)
        for notice in summary["fiji_notices"]:  # in the Fiji dialog's words (tests/e2e/test_fiji_outputs.py)
            assert f"MicroCrystalNet: scene.tif: {notice}\n" in log, (notice, log)
        if calibrated:  # no crystal at all: the ROI Manager's modal error on the empty ROI set held ImageJ
            assert read_rows(tmp_path / "scene" / "results.csv") == [] and "0 crystals in scene.tif" in log
        image.close()


def test_existing_rois_are_kept_unless_the_user_asks_to_replace_them(ij, scene_file, cli_rows):
    use_backend(ij, "In-process")
    manager = roi_manager()
    manager.reset()
    Roi = jimport("ij.gui.Roi")
    for index in range(2):
        manager.addRoi(Roi(10 * index, 0, 5, 5))
    image, error = analyze(ij, scene_file, OPTIONS + " roi_manager=[Add to existing ROIs]")
    assert error == "" and manager.getCount() == 2 + len(cli_rows)
    image.close()
    image, error = analyze(ij, scene_file, OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert error == "" and manager.getCount() == len(cli_rows)
    image.close()


def test_external_backend_gives_the_same_results(ij, scene_file, cli_rows):
    use_backend(ij, "External")
    manager = roi_manager()
    manager.reset()
    image, error = analyze(ij, scene_file, OPTIONS + " roi_manager=[Replace existing ROIs]")
    assert error == ""
    assert [str(manager.getRoi(i).getName()) for i in range(manager.getCount())] == [r["Name"] for r in cli_rows]
    assert_same_as_cli(results_table_rows(), cli_rows)
    image.close()


def test_errors_are_reported_and_a_macro_goes_on(ij, tmp_path):
    use_backend(ij, "In-process")
    Macro = jimport("ij.Macro")
    stack = ij.createImage("stack", "8-bit ramp", 64, 64, 2)
    stack.show()
    ij.run(stack, "Analyze Crystals...", OPTIONS)
    assert "stack of 2 images" in str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
    stack.close()
    blank = tmp_path / "blank.tif"
    tifffile.imwrite(blank, np.full((128, 128), 9, np.uint8))
    image, error = analyze(ij, blank, OPTIONS)
    assert "blank" in error
    image.close()
    assert Macro.getOptions() is None


def test_saving_never_replaces_a_folder_that_is_not_a_result_folder(ij, scene_file, tmp_path):
    use_backend(ij, "In-process")
    saved = tmp_path / "results" / "scene"
    saved.mkdir(parents=True)
    (saved / "notes.txt").write_text("mine")
    options = OPTIONS.replace("save_results_to=[]", f"save_results_to=[{saved.parent}]")
    image, error = analyze(ij, scene_file, options)
    image.close()
    assert f"{saved} exists and was not written by MicroCrystalNet" in error
    assert [p.name for p in saved.iterdir()] == ["notes.txt"] and (saved / "notes.txt").read_text() == "mine"
    (saved / "notes.txt").unlink()
    saved.rmdir()
    for _ in range(2):  # saved, then replaced: it is a result folder now
        image, error = analyze(ij, scene_file, options)
        image.close()
        assert error == "" and (saved / ".microcrystalnet-result").is_file() and (saved / "results.csv").is_file()
    assert not [p.name for p in saved.parent.iterdir() if p.name != "scene"]


@pytest.mark.parametrize("backend", ["In-process", "External"])
def test_saved_results_follow_the_umask_hold_the_overlay_and_the_log_names_the_classes(ij, scene_file, tmp_path,
                                                                                     capfd, backend):
    import stat

    from PIL import Image

    from microcrystalnet.classes import RESULT_CLASSES

    umask = os.umask(0)
    os.umask(umask)  # ImageJ's JVM has this process's umask
    assert umask & 0o077 != 0o077, "with this umask the folder mode says nothing"
    use_backend(ij, backend)
    capfd.readouterr()
    image, error = analyze(ij, scene_file, OPTIONS.replace("save_results_to=[]", f"save_results_to=[{tmp_path}]"))
    assert error == ""
    saved = tmp_path / "scene"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o777 & ~umask  # was drwx------
    assert all(stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask for file in saved.iterdir())
    with Image.open(saved / "overlay.png") as overlay:
        assert overlay.size == (image.getWidth(), image.getHeight())
    log = capfd.readouterr().out  # the legend: each class by code, name, count and outline colour
    for result_class in RESULT_CLASSES:
        assert any(result_class.code in line and result_class.name in line and result_class.colour_hex in line
                   for line in log.splitlines()), (result_class.code, log)
    image.close()


def test_external_backend_explains_a_missing_python_or_package(ij, scene_file, tmp_path):
    ij.run("Settings...", "python=/nonexistent/bin/python backend=External model=reference-2023-11-19")
    image, error = analyze(ij, scene_file, OPTIONS)
    assert "Python could not be started: /nonexistent/bin/python" in error and "Settings..." in error
    assert "MICROCRYSTALNET_PYTHON" in error  # headless runs have no Settings dialog
    image.close()
    bare = tmp_path / "bare-python"  # a real Python, isolated from this environment: no microcrystalnet
    bare.write_text(f"#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -I \"$@\"\n")
    bare.chmod(0o755)
    ij.run("Settings...", f"python=[{bare}] backend=External model=reference-2023-11-19")
    image, error = analyze(ij, scene_file, OPTIONS)
    assert "does not have MicroCrystalNet installed" in error and "MICROCRYSTALNET_PYTHON" in error
    image.close()
    prefs = jimport("ij.Prefs")
    ij.run("Settings...", "python=[] backend=External model=reference-2023-11-19")
    ij.run("Settings...", "backend=External model=reference-2023-11-19")  # Python left empty: resolved when used
    assert str(prefs.get("microcrystalnet.python", "unset")) == ""  # not the fallback, stored for good
    for model in (str(tmp_path / "mine.keras"), "reference-2023-11-19"):  # a model chosen: what Analyze offers next
        ij.run("Settings...", f"backend=External model=[{model}]")
        assert str(prefs.get("microcrystalnet.analyze.model", "")) == model
    prefs.set("microcrystalnet.analyze.model", str(tmp_path / "trained.keras"))  # as Train Classifier leaves it
    ij.run("Settings...", "backend=External model=reference-2023-11-19")  # the model left as it was
    assert str(prefs.get("microcrystalnet.analyze.model", "")) == str(tmp_path / "trained.keras")
    prefs.set("microcrystalnet.analyze.model", "reference-2023-11-19")


def cancelling_progress(stages: list):
    """A Progress that says "cancelled" once the backend has reported its first stage (as Esc does)."""
    from jpype import JImplements, JOverride

    @JImplements("microcrystalnet.fiji.Progress")
    class CancelAfterFirstStage:
        @JOverride
        def update(self, fraction, stage):
            stages.append(str(stage))

        @JOverride
        def isCancelled(self):
            return bool(stages)

    return CancelAfterFirstStage()


@pytest.mark.parametrize("backend", ["in-process", "external"])
def test_cancel_stops_the_backend(ij, scene_file, backend):
    from jpype import JException

    settings = jimport("microcrystalnet.fiji.AnalyzeCrystals").settingsJson(
        "reference-2023-11-19", 0.5, 0.25, 40.0, None, None, None, False, True, "nlm,n2v,unsharp,opening,closing", "",
        "Default", "", "")
    chosen = (jimport("microcrystalnet.fiji.BackendRegistry").inProcess() if backend == "in-process"
              else jimport("microcrystalnet.fiji.ExternalBackend")(sys.executable))
    image = ij.openImage(str(scene_file))
    temporary = Path(str(jimport("java.lang.System").getProperty("java.io.tmpdir")))
    before = set(temporary.glob("microcrystalnet-*"))
    stages: list = []
    started = time.perf_counter()
    with pytest.raises(JException) as raised:
        chosen.analyze(image, settings, False, cancelling_progress(stages))
    assert "CancelledException" in str(raised.type) or "Cancelled" in str(raised.value)
    assert stages and time.perf_counter() - started < 60
    assert set(temporary.glob("microcrystalnet-*")) == before  # the stopped command's files are gone


def wait_for_dialog(title_part: str, seconds: float = 30):
    Window = jimport("java.awt.Window")
    GenericDialog = jimport("ij.gui.GenericDialog")
    deadline = time.time() + seconds
    while time.time() < deadline:
        for window in Window.getWindows():
            if isinstance(window, GenericDialog) and window.isVisible() and title_part in str(window.getTitle()):
                return window
        time.sleep(0.1)
    raise AssertionError(f"no dialog '{title_part}' appeared")


def click(dialog, button_index: int) -> None:
    """Press a dialog button (0: OK, 1: Cancel) as the user does."""
    ActionEvent = jimport("java.awt.event.ActionEvent")
    dialog.actionPerformed(ActionEvent(dialog.getButtons()[button_index], ActionEvent.ACTION_PERFORMED, "click"))


def wait_until(condition, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def recorder(ij):
    """The macro recorder, recording (without its window), closed afterwards. A recorder left open
    (closing is what clears ImageJ's one instance) would make a new one a no-op that records
    nothing, and its old text would pass for the new test's."""
    Recorder = jimport("ij.plugin.frame.Recorder")
    if Recorder.getInstance() is not None:
        Recorder.getInstance().close()
    recorder = Recorder(False)
    assert Recorder.record and Recorder.getInstance() is not None
    yield recorder
    recorder.close()
    Recorder.class_.getField("record").setBoolean(None, False)


def open_in_front(ij, path: Path):
    image = ij.openImage(str(path))
    image.show()
    jimport("ij.WindowManager").setCurrentWindow(image.getWindow())
    return image


def test_only_the_commands_line_is_recorded_and_the_recording_replays_verbatim(ij, scene_file, cli_rows, recorder):
    use_backend(ij, "In-process")
    image = open_in_front(ij, scene_file)
    ij.doCommand("Analyze Crystals...")  # as from the menu: in its own thread, with the dialog
    dialog = wait_for_dialog("Analyze Crystals")
    dialog.getNumericFields().get(1).setText("0.5")  # field 0: unclear below; 1: minimum crystal area
    choices = [dialog.getChoices().get(i) for i in range(dialog.getChoices().size())]
    roi_manager_choice = next(c for c in choices if any(str(c.getItem(i)) == "Replace existing ROIs"
                                                        for i in range(c.getItemCount())))
    roi_manager_choice.select("Replace existing ROIs")
    click(dialog, 0)
    wait_until(lambda: "Analyze Crystals" in str(recorder.getText()))  # recorded when the command ends
    time.sleep(1)
    recording = str(recorder.getText())
    # ImageJ records bringing the image to front; beside that, only the command's own line
    lines = [line for line in recording.splitlines() if line.strip() and not line.startswith("selectWindow(")]
    assert len(lines) == 1 and lines[0].startswith('run("Analyze Crystals...", '), recording
    assert "min_crystal_area=0.5" in lines[0] and "roi_manager=[Replace existing ROIs]" in lines[0]
    assert "crystal_size=" in lines[0] and "crystals=auto" in lines[0] and "segmenter_model=" in lines[0]
    manager = roi_manager()
    interactive_names = [str(manager.getRoi(i).getName()) for i in range(manager.getCount())]
    manager.reset()
    ij.runMacro(recording)  # verbatim
    assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
    assert [str(manager.getRoi(i).getName()) for i in range(manager.getCount())] == interactive_names
    assert interactive_names and all(row["Area"] >= 0.5 for row in results_table_rows())
    image.close()


@pytest.fixture
def forgetting_dialog(ij):
    """The Analyze Crystals dialog's remembered values are dropped after the test (the next tests see the defaults)."""
    yield
    field = jimport("ij.Prefs").class_.getDeclaredField("ijPrefs")
    field.setAccessible(True)
    prefs = field.get(None)
    for key in [str(key) for key in prefs.keySet() if str(key).startswith(".microcrystalnet.analyze.")]:
        prefs.remove(key)


def find_button(container, label: str):
    """The AWT button labelled ``label`` anywhere in ``container``."""
    for component in container.getComponents():
        if isinstance(component, jimport("java.awt.Button")) and str(component.getLabel()) == label:
            return component
        if isinstance(component, jimport("java.awt.Container")):
            found = find_button(component, label)
            if found is not None:
                return found
    return None


def dialog_fields(dialog) -> dict:
    """What the Analyze Crystals dialog's fields show, by their macro keys (ImageJ ends a folder with "/")."""
    texts = [str(field.getText()) for field in dialog.getStringFields()]
    numbers = [float(str(field.getText())) for field in dialog.getNumericFields()]
    checks = [bool(box.getState()) for box in dialog.getCheckboxes()]
    choices = [str(choice.getSelectedItem()) for choice in dialog.getChoices()]
    return {"model": texts[0], "preprocessing": texts[1], "n2v_model": texts[2], "segmenter_model": texts[3],
            "settings_file": texts[4], "save_results_to": texts[5].rstrip("/"), "unclear_below": numbers[0],
            "min_crystal_area": numbers[1], "max_crystal_area": numbers[2], "crystal_size": numbers[3],
            "exclude_crystals_on_border": checks[0], "exclude_sem_data_bar": checks[1], "crystals": choices[0],
            "segmenter": choices[1], "roi_manager": choices[2]}


def test_the_dialog_reopens_with_the_last_values_restores_the_defaults_and_macros_ignore_what_it_remembers(
        ij, scene_file, tmp_path, forgetting_dialog):
    import json

    from microcrystalnet.config import (ClassifyConfig, InputConfig, LearnedConfig, PreprocessConfig, SegmentConfig,
                                        default_of)

    use_backend(ij, "In-process")
    image = open_in_front(ij, scene_file)
    ij.doCommand("Analyze Crystals...")
    dialog = wait_for_dialog("Analyze Crystals")
    chosen = {"min_crystal_area": 0.5, "crystal_size": 2.5, "crystals": "bright", "exclude_crystals_on_border": True,
              "preprocessing": "nlm,unsharp", "save_results_to": str(tmp_path / "dialog"), "segmenter": "Watershed",
              "roi_manager": "Replace existing ROIs"}
    dialog.getNumericFields().get(1).setText("0.5")
    dialog.getNumericFields().get(3).setText("2.5")  # um: the image's unit
    dialog.getCheckboxes().get(0).setState(True)
    dialog.getStringFields().get(1).setText(chosen["preprocessing"])
    dialog.getStringFields().get(5).setText(chosen["save_results_to"])
    dialog.getChoices().get(0).select(chosen["crystals"])
    dialog.getChoices().get(1).select(chosen["segmenter"])
    dialog.getChoices().get(2).select(chosen["roi_manager"])
    shown_first = dialog_fields(dialog)
    click(dialog, 0)
    summary = tmp_path / "dialog" / "scene" / "summary.json"
    wait_until(summary.is_file)
    settings = json.loads(summary.read_text())["settings"]
    assert (settings["segment"]["min_crystal_area_um2"], settings["segment"]["crystal_size_um"],
            settings["segment"]["crystal_contrast"], settings["segment"]["exclude_border"],
            settings["segment"]["backend"], settings["preprocess"]["steps"]) \
        == (0.5, 2.5, "bright", True, "watershed", ["nlm", "unsharp"])

    ij.doCommand("Analyze Crystals...")  # reopens with what was chosen
    dialog = wait_for_dialog("Analyze Crystals")
    assert dialog_fields(dialog) == {**shown_first, **chosen}
    assert find_button(dialog, "Help") is not None and find_button(dialog, "Browse") is not None
    find_button(dialog, "Restore defaults").getActionListeners()[0].actionPerformed(None)
    assert dialog_fields(dialog) == {  # the backend's defaults
        "model": default_of(ClassifyConfig, "model"), "unclear_below": default_of(ClassifyConfig, "unclear_below"),
        "min_crystal_area": default_of(SegmentConfig, "min_crystal_area_um2"),
        "max_crystal_area": default_of(SegmentConfig, "max_crystal_area_um2"), "crystal_size": 0.0,
        "crystals": default_of(SegmentConfig, "crystal_contrast"),
        "exclude_crystals_on_border": default_of(SegmentConfig, "exclude_border"),
        "exclude_sem_data_bar": default_of(InputConfig, "exclude_data_bar"),
        "preprocessing": ",".join(default_of(PreprocessConfig, "steps")), "n2v_model": "", "segmenter": "Default",
        "segmenter_model": default_of(LearnedConfig, "model"), "settings_file": "", "save_results_to": "",
        "roi_manager": "Add to existing ROIs"}
    click(dialog, 1)  # Cancel: nothing is remembered
    wait_until(lambda: not dialog.isVisible())
    Prefs = jimport("ij.Prefs")
    assert Prefs.get("microcrystalnet.analyze.min_crystal_area", 0.0) == 0.5

    # a macro: its options win, and what they leave out takes the defaults, not the remembered values
    ij.run(image, "Analyze Crystals...", OPTIONS.replace("min_crystal_area=0.25", "min_crystal_area=0.3")
           .replace("save_results_to=[]", f"save_results_to=[{tmp_path / 'macro'}]"))
    assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
    summary = json.loads((tmp_path / "macro" / "scene" / "summary.json").read_text())
    settings = summary["settings"]
    assert (settings["segment"]["min_crystal_area_um2"], settings["segment"]["crystal_contrast"],
            settings["segment"]["exclude_border"], settings["segment"]["backend"], settings["preprocess"]["steps"]) \
        == (0.3, default_of(SegmentConfig, "crystal_contrast"), False, default_of(SegmentConfig, "backend"),
            list(default_of(PreprocessConfig, "steps")))
    # no crystal size given: the analysis finds one itself (the scene's 1.4-um crystals are estimated,
    # 1.3 um, or take the micrite default), never the dialog's remembered 2.5 um
    assert summary["segmentation"]["crystal_scale"]["source"] in ("estimated from the image", "micrite default")
    assert settings["segment"]["crystal_size_um"] != 2.5
    assert Prefs.get("microcrystalnet.analyze.min_crystal_area", 0.0) == 0.5  # a macro does not change the dialog's
    image.close()


def test_the_analyze_current_image_macro_runs_as_shipped(ij, scene_file, cli_rows):
    use_backend(ij, "In-process")
    roi_manager().reset()
    shown = jimport("ij.measure.ResultsTable").getResultsTable("MicroCrystalNet Results")
    if shown is not None:  # the macro adds to the tables: an earlier test's table in pixels would refuse µm
        shown.reset()
    image = open_in_front(ij, scene_file)
    ij.runMacroFile(str(REPO / "macros" / "analyze_current_image.ijm"))
    assert str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == ""
    assert [str(roi_manager().getRoi(i).getName()) for i in range(roi_manager().getCount())] == \
        [f"scene.tif:{row['Name']}" for row in cli_rows]  # the macro adds to the ROI Manager
    image.close()


def test_the_plugins_defaults_choices_and_help_are_pythons(imagej1):
    """The jar's defaults.properties is written from AnalysisConfig at build time: a stale jar, or a
    default copied into Java, fails here."""
    from microcrystalnet.config import SEGMENTATION_BACKENDS, ClassifyConfig, SegmentConfig, default_of
    from microcrystalnet.fiji_defaults import plugin_defaults

    defaults = jimport("microcrystalnet.fiji.Defaults")
    expected = plugin_defaults()
    assert "segment.min_crystal_area_um2" in expected and "segment.backend.choices" in expected
    for key, value in expected.items():
        assert str(defaults.text(key)) == value, key
    assert float(defaults.number("segment.min_crystal_area_um2")) == default_of(SegmentConfig, "min_crystal_area_um2")
    assert float(defaults.number("classify.unclear_below")) == default_of(ClassifyConfig, "unclear_below")
    assert bool(defaults.flag("segment.exclude_border")) is default_of(SegmentConfig, "exclude_border")
    assert "labelled unclear rather than forced into a class" in str(defaults.help("classify.unclear_below")).replace("``", "")
    segmenters = [str(name) for name in jimport("microcrystalnet.fiji.AnalyzeCrystals").segmenters()]
    assert segmenters[0] == "Default" and [name.lower() for name in segmenters[1:]] == list(SEGMENTATION_BACKENDS)
    assert "Learned" in segmenters
    help_html = str(jimport("microcrystalnet.fiji.DialogHelp").html())
    assert str(defaults.help("segment.crystal_size_um")).split(".")[0] in help_html


def test_cancelled_runs_are_not_recorded(ij, scene_file, recorder):
    use_backend(ij, "In-process")
    IJ = jimport("ij.IJ")
    KeyEvent = jimport("java.awt.event.KeyEvent")
    image = open_in_front(ij, scene_file)
    time.sleep(0.5)
    before = str(recorder.getText()).count("Analyze Crystals")  # the recording so far (the recorder keeps its text)
    ij.doCommand("Analyze Crystals...")
    click(wait_for_dialog("Analyze Crystals"), 1)  # Cancel in the dialog
    wait_until(lambda: not any(window.isVisible() for window in jimport("java.awt.Window").getWindows()
                               if "Analyze Crystals" in str(getattr(window, "getTitle", lambda: "")())))
    ij.doCommand("Analyze Crystals...")
    click(wait_for_dialog("Analyze Crystals"), 0)  # OK, then Esc while it runs

    def escape_pressed_and_cancelled() -> bool:
        IJ.setKeyDown(KeyEvent.VK_ESCAPE)
        return str(jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError()) == "cancelled"

    wait_until(escape_pressed_and_cancelled)
    IJ.setKeyUp(KeyEvent.VK_ESCAPE)
    IJ.resetEscape()
    time.sleep(1)
    assert str(recorder.getText()).count("Analyze Crystals") == before, recorder.getText()
    image.close()


ERROR_DIALOG_SCRIPT = """
import sys, time
from microcrystalnet.imagej import find_plugin_jar, jimport, register_backend, start_imagej1

home, image_path, model = sys.argv[1:4]
IJ = start_imagej1(headless=False, plugin_jar=find_plugin_jar(), home=home, jvm_options=(f"-Duser.home={home}",))
register_backend()
ImageJ = jimport("ij.ImageJ")
ImageJ(ImageJ.NO_SHOW)  # as in Fiji: with ImageJ's main window, errors open a dialog (without, they are printed)
IJ.run("Settings...", "python=[] backend=In-process model=reference-2023-11-19")
image = IJ.openImage(image_path)
image.show()
jimport("ij.WindowManager").setCurrentWindow(image.getWindow())
IJ.doCommand("Analyze Crystals...")


def visible(kind, title_part):
    for _ in range(600):
        for window in jimport("java.awt.Window").getWindows():
            if isinstance(window, kind) and window.isVisible() and title_part in str(window.getTitle()):
                return window
        time.sleep(0.1)
    raise SystemExit(f"no window '{title_part}' appeared")


dialog = visible(jimport("ij.gui.GenericDialog"), "Analyze Crystals")
dialog.getStringFields().get(0).setText(model)  # field 0: model
ActionEvent = jimport("java.awt.event.ActionEvent")
dialog.actionPerformed(ActionEvent(dialog.getButtons()[0], ActionEvent.ACTION_PERFORMED, "OK"))
error = visible(jimport("java.awt.Dialog"), "MicroCrystalNet")
# the bounds once the dialog has settled (laid out and placed): under load it is seen visible first
seen = []
for _ in range(300):
    bounds = error.getBounds()
    seen = [*seen[-9:], (bounds.x, bounds.width)]
    if len(seen) == 10 and len(set(seen)) == 1 and error.isShowing():
        break
    time.sleep(0.1)
screen = jimport("java.awt.Toolkit").getDefaultToolkit().getScreenSize()
print(f"BOUNDS {seen[-1][0]} {seen[-1][1]} SCREEN {screen.width}", flush=True)
jimport("java.lang.System").exit(0)
"""


def test_an_error_dialog_fits_a_1280_px_wide_screen(x_display, plugin_jar, scene_file, tmp_path):
    """A missing model named by a long path: the message, one 330-character line, set the
    dialog's width; its OK button went off the screen. Here in an ImageJ with its main window
    (a process of its own), on the 1280 x 1024 Xvfb screen."""
    model = "/nonexistent/" + "a-long-folder-name/" * 15 + "model.keras"
    script = tmp_path / "error_dialog.py"
    script.write_text(ERROR_DIALOG_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "home"), str(scene_file), model],
                          capture_output=True, text=True, timeout=300)
    reported = [line.split() for line in done.stdout.splitlines() if line.startswith("BOUNDS ")]
    assert reported, done.stdout + done.stderr
    x, width, screen = int(reported[0][1]), int(reported[0][2]), int(reported[0][4])
    assert 0 <= x and x + width <= min(1280, screen), (x, width, screen)


def test_messages_are_wrapped_at_spaces_and_slashes(imagej1):
    wrapped = str(jimport("microcrystalnet.fiji.AnalyzeCrystals").wrapped(
        "The model /data/" + "folder/" * 12 + "m.keras is missing.\n  indented short line", 40))
    lines = wrapped.split("\n")
    assert all(len(line) <= 40 for line in lines), lines
    assert lines[-1] == "  indented short line"
    original = "The model /data/" + "folder/" * 12 + "m.keras is missing."
    assert "".join(lines[:-1]).replace(" ", "") == original.replace(" ", "")
    assert all(line.endswith("/") for line in lines[1:-2])


def run_batch_macro(argument: str, plugin_home: Path, user_home: Path, model_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MICROCRYSTALNET_PYTHON": sys.executable, "MICROCRYSTALNET_MODEL_DIR": str(model_dir)}
    command = ["java", f"-Dplugins.dir={plugin_home}", f"-Duser.home={user_home}", "-cp", str(find_ij_jar()),
               "ij.ImageJ", "-batch", str(REPO / "macros" / "batch_analyze_folder.ijm"), argument]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_batch_macro_over_a_folder_with_spaces_a_corrupt_image_a_settings_file_and_a_resumed_rerun(
        x_display, plugin_jar, tmp_path, reference_model_path):
    import json

    from microcrystalnet.imagej import plugins_folder_with

    images = tmp_path / "sem images"
    images.mkdir()
    for seed, name in ((31, "first"), (32, "second")):
        write_scene(images / f"{name}.tif", SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=seed))
    (images / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    settings = tmp_path / "my settings" / "limits.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"segment": {"min_crystal_area_um2": 0.6, "max_crystal_area_um2": 30}}))
    home = plugins_folder_with(plugin_jar, tmp_path / "imagej")
    out = tmp_path / "my results"
    argument = f"input=[{images}] output=[{out}] settings=[{settings}]"

    done = run_batch_macro(argument, home, tmp_path / "user", reference_model_path.parent)
    log = done.stdout + done.stderr
    assert done.returncode == 1, log  # an image failed
    assert "corrupt.tif: ERROR" in log
    assert "2 analysed, 0 skipped (done before), 1 failed, of 3 images" in log
    for name in ("first", "second"):
        files = {p.name for p in (out / name).iterdir()}
        assert {"RoiSet.zip", "results.csv", "class_summary.csv", "labels.tif", "summary.json", "overlay.png"} <= files
        segment = json.loads((out / name / "summary.json").read_text())["settings"]["segment"]
        assert (segment["min_crystal_area_um2"], segment["max_crystal_area_um2"]) == (0.6, 30)  # from the file
        assert all(float(row["Area"]) >= 0.6 for row in read_rows(out / name / "results.csv"))
    assert not (out / "corrupt").exists()
    summary_rows = read_rows(out / "batch_summary.csv")
    assert len(summary_rows) == 10 and {row["Image"] for row in summary_rows}  # 4 classes + unclear each == {"first.tif", "second.tif"}

    (images / "corrupt.tif").unlink()
    again = run_batch_macro(argument, home, tmp_path / "user", reference_model_path.parent)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 analysed, 2 skipped (done before), 0 failed" in again.stdout + again.stderr
    assert len(read_rows(out / "batch_summary.csv")) == 10


def test_batch_macro_refuses_a_missing_folder_with_status_1(x_display, plugin_jar, tmp_path, reference_model_path):
    from microcrystalnet.imagej import plugins_folder_with

    home = plugins_folder_with(plugin_jar, tmp_path / "imagej")
    (tmp_path / "sem images").mkdir()
    # a path with spaces, not in brackets: ImageJ reads "input=.../sem"; before, 0 images and status 0
    done = run_batch_macro(f"input={tmp_path / 'sem images'} output={tmp_path / 'out'}", home, tmp_path / "user",
                           reference_model_path.parent)
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert f"the input folder {tmp_path / 'sem'} does not exist" in log and "input=[" in log


def test_imagej_command_runs_a_macro_with_this_python_as_in_process_backend(x_display, tmp_path, reference_model_path):
    images = tmp_path / "images"
    images.mkdir()
    write_scene(images / "only.tif", SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=41))
    (images / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    out = tmp_path / "results"
    temporary = tmp_path / "temporary"  # Python's temporary folder: ImageJ's plugins folder, each image's results
    temporary.mkdir()
    env = {**os.environ, "MICROCRYSTALNET_PYTHON": "/nonexistent/python",  # the external backend cannot run
           "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent), "TMPDIR": str(temporary)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "imagej", "--macro",
                           str(REPO / "macros" / "batch_analyze_folder.ijm"),
                           "--macro-argument", f"input={images} output={out}"],
                          capture_output=True, text=True, env=env, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 1, log  # the corrupt image failed
    assert "1 analysed, 0 skipped (done before), 1 failed" in log
    assert "1 of 2 images failed: corrupt.tif" in log
    assert (out / "only" / "RoiSet.zip").is_file()
    assert not list(temporary.glob("microcrystalnet-*"))  # nothing of ours left behind


def test_imagej_command_needs_a_display(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "imagej"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2 and "xvfb-run" in done.stderr


def test_fiji_start_gets_past_pyimagejs_java_version_guess_with_the_installed_java(x_display, plugin_jar, tmp_path):
    """Everything up to where a real Fiji is needed: with scyjava's fetch "never", pyimagej's
    Java-version guess crashed (UnboundLocalError) before anything started. A Fiji.app with
    nothing in it gets past that, onto the installed Java (no JRE download), and fails with a
    message that says what to do."""
    from microcrystalnet.imagej import system_java_major_version

    done_version = subprocess.run(["java", "-version"], capture_output=True, text=True)
    assert f'version "{system_java_major_version()}' in done_version.stderr or \
        f'version "1.{system_java_major_version()}' in done_version.stderr
    fiji = tmp_path / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    (fiji / "plugins").mkdir()
    macro = tmp_path / "hello.ijm"
    macro.write_text('print("hello");\n')
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "imagej", "--fiji", str(fiji), "--macro",
                           str(macro), "--plugin-jar", str(plugin_jar)],
                          capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert "UnboundLocalError" not in log and "Traceback" not in log, log
    assert "Using system Java" in log and "Fetching zulu" not in log, log
    assert done.returncode == 2 and f"pyimagej could not start the Fiji at {fiji}" in log, log
    assert (fiji / "plugins" / "MicroCrystalNet_.jar").is_file()


@pytest.mark.skipif(not os.environ.get("MICROCRYSTALNET_FIJI"),
                    reason="set MICROCRYSTALNET_FIJI to a Fiji.app folder to test the pyimagej start-up: ImageJ2 "
                           "and Fiji are not on Maven Central, so no Fiji can be had in this environment")
def test_fiji_installation_through_pyimagej(tmp_path, reference_model_path):
    images = tmp_path / "images"
    images.mkdir()
    write_scene(images / "only.tif", SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=41))
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "imagej", "--fiji", os.environ["MICROCRYSTALNET_FIJI"],
                           "--macro", str(REPO / "macros" / "batch_analyze_folder.ijm"),
                           "--macro-argument", f"input={images} output={tmp_path / 'out'}"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "only" / "RoiSet.zip").is_file()


def test_a_model_trained_here_is_used_by_path_with_its_own_input_size(ij, scene_file, tmp_path):
    """A model from 'microcrystalnet train' (here: untrained, 32 px, its own patch settings) works in
    the Fiji command as on the command line, fed as its description says."""
    import json

    from microcrystalnet.classify.architecture import build_microcrystalnet
    from microcrystalnet.classify.training import model_description
    from microcrystalnet.config import AnalysisConfig, PatchConfig

    model = tmp_path / "model.keras"
    build_microcrystalnet(32).save(model)
    trained_with = AnalysisConfig(patch=PatchConfig(size=32, margin_fraction=0.1, mask_background=False))
    model.with_name("model.keras.json").write_text(json.dumps(model_description(32, "microcrystalnet", trained_with)))
    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(scene_file), "--out", str(out),
                           "--model", str(model), "-q"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    expected = read_rows(out / "scene" / "results.csv")
    summary = json.loads((out / "scene" / "summary.json").read_text())
    assert summary["model"]["file"] == str(model)
    assert summary["model"]["patch"] == {"size": 32, "margin_fraction": 0.1, "mask_background": False}
    use_backend(ij, "In-process")
    roi_manager().reset()
    # as a line recorded before the field was called Classifier gives it: model=
    image, error = analyze(ij, scene_file, OPTIONS.replace("classifier=reference-2023-11-19", f"model=[{model}]")
                           + " roi_manager=[Replace existing ROIs]")
    assert error == ""
    assert_same_as_cli(results_table_rows(), expected)
    image.close()
