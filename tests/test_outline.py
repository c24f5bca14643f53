import math

import numpy as np
import pytest

from microcrystalnet.outline import outlines_from_labels, polygon_area, trace_outline, traced_perimeter

CORNER = 2 - math.sqrt(2)


def test_rectangle_outline_runs_along_pixel_edges():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 3:8] = True  # rows 2-5, columns 3-7
    vertices = trace_outline(mask)
    assert vertices.tolist() == [[3, 2], [8, 2], [8, 6], [3, 6]]
    assert polygon_area(vertices) == 20 == mask.sum()


def test_outline_area_equals_pixel_count_for_irregular_shapes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        blob = np.zeros((40, 40), bool)
        blob[rng.integers(5, 35, 30), rng.integers(5, 35, 30)] = True
        from scipy import ndimage as ndi

        blob = ndi.binary_fill_holes(ndi.binary_dilation(blob, iterations=3))
        labels, n = ndi.label(blob, structure=np.ones((3, 3)))
        largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
        largest = ndi.binary_fill_holes(largest)
        assert polygon_area(trace_outline(largest)) == largest.sum()


def test_diagonal_neighbours_stay_one_outline_as_in_analyze_particles():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = mask[2, 3] = True
    vertices = trace_outline(mask)
    assert polygon_area(vertices) == 3
    assert len(vertices) == 8


@pytest.mark.parametrize("size, expected", [(1, 4 - 2 * CORNER), (2, 8 - 4 * CORNER)])
def test_traced_perimeter_matches_imagej_documentation(size, expected):
    # ImageJ PolygonRoi.getTracedPerimeter: "a 1x1 pixel ROI has a boundary length of 4 and 2 non-adjacent
    # edges so the perimeter is 4-2*(2-sqrt(2)); a 2x2 pixel ROI ... 8-4*(2-sqrt(2))"
    mask = np.zeros((5, 5), bool)
    mask[1:1 + size, 1:1 + size] = True
    assert traced_perimeter(trace_outline(mask)) == pytest.approx(expected)


def test_traced_perimeter_scales_with_calibration():
    mask = np.zeros((8, 8), bool)
    mask[1:5, 2:7] = True
    vertices = trace_outline(mask)
    assert traced_perimeter(vertices, 0.5, 0.5) == pytest.approx(0.5 * traced_perimeter(vertices))


def test_outlines_from_labels_are_in_image_coordinates():
    labels = np.zeros((20, 30), np.int32)
    labels[5:10, 20:25] = 1
    labels[0:3, 0:4] = 2
    outlines = outlines_from_labels(labels)
    assert outlines[1].tolist() == [[20, 5], [25, 5], [25, 10], [20, 10]]
    assert outlines[2].tolist() == [[0, 0], [4, 0], [4, 3], [0, 3]]


def test_empty_mask_is_refused():
    with pytest.raises(ValueError):
        trace_outline(np.zeros((4, 4), bool))
