"""HTML reports to open in a browser and hand on: one per image, one per batch.

Per image (in its result folder): ``report.html`` with the overlay, crystal counts and fractions
per class, size distributions per class (``size_distributions.png``: Feret diameter and area)
and the SNR after each preprocessing step (``snr.png``). Per batch (in the batch folder):
``batch_report.html`` with the class fractions of every image (``batch_class_fractions.png``)
and the size distributions across images (``batch_sizes.png``). The plots are PNG files beside
the page, so they can go into a report of their own. Pages are plain HTML with no scripts.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..classes import RESULT_CLASSES, class_by_code  # noqa: E402
from .atomic import replaced_atomically  # noqa: E402

IMAGE_REPORT_NAME = "report.html"
SIZE_PLOT_NAME = "size_distributions.png"
SNR_PLOT_NAME = "snr.png"
#: the files of an image's report, beside the other results
REPORT_FILE_NAMES = (IMAGE_REPORT_NAME, SIZE_PLOT_NAME, SNR_PLOT_NAME)
BATCH_REPORT_NAME = "batch_report.html"
BATCH_FRACTIONS_PLOT_NAME = "batch_class_fractions.png"
BATCH_SIZES_PLOT_NAME = "batch_sizes.png"
#: the files of a batch's report, in the batch folder
BATCH_REPORT_FILE_NAMES = (BATCH_REPORT_NAME, BATCH_FRACTIONS_PLOT_NAME, BATCH_SIZES_PLOT_NAME)
#: beyond this many images the batch size plot shows classes only, not one box per image
MAX_IMAGES_PER_PLOT = 60

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}"
          "figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:100%}"
          ".swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;border:1px solid #888}"
          ".note{color:#555}")


#: how a report's file is written: a context manager giving the path to write, which becomes the file
#: when the block ends (default :func:`.atomic.replaced_atomically`)
FileWriter = Callable[[Path], AbstractContextManager[Path]]


def save_figure(figure: Any, path: Path, dpi: int = 110, writer: FileWriter = replaced_atomically) -> str:
    """Save a matplotlib figure as PNG (written beside, then renamed); returns the file name."""
    figure.tight_layout()
    with writer(path) as partial:
        figure.savefig(partial, dpi=dpi)
    plt.close(figure)
    return path.name


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], raw_first_column: bool = False) -> str:
    """A table; ``raw_first_column``: the first cells are HTML already (e.g. a colour swatch)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td>{cell if raw_first_column and index == 0 else _cell(cell)}</td>" for index, cell in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_figures(names: Sequence[str]) -> str:
    return "".join(f"<figure><img src='{html.escape(n)}' alt='{html.escape(n)}'>"
                   f"<figcaption>{html.escape(n)}</figcaption></figure>" for n in names)


def html_page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _swatch(code: str) -> str:
    return f"<span class='swatch' style='background:{class_by_code(code).colour_hex}'></span>{html.escape(code)}"


def plot_size_distributions(rows: Sequence[dict[str, Any]], unit: str, path: Path) -> str:
    """Histograms of Feret diameter and area, one colour per class, stacked."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for axis, column, label in ((axes[0], "Feret", f"Feret diameter ({unit})"),
                                (axes[1], "Area", f"area ({unit}²)")):
        values = [np.asarray([float(r[column]) for r in rows if r["Class"] == c.code]) for c in RESULT_CLASSES]
        everything = np.concatenate(values) if rows else np.zeros(0)
        if len(everything):
            bins = np.histogram_bin_edges(everything, bins=min(30, max(5, len(everything) // 4)))
            axis.hist(values, bins=bins, stacked=True, color=[c.colour_hex for c in RESULT_CLASSES],
                      label=[c.code for c in RESULT_CLASSES])
        axis.set_xlabel(label)
        axis.set_ylabel("crystals")
    if rows:  # no crystals: no classes to name
        axes[1].legend(fontsize=8)
    return save_figure(figure, path)


def plot_snr(preprocessing: Sequence[dict[str, Any]], path: Path) -> str:
    shown = [step for step in preprocessing if step["applied"] or step["step"] == "input"]
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
    axis.plot([s["step"] for s in shown], [s["snr_db"] for s in shown], marker="o")
    axis.set_ylabel("SNR (dB)")
    axis.set_title("SNR after each preprocessing step")
    return save_figure(figure, path)


def write_image_report(folder: Path, image_name: str, rows: Sequence[dict[str, Any]],
                       statistics: dict[str, dict[str, float]], preprocessing: Sequence[dict[str, Any]], unit: str,
                       pixel_size: str, overlay: str | None, notices: Sequence[str]) -> Path:
    """``report.html`` (and its plots) for one analysed image in ``folder``."""
    figures = [overlay] if overlay else []
    figures.append(plot_size_distributions(rows, unit, folder / SIZE_PLOT_NAME))
    figures.append(plot_snr(preprocessing, folder / SNR_PLOT_NAME))
    classes = html_table(["class", "name", "crystals", "fraction", f"mean area ({unit}²)", f"mean Feret ({unit})",
                          "mean confidence"],
                         [[_swatch(c.code), c.name, statistics[c.code]["count"], statistics[c.code]["fraction"],
                           statistics[c.code]["mean_area"], statistics[c.code]["mean_feret"],
                           statistics[c.code]["mean_confidence"]] for c in RESULT_CLASSES], raw_first_column=True)
    steps = html_table(["step", "applied", "SNR (dB)", "seconds", "note"],
                       [[s["step"], "yes" if s["applied"] else "no", s["snr_db"], s["seconds"], s["note"]]
                        for s in preprocessing])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in notices)
    body = (f"<p>{len(rows)} crystals; pixel size {html.escape(pixel_size)}.</p>"
            + (f"<ul class='note'>{notes}</ul>" if notes else "")
            + f"<h2>Classes</h2>{classes}<h2>Pictures</h2>{html_figures(figures)}"
            + ("" if overlay else "<p class='note'>No overlay.png: it was switched off for this run.</p>")
            + f"<h2>Preprocessing</h2>{steps}"
            + "<p class='note'>Every crystal: results.csv; outlines: RoiSet.zip (ImageJ ROI Manager).</p>")
    path = folder / IMAGE_REPORT_NAME
    path.write_text(html_page(f"MicroCrystalNet: {image_name}", body))
    return path


def plot_batch_fractions(image_rows: Sequence[dict[str, Any]], path: Path,
                         writer: FileWriter = replaced_atomically) -> str:
    names = [str(r["Image"]) for r in image_rows]
    figure, axis = plt.subplots(figsize=(8, max(2.5, 0.28 * len(names) + 1)))
    left = np.zeros(len(names))
    for crystal_class in RESULT_CLASSES:
        fractions = np.asarray([float(r[f"Fraction_{crystal_class.code}"]) for r in image_rows])
        axis.barh(names, fractions, left=left, color=crystal_class.colour_hex, label=crystal_class.code)
        left += fractions
    axis.set_xlim(0, 1)
    axis.set_xlabel("fraction of crystals")
    axis.invert_yaxis()
    axis.legend(fontsize=8, ncol=len(RESULT_CLASSES), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return save_figure(figure, path, writer=writer)


def plot_batch_sizes(crystal_rows: Sequence[dict[str, Any]], unit: str, path: Path,
                     writer: FileWriter = replaced_atomically) -> str:
    """Feret diameters: one box per image (up to MAX_IMAGES_PER_PLOT images) and per class overall."""
    images = list(dict.fromkeys(str(r["Image"]) for r in crystal_rows))
    per_image = len(images) <= MAX_IMAGES_PER_PLOT
    figure, axes = plt.subplots(1, 2 if per_image else 1, figsize=(10 if per_image else 5, 3.8), squeeze=False)
    by_class = [[float(r["Feret"]) for r in crystal_rows if r["Class"] == c.code] for c in RESULT_CLASSES]
    boxes = axes[0, 0].boxplot([values or [np.nan] for values in by_class], patch_artist=True)
    for box, crystal_class in zip(boxes["boxes"], RESULT_CLASSES):
        box.set_facecolor(crystal_class.colour_hex)
    axes[0, 0].set_xticks(range(1, len(RESULT_CLASSES) + 1), [c.code for c in RESULT_CLASSES])
    axes[0, 0].set_ylabel(f"Feret diameter ({unit})")
    axes[0, 0].set_title("per class, all images")
    if per_image:
        axes[0, 1].boxplot([[float(r["Feret"]) for r in crystal_rows if r["Image"] == name] or [np.nan]
                            for name in images])
        axes[0, 1].set_xticks(range(1, len(images) + 1), images, rotation=60, ha="right", fontsize=7)
        axes[0, 1].set_title("per image")
    return save_figure(figure, path, writer=writer)


def write_batch_report(out: Path, image_rows: Sequence[dict[str, Any]], crystal_rows: Sequence[dict[str, Any]],
                       errors: Sequence[dict[str, Any]], writer: FileWriter = replaced_atomically) -> Path:
    """``batch_report.html`` (and its plots) for the finished images of a batch folder, each file
    written by ``writer``."""
    units = {str(r["Unit"]) for r in image_rows}
    # lengths in um and in pixels do not go on one axis: calibrated images are plotted, if any
    unit = "um" if "um" in units else min(units, default="pixel")
    left_out = sorted(str(r["Image"]) for r in image_rows if str(r["Unit"]) != unit)
    figures = []
    if image_rows:
        figures.append(plot_batch_fractions(image_rows, out / BATCH_FRACTIONS_PLOT_NAME, writer))
        figures.append(plot_batch_sizes([r for r in crystal_rows if str(r["Unit"]) == unit], unit,
                                        out / BATCH_SIZES_PLOT_NAME, writer))
    codes = [c.code for c in RESULT_CLASSES]
    table = html_table(["image", "crystals", *[f"{code} %" for code in codes]],
                       [[f"<a href='{html.escape(Path(str(r['Image'])).stem)}/{IMAGE_REPORT_NAME}'>"
                         f"{html.escape(str(r['Image']))}</a>", r["Crystals"],
                         *[100 * float(r[f"Fraction_{code}"]) for code in codes]] for r in image_rows],
                       raw_first_column=True)
    failed = html_table(["image", "error"], [[e["Image"], e["Error"]] for e in errors]) if errors else ""
    total = sum(int(r["Crystals"]) for r in image_rows)
    body = (f"<p>{len(image_rows)} images, {total} crystals"
            + (f"; {len(errors)} image(s) could not be analysed" if errors else "") + ".</p>"
            + f"<h2>Pictures</h2>{html_figures(figures)}"
            + (f"<p class='note'>Sizes: images with a pixel size only; {len(left_out)} image(s) without one "
               f"(lengths in pixels) left out of that plot: {html.escape(', '.join(left_out))}.</p>"
               if left_out else "")
            + f"<h2>Images</h2>{table}"
            + (f"<h2>Not analysed</h2>{failed}" if errors else "")
            + "<p class='note'>Every crystal: batch_results.csv; per image: batch_images.csv.</p>")
    path = out / BATCH_REPORT_NAME
    with writer(path) as partial:
        partial.write_text(html_page("MicroCrystalNet batch", body))
    return path
