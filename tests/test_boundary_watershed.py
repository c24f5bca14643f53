"""The boundary-aware watershed on small crops of real SEM images with hand-drawn outlines.

The images live in ../shared/real-sem (never in the repository, for their licences); without
them these tests are skipped. Thresholds: the F1 measured on each crop (perovskite 0.76, TiO2
0.56 when written) less a margin.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from microcrystalnet.config import AnalysisConfig, SegmentConfig
from microcrystalnet.io import read_sem_image, to_unit_range
from microcrystalnet.io.reference import read_reference_labels
from microcrystalnet.metrics import match_instances
from microcrystalnet.pipeline import settings_for_image
from microcrystalnet.segment import segment_crystals

REAL_SEM = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-sem"


def real_crop(image_path: str, rows: slice, columns: slice):
    if not (REAL_SEM / "manifest.json").is_file():
        pytest.skip(f"real SEM images not found at {REAL_SEM.resolve()} (the shared folder beside the repository)")
    entry = next(e for e in json.loads((REAL_SEM / "manifest.json").read_text()) if e["image"] == image_path)
    image = to_unit_range(read_sem_image(REAL_SEM / entry["image"], exclude_data_bar=False).pixels)
    true = read_reference_labels(REAL_SEM / entry["ground_truth"], entry["ground_truth_kind"], image.shape,
                                 entry["image_name"])
    return image[rows, columns], true[rows, columns], entry["median_diameter_px"]


@pytest.mark.parametrize("image_path, minimum_f1", [("perovskite/example3.png", 0.68),
                                                     ("tio2/images/1908268.tif", 0.5)])
def test_boundary_watershed_on_a_real_crop(image_path, minimum_f1):
    image, true, diameter_px = real_crop(image_path, slice(0, 384), slice(0, 512))
    config, scale, _ = settings_for_image(image, None, AnalysisConfig().updated(
        segment={"crystal_size_px": diameter_px}))
    labels = segment_crystals(image, config.input.assumed_pixel_size_um, config.segment).labels
    match = match_instances(true, labels)
    assert match.f1 >= minimum_f1, match


def test_auto_mode_runs_the_boundary_watershed_once_a_size_is_set():
    image = np.zeros((64, 64), np.float32)
    image[8:30, 8:30] = image[34:56, 34:56] = 0.8
    config, _, _ = settings_for_image(image, None, AnalysisConfig().updated(
        segment={"crystal_size_px": 20.0, "backend": "watershed"}))
    assert segment_crystals(image, 0.01, config.segment).statistics["watershed_mode"] == "boundary"
    assert segment_crystals(image, 0.01, SegmentConfig(backend="watershed")).statistics["watershed_mode"] == "threshold"


def test_large_crystals_are_segmented_on_a_shrunken_image_with_the_same_result(small_scene):
    from microcrystalnet.segment.boundary import MAX_WORKING_DIAMETER_PX, segment_boundary_watershed

    image = to_unit_range(small_scene.image)[:256, :256]
    diameter_px = MAX_WORKING_DIAMETER_PX * 0.75
    labels = segment_boundary_watershed(image, crystal_diameter_px=diameter_px)
    doubled = segment_boundary_watershed(np.kron(image, np.ones((2, 2), np.float32)),
                                         crystal_diameter_px=2 * diameter_px)
    assert doubled.shape == (512, 512)
    assert match_instances(np.kron(labels, np.ones((2, 2), np.int32)), doubled).f1 > 0.9
