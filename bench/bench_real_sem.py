"""Segmenters on real SEM images with hand-drawn outlines (../shared/real-sem): F1 at IoU 0.5 per
image and per material, with and without a size hint, seconds per image and peak memory.

Each image goes through what ``analyze`` does before classifying: the typical crystal diameter
(given, micrite default, or estimated), preprocessing with the scaled settings, segmentation.
"without hint": the defaults (a calibrated image keeps the micrite defaults, an uncalibrated one
gets an estimated diameter); "size hint": the manifest's median_diameter_px as crystal_size_px.
Segmenters are settings changes, looked up by name in SEGMENTERS: a new segmenter plugs in with
one entry. Each (segmenter, hint) runs in its own process, so its peak RSS is its own.

    scripts/bench bench/bench_real_sem.py [--segmenters NAME ...] [--datasets tio2 ...] [--json FILE]
                                          [--segmenter-model MODEL] [--held-out-models DIR]
                                          [--config SETTINGS.json] [--synthetic N] [--inverted]
                                          [--magnification F] [--gamma G] [--added-noise SIGMA]
                                          [--shading S]

``--segmenter-model``: the learned segmenter's model file (default: the shipped one).
``--config SETTINGS.json``: settings as ``analyze --config`` reads them, under every segmenter
(a setting the segmenter's entry changes stays the segmenter's).
``--synthetic N``: N held-out synthetic scenes of every kind instead of the real images (a check
of the training distribution, never a result on real rocks).
``--inverted``: every image with its gray levels inverted (dark crystals on a bright ground), as
a stand-in for images whose crystals are darker than their surroundings: measures
``segment.crystal_contrast`` (auto judges each image; give ``--config`` with ``bright`` to see
what the judgement saves).
``--magnification F``: every real image rescaled by F (anti-aliased where F < 1: what F times the
magnification would show), its outlines likewise (nearest neighbour), its pixel size and size hint
with it: does the analysis follow crystals at a scale this set does not have?
``--gamma G``, ``--added-noise SIGMA``: every real image's gray levels (its 0.1st-99.9th
percentiles taken as 0-1) raised to the power G, or with Gaussian noise of standard deviation SIGMA
added (seeded per image): other detector settings and faster scans than this set's.
``--shading S``: every real image's gray levels (likewise 0-1) plus a ramp rising by S from its
top left to its bottom right corner: uneven illumination (a detector on one side, charging), which
the images of this set do not have.
``--held-out-models DIR``: for an image whose name (stem) has a model DIR/<stem>.pt, the learned
segmenter uses that model, trained without that image (leave-one-image-out numbers for images a
model was trained on: bench/train_default_segmenter.py --leave-out writes them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REAL_SEM = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-sem"

#: segmenter name -> settings changes (AnalysisConfig.updated); None: cannot run here, with why
SEGMENTERS: dict[str, dict[str, Any] | str] = {
    "watershed-threshold": {"segment": {"backend": "watershed", "watershed": {"mode": "threshold"}}},
    "watershed-boundary": {"segment": {"backend": "watershed", "watershed": {"mode": "boundary"}}},
    "watershed-auto": {"segment": {"backend": "watershed", "watershed": {"mode": "auto"}}},
    "learned": {"segment": {"backend": "learned"}},
    "sam-prompt": "not run: needs a SAM checkpoint, which the benchmark does not download",
}
HINTS = ("without hint", "size hint")


#: what ``--magnification``, ``--gamma`` and ``--added-noise`` leave as it is
UNALTERED = {"magnification": 1.0, "gamma": 1.0, "added_noise": 0.0, "shading": 0.0}


#: held-out synthetic scenes (``--synthetic N``): seeds far from the training seeds, side in px
SYNTHETIC_FIRST_SEED, SYNTHETIC_SCENE_PX = 900_000, 512


def synthetic_entries(count: int) -> list[dict[str, Any]]:
    """Manifest-like entries for ``count`` held-out random training scenes (every kind and SEM
    rendering), grouped by kind as their "dataset"."""
    from microcrystalnet.segment.learned.inference import median_diameter_px
    from microcrystalnet.synth import random_training_scene

    entries = []
    for seed in range(SYNTHETIC_FIRST_SEED, SYNTHETIC_FIRST_SEED + count):
        scene = random_training_scene(seed, shape=(SYNTHETIC_SCENE_PX, SYNTHETIC_SCENE_PX))
        entries.append({"dataset": f"synthetic {scene.spec.kind}", "image": f"scene {seed}", "synthetic_seed": seed,
                        "median_diameter_px": round(median_diameter_px(scene.labels) or 0.0, 1)})
    return entries


def load_entry(entry: dict[str, Any]):
    """The image (SEMImage, data bar rows left out as the manifest says) and its reference labels."""
    from microcrystalnet.io.reference import read_reference_entry

    if "synthetic_seed" in entry:  # calibrated like a real micrite image: its pixel size is known
        from microcrystalnet.io import SEMImage
        from microcrystalnet.synth import random_training_scene

        scene = random_training_scene(entry["synthetic_seed"], shape=(SYNTHETIC_SCENE_PX, SYNTHETIC_SCENE_PX))
        return SEMImage(Path(entry["image"]), scene.image, scene.pixel_size_um, "synthetic"), scene.labels

    image, true = read_reference_entry(entry, REAL_SEM)
    factor = entry.get("magnification", UNALTERED["magnification"])
    if factor != 1.0:
        from skimage.transform import rescale, resize

        image.pixels = rescale(image.pixels.astype(np.float32), factor, order=1, anti_aliasing=factor < 1,
                               preserve_range=True).astype(np.float32)
        true = resize(true, image.pixels.shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
        if image.pixel_size_um:
            image.pixel_size_um /= factor
    gamma, noise = entry.get("gamma", UNALTERED["gamma"]), entry.get("added_noise", UNALTERED["added_noise"])
    shading = entry.get("shading", UNALTERED["shading"])
    if gamma != UNALTERED["gamma"] or noise or shading:
        import zlib

        low, high = np.percentile(image.pixels, (0.1, 99.9))
        gray = np.clip((image.pixels.astype(np.float32) - low) / max(float(high - low), 1e-6), 0, 1) ** gamma
        rng = np.random.default_rng(zlib.crc32(entry["image"].encode()))
        if shading:
            rows, columns = np.indices(gray.shape, dtype=np.float32)
            gray = gray + shading * (rows / max(gray.shape[0] - 1, 1) + columns / max(gray.shape[1] - 1, 1)) / 2
        image.pixels = (gray + rng.normal(0, noise, gray.shape) if noise else gray).astype(np.float32)
    return image, true


def altered(entries: list[dict[str, Any]], *, magnification: float = 1.0, gamma: float = 1.0,
            added_noise: float = 0.0, shading: float = 0.0) -> list[dict[str, Any]]:
    """Manifest ``entries`` to be read at ``magnification`` times their magnification, with their
    gray levels raised to ``gamma``, Gaussian noise of ``added_noise`` and a ramp of ``shading`` added
    (:func:`load_entry`)."""
    return [{**entry, "magnification": magnification, "gamma": gamma, "added_noise": added_noise, "shading": shading,
             "median_diameter_px": entry["median_diameter_px"] * magnification} for entry in entries]


def segment_entry(entry: dict[str, Any], config, segmenter, inverted: bool = False
                  ) -> tuple[Any, Any, Any, Any, float]:
    """One manifest image (``inverted``: with its gray levels inverted) through what ``analyze``
    does before classifying (crystal scale and contrast, preprocessing with the scaled settings,
    segmentation): its reference labels, the ``Segmentation``, the ``CrystalScale``, the
    ``CrystalContrast`` and the seconds taken (loading not counted). ``config``: an
    AnalysisConfig; ``segmenter``: a loaded one (``make_segmenter``)."""
    from microcrystalnet.io import to_unit_range
    from microcrystalnet.pipeline import segmentation_inputs
    from microcrystalnet.segment import segment_crystals

    image, true = load_entry(entry)
    started = time.perf_counter()
    analysed = to_unit_range(image.pixels)
    if inverted:
        analysed = 1 - analysed
    prepared = segmentation_inputs(analysed, image.pixel_size_um, config, segmenter)
    scale, contrast = prepared.scale, prepared.contrast
    segmentation = segment_crystals(prepared.image, prepared.pixel_size_um, prepared.config.segment, segmenter,
                                    prompt_image=prepared.prompt_image)
    return true, segmentation, scale, contrast, time.perf_counter() - started


def run_configuration(name: str, hint: str, entries: list[dict[str, Any]], segmenter_model: str | None = None,
                      held_out_models: Path | None = None, settings: Path | None = None,
                      inverted: bool = False) -> dict[str, Any]:
    """One segmenter with or without size hint over ``entries`` (``inverted``: their gray levels
    inverted), on the settings file ``settings`` (None: the defaults); runs in a fresh process."""
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.metrics import score_segmentation
    from microcrystalnet.segment import make_segmenter

    base = (AnalysisConfig.from_json(settings) if settings else AnalysisConfig()).updated(**SEGMENTERS[name])
    if segmenter_model and base.segment.backend == "learned":
        base = base.updated(segment={"learned": {"model": segmenter_model}})
    shared_segmenter = make_segmenter(base.segment, download=False)
    images = []
    for entry in entries:
        held_out = held_out_models / f"{Path(entry['image']).stem}.pt" if held_out_models else None
        segmenter, model_used = shared_segmenter, base.segment.learned.model
        if base.segment.backend == "learned" and held_out is not None and held_out.is_file():
            segmenter = make_segmenter(base.segment.updated(learned={"model": str(held_out)}), download=False)
            model_used = f"held out: {held_out.name}"
        config = base.updated(segment={"crystal_size_px": entry["median_diameter_px"]}) if hint == "size hint" else base
        true, segmentation, scale, contrast, seconds = segment_entry(entry, config, segmenter, inverted)
        score = score_segmentation(true, segmentation.labels)
        images.append({"dataset": entry["dataset"], "image": entry["image"], "f1": round(score.match.f1, 3),
                       "precision": round(score.match.precision, 3), "recall": round(score.match.recall, 3),
                       "n_true": score.match.n_true, "n_predicted": score.match.n_predicted,
                       "n_true_touching_edge": score.n_true_touching_edge,
                       "n_predicted_touching_edge": score.n_predicted_touching_edge,
                       "size_ks": round(score.size_ks_statistic, 3), "seconds": round(seconds, 2),
                       "diameter_px": round(scale.diameter_px, 1), "diameter_source": scale.source,
                       "crystal_contrast": contrast.as_dict(),
                       "true_median_diameter_px": entry["median_diameter_px"],
                       "watershed_mode": segmentation.statistics.get("watershed_mode"),
                       "model": model_used if base.segment.backend == "learned" else None})
        print(f"{name} | {hint} | {entry['image']}: F1 {score.match.f1:.3f} ({seconds:.1f} s, {contrast.crystals} "
              f"crystals: {contrast.source})", file=sys.stderr, flush=True)
    return {"segmenter": name, "hint": hint, "images": images,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def by_material(images: list[dict[str, Any]], key: str) -> dict[str, float]:
    materials: dict[str, list[float]] = {}
    for image in images:
        materials.setdefault(image["dataset"], []).append(image[key])
    return {material: round(statistics.mean(values), 3) for material, values in materials.items()}


def machine() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:  # the learned segmenter runs on a GPU where there is one (segment.learned.device)
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, check=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        gpus = []
    gpu = "".join(f", GPU {name.strip()}" for name in gpus if name.strip())
    return f"{model}, {multiprocessing.cpu_count()} cores{gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenters", nargs="+", default=list(SEGMENTERS), choices=list(SEGMENTERS))
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="instead of the real images: N held-out random synthetic scenes, scored per kind")
    parser.add_argument("--segmenter-model", help="the learned segmenter's model file (default: the shipped one)")
    parser.add_argument("--held-out-models", type=Path,
                        help="folder of <image stem>.pt models each trained without that image")
    parser.add_argument("--config", type=Path, metavar="SETTINGS.json",
                        help="settings file (as analyze --config reads it) under every segmenter")
    parser.add_argument("--inverted", action="store_true",
                        help="every image with its gray levels inverted (dark crystals on a bright ground)")
    parser.add_argument("--magnification", type=float, default=1.0, metavar="F",
                        help="every real image (and its outlines, pixel size, size hint) rescaled by F")
    parser.add_argument("--gamma", type=float, default=1.0, metavar="G",
                        help="every real image's gray levels (0-1) raised to the power G")
    parser.add_argument("--added-noise", type=float, default=0.0, metavar="SIGMA",
                        help="Gaussian noise of this standard deviation (gray levels 0-1) added to every real image")
    parser.add_argument("--shading", type=float, default=0.0, metavar="S",
                        help="a ramp rising by S (gray levels 0-1) from top left to bottom right added to every "
                             "real image: uneven illumination")
    arguments = parser.parse_args()
    if arguments.magnification <= 0 or arguments.gamma <= 0 or arguments.added_noise < 0:
        parser.error("--magnification and --gamma must be positive, --added-noise zero or more")
    alterations = {"magnification": arguments.magnification, "gamma": arguments.gamma,
                   "added_noise": arguments.added_noise, "shading": arguments.shading}
    if arguments.synthetic and alterations != UNALTERED:
        parser.error("--magnification, --gamma and --added-noise alter the real images; --synthetic scenes "
                     "come at every size, gray-level curve and noise level already")
    if arguments.synthetic:
        entries = synthetic_entries(arguments.synthetic)
    elif not (REAL_SEM / "manifest.json").is_file():
        sys.exit(f"skipped: no real SEM images at {REAL_SEM.resolve()} (see the issue: ../shared/real-sem/ "
                 "next to the repository)")
    else:
        entries = altered(json.loads((REAL_SEM / "manifest.json").read_text()), **alterations)
    entries = [e for e in entries if not arguments.datasets or e["dataset"] in arguments.datasets]
    results = []
    for name in arguments.segmenters:
        if isinstance(SEGMENTERS[name], str):
            results.append({"segmenter": name, "skipped": SEGMENTERS[name]})
            print(f"{name}: {SEGMENTERS[name]}")
            continue
        for hint in HINTS:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                results.append(pool.apply(run_configuration, (name, hint, entries, arguments.segmenter_model,
                                                              arguments.held_out_models, arguments.config,
                                                              arguments.inverted)))
    altered_how = ", ".join(f"{name.replace('_', ' ')} {value:g}" for name, value in alterations.items()
                            if value != UNALTERED[name])
    altered_note = f", images altered: {altered_how}" if altered_how else ""
    print(f"\n{machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}{altered_note}\n")
    materials = sorted({e["dataset"] for e in entries}, key=[e["dataset"] for e in entries].index)
    print("| segmenter | size | " + " | ".join(f"F1 {m}" for m in materials)
          + " | judged dark | s/image | peak RSS MB |")
    print("|---|---|" + "---|" * len(materials) + "---|---|---|")
    for result in results:
        if "skipped" in result:
            print(f"| {result['segmenter']} | - | " + " | ".join("-" for _ in materials)
                  + f" | - | {result['skipped']} |")
            continue
        f1 = by_material(result["images"], "f1")
        seconds = statistics.mean(image["seconds"] for image in result["images"])
        judged = [image["crystal_contrast"] for image in result["images"]
                  if image["crystal_contrast"]["source"] == "judged from the image"]
        dark = f"{sum(c['crystals'] == 'dark' for c in judged)} of {len(judged)}" if judged else "-"
        print(f"| {result['segmenter']} | {result['hint']} | " + " | ".join(f"{f1[m]:.3f}" for m in materials)
              + f" | {dark} | {seconds:.1f} | {result['peak_rss_mb']} |")
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
