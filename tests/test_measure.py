import math

import numpy as np
import pytest

from microcrystalnet.measure import MEASUREMENT_COLUMNS, feret_values, fitted_ellipse, measure_crystals
from microcrystalnet.outline import outlines_from_labels

CORNER = 2 - math.sqrt(2)


def measure_single(mask, intensity=None, pixel_size=None):
    labels = mask.astype(np.int32)
    intensity = np.full(mask.shape, 100.0) if intensity is None else intensity
    (row,) = measure_crystals(labels, outlines_from_labels(labels), intensity, pixel_size)
    return row


def test_square_measures_by_hand():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 5:25] = True  # 20 x 20 px, x 5..25, y 10..30
    row = measure_single(mask, pixel_size=0.5)
    assert set(row) == set(MEASUREMENT_COLUMNS)
    assert row["Area"] == pytest.approx(400 * 0.25)
    assert row["X"] == pytest.approx(15 * 0.5) and row["Y"] == pytest.approx(20 * 0.5)
    assert row["Perim."] == pytest.approx((80 - 4 * CORNER) * 0.5)
    assert row["Feret"] == pytest.approx(20 * math.sqrt(2) * 0.5)
    assert row["FeretAngle"] == pytest.approx(135.0)  # ImageJ picks the second diagonal of the tie
    assert row["MinFeret"] == pytest.approx(20 * 0.5)
    assert row["AR"] == pytest.approx(1.0) and row["Round"] == pytest.approx(1.0)
    assert row["Solidity"] == pytest.approx(1.0)
    assert row["Major"] == pytest.approx(2 * math.sqrt(400 / math.pi) * 0.5)  # equal-area circle
    assert row["Circ."] == pytest.approx(4 * math.pi * 100 / row["Perim."] ** 2)
    assert row["Mean"] == 100.0


def test_disc_measures_close_to_geometry():
    radius = 40
    yy, xx = np.mgrid[:101, :101]
    mask = (yy - 50) ** 2 + (xx - 50) ** 2 <= radius ** 2
    row = measure_single(mask)
    assert row["Area"] == mask.sum() == pytest.approx(math.pi * radius ** 2, rel=0.01)
    # ImageJ's traced perimeter overestimates a digital disc's circumference by ~5% (its Circ. is ~0.9)
    assert 2 * math.pi * radius < row["Perim."] < 1.06 * 2 * math.pi * radius
    assert row["Feret"] == pytest.approx(2 * radius + 1, abs=1.5)  # pixel corners reach half a pixel further
    assert row["MinFeret"] == pytest.approx(2 * radius + 1, abs=1.5)
    assert row["AR"] == pytest.approx(1.0, abs=1e-3) and row["Circ."] > 0.88 and row["Solidity"] > 0.97
    assert (row["X"], row["Y"]) == (pytest.approx(50.5), pytest.approx(50.5))


def test_elongated_rectangle_axis_and_angles():
    mask = np.zeros((30, 80), bool)
    mask[10:20, 10:70] = True  # 60 x 10 px, horizontal
    row = measure_single(mask)
    assert row["AR"] == pytest.approx(math.sqrt((60 ** 2) / (10 ** 2)), rel=1e-3)  # variances 60^2/12 and 10^2/12
    assert row["Angle"] == pytest.approx(0.0)
    assert row["MinFeret"] == pytest.approx(10.0)
    assert row["Feret"] == pytest.approx(math.hypot(60, 10))
    assert row["FeretAngle"] == pytest.approx(math.degrees(math.atan2(10, 60)), abs=1e-9) or \
        row["FeretAngle"] == pytest.approx(180 - math.degrees(math.atan2(10, 60)))
    vertical = measure_single(mask.T.copy())
    assert vertical["Angle"] == pytest.approx(90.0)


def test_mean_uses_the_given_intensity_and_concave_shape_has_lower_solidity():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:15] = True
    mask[25:35, 5:35] = True  # an L
    intensity = np.zeros(mask.shape)
    intensity[mask] = np.arange(mask.sum())
    row = measure_single(mask, intensity)
    assert row["Mean"] == pytest.approx(np.arange(mask.sum()).mean())
    assert row["Solidity"] == pytest.approx(mask.sum() / (30 * 30 - 0.5 * 20 * 20), rel=1e-9)


def test_feret_and_ellipse_helpers_directly():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    feret, angle, min_feret = feret_values(square, 2.0)
    assert feret == pytest.approx(20 * math.sqrt(2)) and min_feret == pytest.approx(20)
    major, minor, _ = fitted_ellipse(np.ones((10, 10), bool))
    assert major == pytest.approx(minor) == pytest.approx(2 * math.sqrt(100 / math.pi))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        measure_crystals(np.ones((4, 4), np.int32), {}, np.ones((5, 5)))
