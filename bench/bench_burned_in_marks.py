"""Scale bars, text and label boxes burned into real SEM images (../shared/real-sem): what the
learned segmenter finds on them, and what leaving them out (``databar.burned_in_marks``, on by
default; ``--keep-data-bar`` turns it off) keeps of the score.

Many SEM images carry a scale bar and a label in the sample area rather than in a data bar. Each
real image gets, at fixed places relative to its size: a white scale bar (15 % of the width, 7 px
high) with a line of white text above it ("500 nm") in the lower right, and a black label box (30 x
6 % of the image) holding white text ("SE 15kV x20,000") in the upper left, drawn with DejaVu Sans
as instruments draw them (flat, antialiased). Three arms per image, no settings (the crystal size
estimated, as a new user's first run): the image as it is; marked, marks left out (the default);
marked, marks kept. For each: F1 at IoU 0.5 against the outlines, the pixels found as marks
more than 3 px from the drawn ones (false marks: they hide sample), and the crystals found lying
mostly (half or more of their area) where the marks are drawn: on a marked image false crystals
(the marks hide the sample there), on the image as it is the real ones those places hold.

    scripts/bench bench/bench_burned_in_marks.py [--datasets tio2 ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from bench_real_sem import REAL_SEM, load_entry, machine

SCALE_BAR_TEXT, LABEL_TEXT = "500 nm", "SE 15kV x20,000"


def drawn_marks(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pixels`` (Y, X, 8-bit) with the marks drawn into them, and where they are drawn (bool, the
    bounding boxes of bar, text and box)."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = pixels.shape
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype("DejaVuSans.ttf", max(14, round(0.03 * height)))
    bar_width, margin = round(0.15 * width), round(0.04 * width)
    bar = (width - margin - bar_width, height - margin - 7, width - margin - 1, height - margin - 1)
    draw.rectangle(bar, fill=255)
    text_box = draw.textbbox((bar[0], bar[1] - font.size - 8), SCALE_BAR_TEXT, font=font)
    draw.text((bar[0], bar[1] - font.size - 8), SCALE_BAR_TEXT, fill=255, font=font)
    label = (0, 0, round(0.3 * width) - 1, round(0.06 * height) - 1)
    draw.rectangle(label, fill=0)
    draw.text((6, max(1, (label[3] - font.size) // 2 - 2)), LABEL_TEXT, fill=255, font=font)
    where = np.zeros(pixels.shape, bool)
    for left, top, right, bottom in (bar, text_box, label):
        where[top:bottom + 1, left:right + 1] = True
    return np.asarray(canvas), where


def run_image(entry: dict[str, Any], segmenter: Any) -> dict[str, Any]:
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.io import to_unit_range
    from microcrystalnet.metrics import match_instances
    from microcrystalnet.pipeline import not_sample_of, segmentation_inputs
    from microcrystalnet.segment import segment_crystals

    image, true = load_entry(entry)
    pixels = np.asarray(image.analysed_pixels)
    if pixels.dtype != np.uint8:
        pixels = np.round(255 * to_unit_range(pixels)).astype(np.uint8)
    marked, where = drawn_marks(pixels)
    true = true[: pixels.shape[0]]
    near_drawn = ndi.binary_dilation(where, iterations=3)  # text is marked with its antialiased edge
    result: dict[str, Any] = {"image": entry["image"], "dataset": entry["dataset"]}
    for arm, shown, exclude in (("as it is", pixels, True), ("marked, left out", marked, True),
                                ("marked, kept", marked, False)):
        config = AnalysisConfig().updated(input={"exclude_data_bar": exclude})
        started = time.perf_counter()
        prepared = segmentation_inputs(to_unit_range(shown), image.pixel_size_um, config, segmenter)
        not_sample = not_sample_of(shown, config)
        labels = segment_crystals(prepared.image, prepared.pixel_size_um, prepared.config.segment, segmenter,
                                  prompt_image=prepared.prompt_image, not_sample=not_sample).labels
        on_marks = sum(1 for n in range(1, int(labels.max()) + 1)
                       if np.count_nonzero(where[labels == n]) >= 0.5 * np.count_nonzero(labels == n))
        found_marks = 0.0 if not_sample is None else float(np.count_nonzero(not_sample & where) / where.sum())
        false_marks = 0 if not_sample is None else int(np.count_nonzero(not_sample & ~near_drawn))
        result[arm] = {"f1": round(match_instances(true, labels).f1, 3), "found": int(labels.max()),
                       "false_on_marks": on_marks, "marks_found": round(found_marks, 3),
                       "marks_px_outside_the_drawn_ones": false_marks,
                       "seconds": round(time.perf_counter() - started, 2)}
        print(f"{entry['image']}: {arm}: F1 {result[arm]['f1']:.3f}, {on_marks} found on the marks, "
              f"{found_marks:.0%} of the drawn marks found, {false_marks} px found as marks elsewhere", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.segment import make_segmenter

    entries = [e for e in json.loads((REAL_SEM / "manifest.json").read_text())
               if not arguments.datasets or e["dataset"] in arguments.datasets]
    segmenter = make_segmenter(AnalysisConfig().segment, download=False)
    results = [run_image(entry, segmenter) for entry in entries]
    arms = ("as it is", "marked, left out", "marked, kept")
    print(f"\n{machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| material (images) | " + " | ".join(f"{arm}: F1 / crystals on the marks' places" for arm in arms)
          + " | drawn marks found | px found as marks elsewhere |")
    print("|---|" + "---|" * (len(arms) + 2))
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        cells = [f"{statistics.mean(r[arm]['f1'] for r in rows):.3f} / {sum(r[arm]['false_on_marks'] for r in rows)}"
                 for arm in arms]
        found = statistics.mean(r["marked, left out"]["marks_found"] for r in rows)
        elsewhere = sum(r[arm]["marks_px_outside_the_drawn_ones"] for r in rows for arm in arms)
        print(f"| {dataset} ({len(rows)}) | " + " | ".join(cells) + f" | {found:.0%} | {elsewhere} |")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
