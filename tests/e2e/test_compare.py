"""``microcrystalnet compare`` end to end: files in, scores printed and written."""

import csv
import json

import imageio.v3 as iio
import numpy as np
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


def test_compare_refuses_unusable_input_with_the_fix(tmp_path):
    iio.imwrite(tmp_path / "drawing.png", np.zeros((8, 8, 3), np.uint8))
    result = run_cli("compare", tmp_path / "drawing.png", tmp_path / "drawing.png")
    assert result.returncode == 1 and "--reference-kind" in result.stderr
    result = run_cli("compare", tmp_path / "drawing.png", tmp_path / "drawing.png", "--out", tmp_path / "x.txt")
    assert result.returncode == 2 and ".json or .csv" in result.stderr
