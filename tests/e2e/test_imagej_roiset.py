"""The outputs, read back by a real ImageJ: ROI names, colours, properties, and ImageJ's own
measurements of every ROI against our results.csv."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import tifffile

from microcrystalnet.classes import class_by_code
from microcrystalnet.imagej import jimport
from microcrystalnet.measure import MEASUREMENT_COLUMNS

pytestmark = pytest.mark.imagej

#: outline vertices are integers, so ImageJ's float arithmetic and ours agree this closely
RELATIVE_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, small_scene, reference_model_path):
    folder = tmp_path_factory.mktemp("imagej")
    image_path = folder / "scene.tif"
    size = small_scene.pixel_size_um
    tifffile.imwrite(image_path, small_scene.image, imagej=True, resolution=(1 / size, 1 / size),
                     metadata={"unit": "um"})
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent)}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(image_path), "--out",
                           str(folder / "out"), "--no-download", "-q"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    with open(folder / "out" / "scene" / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    return image_path, folder / "out" / "scene", rows


def open_roiset(path):
    RoiManager = jimport("ij.plugin.frame.RoiManager")
    manager = RoiManager(True)  # a private, hidden manager: the user's ROI Manager is not touched
    assert manager.runCommand("Open", str(path))
    return manager


def test_imagej_version(imagej1):
    assert str(imagej1.getVersion()).startswith("1.5")


def test_roiset_names_count_colours_and_properties(imagej1, analysed):
    _, folder, rows = analysed
    manager = open_roiset(folder / "RoiSet.zip")
    Roi = jimport("ij.gui.Roi")
    assert manager.getCount() == len(rows) > 0
    for index, row in enumerate(rows):
        roi = manager.getRoi(index)
        assert str(roi.getName()) == row["Name"]
        assert roi.getType() == Roi.TRACED_ROI
        colour = roi.getStrokeColor()
        assert (colour.getRed(), colour.getGreen(), colour.getBlue()) == class_by_code(row["Class"]).colour_rgb
        assert str(roi.getProperty("Class")) == row["Class"]
        assert float(str(roi.getProperty("Confidence"))) == pytest.approx(float(row["Confidence"]), abs=1e-4)
    manager.close()


def test_imagej_measures_every_roi_as_our_results_table(imagej1, analysed):
    image_path, folder, rows = analysed
    Analyzer = jimport("ij.plugin.filter.Analyzer")
    Measurements = jimport("ij.measure.Measurements")
    ResultsTable = jimport("ij.measure.ResultsTable")
    image = imagej1.openImage(str(image_path))
    assert image.getCalibration().pixelWidth == pytest.approx(0.04)
    flags = (Measurements.AREA | Measurements.MEAN | Measurements.CENTROID | Measurements.PERIMETER
             | Measurements.ELLIPSE | Measurements.SHAPE_DESCRIPTORS | Measurements.FERET)
    manager = open_roiset(folder / "RoiSet.zip")
    table = ResultsTable()
    analyzer = Analyzer(image, flags, table)
    for index in range(manager.getCount()):
        image.setRoi(manager.getRoi(index))
        analyzer.measure()
    assert table.size() == len(rows)
    mismatches = []
    for index, row in enumerate(rows):
        for column in MEASUREMENT_COLUMNS:
            imagej_value = table.getValue(column, index)
            ours = float(row[column])
            if ours != pytest.approx(imagej_value, rel=RELATIVE_TOLERANCE, abs=1e-12):
                mismatches.append(f"{row['Name']} {column}: ImageJ {imagej_value}, ours {ours}")
    manager.close()
    assert not mismatches, "\n".join(mismatches[:20])


def test_label_image_opens_calibrated_with_one_value_per_crystal(imagej1, analysed):
    _, folder, rows = analysed
    labels = imagej1.openImage(str(folder / "labels.tif"))
    calibration = labels.getCalibration()
    assert calibration.pixelWidth == pytest.approx(0.04) and str(calibration.getUnit()) in ("µm", "micron", "um")
    assert labels.getBitDepth() == 16
    assert labels.getProcessor().getStatistics().max == len(rows)


def test_rois_drawn_in_imagej_rasterise_as_imagej_masks_them(imagej1, tmp_path):
    """Reference ROIs a user draws (polygon, freehand, rectangle, oval) cover the pixels ImageJ's getMask gives."""
    import numpy as np

    from microcrystalnet.io.roiset import read_reference_crystals

    PolygonRoi, OvalRoi, Roi = jimport("ij.gui.PolygonRoi"), jimport("ij.gui.OvalRoi"), jimport("ij.gui.Roi")
    FloatPolygon, RoiEncoder = jimport("ij.process.FloatPolygon"), jimport("ij.io.RoiEncoder")
    shapes = {
        "polygon": PolygonRoi(FloatPolygon([3.0, 30.0, 25.5, 8.2], [4.0, 6.5, 33.0, 28.7]), Roi.POLYGON),
        "freehand": PolygonRoi(FloatPolygon([40.3, 55.0, 61.2, 58.0, 44.9], [5.2, 3.9, 15.5, 30.1, 22.0]), Roi.FREEROI),
        "rectangle": Roi(5, 40, 17, 9),
        "oval": OvalRoi(30, 38, 23, 15),
    }
    for name, roi in shapes.items():
        path = tmp_path / f"{name}.roi"
        RoiEncoder.save(roi, str(path))
        ours = read_reference_crystals(path, (64, 64)).labels == 1
        theirs = np.zeros((64, 64), bool)
        mask, bounds = roi.getMask(), roi.getBounds()
        for y in range(bounds.height):
            for x in range(bounds.width):
                if mask is None or mask.getPixel(x, y) != 0:
                    theirs[bounds.y + y, bounds.x + x] = True
        assert np.count_nonzero(ours != theirs) <= 0.02 * theirs.sum(), name
