"""``microcrystalnet tune-sam``: choose SAM settings on images with reference crystals from Fiji."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .common import (EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, add_analysis_options, analysis_config, log,
                     positive_int)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune-sam", help="tune SAM on images with reference crystals drawn in Fiji (RoiSet.zip)",
        description="Tune SAM for your crystals: on 1-3 images with reference crystals outlined in Fiji "
                    "(saved from the ROI Manager as RoiSet.zip), score prompt mode and a grid of automatic-mode "
                    "settings by F1 at IoU 0.5, and write the best as a settings file for 'analyze --config' and "
                    "the Fiji command, plus a report of every setting's score (<OUT>.report.json).")
    tune.add_argument("pairs", nargs="+", metavar="IMAGE ROISET", help="image files, each followed by its RoiSet.zip")
    tune.add_argument("--out", required=True, type=Path, metavar="JSON",
                      help="settings file to write (a file there that MicroCrystalNet did not write is never "
                           "replaced)")
    tune.add_argument("--grid", choices=("full", "quick"), default="full",
                      help="full: 2 grid densities x 4 x 4 x 2 thresholds (default); quick: 4 settings")
    tune.add_argument("--points-per-side", type=positive_int, nargs="+", metavar="N",
                      help="the automatic mode's point grids to try, N x N points each (default: 16 32 for the full "
                           "grid, 16 for the quick one); on a CPU each grid of 16 x 16 takes about 20 s per image tile")
    add_analysis_options(tune)
    tune.set_defaults(run=run_tune_sam)


def run_tune_sam(arguments: argparse.Namespace) -> int:
    config = analysis_config(arguments)
    if len(arguments.pairs) % 2:
        log.error("tune-sam takes pairs: IMAGE ROISET [IMAGE ROISET ...]")
        return EXIT_USAGE
    from ..io import ImageInputError
    from ..io.outputs import write_json
    from ..io.owned_files import check_replaceable_files, json_object_with, own_file
    from ..io.roiset import RoiInputError
    from ..pipeline import load_tuning_images
    from ..preprocess import Noise2VoidModel
    from ..segment import make_segmenter
    from ..segment.sam_tuning import QUICK_GRID, TuningGrid, tune_sam, tuned_settings

    missing = [path for path in arguments.pairs if not Path(path).is_file()]
    if missing:  # before SAM loads (or downloads)
        log.error("no such file: %s", ", ".join(map(str, missing)))
        return EXIT_SOME_FAILED
    written = {arguments.out: _tuned_settings_of_an_earlier_version,  # written before the ledger: ours
               arguments.out.with_name(arguments.out.stem + ".report.json"): json_object_with("results", "best")}
    for path, earlier_version in written.items():  # never someone else's file: refused before any work
        check_replaceable_files([path], earlier_version=earlier_version)
    sam_config = config.segment.sam
    # prompt mode as the analysis prompts it (its prompter), automatic mode on the same SAM
    segmenter = make_segmenter(config.segment.updated(backend="sam", sam={"mode": "prompt"}),
                               download=not arguments.no_download)
    n2v = Noise2VoidModel.load(config.preprocess.n2v_model) if config.preprocess.runs_n2v_model else None
    try:
        images = load_tuning_images(list(zip(arguments.pairs[::2], arguments.pairs[1::2])), config, segmenter, n2v,
                                    progress=log.info)
    except (ImageInputError, RoiInputError) as error:
        log.error("%s", error)
        return EXIT_SOME_FAILED
    grid = QUICK_GRID if arguments.grid == "quick" else TuningGrid()
    if arguments.points_per_side:
        grid = dataclasses.replace(grid, points_per_side=tuple(arguments.points_per_side))
    report = tune_sam(segmenter, images, grid, progress=lambda message: log.info("tuning: %s", message))
    report["checkpoint"] = segmenter.sam.describe()
    settings = tuned_settings(report, sam_config, config.segment.crystal_contrast)
    for (path, earlier_version), content in zip(written.items(), (settings, report)):
        with own_file(path, earlier_version=earlier_version) as partial:
            write_json(partial, content)
    log.info("best: %s (F1 %.3f at IoU 0.5); settings written to %s", json.dumps(settings["segment"]["sam"]),
             report["best"]["f1"], arguments.out)
    return EXIT_OK


def _tuned_settings_of_an_earlier_version(path: Path) -> bool:
    """Whether ``path`` holds what ``tune-sam --out`` wrote before the ledger, and nothing a user
    would write: ``{"segment": {"backend": "sam", "sam": {...}[, "crystal_contrast": ...]}}``."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    segment = content.get("segment") if isinstance(content, dict) and set(content) == {"segment"} else None
    return (isinstance(segment, dict) and segment.get("backend") == "sam" and isinstance(segment.get("sam"), dict)
            and set(segment) <= {"backend", "sam", "crystal_contrast"})
