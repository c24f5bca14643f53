import csv
import json

import numpy as np
import pytest
import roifile
import tifffile
from skimage.measure import regionprops

from microcrystalnet.classes import UNCLEAR
from microcrystalnet.config import AnalysisConfig, ClassifyConfig
from microcrystalnet.io import read_sem_image, sem_image_from_array
from microcrystalnet.io.outputs import write_analysis
from microcrystalnet.measure import MEASUREMENT_COLUMNS
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.results import RESULT_COLUMNS, results_rows
from microcrystalnet.synth import SceneSpec, render_scene


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_data_bar_rows_stay_empty_and_outputs_keep_the_full_image_size(tmp_path, small_scene, reference_classifier):
    bar = np.zeros((60, small_scene.image.shape[1]), np.uint8)
    bar[3, :] = 255
    bar[10:25, 20:200] = 255
    pixels = np.vstack([small_scene.image, bar])
    path = tmp_path / "with_bar.tif"
    size = small_scene.pixel_size_um
    tifffile.imwrite(path, pixels, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    image = read_sem_image(path)
    assert image.data_bar_row == small_scene.image.shape[0]
    stages = []
    analysis = analyze_image(image, reference_classifier, progress=lambda stage, fraction: stages.append(stage))
    assert stages[:4] == ["crystal contrast", "crystal size", "preprocess", "segment"] and stages[-1] == "done"
    assert analysis.labels.shape == pixels.shape and not analysis.labels[image.data_bar_row:].any()
    assert analysis.n_crystals > 0.8 * small_scene.n_crystals
    folder = write_analysis(tmp_path / "out", analysis)
    assert tifffile.imread(folder / "labels.tif").shape == pixels.shape
    summary = strict_json(folder / "summary.json")
    assert summary["data_bar_first_row"] == image.data_bar_row
    assert [step["step"] for step in summary["preprocessing"]] == ["input", "nlm", "n2v", "unsharp", "opening", "closing"]
    assert not summary["preprocessing"][2]["applied"] and "n2v train" in summary["preprocessing"][2]["note"]
    assert any("Noise2Void skipped" in notice for notice in summary["notices"])
    assert any("data bar" in notice for notice in summary["notices"])


def test_uncalibrated_image_gives_pixel_units_and_says_so(tmp_path, reference_classifier):
    scene = render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.02, seed=4, class_weights=(1, 0, 0, 0)))
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, scene.image)
    image = read_sem_image(path)
    analysis = analyze_image(image, reference_classifier)
    assert analysis.pixel_size_um is None and analysis.unit == "pixel"
    assert analysis.segmentation_pixel_size_um == pytest.approx(0.01)
    # the crystal size estimated in px sets every limit in px: the assumed pixel size changes nothing, unsaid
    assert analysis.segmentation["crystal_scale"]["source"] == "estimated from the image"
    assert not any("assumed" in notice for notice in analysis.notices), analysis.notices
    in_um = analyze_image(image, reference_classifier, AnalysisConfig().updated(segment={"crystal_size_um": 0.4}))
    assumed = [notice for notice in in_um.notices if "assumed 10 nm/px" in notice]  # here it converts the size
    assert len(assumed) == 1 and "40 px" in assumed[0] and "--pixel-size-nm" in assumed[0], in_um.notices
    limited = analyze_image(image, reference_classifier, AnalysisConfig().updated(segment={"min_crystal_area_um2": 0.01}))
    assumed = [notice for notice in limited.notices if "assumed 10 nm/px" in notice]  # an area limit in um² too
    assert len(assumed) == 1 and "--min-area-um2" in assumed[0] and "Min crystal area" in assumed[0].fiji
    assert analysis.rows and list(analysis.rows[0]) == list(RESULT_COLUMNS)
    assert analysis.rows[0]["Area"] == pytest.approx(float((analysis.labels == 1).sum()))
    summary = strict_json(write_analysis(tmp_path / "out", analysis) / "summary.json")
    assert summary["unit"] == "pixel" and summary["pixel_size_um"] is None
    empty = [code for code, stats in summary["classes"].items() if stats["count"] == 0]
    assert all(summary["classes"][code]["mean_area"] is None for code in empty)


def test_an_image_of_pore_space_only_gives_no_crystals_and_complete_outputs(tmp_path, reference_classifier, caplog):
    rng = np.random.default_rng(0)
    path = tmp_path / "pores.tif"
    tifffile.imwrite(path, rng.normal(30, 3, (512, 512)).clip(0, 255).astype(np.uint8), imagej=True,
                     resolution=(100.0, 100.0), metadata={"unit": "um"})
    analysis = analyze_image(read_sem_image(path), reference_classifier)
    assert analysis.n_crystals == 0 and "no clear contrast" in caplog.text
    assert any("no crystals found" in notice for notice in analysis.notices)
    assert any("darker than what surrounds them, give --crystal-contrast dark" in notice and
               "choose dark in the Crystals field" in notice.fiji for notice in analysis.notices)
    folder = write_analysis(tmp_path / "out", analysis)
    assert strict_json(folder / "summary.json")["n_crystals"] == 0
    assert (folder / "RoiSet.zip").is_file() and (folder / "overlay.png").is_file()


def test_a_few_crystals_covering_almost_none_of_the_image_are_said(reference_classifier):
    rng = np.random.default_rng(0)
    pixels = rng.normal(60, 4, (1024, 1024))
    yy, xx = np.mgrid[:1024, :1024]
    pixels[(yy - 500) ** 2 + (xx - 420) ** 2 <= 8 ** 2] = 200  # one particle of 16 px in 1 M px: 0.02 %
    image = sem_image_from_array(pixels.clip(0, 255).astype(np.uint8), "one.tif", None, "test")
    analysis = analyze_image(image, reference_classifier, AnalysisConfig().updated(segment={"crystal_size_px": 16}))
    said = [notice for notice in analysis.notices if "covering" in notice]
    assert analysis.n_crystals == 1 and len(said) == 1, analysis.notices
    assert said[0].startswith("only 1 crystal found, covering 0.02% of the image") and "16.0 px used" in said[0]


def test_crystals_below_the_threshold_are_unclear_in_every_output(tmp_path, small_scene, reference_classifier):

    measured = [{column: 1.0 for column in MEASUREMENT_COLUMNS}] * 3
    probabilities = np.array([[0.9, 0.05, 0.03, 0.02], [0.4, 0.3, 0.2, 0.1], [0.5, 0.5, 0.0, 0.0]])
    rows = results_rows(probabilities, measured, unclear_below=0.5)
    assert [row["Class"] for row in rows] == ["RES", "unclear", "RES"]  # at the threshold: kept
    assert rows[1]["Name"] == "0002-unclear" and rows[1]["Confidence"] == pytest.approx(0.4)
    assert [row["Class"] for row in results_rows(probabilities, measured, unclear_below=0.0)] == ["RES"] * 3

    image = sem_image_from_array(small_scene.image, "scene.tif", small_scene.spec.pixel_size_um, "test")
    config = AnalysisConfig(classify=ClassifyConfig(unclear_below=0.95))
    analysis = analyze_image(image, reference_classifier, config)
    unclear = [row for row in analysis.rows if row["Class"] == "unclear"]
    assert unclear and all(row["Confidence"] < 0.95 for row in unclear)
    assert all(row["Confidence"] >= 0.95 for row in analysis.rows if row["Class"] != "unclear")
    folder = write_analysis(tmp_path, analysis)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["classes"]["unclear"]["count"] == len(unclear)
    with open(folder / "class_summary.csv", newline="") as stream:
        table = {row["Class"]: row for row in csv.DictReader(stream)}
    assert int(table["unclear"]["Count"]) == len(unclear) and table["unclear"]["Colour"] == UNCLEAR.colour_hex
    rois = roifile.roiread(folder / "RoiSet.zip")
    marked = [roi for roi in rois if roi.name.endswith("-unclear")]
    assert len(marked) == len(unclear)
    assert all(roi.stroke_color == bytes((255, *UNCLEAR.colour_rgb)) for roi in marked)


def test_no_silent_empty_result_when_the_area_limits_drop_every_crystal(small_scene, reference_classifier):
    image = sem_image_from_array(small_scene.image, "scene.tif", small_scene.pixel_size_um)
    config = AnalysisConfig().updated(segment={"min_crystal_area_um2": 30.0})
    analysis = analyze_image(image, reference_classifier, config)
    candidates = analysis.segmentation["statistics"]["candidates"]
    assert analysis.n_crystals == 0 and candidates > 50
    assert any(f"0 of {candidates} crystal candidates kept" in notice and "--min-area-um2" in notice
               for notice in analysis.notices)
    assert not any("--crystal-contrast" in notice for notice in analysis.notices)  # the cause is known
    # the scene's crystals (median 36 px, 1.44 um) are estimated (32.8 px) rather than the micrite
    # default (50 px, 2 um): they look more than 1.5x smaller; the area limit set stays the user's
    scale = analysis.segmentation["crystal_scale"]
    true_median = np.median([region.equivalent_diameter_area for region in regionprops(small_scene.labels)])
    assert scale["source"] == "estimated from the image" and scale["diameter_px"] == pytest.approx(true_median, rel=0.2)
    assert analysis.config.segment.min_crystal_area_um2 == 30.0


def test_a_scale_bar_burned_into_a_real_image_is_no_crystal_unless_the_data_bar_is_kept(reference_classifier):
    """A real spheroidite image with a white scale bar drawn into its sample area (many SEM images
    carry one without a data bar): the learned segmenter finds the bar as a bright particle; the
    analysis leaves it out and says so, and keeps it with the data bar kept."""
    from pathlib import Path

    real_sem = Path(__file__).resolve().parents[1].parent / "shared" / "real-sem"
    path = real_sem / "spheroidite" / "images" / "train_800C-24H-Q-4_sizeRC_481_645.png"
    if not path.is_file():
        pytest.skip(f"no real SEM images at {real_sem} (the shared folder beside the repository)")
    pixels = read_sem_image(path).pixels.copy()
    pixels[441:448, 465:565] = 255  # a scale bar, 100 x 7 px, at the image's brightest value
    config = AnalysisConfig().updated(segment={"crystal_size_px": 16.0})
    kept = analyze_image(sem_image_from_array(pixels, "bar.png"), reference_classifier,
                         config.updated(input={"exclude_data_bar": False}))
    on_bar = set(np.unique(kept.labels[441:448, 465:565])) - {0}
    assert on_bar, "the segmenter no longer takes the bar for a crystal: this test checks nothing"
    analysis = analyze_image(sem_image_from_array(pixels, "bar.png"), reference_classifier, config)
    assert analysis.segmentation["statistics"]["dropped"]["on_marks"] == 1
    bar_crystal = max(on_bar, key=lambda n: np.count_nonzero(kept.labels[441:448, 465:565] == n))
    assert np.count_nonzero(analysis.labels[kept.labels == bar_crystal]) < 0.5 * np.count_nonzero(
        kept.labels == bar_crystal)
    assert analysis.n_crystals == kept.n_crystals - 1
    assert any("scale bar or label box" in notice and "--keep-data-bar" in notice for notice in analysis.notices)
