"""``microcrystalnet analyze`` (images into result folders) and ``demo`` (a synthetic scene scored
against its ground truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import AnalysisConfig
from .common import (EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Progress, add_analysis_options, analysis_config, log,
                     positive_int)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    analyze = commands.add_parser("analyze", help="analyse SEM images",
                                  description="Analyse SEM images; results go to OUT/<image name>/.")
    analyze.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (TIFF, PNG, JPEG)")
    analyze.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the results")
    analyze.add_argument("--image-name", metavar="NAME",
                         help="name of the image in the outputs (one IMAGE only; the Fiji command passes the "
                              "image title); also names the result folder")
    analyze.add_argument("--metadata-from", type=Path, metavar="FILE",
                         help="for an IMAGE without a pixel size: the SEM file it was copied from, whose FEI, Zeiss, "
                              "Tescan or JEOL metadata gives it (one IMAGE only; the Fiji command passes the file "
                              "an uncalibrated image was opened from)")
    analyze.add_argument("--no-overlay", action="store_true",
                         help="do not write overlay.png (the slowest output; Fiji draws the ROIs itself)")
    analyze.add_argument("--progress", choices=("auto", "machine"), default="auto",
                         help="auto: a bar on a terminal, else a line per stage (stderr); machine: lines "
                              "'MCN-PROGRESS <fraction 0-1> <stage>' on stdout, for the Fiji command")
    add_analysis_options(analyze)
    analyze.set_defaults(run=run_analyze)

    demo = commands.add_parser("demo", help="analyse a synthetic SEM scene and score it against its ground truth",
                               description="Render a synthetic SEM scene of micrite crystals with exact ground truth, "
                                           "analyse it like a real image and write the results and demo_report.json.")
    demo.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the demo's files")
    demo.add_argument("--size", type=positive_int, default=2048, metavar="PX",
                      help="scene width and height in pixels, covering 20.48 um (default 2048: 10 nm/px; "
                           "at least 256)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the scene (default 0)")
    add_analysis_options(demo)
    demo.set_defaults(run=run_demo)


def run_analyze(arguments: argparse.Namespace) -> int:
    config = analysis_config(arguments)
    stems = [path.stem for path in arguments.images]
    for option, value in (("--image-name", arguments.image_name), ("--metadata-from", arguments.metadata_from)):
        if value and len(arguments.images) != 1:
            log.error("%s needs exactly one IMAGE", option)
            return EXIT_USAGE
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        log.error("several images share the name(s) %s; their results would share a folder. Analyse them "
                  "into different --out folders, or rename them.", duplicates)
        return EXIT_USAGE
    from ..classes import RESULT_CODES
    from ..io import ImageInputError
    from ..io.outputs import prepare_result_folders
    from ..io.result_folder import OutputFolderError, OutputWriteError
    from ..pipeline import AnalysisModels, analyze_file

    prepare_result_folders(arguments.out, [Path(arguments.image_name).stem] if arguments.image_name else stems,
                           arguments.images)
    models = AnalysisModels.load(config, download=not arguments.no_download)
    progress = Progress(len(arguments.images), arguments.quiet, arguments.progress == "machine")
    failed = 0
    for number, path in enumerate(arguments.images, start=1):
        name = arguments.image_name or path.name
        try:
            analysis, folder = analyze_file(path, arguments.out, models, config, image_name=arguments.image_name,
                                            overlay=not arguments.no_overlay, progress=progress.callback(number, name),
                                            metadata_file=arguments.metadata_from)
        except (ImageInputError, OutputFolderError, OutputWriteError) as error:
            failed += 1
            log.error("%s", error)
            continue
        if progress.machine:
            print(f"{progress.RESULT_PREFIX} {folder.resolve()}", flush=True)
        for notice in analysis.notices:
            log.info("%s: %s", path.name, notice)
        scale = analysis.segmentation["crystal_scale"]
        diameter = f"{scale['diameter_px']:.1f} px"
        if not any(diameter in str(notice) for notice in analysis.notices):  # said once
            log.info("%s: typical crystal diameter %s (%s)", path.name, diameter, scale["source"])
        contrast = analysis.segmentation["crystal_contrast"]
        log.info("%s: %s crystals (%s)", path.name, contrast["crystals"], contrast["source"])
        log.info("%s: SNR after each preprocessing step: %s", path.name, ", ".join(
            f"{step['step']} {step['snr_db']:.1f} dB" for step in analysis.preprocessing if step["applied"]
            or step["step"] == "input"))
        counts = ", ".join(f"{code} {sum(1 for row in analysis.rows if row['Class'] == code)}"
                           for code in RESULT_CODES)
        on_border = analysis.segmentation["statistics"].get("dropped", {}).get("on_border", 0)
        if on_border:
            counts += f"; {on_border} touching the border left out"
        log.info("%s: %d crystals (%s) -> %s", path.name, analysis.n_crystals, counts, folder)
    progress.close()
    if failed:
        log.error("%d of %d images could not be analysed (see the messages above)", failed, len(arguments.images))
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_demo(arguments: argparse.Namespace) -> int:
    config: AnalysisConfig = analysis_config(arguments)
    if arguments.size < 256:
        log.error("--size must be at least 256 px")
        return EXIT_USAGE
    from ..classify import CrystalClassifier
    from ..demo import run_demo as render_and_analyse

    classifier = CrystalClassifier.load(config.classify.model, download=not arguments.no_download)
    progress = Progress(1, arguments.quiet)
    report = render_and_analyse(arguments.out, arguments.size, arguments.seed, config, classifier,
                                progress.callback(1, "synthetic scene"))
    progress.close()
    segmentation = report["segmentation"]
    agreement = report["classification"]["agreement"]
    log.info("synthetic scene, %d true crystals: found %d, segmentation F1 %.3f at IoU 0.5 "
             "(precision %.3f, recall %.3f); class agreement on matched crystals %s",
             report["scene"]["n_crystals"], segmentation["n_predicted"], segmentation["f1"],
             segmentation["precision"], segmentation["recall"], f"{agreement:.3f}" if agreement is not None else "n/a")
    log.info("results: %s; report: %s", report["results_folder"], Path(arguments.out) / "demo_report.json")
    return EXIT_OK
