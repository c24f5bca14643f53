"""How close synthetic scenes look to real SEM images: simple image statistics of the randomised
training scenes (``microcrystalnet.synth.random_training_scene``) and of the default scenes, beside
the same statistics of the real development images with hand-drawn outlines
(``../shared/real-sem``, four materials), and how long a training scene takes to render.

Statistics, each on the analysed part of an 8-bit gray image with its instance labels:

* ``gray spread``: 95th minus 5th gray-level percentile, in units of the full 0-255 range;
* ``edge contrast``: mean gray of the interiors (>= 2 px inside an outline) minus mean gray of the
  band of 1 px on both sides of every outline, over the gray spread (> 0: outlines darker);
* ``noise sigma``: ``skimage.restoration.estimate_sigma`` of the image in [0, 1];
* ``PSD slope``: slope of the radially averaged power spectrum (Hann window) in log-log, over
  0.02-0.25 cycles/px (about -2 for sharp-edged piecewise flat images, flatter with more noise);
* ``cover``: fraction of the image inside outlines; ``diameter px``: median equivalent diameter;
  ``size p90/p10``: 90th over 10th percentile of the equivalent diameters;
* ``background texture 2 px`` / ``8 px``: standard deviation, in the background at least 2 px from
  any outline, of the difference of Gaussians of sigma s and 2 s (s = 2, 8 px), over the gray spread:
  how rough the matrix or substrate is at a fine and a coarse scale;
* ``background blobs per crystal``: bright blobs in that background (local maxima of the
  scale-normalised Laplacian of Gaussian at the crystals' median size) at least half as strong as
  the median crystal's, not within 2 sigma of the image border, per outlined crystal: how many
  crystal-like candidates the background offers.

A synthetic kind covers a real material's look where the material's value lies inside the kind's
5-95 % range. The decisive test, a model trained on these scenes meeting the real-image targets,
belongs to the learned segmenter.

    scripts/bench bench/bench_synth_realism.py [--scenes 120] [--real ../shared/real-sem]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.restoration import estimate_sigma
from skimage.segmentation import find_boundaries

from microcrystalnet.io.reference import read_reference_set
from microcrystalnet.synth import SceneSpec, random_training_scene, render_scene

#: the synthetic kind meant to cover each real material's look
KIND_FOR_MATERIAL = {"tio2": "clusters", "perovskite": "mosaic", "spheroidite": "matrix", "powder": "clusters"}
STATISTICS = ("gray spread", "edge contrast", "noise sigma", "PSD slope", "cover", "diameter px", "size p90/p10",
              "background texture 2 px", "background texture 8 px", "background blobs per crystal")


# --- statistics --------------------------------------------------------------------------------

def power_spectrum_slope(image: np.ndarray, *, band_cycles_per_px: tuple[float, float] = (0.02, 0.25)) -> float:
    """Slope of log power against log spatial frequency, radially averaged, Hann-windowed."""
    window = np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2((image - image.mean()) * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(image.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(image.shape[1]))[None, :]
    radius = np.hypot(fy, fx)
    bins = np.geomspace(*band_cycles_per_px, 16)
    which = np.digitize(radius, bins)
    centres, means = [], []
    for b in range(1, len(bins)):
        ring = which == b
        if ring.any():
            centres.append(np.sqrt(bins[b - 1] * bins[b]))
            means.append(power[ring].mean())
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def image_statistics(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The statistics of the module docstring for a gray image (0-255) and its instance labels."""
    low, high = np.percentile(image, [5, 95])
    spread = max(high - low, 1e-9)
    band = find_boundaries(labels, mode="thick")
    interior = (labels > 0) & (ndi.distance_transform_edt(~band) >= 2)
    areas = np.bincount(labels.ravel())[1:]
    diameters = np.sqrt(4 * areas[areas > 0] / np.pi)
    background = ndi.binary_erosion(labels == 0, iterations=2, border_value=1)
    normalised = image / spread
    texture = {f"background texture {s} px": float((ndi.gaussian_filter(normalised, s) - ndi.gaussian_filter(normalised, 2 * s))
                                                   [background].std()) for s in (2, 8)}
    sigma = max(1.5, float(np.median(diameters)) / 2.83)  # a disc of diameter d answers most at sigma d / 2 sqrt(2)
    blobs = -ndi.gaussian_laplace(normalised, sigma) * sigma ** 2
    crystal_strength = np.median(ndi.maximum(blobs, labels, np.unique(labels[labels > 0])))
    peaks = (blobs == ndi.maximum_filter(blobs, size=int(2 * sigma) + 1)) & (blobs > 0.5 * crystal_strength)
    margin = int(2 * sigma)  # the filters' border effects
    peaks[:margin], peaks[-margin:], peaks[:, :margin], peaks[:, -margin:] = False, False, False, False
    return {"gray spread": spread / 255,
            "edge contrast": float((image[interior].mean() - image[band].mean()) / spread) if interior.any() else np.nan,
            "noise sigma": float(estimate_sigma(image / 255)),
            "PSD slope": power_spectrum_slope(image),
            "cover": float(np.mean(labels > 0)),
            "diameter px": float(np.median(diameters)),
            "size p90/p10": float(np.divide(*np.percentile(diameters, [90, 10]))),
            **texture,
            "background blobs per crystal": float(np.count_nonzero(peaks & background) / len(diameters))}


# --- the comparison ------------------------------------------------------------------------------

def _range(values: list[float], low: float = 10, high: float = 90) -> str:
    a, b = np.nanpercentile(values, [low, high])
    return f"{a:.3g} – {b:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=120, help="randomised training scenes (256 x 256)")
    parser.add_argument("--real", type=Path, default=Path("../shared/real-sem"))
    arguments = parser.parse_args()
    if not (arguments.real / "manifest.json").exists():
        sys.exit(f"no real images at {arguments.real}: pass --real with the folder of manifest.json")

    real: dict[str, list[dict]] = defaultdict(list)
    for reference in read_reference_set(arguments.real / "manifest.json"):
        real[reference.material].append(image_statistics(reference.pixels.astype(np.float64), reference.labels))

    by_kind: dict[str, list[dict]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    for seed in range(arguments.scenes):
        started = time.perf_counter()
        scene = random_training_scene(seed)
        seconds[scene.spec.kind].append(time.perf_counter() - started)
        stats = image_statistics(scene.image.astype(np.float64), scene.labels)
        by_kind[scene.spec.kind].append(stats)
        by_kind["all"].append(stats)
    default = [image_statistics(s.image.astype(np.float64), s.labels)
               for s in (render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=seed)) for seed in range(20))]

    print(f"| material (images) | statistic | real: median (min – max) | matching kind: 10–90 % | "
          f"real inside kind's 5–95 %? | all training scenes: 10–90 % | default scenes: 10–90 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for material, stats in real.items():
        kind = KIND_FOR_MATERIAL[material]
        for name in STATISTICS:
            values = [s[name] for s in stats]
            kind_values = [s[name] for s in by_kind[kind]]
            p5, p95 = np.nanpercentile(kind_values, [5, 95])
            inside = sum(p5 <= v <= p95 for v in values)
            print(f"| {material} ({len(values)}) | {name} | {np.median(values):.3g} ({min(values):.3g} – {max(values):.3g}) "
                  f"| {kind}: {_range(kind_values)} | {inside}/{len(values)} | {_range([s[name] for s in by_kind['all']])} "
                  f"| {_range([s[name] for s in default])} |")
    print()
    print("| kind | scenes | render seconds per 256 x 256 scene: mean | median | max |")
    print("| --- | --- | --- | --- | --- |")
    for kind, times in sorted(seconds.items()):
        print(f"| {kind} | {len(times)} | {np.mean(times):.3f} | {np.median(times):.3f} | {np.max(times):.3f} |")
    everything = [t for times in seconds.values() for t in times]
    print(f"| all | {len(everything)} | {np.mean(everything):.3f} | {np.median(everything):.3f} | {np.max(everything):.3f} |")


if __name__ == "__main__":
    sys.exit(main())
