"""Writing an analysis as files that ImageJ/Fiji and spreadsheets open.

Per image, one folder holding:

* ``RoiSet.zip``: one traced polygon ROI per crystal, named ``0001-RES`` etc., outlined in its
  class colour, with ``Class`` and ``Confidence`` as ROI properties (ROI Manager > Open);
* ``results.csv``: the results table (:data:`microcrystalnet.results.RESULT_COLUMNS`);
* ``class_summary.csv``: one row per class: count, fraction, mean Area, Feret and confidence;
* ``preprocessing.csv``: one row per preprocessing step: applied or not, SNR after it, seconds;
* ``labels.tif``: the crystal label image (16-bit, crystal n has value n), calibrated;
* ``overlay.png``: the image with crystal outlines coloured by class, numbers and a legend;
* ``summary.json``: counts per class, settings, versions, model and its sha256, timings;
* ``report.html`` with ``size_distributions.png`` and ``snr.png`` (:mod:`microcrystalnet.io.report`);
* ``.microcrystalnet-result``: the marker that makes it a result folder of this program.

Everything is written into a hidden temporary folder that is flushed to disk and renamed into
place at the end (:mod:`microcrystalnet.io.result_folder`), so an interrupted or failed run,
or a power cut, never leaves half-written results, and no folder but our own is ever replaced.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import roifile
import tifffile
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from .. import __version__
from ..classes import RESULT_CLASSES, RESULT_CODES, class_by_code
from ..frameworks import framework_versions
from ..notices import fiji_wording
from ..results import RESULT_COLUMNS, class_statistics
from .atomic import replaced_atomically
from .image_file import to_8bit
from .report import REPORT_FILE_NAMES, write_image_report
from .result_folder import MARKER_NAME, check_replaceable, output_write_error, result_folder_written

if TYPE_CHECKING:  # the pipeline imports this package; only type checkers need the reverse
    from ..pipeline import CrystalAnalysis

Array = np.ndarray

ROISET_NAME = "RoiSet.zip"
RESULTS_NAME = "results.csv"
LABELS_NAME = "labels.tif"
OVERLAY_NAME = "overlay.png"
SUMMARY_NAME = "summary.json"
CLASS_SUMMARY_NAME = "class_summary.csv"
PREPROCESSING_NAME = "preprocessing.csv"
OUTPUT_NAMES = (ROISET_NAME, RESULTS_NAME, CLASS_SUMMARY_NAME, PREPROCESSING_NAME, LABELS_NAME, OVERLAY_NAME,
                SUMMARY_NAME, *REPORT_FILE_NAMES, MARKER_NAME)
#: zlib level of overlay.png: 1 saved a 4000 x 4000 overlay in 1.0 s against 3.6 s at Pillow's default 6,
#: and noisy SEM images compress no better at 6 (13.7 MB at 1, 17.1 MB at 6)
OVERLAY_PNG_COMPRESSION = 1
PREPROCESSING_COLUMNS = ("Step", "Applied", "SNR_dB", "Seconds", "Note")
CLASS_SUMMARY_COLUMNS = ("Image", "Class", "Name", "Colour", "Count", "Fraction", "Unit", "MeanArea", "MeanFeret",
                         "MeanConfidence")


def _argb(colour_rgb: tuple[int, int, int]) -> bytes:
    return bytes((255, *colour_rgb))


def write_roiset(path: Path, outlines: dict[int, Array], rows: Sequence[dict[str, Any]]) -> None:
    """RoiSet.zip with one traced ROI per results row (crystal n uses ``outlines[n]``)."""
    rois = []
    for row in rows:
        vertices = outlines[int(row["Crystal"])]
        roi = roifile.ImagejRoi.frompoints(vertices, name=str(row["Name"]))
        roi.roitype = roifile.ROI_TYPE.TRACED
        roi.stroke_color = _argb(class_by_code(str(row["Class"])).colour_rgb)
        roi.props = f"Class: {row['Class']}\nConfidence: {row['Confidence']:.4f}\n"
        rois.append(roi)
    path.unlink(missing_ok=True)  # roiwrite appends to an existing zip
    if rois:
        roifile.roiwrite(path, rois)
    else:  # an image without crystals still gets its (empty) RoiSet
        zipfile.ZipFile(path, "w").close()


def _format(value: object) -> object:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value)
    return value


def write_results_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = RESULT_COLUMNS) -> None:
    """The results table as CSV (full float precision, ``NaN`` for undefined values)."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row[column]) for column in columns])


def class_summary_rows(image_name: str, rows: Sequence[dict[str, Any]], unit: str) -> list[dict[str, Any]]:
    """Rows of class_summary.csv (the per-image Summary table in Fiji). ``unit``: the unit of the
    mean Feret diameter ("um" or "pixel"; the mean area is in its square), a column of its own, so
    that tables combined over images with and without a pixel size (the batch macro's
    batch_summary.csv) say which rows are in pixels."""
    statistics = class_statistics(rows)
    return [{"Image": image_name, "Class": c.code, "Name": c.name, "Colour": c.colour_hex,
             "Count": statistics[c.code]["count"], "Fraction": statistics[c.code]["fraction"], "Unit": unit,
             "MeanArea": statistics[c.code]["mean_area"], "MeanFeret": statistics[c.code]["mean_feret"],
             "MeanConfidence": statistics[c.code]["mean_confidence"]} for c in RESULT_CLASSES]


def write_calibrated_tiff(path: Path, data: Array, pixel_size_um: float | None) -> None:
    """An ImageJ TIFF with the pixel size in um when known; written beside and renamed into place."""
    extra = dict(resolution=(1 / pixel_size_um, 1 / pixel_size_um), metadata={"unit": "um"}) if pixel_size_um else {}
    with replaced_atomically(path) as partial:
        tifffile.imwrite(partial, data, imagej=True, **extra)


def write_label_tiff(path: Path, labels: Array, pixel_size_um: float | None) -> None:
    """Label image as an ImageJ TIFF: 16-bit (32-bit float beyond 65,535 crystals), calibrated."""
    data = labels.astype(np.uint16) if labels.max(initial=0) <= np.iinfo(np.uint16).max else labels.astype(np.float32)
    write_calibrated_tiff(path, data, pixel_size_um)


#: overlay text height in pixels: the former matplotlib overlay's 5-12 pt at 100 dpi
_OVERLAY_TEXT_PX = (7, 17)


def _draw_legend(draw: ImageDraw.ImageDraw, image_size: tuple[int, int], rows: Sequence[dict[str, Any]],
                 text_px: int) -> None:
    """Lower-right box: a colour square, the code, the name and the count of each class."""
    font = ImageFont.load_default(size=text_px)
    counts = {code: sum(1 for row in rows if row["Class"] == code) for code in RESULT_CODES}
    lines = [(c.colour_rgb, f"{c.code}  {c.name}  (n={counts[c.code]})") for c in RESULT_CLASSES]
    line_px = round(text_px * 1.4)
    pad = max(3, text_px // 2)
    text_width = max(draw.textlength(text, font=font) for _, text in lines)
    box_width = round(pad * 3 + text_px + text_width)
    box_height = pad * 2 + line_px * len(lines)
    left, top = image_size[0] - box_width - pad, image_size[1] - box_height - pad
    draw.rectangle((left, top, left + box_width, top + box_height), fill=(255, 255, 255), outline=(160, 160, 160))
    for number, (colour, text) in enumerate(lines):
        y = top + pad + number * line_px
        draw.rectangle((left + pad, y + 1, left + pad + text_px, y + 1 + text_px), fill=colour)
        draw.text((left + 2 * pad + text_px, y), text, fill=(0, 0, 0), font=font)


def write_overlay_png(path: Path, pixels: Array, labels: Array, rows: Sequence[dict[str, Any]]) -> None:
    """The image with crystal outlines coloured by class, crystal numbers and a legend.

    ``pixels``: the image (Y, X), any type (shown as ImageJ shows it in 8-bit); ``labels``: int
    (Y, X) crystals 1..N; ``rows``: the results table (``Crystal`` and ``Class`` of each). An 8-bit
    RGB image of the image's size is drawn directly (outlines inside each crystal, about one pixel
    wide per 1024 px of image side), so a 12000 x 12000 image needs ~1 GB, not a plotting figure's
    float RGBA copies (over 16 GB).
    """
    height, width = labels.shape
    thickness = max(1, round(max(height, width) / 1024))
    colour_of_crystal = {int(row["Crystal"]): class_by_code(str(row["Class"])).colour_rgb for row in rows}
    rgb = np.repeat(to_8bit(pixels)[..., None], 3, axis=2)
    centres = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or index not in colour_of_crystal:
            continue
        crystal = labels[box] == index
        outline = crystal & ~ndi.binary_erosion(crystal, iterations=thickness, border_value=0)
        rgb[box][outline] = colour_of_crystal[index]
        rows_in, columns_in = np.nonzero(crystal)
        centres.append((index, box[1].start + columns_in.mean() + 0.5, box[0].start + rows_in.mean() + 0.5))
    canvas = Image.fromarray(rgb, "RGB")
    del rgb  # PIL holds its own copy
    draw = ImageDraw.Draw(canvas)
    text_px = int(np.clip(round(width / 200 * 100 / 72), *_OVERLAY_TEXT_PX))
    font = ImageFont.load_default(size=text_px)
    for index, x, y in centres:
        draw.text((x, y), str(index), fill=(255, 255, 255), font=font, anchor="mm")
    _draw_legend(draw, (width, height), rows, round(text_px * 1.2))
    with replaced_atomically(path) as partial:
        canvas.save(partial, format="PNG", compress_level=OVERLAY_PNG_COMPRESSION)


def analysis_summary(analysis: CrystalAnalysis) -> dict[str, Any]:
    """The summary.json content of a :class:`microcrystalnet.pipeline.CrystalAnalysis`."""
    image = analysis.image
    card = analysis.classifier.card
    return {
        "image": str(image.path),
        "image_size_px": {"width": int(image.pixels.shape[1]), "height": int(image.pixels.shape[0])},
        "pixel_size_um": analysis.pixel_size_um,
        "pixel_size_source": image.pixel_size_source,
        "unit": analysis.unit,
        "segmentation_pixel_size_um": analysis.segmentation_pixel_size_um,
        "data_bar_first_row": image.data_bar_row,
        "notices": analysis.notices,
        "fiji_notices": [fiji_wording(notice) for notice in analysis.notices],
        "n_crystals": analysis.n_crystals,
        "classes": class_statistics(analysis.rows),
        "preprocessing": analysis.preprocessing,
        "segmentation": analysis.segmentation,
        "model": {"name": card.name, "file": str(analysis.classifier.path), "sha256": card.sha256,
                  "class_order": list(card.class_order), "input_size": card.input_size,
                  "run_by": "torch" if analysis.classifier.runs_in_torch else "keras",
                  "patch": analysis.classifier.patch_config(analysis.config.patch).to_dict()},
        "settings": analysis.config.to_dict(),
        "versions": {"microcrystalnet": __version__, **framework_versions()},
        "seconds": analysis.seconds,
    }


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(_json_safe(content), indent=2, default=_json_default) + "\n", encoding="utf-8")


def prepare_result_folders(out_dir: Path, folder_names: Sequence[str], inputs: Sequence[Path]) -> None:
    """Before any work, without creating anything: raise ``OutputWriteError`` if ``out_dir`` is
    a file, and ``OutputFolderError`` if a result folder ``out_dir/<name>/`` could not be
    replaced (see :func:`microcrystalnet.io.result_folder.check_replaceable`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise output_write_error(FileExistsError(errno.EEXIST, "exists", str(out_dir)), out_dir)
    for name in folder_names:
        check_replaceable(out_dir / name, OUTPUT_NAMES, inputs)


def write_analysis(out_dir: Path, analysis: CrystalAnalysis, folder_name: str | None = None,
                   overlay: bool = True) -> Path:
    """Write all outputs of one analysis (and its report.html) into ``out_dir/<image stem>/``.

    The folder appears complete or not at all, and replaces an earlier result folder of the
    same name only once the new one is complete; a folder that is not a result folder of this
    program is never replaced (:mod:`microcrystalnet.io.result_folder`, whose
    ``OutputFolderError`` and ``OutputWriteError`` this raises). ``overlay=False`` skips
    overlay.png (the slowest output; Fiji draws the ROIs itself). Returns the result folder.
    """
    final = Path(out_dir) / (folder_name or analysis.image.path.stem)
    with result_folder_written(final, OUTPUT_NAMES, inputs=(analysis.image.path,)) as partial:
        write_roiset(partial / ROISET_NAME, analysis.outlines, analysis.rows)
        write_results_csv(partial / RESULTS_NAME, analysis.rows)
        write_results_csv(partial / CLASS_SUMMARY_NAME,
                          class_summary_rows(analysis.image.path.name, analysis.rows, analysis.unit),
                          CLASS_SUMMARY_COLUMNS)
        write_results_csv(partial / PREPROCESSING_NAME, [
            {"Step": step["step"], "Applied": int(step["applied"]), "SNR_dB": float(step["snr_db"]),
             "Seconds": float(step["seconds"]), "Note": step["note"]} for step in analysis.preprocessing],
            PREPROCESSING_COLUMNS)
        write_label_tiff(partial / LABELS_NAME, analysis.labels, analysis.pixel_size_um)
        if overlay:
            write_overlay_png(partial / OVERLAY_NAME, analysis.image.pixels, analysis.labels, analysis.rows)
        size = analysis.pixel_size_um
        write_image_report(partial, analysis.image.path.name, analysis.rows, class_statistics(analysis.rows),
                           analysis.preprocessing, analysis.unit,
                           f"{size * 1000:g} nm ({analysis.image.pixel_size_source})" if size else
                           "unknown: results in pixels", OVERLAY_NAME if overlay else None, analysis.notices)
        write_json(partial / SUMMARY_NAME, analysis_summary(analysis))
    return final
