"""Reading reference outlines of every kind, and pairing them with a prediction."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import roifile
import tifffile

from microcrystalnet.io.reference import (REFERENCE_KINDS, ReferenceInputError, read_label_pair,
                                          read_reference_labels)


def test_binary_4conn_separates_objects_touching_diagonally_or_across_a_gap(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[0:3, 0:3] = 255
    mask[3:5, 3] = 255  # touches the others only at corners: another object under 4-connectivity
    mask[0:3, 4:8] = 255  # a 1-px gap (column 3) from the first
    path = tmp_path / "mask.png"
    iio.imwrite(path, mask)
    labels = read_reference_labels(path, "binary_4conn")
    assert labels.max() == 3 and labels.dtype == np.int32


def test_a_mask_read_as_a_label_image_is_refused_with_its_kind_named(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[0:3, 0:3] = mask[5:8, 5:8] = 255  # Fiji's Convert to Mask: one value, two crystals
    iio.imwrite(tmp_path / "mask.png", mask)
    with pytest.raises(ReferenceInputError, match=r"one gray value \(255\) marks 2 separate regions.*binary_4conn"):
        read_reference_labels(tmp_path / "mask.png")
    assert read_reference_labels(tmp_path / "mask.png", "binary_4conn").max() == 2
    mask[5:8, 5:8] = 0  # a label image of one crystal is one
    iio.imwrite(tmp_path / "one.png", mask)
    assert read_reference_labels(tmp_path / "one.png").max() == 255


def test_boundary_white_gives_the_grains_between_the_lines(tmp_path):
    rgba = np.zeros((9, 9, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[4, :, :3] = 255  # a horizontal and a vertical white line: four grains
    rgba[:, 4, :3] = 255
    path = tmp_path / "grains.png"
    iio.imwrite(path, rgba)
    labels = read_reference_labels(path, "boundary_white")
    assert labels.max() == 4 and (labels == 0).sum() == 17


def test_boundary_white_lines_that_stop_one_pixel_short_of_the_edge_still_close_their_grains(tmp_path):
    gray = np.zeros((9, 9), np.uint8)
    gray[4, :8] = 255  # both lines end one pixel before the right and bottom edges
    gray[:8, 4] = 255
    path = tmp_path / "grains.png"
    iio.imwrite(path, gray)
    labels = read_reference_labels(path, "boundary_white")
    assert labels.max() == 4  # read literally, the last row and column joined all four into one
    assert labels[8, 0] == labels[7, 0] and labels[0, 8] == labels[0, 7] and labels[8, 8] == labels[7, 7]
    assert len({labels[0, 0], labels[0, 8], labels[8, 0], labels[8, 8]}) == 4


def test_real_perovskite_outlines_read_as_separate_grains_along_every_edge():
    reference = Path(__file__).resolve().parents[1].parent / "shared" / "real-sem" / "perovskite" / "ground_truth3.png"
    if not reference.is_file():
        pytest.skip(f"real SEM outlines not found at {reference} (the shared folder beside the repository)")
    labels = read_reference_labels(reference, "boundary_white")
    areas = np.bincount(labels.ravel())[1:]
    # its lines stop one pixel short of the right and bottom edges: read literally, 58 grains,
    # one of them the 15 along those edges (17 % of the image)
    assert labels.max() == 72 and areas.max() < 0.08 * labels.size


def test_via_json_polygons_of_the_named_image(tmp_path):
    square = {"shape_attributes": {"name": "polygon", "all_points_x": [1, 5, 5, 1], "all_points_y": [1, 1, 5, 5]}}
    other = {"shape_attributes": {"name": "polygon", "all_points_x": [7, 9, 9, 7], "all_points_y": [7, 7, 9, 9]}}
    project = {"_via_img_metadata": {"a.png123": {"filename": "a.png", "regions": [square, other]},
                                     "b.png9": {"filename": "b.png", "regions": [square]}}}
    path = tmp_path / "via.json"
    path.write_text(json.dumps(project))
    labels = read_reference_labels(path, "via_json", shape=(12, 12), image_name="a.png")
    assert labels.max() == 2 and (labels == 1).sum() == 25  # pixels 1..5 on or inside the polygon
    with pytest.raises(ReferenceInputError, match="--image-name"):
        read_reference_labels(path, "via_json", shape=(12, 12))
    with pytest.raises(ReferenceInputError, match="a.png, b.png"):
        read_reference_labels(path, "via_json", shape=(12, 12), image_name="c.png")


def test_via_json_rectangles_circles_and_ellipses_are_crystals_and_other_shapes_are_refused(tmp_path):
    regions = [{"shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 1}},
               {"shape_attributes": {"name": "circle", "cx": 10, "cy": 10, "r": 2}},
               {"shape_attributes": {"name": "ellipse", "cx": 20, "cy": 5, "rx": 3, "ry": 1, "theta": 0}},
               {"shape_attributes": {"name": "ellipse", "cx": 20, "cy": 15, "rx": 3, "ry": 1, "theta": np.pi / 2}}]
    path = tmp_path / "via.json"
    path.write_text(json.dumps({"_via_img_metadata": {"a": {"filename": "a.png", "regions": regions}}}))
    labels = read_reference_labels(path, "via_json", shape=(20, 25), image_name="a.png")
    assert np.array_equal(np.argwhere(labels == 1), [[2, 1], [2, 2], [2, 3], [2, 4], [3, 1], [3, 2], [3, 3], [3, 4]])
    assert (labels == 2).sum() == 13 and labels[10, 8] == labels[8, 10] == 2 and labels[8, 8] == 0
    assert np.array_equal(np.argwhere(labels == 3), [[4, 20], [5, 17], [5, 18], [5, 19], [5, 20], [5, 21], [5, 22],
                                                       [5, 23], [6, 20]])  # long along x
    rows, cols = np.nonzero(labels == 4)  # turned a quarter: long along y
    assert rows.max() - rows.min() == 6 and cols.max() - cols.min() == 2
    for bad, message in [({"name": "point", "cx": 3, "cy": 3}, "point, which outlines no area"),
                         ({"name": "polyline", "all_points_x": [1, 5], "all_points_y": [1, 5]}, "polyline"),
                         ({"name": "polygon", "all_points_x": [1, 5, 5], "all_points_y": [1, 1]}, "as many x as y"),
                         ({"name": "polygon"}, "all_points_x"),
                         ({"name": "circle", "cx": 3, "cy": 3, "r": 0}, "positive radii")]:
        path.write_text(json.dumps({"_via_img_metadata": {"a": {"filename": "a.png", "regions": regions + [
            {"shape_attributes": bad}]}}}))
        with pytest.raises(ReferenceInputError, match=f"region 5 of 'a.png'.*{message}.*polygons, rectangles"):
            read_reference_labels(path, "via_json", shape=(20, 25), image_name="a.png")


def test_a_roiset_reference_is_drawn_on_the_prediction_size_and_rows_cut(tmp_path):
    predicted = np.zeros((20, 30), np.uint16)
    predicted[2:6, 2:6] = 7
    tifffile.imwrite(tmp_path / "labels.tif", predicted)
    roi = roifile.ImagejRoi.frompoints([[2, 2], [6, 2], [6, 6], [2, 6]])
    roi.roitype = roifile.ROI_TYPE.POLYGON
    roifile.roiwrite(tmp_path / "RoiSet.zip", [roi])
    found, true = read_label_pair(tmp_path / "labels.tif", tmp_path / "RoiSet.zip", rows=10)
    assert found.shape == true.shape == (10, 30)
    assert (true == 1).sum() == 16 and np.array_equal(true > 0, found > 0)


def test_outlines_of_another_image_and_an_image_of_another_size_are_refused(tmp_path):
    far = roifile.ImagejRoi.frompoints([[200, 200], [210, 200], [210, 210], [200, 210]])  # of a larger image
    near = roifile.ImagejRoi.frompoints([[2, 2], [6, 2], [6, 6], [2, 6]])
    for roi in (far, near):
        roi.roitype = roifile.ROI_TYPE.POLYGON
    roifile.roiwrite(tmp_path / "RoiSet.zip", [near, far])
    with pytest.raises(ReferenceInputError, match="1 of its 2 outlines lie wholly outside the 30 x 20 px image"):
        read_label_pair(tmp_path / "RoiSet.zip", tmp_path / "RoiSet.zip", shape=(20, 30))
    found, true = read_label_pair(tmp_path / "RoiSet.zip", tmp_path / "RoiSet.zip", shape=(240, 240))
    assert found.shape == (240, 240) and found.max() == true.max() == 2  # both drawn on the image's size
    project = {"_via_img_metadata": {"a": {"filename": "a.png", "regions": [
        {"shape_attributes": {"name": "rect", "x": 300, "y": 5, "width": 4, "height": 4}}]}}}
    (tmp_path / "via.json").write_text(json.dumps(project))
    with pytest.raises(ReferenceInputError, match="1 of its 1 outlines lie wholly outside"):
        read_reference_labels(tmp_path / "via.json", "via_json", shape=(20, 30), image_name="a.png")
    tifffile.imwrite(tmp_path / "labels.tif", np.zeros((20, 30), np.uint16))
    with pytest.raises(ReferenceInputError, match="30 x 20 px but the image given is 60 x 40 px"):
        read_label_pair(tmp_path / "labels.tif", tmp_path / "RoiSet.zip", shape=(40, 60))


def test_unusable_references_name_the_file_and_the_fix(tmp_path):
    rgb = tmp_path / "drawing.png"
    iio.imwrite(rgb, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ReferenceInputError, match="name its kind: binary_4conn"):
        read_reference_labels(rgb)
    with pytest.raises(ReferenceInputError, match="no such file"):
        read_reference_labels(tmp_path / "missing.tif")
    with pytest.raises(ReferenceInputError, match="image size"):
        read_label_pair(tmp_path / "a.zip", tmp_path / "b.zip")


def test_the_command_offers_every_reference_kind():
    from microcrystalnet.cli.compare import _KINDS

    assert _KINDS == REFERENCE_KINDS


def test_the_real_reference_set_reads_every_image_with_its_outlined_crystals():
    from microcrystalnet.io.reference import read_reference_set

    manifest = Path(__file__).resolve().parents[1].parent / "shared" / "real-sem" / "manifest.json"
    if not manifest.is_file():
        pytest.skip(f"real SEM images not found at {manifest.parent} (the shared folder beside the repository)")
    entries = json.loads(manifest.read_text())
    images = list(read_reference_set(manifest))
    # the manifest counts perovskite's outlines read literally: the 15 grains along its right and
    # bottom edges as one (test_real_perovskite_outlines_read_as_separate_grains_along_every_edge)
    expected = [72 if entry["image"] == "perovskite/example3.png" else entry["n_instances"] for entry in entries]
    assert [image.labels.max() for image in images] == expected
    assert all(image.pixels.shape == image.labels.shape for image in images)
    assert {image.material for image in images} == {"tio2", "perovskite", "spheroidite", "powder"}


def test_label_images_of_different_sizes_are_refused_and_a_few_pixels_short_are_not(tmp_path):
    mask = np.zeros((48, 64), np.uint8)
    mask[5:15, 5:15] = 255
    iio.imwrite(tmp_path / "mask.png", mask)
    labels = np.zeros((48, 66), np.uint16)  # drawn two columns short of its image: the same image
    labels[5:15, 5:15] = 1
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    predicted, true = read_label_pair(tmp_path / "labels.tif", tmp_path / "mask.png", reference_kind="binary_4conn")
    assert predicted.shape == true.shape == (48, 64)
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((96, 128), np.uint16))  # another image's results
    with pytest.raises(ReferenceInputError, match="do not outline the same image"):
        read_label_pair(tmp_path / "other.tif", tmp_path / "mask.png", reference_kind="binary_4conn")
