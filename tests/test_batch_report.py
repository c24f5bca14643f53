"""The batch report never puts lengths in um and in pixels on one axis."""

from __future__ import annotations

from microcrystalnet.classes import RESULT_CLASSES
from microcrystalnet.io import report
from microcrystalnet.io.report import BATCH_REPORT_NAME, BATCH_SIZES_PLOT_NAME, write_batch_report


def image_row(name: str, unit: str) -> dict:
    return {"Image": name, "Unit": unit, "Crystals": 2,
            **{f"Fraction_{c.code}": 1.0 if c is RESULT_CLASSES[0] else 0.0 for c in RESULT_CLASSES}}


def test_sizes_of_calibrated_images_are_plotted_and_the_uncalibrated_named(tmp_path, monkeypatch):
    code = RESULT_CLASSES[0].code
    crystals = [{"Image": "calibrated.tif", "Unit": "um", "Class": code, "Feret": 2.0},
                {"Image": "calibrated.tif", "Unit": "um", "Class": code, "Feret": 2.5},
                {"Image": "pixels.png", "Unit": "pixel", "Class": code, "Feret": 200.0},
                {"Image": "pixels.png", "Unit": "pixel", "Class": code, "Feret": 250.0}]
    plotted = []
    drawn = report.plot_batch_sizes
    monkeypatch.setattr(report, "plot_batch_sizes", lambda rows, unit, path, *writer: plotted.append((rows, unit))
                        or drawn(rows, unit, path, *writer))
    write_batch_report(tmp_path, [image_row("calibrated.tif", "um"), image_row("pixels.png", "pixel")], crystals, [])
    [(rows, unit)] = plotted
    assert unit == "um" and {r["Image"] for r in rows} == {"calibrated.tif"}
    assert (tmp_path / BATCH_SIZES_PLOT_NAME).is_file()
    page = (tmp_path / BATCH_REPORT_NAME).read_text()
    assert "left out of that plot: pixels.png" in page
