import json

import numpy as np
import pytest
import tifffile

from microcrystalnet.io import read_sem_image
from microcrystalnet.io.outputs import write_analysis
from microcrystalnet.pipeline import analyze_image
from microcrystalnet.results import RESULT_COLUMNS
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
    assert stages[:2] == ["preprocess", "segment"] and stages[-1] == "done"
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
    assert any("assumed 10 nm/px" in notice for notice in analysis.notices)
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
    folder = write_analysis(tmp_path / "out", analysis)
    assert strict_json(folder / "summary.json")["n_crystals"] == 0
    assert (folder / "RoiSet.zip").is_file() and (folder / "overlay.png").is_file()
