"""How surely the contrast judge tells bright crystals from dark ones: the two certainties of
its ``crystal_contrast: auto`` judgement on images whose crystals are bright, as given minus with
the gray levels inverted (positive: "bright" judged right), per image group, and how many the
rule (:data:`microcrystalnet.segment.contrast.DARK_MARGINS`) misjudges as dark.

The judge is the shipped network whichever model segments
(:func:`microcrystalnet.segment.learned.contrast.load_contrast_judge`); ``--judge-model`` measures
another network in its place: what a new judge (or the margins chosen for it) must pass, and how
far a model judging for itself would go wrong.

Images: the real SEM images of ../shared/real-sem as they are, with gamma 0.5 and 2, Gaussian
noise (sigma 0.08 of the gray range) and blur (sigma 1.5 px), each at the manifest's median
diameter, and as they are at the texture-scale first guess (what ``auto`` judges at without a
size); held-out synthetic scenes (seeds 900000..) at their median diameter and at the first guess.
"inverted, judged dark" mirrors the rule (both certainties higher as given by more than the
margins): how many would be judged dark with their gray levels inverted.

    scripts/bench bench/bench_crystal_contrast.py [--synthetic 60] [--tile 512] [--judge-model MODEL]
                                                  [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from bench_real_sem import REAL_SEM, load_entry, machine, synthetic_entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=60, metavar="N", help="held-out synthetic scenes")
    parser.add_argument("--tile", type=int, default=None, metavar="PX",
                        help="side of the judged central tile at working scale (default: the shipped one)")
    parser.add_argument("--judge-model", default="default", metavar="MODEL",
                        help="a segmenter model file to judge with in place of the shipped network (default: "
                             "the shipped one, the judge of every analysis)")
    parser.add_argument("--json", type=Path, help="write every judgement here")
    arguments = parser.parse_args()
    if not (REAL_SEM / "manifest.json").is_file():
        sys.exit(f"skipped: no real SEM images at {REAL_SEM.resolve()}")

    import torch

    from microcrystalnet.io import to_unit_range
    from microcrystalnet.segment.contrast import DARK_MARGINS
    from microcrystalnet.segment.learned.contrast import JUDGED_TILE_PX, certainty_as_given_and_inverted
    from microcrystalnet.segment.learned.model_file import load_segmenter_model
    from microcrystalnet.segment.scale import estimate_crystal_diameter_px

    torch.set_num_threads(1)
    model = load_segmenter_model(arguments.judge_model)
    tile = arguments.tile or JUDGED_TILE_PX
    rng = np.random.default_rng(0)
    variants = {"as is": lambda x: x, "gamma 0.5": lambda x: x ** 0.5, "gamma 2": lambda x: x ** 2,
                "noise 0.08": lambda x: np.clip(x + rng.normal(0, 0.08, x.shape), 0, 1).astype(np.float32),
                "blur 1.5": lambda x: ndi.gaussian_filter(x, 1.5)}

    def margins(image: np.ndarray, diameter_px: float) -> tuple[float, float]:
        as_given, inverted = certainty_as_given_and_inverted(image, model, crystal_diameter_px=diameter_px,
                                                             tile_px=tile)
        return (as_given.crystal_score - inverted.crystal_score,
                as_given.pixel_certainty - inverted.pixel_certainty)

    entries = json.loads((REAL_SEM / "manifest.json").read_text()) + synthetic_entries(arguments.synthetic)
    judgements = []
    for entry in entries:
        image = to_unit_range(load_entry(entry)[0].pixels)
        synthetic = "synthetic_seed" in entry
        for name, change in ([("as is", variants["as is"])] if synthetic else variants.items()):
            judgements.append({"group": entry["dataset"], "image": str(entry["image"]), "variant": name,
                               "size": "given", "margins": margins(change(image), entry["median_diameter_px"])})
        guess = estimate_crystal_diameter_px(image)
        if np.isfinite(guess):
            judgements.append({"group": entry["dataset"], "image": str(entry["image"]), "variant": "as is",
                               "size": "first guess", "margins": margins(image, guess)})
        print(f"{entry['dataset']} {entry['image']}: " + ", ".join(
            f"{j['variant']} ({j['size']}) {j['margins'][0]:+.3f} / {j['margins'][1]:+.3f}"
            for j in judgements if j["image"] == str(entry["image"])), file=sys.stderr, flush=True)

    print(f"\n{machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}; tile {tile} px; margins "
          f"{DARK_MARGINS.crystal_score} / {DARK_MARGINS.pixel_certainty}\n")
    print("| images | judgements | mean crystal score | mean pixel certainty | misjudged dark | inverted, judged dark |")
    print("|---|---|---|---|---|---|")
    for group in dict.fromkeys(j["group"] for j in judgements):
        rows = [j["margins"] for j in judgements if j["group"] == group]
        crystal, pixel = zip(*rows)
        wrong = sum(-c > DARK_MARGINS.crystal_score and -p > DARK_MARGINS.pixel_certainty for c, p in rows)
        mirrored = sum(c > DARK_MARGINS.crystal_score and p > DARK_MARGINS.pixel_certainty for c, p in rows)
        print(f"| {group} | {len(rows)} | {min(crystal):+.3f} to {max(crystal):+.3f} | "
              f"{min(pixel):+.3f} to {max(pixel):+.3f} | {wrong} | {mirrored} |")
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine(), "tile_px": tile, "judgements": judgements},
                                             indent=1) + "\n")


if __name__ == "__main__":
    main()
