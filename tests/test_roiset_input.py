import numpy as np
import pytest
import roifile

from microcrystalnet.io.outputs import write_roiset
from microcrystalnet.io.roiset import RoiInputError, read_reference_crystals
from microcrystalnet.outline import outlines_from_labels


def test_our_traced_roiset_reads_back_to_the_same_labels(tmp_path, small_scene):
    labels = small_scene.labels
    rows = [{"Crystal": n, "Name": f"{n:04d}-RES", "Class": "RES", "Confidence": 1.0} for n in range(1, labels.max() + 1)]
    write_roiset(tmp_path / "RoiSet.zip", outlines_from_labels(labels), rows)
    reference = read_reference_crystals(tmp_path / "RoiSet.zip", labels.shape)
    assert np.array_equal(reference.labels, labels)
    assert reference.names[0] == "0001-RES" and reference.skipped == {}


def test_hand_drawn_shapes_points_and_lines(tmp_path):
    polygon = roifile.ImagejRoi.frompoints([[2, 2], [6, 2], [6, 5], [2, 5]], name="square")
    polygon.roitype = roifile.ROI_TYPE.POLYGON
    rectangle = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=10, left=10, bottom=13, right=15, name="rect")
    point = roifile.ImagejRoi.frompoints([[30, 30]])
    point.roitype = roifile.ROI_TYPE.POINT
    roifile.roiwrite(tmp_path / "drawn.zip", [polygon, rectangle, point])
    reference = read_reference_crystals(tmp_path / "drawn.zip", (40, 40))
    assert reference.names == ["square", "rect"] and reference.skipped == {"point": 1}
    assert (reference.labels == 1).sum() == 12 and reference.labels[2, 2] == 1 and reference.labels[5, 6] == 0
    assert (reference.labels == 2).sum() == 15 and reference.labels[10, 10] == 2


def test_bad_roi_files(tmp_path):
    with pytest.raises(RoiInputError, match="no such file"):
        read_reference_crystals(tmp_path / "absent.zip", (10, 10))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(RoiInputError, match="cannot be read"):
        read_reference_crystals(tmp_path / "junk.zip", (10, 10))
    far = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=100, left=100, bottom=110, right=110)
    roifile.roiwrite(tmp_path / "far.roi", far)
    with pytest.raises(RoiInputError, match="no area ROI"):
        read_reference_crystals(tmp_path / "far.roi", (10, 10))
