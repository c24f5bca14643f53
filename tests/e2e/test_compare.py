"""``microcrystalnet compare`` end to end: files in, scores printed and written."""

import csv
import json
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from .test_cli import run_cli


def test_compare_prints_and_writes_the_scores(tmp_path):
    predicted = np.zeros((12, 10), np.uint16)
    predicted[0:4, 0:3] = 1   # IoU 12/16 with the first reference crystal
    predicted[6:10, 6:10] = 2  # IoU 1
    predicted[11, 0:2] = 3     # in the data bar rows: left out by --rows 10
    tifffile.imwrite(tmp_path / "labels.tif", predicted)
    mask = np.zeros((12, 10), np.uint8)
    mask[0:4, 0:4] = mask[6:10, 6:10] = mask[0:2, 8:10] = 255
    iio.imwrite(tmp_path / "mask.png", mask)
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png", "--reference-kind", "binary_4conn",
                     "--rows", "10", "--out", tmp_path / "scores.json")
    assert result.returncode == 0, result.stderr
    assert "reference 3 crystals, found 2: F1 0.800" in result.stdout
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["rows"] == 10 and scores["mean_matched_iou"] == 0.875 and scores["count_error"] == -1
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png", "--reference-kind", "binary_4conn",
                     "--out", tmp_path / "scores.csv")
    assert result.returncode == 0 and next(csv.DictReader(open(tmp_path / "scores.csv")))["n_predicted"] == "3"
    # its own scores are replaced on the next run; a file of someone else's at --out never is
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png", "--reference-kind", "binary_4conn",
                     "--out", tmp_path / "scores.json")
    assert result.returncode == 0 and json.loads((tmp_path / "scores.json").read_text())["rows"] == 12
    for name, theirs in (("notes.json", '{"mine": 1}\n'), ("table.csv", "Image,F1\na,0.9\n")):
        (tmp_path / name).write_text(theirs)
        result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png", "--reference-kind",
                         "binary_4conn", "--out", tmp_path / name)
        assert result.returncode == 2 and "never replaces" in result.stderr, result.stderr
        assert (tmp_path / name).read_text() == theirs
    # scores written by a version before the ledger are recognised as ours
    (tmp_path / "older.json").write_text('{"prediction": "a", "reference": "b", "f1": 0.5}\n')
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png", "--reference-kind", "binary_4conn",
                     "--out", tmp_path / "older.json")
    assert result.returncode == 0 and json.loads((tmp_path / "older.json").read_text())["n_true"] == 3


def test_compare_suggests_exclude_border_when_only_the_found_crystals_touch_the_edge(tmp_path):
    reference = np.zeros((20, 20), np.uint16)
    reference[8:12, 8:12] = 1  # outlines that leave out the crystals cut by the image edge
    predicted = reference.copy()
    predicted[0:3, 5:8], predicted[17:20, 5:8], predicted[5:8, 0:3] = 2, 3, 4
    tifffile.imwrite(tmp_path / "reference.tif", reference)
    tifffile.imwrite(tmp_path / "labels.tif", predicted)
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "reference.tif")
    assert result.returncode == 0 and "3 found ones do" in result.stderr and "--exclude-border" in result.stderr
    predicted[5:8, 0:3] = 0  # two on the edge: could be chance
    tifffile.imwrite(tmp_path / "labels.tif", predicted)
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "reference.tif")
    assert result.returncode == 0 and "--exclude-border" not in result.stderr


def test_compare_refuses_unusable_input_with_the_fix(tmp_path):
    iio.imwrite(tmp_path / "drawing.png", np.zeros((8, 8, 3), np.uint8))
    result = run_cli("compare", tmp_path / "drawing.png", tmp_path / "drawing.png")
    assert result.returncode == 1 and "--reference-kind" in result.stderr
    result = run_cli("compare", tmp_path / "drawing.png", tmp_path / "drawing.png", "--out", tmp_path / "x.txt")
    assert result.returncode == 2 and ".json or .csv" in result.stderr
    result = run_cli("compare", tmp_path / "drawing.png", tmp_path / "outlines.json", "--reference-kind", "via_json")
    assert result.returncode == 2 and "--image-name" in result.stderr
    mask = np.zeros((8, 8), np.uint8)
    mask[0:3, 0:3] = mask[5:8, 5:8] = 255
    iio.imwrite(tmp_path / "mask.png", mask)
    tifffile.imwrite(tmp_path / "labels.tif", (mask > 0).astype(np.uint16) * np.arange(1, 65).reshape(8, 8))
    result = run_cli("compare", tmp_path / "labels.tif", tmp_path / "mask.png")  # not one crystal of two pieces
    assert result.returncode == 1 and "binary_4conn" in result.stderr and "(--reference-kind)" in result.stderr


REAL_SEM = Path(__file__).resolve().parents[2] / ".." / "shared" / "real-sem"
#: an uncalibrated real image (MIT licence: metal powder particles, hand-outlined in VIA)
POWDER_IMAGE = "Sc1Tile_001-001-000_0-000.png"


def test_a_real_image_analysed_without_settings_then_compared_with_its_hand_drawn_outlines(tmp_path):
    """What a petrographer does first: `analyze` with no settings on an uncalibrated real image (the
    crystal size is estimated and said once, with the option that sets it), then `compare` its
    labels with the hand-drawn outlines. The floor is the issue's target without settings (0.65;
    this image scores 0.791 on the shipped model)."""
    outlines = REAL_SEM / "powder" / "via_powder_particle_masks_training.json"
    if not outlines.is_file():
        pytest.skip(f"real SEM images not found at {REAL_SEM.resolve()} (the shared folder beside the repository)")
    analysed = run_cli("analyze", REAL_SEM / "powder" / "images" / POWDER_IMAGE, "--out", tmp_path, "--no-download",
                       "--no-overlay", env_extra={"MICROCRYSTALNET_MODEL_DIR": str(REAL_SEM.parent / "reference-model")})
    assert analysed.returncode == 0, analysed.stderr[-2000:]
    said = re.findall(r"typical crystal diameter[^\n]*?(\d+\.\d) px", analysed.stderr)
    assert len(said) == 1 and "--crystal-size-px" in analysed.stderr, analysed.stderr
    # the outlines' median: 58.3 px; 64.2 estimated (82.9 when the refinement took the median of what it
    # found, whose missed crystals are the small satellites; BENCHMARKS.md, "Thirteenth round")
    assert 58.3 / 1.25 < float(said[0]) < 58.3 * 1.25
    compared = run_cli("compare", tmp_path / Path(POWDER_IMAGE).stem / "labels.tif", outlines,
                       "--reference-kind", "via_json", "--image-name", POWDER_IMAGE, "--out", tmp_path / "scores.json")
    assert compared.returncode == 0, compared.stderr[-2000:]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["n_true"] == 219 and scores["f1"] >= 0.65, scores
    # the result's ROIs against the same outlines: neither side has an image size, the image gives it
    roiset = tmp_path / Path(POWDER_IMAGE).stem / "RoiSet.zip"
    sizeless = run_cli("compare", roiset, outlines, "--reference-kind", "via_json", "--image-name", POWDER_IMAGE)
    assert sizeless.returncode == 1 and "compare --image" in sizeless.stderr, sizeless.stderr[-2000:]
    compared = run_cli("compare", roiset, outlines, "--reference-kind", "via_json", "--image-name", POWDER_IMAGE,
                       "--image", REAL_SEM / "powder" / "images" / POWDER_IMAGE, "--out", tmp_path / "rois.json")
    assert compared.returncode == 0, compared.stderr[-2000:]
    from_rois = json.loads((tmp_path / "rois.json").read_text())
    assert from_rois["n_true"] == 219 and from_rois["n_predicted"] == scores["n_predicted"]
    assert abs(from_rois["f1"] - scores["f1"]) <= 0.02, (from_rois["f1"], scores["f1"])  # outlines traced from labels
