"""``microcrystalnet batch``: every image of a folder, resumable, on a Dask cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Progress, add_analysis_options, analysis_config, log,
                     non_negative_int)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="analyse every image of a folder: resumable, in parallel with Dask, batch tables",
        description="Analyse every image of INPUT_DIR into OUT_DIR/<image name>/ (as analyze does), plus "
                    "OUT_DIR/batch_results.csv (every crystal, with its image), batch_images.csv (one row per image) "
                    "and batch_errors.csv (images that could not be analysed, and why). Finished images are "
                    "skipped when the batch is run again (--force redoes them), so an interrupted batch continues "
                    "where it stopped. Images are spread over a local Dask cluster sized to this machine, or a Dask "
                    "cluster given by --scheduler.")
    batch.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="folder of SEM images")
    batch.add_argument("--out", required=True, type=Path, metavar="OUT_DIR", help="folder for the results")
    batch.add_argument("--recursive", action="store_true", help="also the images in sub-folders")
    batch.add_argument("--force", action="store_true", help="analyse finished images again")
    batch.add_argument("--wait", action="store_true",
                       help="if another batch is writing into OUT_DIR, wait for it to end (default: refuse at once)")
    batch.add_argument("--workers", type=non_negative_int, metavar="N",
                       help="local Dask worker processes (default: one per core as memory allows, "
                            "about 3 GB each, 7 GB with SAM ViT-B on a CPU); 0: no Dask, one image after another "
                            "in this process")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler (e.g. tcp://10.0.0.5:8786) whose workers have MicroCrystalNet "
                            "installed and see INPUT_DIR and OUT_DIR at the same paths")
    batch.add_argument("--no-overlay", action="store_true", help="skip overlay.png (the slowest output)")
    batch.add_argument("--progress", choices=("auto", "machine"), default="auto",
                       help="machine: 'MCN-PROGRESS <fraction> <image>' lines on stdout for other programs")
    add_analysis_options(batch)
    batch.set_defaults(run=run_batch)


def run_batch(arguments: argparse.Namespace) -> int:
    config = analysis_config(arguments)
    from ..batch import BATCH_ERRORS_NAME, BATCH_RESULTS_NAME, find_batch_inputs, run_batch as analyse_folder
    from ..io import SUPPORTED_SUFFIXES

    try:
        inputs = find_batch_inputs(arguments.input_dir, arguments.recursive, arguments.out)
    except FileNotFoundError as error:
        log.error("%s", error)
        return EXIT_USAGE
    if not inputs.images:
        log.error("%s holds no images (%s)", arguments.input_dir, ", ".join(SUPPORTED_SUFFIXES))
        return EXIT_USAGE
    state = {"bar": None, "done": 0, "total": 0}
    machine = arguments.progress == "machine"

    def started(to_do: int, already: int) -> None:
        log.info("%d image(s) to analyse, %d already finished in %s%s", to_do, already, arguments.out,
                 " (skipped; --force redoes them)" if already else "")
        state["total"] = to_do
        if to_do and not arguments.quiet and not machine and sys.stderr.isatty():  # else a line per image
            from tqdm import tqdm

            state["bar"] = tqdm(total=to_do, unit="image", file=sys.stderr)

    def finished(outcome) -> None:
        state["done"] += 1
        name = Path(outcome.image).name
        if outcome.error:
            log.error("%s", outcome.error)
        elif state["bar"] is None:
            log.info("%s: %d crystals (%.1f s)", name, outcome.crystals, outcome.seconds)
        for notice in outcome.notices:  # also in batch_images.csv, Notices
            log.info("%s: %s", name, notice)
        if machine:
            print(f"{Progress.MACHINE_PREFIX} {state['done'] / state['total']:.4f} {name}", flush=True)
        if state["bar"] is not None:
            state["bar"].update(1)

    try:
        outcomes = analyse_folder(inputs.images, arguments.out, config, skipped=inputs.skipped, force=arguments.force,
                                  overlay=not arguments.no_overlay, download=not arguments.no_download,
                                  scheduler=arguments.scheduler, workers=arguments.workers, wait=arguments.wait,
                                  on_outcome=finished, on_start=started)
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    failed = sum(1 for outcome in outcomes if outcome.error)
    log.info("batch tables: %s (and batch_images.csv, %s)", arguments.out / BATCH_RESULTS_NAME, BATCH_ERRORS_NAME)
    if failed:
        log.error("%d of %d image(s) could not be analysed: see %s", failed, len(outcomes),
                  arguments.out / BATCH_ERRORS_NAME)
        return EXIT_SOME_FAILED
    return EXIT_OK
