"""Instrument data bars (`databar.find_data_bar`): found at their first row on drawn bars of eight
instrument designs under real and synthetic samples, as files arrive (JPEG, resampled, 16-bit,
inverted, the sample clipped to black); and no bar read into images that have none.

Bars are drawn with Pillow's default font as FEI/Thermo (black band, fields split by lines, a scale
bar with end ticks; with a white frame too), Zeiss (black or white band, two or three text lines, a
gray logo block), JEOL (one text line, a ticked bar), Tescan (white band, a table with grid lines and
dense text), Hitachi (text touching the left edge) and Phenom (a flat dark-gray band, not the
image's darkest value) instruments draw them, 6-15 % of the image high, text antialiased on every
other sample. Samples: the ten TiO2 images of ../shared/real-sem above their own bar (rows
0-711), its seven other images without a bar, six synthetic scenes (512 px). Bar-free images: those
samples and 200 held-out synthetic scenes, as they are and with their darkest 30/50/70 % set to 0
(a sample clipped to black).

A bar counts as found within max(2 px, 1 % of the image height) of its first row; "into sample":
found above it, leaving sample rows out. ``--against REF`` scores the `databar.py` of a git commit
side by side (the same images in one run).

    scripts/bench bench/bench_data_bar.py [--against REF] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.transform import rescale

ROOT = Path(__file__).resolve().parents[1]
REAL_SEM = ROOT.parent / "shared" / "real-sem"
#: first held-out synthetic scene (bar-free images) and the scenes used as samples under bars
FREE_SCENES, SAMPLE_SCENES = range(900_000, 900_200), range(1000, 1006)
VARIANTS = ("as drawn", "JPEG q75", "JPEG q95", "x0.5 linear", "x0.5 cubic", "x1.5 linear", "x1.5 cubic",
            "x2 linear", "x2 cubic", "16-bit", "clipped 30 %", "clipped 50 %", "inverted",
            "clipped 50 % + JPEG q95", "clipped 50 % + x2 linear")


def font(size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(7, int(size)))


def fitted_size(size: float, texts: list[str], width: float) -> int:
    """The largest font size up to ``size`` at which every text is at most ``width`` px long."""
    size = int(size)
    while size > 7 and max(font(size).getlength(text) for text in texts) > width:
        size -= 1
    return size


def canvas(width: int, height: int, background: int, antialiased: bool) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "L" if antialiased else "1"
    return image, draw


def scale_bar(draw: ImageDraw.ImageDraw, left: int, top: int, length: int, thickness: int, tick: int,
              value: int) -> None:
    draw.rectangle([left, top, left + length, top + thickness - 1], fill=value)
    for x in (left, left + length):
        draw.line([x, top - tick, x, top + thickness - 1 + tick], fill=value)


def fei_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator, frame: bool = False) -> np.ndarray:
    image, draw = canvas(width, height, 0, antialiased)
    fields = [("HV", "15.00 kV"), ("mag", "5 000 x"), ("WD", "10.1 mm"), ("det", "ETD"), ("HFW", "41.4 um"),
              ("mode", "SE"), ("spot", "3.0")]
    right = int(width * 0.75)
    field_width = right / len(fields)
    text_font = font(fitted_size(height * 0.30, [value for _, value in fields], field_width - 10))
    margin = max(2, int(height * 0.1))
    for index, (name, value) in enumerate(fields):
        left = int(index * field_width) + 4
        draw.text((left, int(height * 0.10)), name, fill=255, font=text_font)
        draw.text((left, int(height * 0.52)), value, fill=255, font=text_font)
        if index:
            draw.line([int(index * field_width), margin, int(index * field_width), height - margin], fill=255)
    draw.line([right, margin, right, height - margin], fill=255)
    cell = width - right
    draw.text((right + int(cell * 0.35), int(height * 0.10)), "10 um", fill=255, font=text_font)
    scale_bar(draw, right + int(cell * 0.15), int(height * 0.68), int(cell * 0.7), max(2, int(height * 0.06)),
              max(2, int(height * 0.12)), 255)
    if frame:
        for inset in range(1 if height < 80 else 2):
            draw.rectangle([inset, inset, width - 1 - inset, height - 1 - inset], outline=255)
    return np.asarray(image)


def zeiss_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator, background: int = 0) -> np.ndarray:
    text = 255 - background
    image, draw = canvas(width, height, background, antialiased)
    lines = [["EHT = 20.00 kV", "Signal A = InLens", "Date :12 Mar 2021"],
             ["WD = 4.5 mm", "Mag = 100.00 K X", "Time :11:46:02"],
             ["Aperture = 30.00 um", "Stage at T = 0.0", "File Name = TiO2_01.tif"]][:int(rng.integers(2, 4))]
    text_font = font(fitted_size(height / (len(lines) + 1.2), [t for row in lines for t in row], width * 0.19))
    line_height = height / (len(lines) + 0.4)
    for row_index, row in enumerate(lines):
        for left, words in zip((int(width * 0.22), int(width * 0.42), int(width * 0.62)), row):
            draw.text((left, int(line_height * (row_index + 0.2))), words, fill=text, font=text_font)
    draw.text((int(width * 0.04), int(height * 0.15)), "200 nm", fill=text, font=text_font)
    scale_bar(draw, int(width * 0.02), int(height * 0.62), int(width * 0.15), max(2, int(height * 0.08)), 0, text)
    logo_width, logo_height = int(width * rng.uniform(0.05, 0.15)), int(height * rng.uniform(0.5, 0.9))
    top = (height - logo_height) // 2
    draw.rectangle([width - logo_width - int(width * 0.01), top, width - int(width * 0.01), top + logo_height],
                   fill=int(rng.integers(90, 180)))
    draw.text((width - logo_width - int(width * 0.01) + 3, top + logo_height // 4), "ZEISS", fill=255,
              font=font(logo_height * 0.4))
    return np.asarray(image)


def jeol_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator) -> np.ndarray:
    image, draw = canvas(width, height, 0, antialiased)
    words, date = "SEI   15kV   WD10mm   SS30   x5,000   1um", "JEOL   3/12/2021"
    size = height * 0.5
    while size > 7 and font(size).getlength(words + date) + width * 0.12 + 40 > width * 0.97:
        size -= 1
    text_font = font(size)
    top = int(height * 0.22)
    draw.text((int(width * 0.02), top), words, fill=255, font=text_font)
    left = int(width * 0.02) + int(text_font.getlength(words)) + 10
    length, bar_top = int(width * 0.12), int(height * 0.5)
    draw.rectangle([left, bar_top, left + length, bar_top + max(1, int(height * 0.05))], fill=255)
    for tick in range(11):
        x = left + tick * length // 10
        draw.line([x, bar_top - max(2, int(height * 0.12)), x, bar_top], fill=255)
    draw.text((left + length + 14, top), date, fill=255, font=text_font)
    return np.asarray(image)


def tescan_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator) -> np.ndarray:
    image, draw = canvas(width, height, 255, antialiased)
    cell_height, cell_width = height / 2, width / 4
    draw.rectangle([0, 0, width - 1, height - 1], outline=0)
    draw.line([0, int(cell_height), width - 1, int(cell_height)], fill=0)
    for column in range(1, 4):
        draw.line([int(column * cell_width), 0, int(column * cell_width), height - 1], fill=0)
    texts = [["SEM HV: 20.0 kV", "WD: 9.87 mm", "View field: 41.5 um", "SEM MAG: 5.00 kx"],
             ["Det: SE Detector", "Date(m/d/y): 03/12/21", "VEGA3 TESCAN", "10 um"]]
    text_font = font(fitted_size(cell_height * 0.62, [t for row in texts for t in row], cell_width - 6))
    for row in range(2):
        for column in range(4):
            draw.text((int(column * cell_width) + 3, int(row * cell_height + cell_height * 0.15)), texts[row][column],
                      fill=0, font=text_font)
    scale_bar(draw, int(3 * cell_width + cell_width * 0.55), int(cell_height * 1.45), int(cell_width * 0.35),
              max(2, int(cell_height * 0.12)), 0, 0)
    return np.asarray(image)


def hitachi_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator) -> np.ndarray:
    image, draw = canvas(width, height, 0, antialiased)
    words = "S-4800 15.0kV 8.0mm x5.00k SE(M)"
    text_font = font(fitted_size(height * 0.45, [words], width * 0.7))
    draw.text((-text_font.getbbox(words)[0], int(height * 0.3)), words, fill=255, font=text_font)
    length = int(width * 0.15)
    left, top = width - length - int(width * 0.03), int(height * 0.35)
    for tick in range(11):
        x = left + tick * length // 10
        draw.rectangle([x, top, x + 1, top + max(3, int(height * 0.15))], fill=255)
    draw.text((left + length // 3, int(height * 0.58)), "10.0um", fill=255, font=font(height * 0.3))
    return np.asarray(image)


def phenom_bar(width: int, height: int, antialiased: bool, rng: np.random.Generator) -> np.ndarray:
    image, draw = canvas(width, height, 30, antialiased)
    fields = [("HV", "10 kV"), ("Det", "BSD Full"), ("FOV", "26.9 um"), ("Date", "Mar 12 2021")]
    text_font = font(fitted_size(height * 0.3, [value for _, value in fields], width * 0.14))
    for index, (name, value) in enumerate(fields):
        left = int(width * (0.03 + 0.15 * index))
        draw.text((left, int(height * 0.12)), name, fill=160, font=text_font)
        draw.text((left, int(height * 0.52)), value, fill=255, font=text_font)
    draw.text((int(width * 0.66), int(height * 0.12)), "10 um", fill=255, font=text_font)
    scale_bar(draw, int(width * 0.64), int(height * 0.62), int(width * 0.12), max(2, int(height * 0.06)), 0, 255)
    draw.text((int(width * 0.84), int(height * 0.3)), "Phenom", fill=220,
              font=font(fitted_size(height * 0.4, ["Phenom"], width * 0.14)))
    return np.asarray(image)


DESIGNS: dict[str, Callable[..., np.ndarray]] = {
    "FEI": fei_bar, "FEI framed": lambda *a: fei_bar(*a, frame=True),
    "Zeiss black": zeiss_bar, "Zeiss white": lambda *a: zeiss_bar(*a, background=255),
    "JEOL": jeol_bar, "Tescan": tescan_bar, "Hitachi": hitachi_bar, "Phenom": phenom_bar}


def clipped_to_black(sample: np.ndarray, percent: float) -> np.ndarray:
    clipped = sample.copy()
    clipped[clipped <= np.percentile(clipped, percent)] = 0
    return clipped


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))


def resampled(image: np.ndarray, factor: float, order: int) -> np.ndarray:
    return np.clip(np.rint(rescale(image.astype(float), factor, order=order, preserve_range=True)), 0,
                   255).astype(np.uint8)


def variant(sample: np.ndarray, bar: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """The image of ``sample`` over ``bar`` as ``name`` makes it, and its bar's first row."""
    if name.startswith("clipped"):
        sample = clipped_to_black(sample, float(name.split()[1]))
        name = name.partition(" + ")[2] or "as drawn"
    image, first_row = np.vstack([sample, bar]), float(sample.shape[0])
    if name.startswith("JPEG"):
        return jpeg(image, int(name[-2:])), first_row
    if name.startswith("x"):
        factor = float(name[1:].split()[0])
        return resampled(image, factor, 1 if name.endswith("linear") else 3), first_row * factor
    if name == "16-bit":
        return image.astype(np.uint16) * 257, first_row
    if name == "inverted":
        return 255 - image, first_row
    return image, first_row


def outcome(found: int | None, first_row: float, height: int) -> str:
    if found is None:
        return "none"
    if abs(found - first_row) <= max(2, 0.01 * height):
        return "found"
    return "into sample" if found < first_row else "into bar"


def samples() -> list[tuple[str, np.ndarray]]:
    from microcrystalnet.io import read_sem_image
    from microcrystalnet.synth import random_training_scene

    tio2 = [(path.stem, read_sem_image(path, exclude_data_bar=False).pixels[:712])
            for path in sorted((REAL_SEM / "tio2" / "images").glob("*.tif"))]
    other = [(path.stem, read_sem_image(path, exclude_data_bar=False).pixels)
             for path in sorted(REAL_SEM.glob("*/images/*.png")) + [REAL_SEM / "perovskite" / "example3.png"]]
    synthetic = [(f"scene {seed}", random_training_scene(seed, shape=(512, 512)).image) for seed in SAMPLE_SCENES]
    return tio2 + other + synthetic


def databar_at(ref: str):
    """The `databar` module of git commit ``ref``, loaded from a temporary file."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:python/microcrystalnet/databar.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "databar_at_ref.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("databar_at_ref", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REF", help="also score databar.py of this git commit")
    parser.add_argument("--json", metavar="FILE", help="write the counts here")
    arguments = parser.parse_args()
    if not (REAL_SEM / "manifest.json").is_file():
        sys.exit(f"{REAL_SEM} is missing: the samples are its images")
    from microcrystalnet import databar
    from microcrystalnet.synth import random_training_scene

    versions = {"this code": databar.find_data_bar}
    if arguments.against:
        versions[arguments.against] = databar_at(arguments.against).find_data_bar
    started = time.perf_counter()
    drawn: dict[str, dict[str, collections.Counter]] = {name: collections.defaultdict(collections.Counter)
                                                         for name in versions}
    pictures = samples()
    for design_index, (design, draw) in enumerate(DESIGNS.items()):
        for sample_index, (_, sample) in enumerate(pictures):
            rng = np.random.default_rng(1000 * design_index + sample_index)
            share = rng.uniform(0.06, 0.15)
            bar = draw(sample.shape[1], int(round(share * sample.shape[0] / (1 - share))), sample_index % 2 == 0, rng)
            for name in VARIANTS:
                image, first_row = variant(sample, bar, name)
                for version, find in versions.items():
                    drawn[version][name][outcome(find(image), first_row, image.shape[0])] += 1
                    drawn[version][name]["all"] += 1
        print(f"{design}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    free = [sample for _, sample in pictures[:17]] + [random_training_scene(seed, shape=(512, 512)).image
                                                      for seed in FREE_SCENES]
    false_bars = {version: {percent: sum(find(clipped_to_black(image, percent) if percent else image) is not None
                                         for image in free) for percent in (0, 30, 50, 70)}
                  for version, find in versions.items()}
    print(f"\n{len(DESIGNS)} designs x {len(pictures)} samples per variant; found / into sample / not found:")
    print("| variant | " + " | ".join(versions) + " |")
    print("|---|" + "---|" * len(versions))
    for name in VARIANTS:
        cells = [f"{c['found']} / {c['into sample']} / {c['none']} of {c['all']}" for c in
                 (drawn[version][name] for version in versions)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    totals = {version: sum(drawn[version][name]["found"] for name in VARIANTS) for version in versions}
    print("| all | " + " | ".join(f"{totals[version]} found, {sum(drawn[version][n]['into sample'] for n in VARIANTS)}"
                                   f" into sample" for version in versions) + " |")
    print(f"\nfalse bars on {len(free)} bar-free images (17 real, {len(FREE_SCENES)} synthetic), darkest 0/30/50/70 %"
          " set to 0:")
    for version in versions:
        print(f"  {version}: " + " / ".join(str(false_bars[version][p]) for p in (0, 30, 50, 70)))
    print(f"\n{time.perf_counter() - started:.0f} s")
    if arguments.json:
        record: dict[str, Any] = {"drawn": {v: {k: dict(c) for k, c in d.items()} for v, d in drawn.items()},
                                  "false_bars": false_bars}
        Path(arguments.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
