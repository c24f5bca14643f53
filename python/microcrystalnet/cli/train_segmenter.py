"""``microcrystalnet train-segmenter``: teach the learned crystal segmenter from crystals outlined on
your own images (fine-tuning the shipped one by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import LearnedConfig, SegmentConfig, choices_of, default_of
from .common import (EXIT_OK, EXIT_USAGE, Progress, add_quiet_option, log, positive_float, positive_int,
                     training_progress)

#: the outline kinds of io.reference.REFERENCE_KINDS an image's outlines can have (polygon files
#: holding many images are left out), repeated so --help needs no numerical library
_OUTLINE_KINDS = ("labels", "roiset", "binary_4conn", "boundary_white")
#: default training time when neither --minutes nor --steps is given
DEFAULT_MINUTES = 5.0
SCRATCH = "scratch"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-segmenter", help="teach the learned crystal segmenter your crystals, from outlines you drew",
        description="Fine-tune the learned crystal segmenter on images with crystals you outlined (Fiji ROI "
                    "Manager > More > Save: RoiSet.zip, or a label image), and write it as a new model file. "
                    "Outlines may be a few crystals of each image (only they and a thin ring around them are "
                    "learned from) or every crystal (--complete-outlines: everything else is background, and the "
                    "watershed thresholds are then chosen for the best F1 on these images). "
                    "Images are rescaled so the typical crystal has the model's working size; the model "
                    "records the crystal and pixel size it was trained at.")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="SEM images (TIFF, PNG, JPEG)")
    parser.add_argument("--outlines", nargs="+", required=True, type=Path, metavar="FILE",
                        help="outlined crystals, one file per IMAGE in the same order: RoiSet.zip / .roi, or a "
                             "label image (0 background, one value per crystal)")
    parser.add_argument("--outlines-kind", choices=_OUTLINE_KINDS,
                        help="how the outline files draw crystals: labels, roiset, binary_4conn (white objects, "
                             "1-px gaps between touching ones), boundary_white (white lines between grains); "
                             "default: roiset for .zip/.roi, else labels")
    parser.add_argument("--out", required=True, type=Path, metavar="MODEL.pt",
                        help="model file to write; an existing file is replaced only if it is a segmenter model")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--crystal-size-px", type=positive_float, metavar="PX",
                      help="typical crystal diameter in the images, px (default: the median diameter of the "
                           "outlined crystals of each image)")
    size.add_argument("--crystal-size-um", type=positive_float, metavar="UM",
                      help="typical crystal diameter, um (needs a pixel size: from the files or --pixel-size-nm)")
    parser.add_argument("--pixel-size-nm", type=positive_float, metavar="NM",
                        help="pixel size in nanometres; overrides the calibration in the files")
    parser.add_argument("--complete-outlines", action="store_true",
                        help="every crystal of each image is outlined: all other pixels are background (but "
                             "along the image edge when no outlined crystal touches it: crystals cut by the edge "
                             "are then taken as left out), and after training the watershed thresholds are "
                             "chosen for the best F1 on these images")
    parser.add_argument("--crystal-contrast", choices=choices_of(SegmentConfig, "crystal_contrast"),
                        default=default_of(SegmentConfig, "crystal_contrast"),
                        help="bright or dark crystals against what surrounds them; images with dark ones are "
                             "learned from with the gray levels inverted, as the analysis shows them to the model; "
                             "auto: the shipped network judges each image, as in the analysis, whichever model "
                             "is trained (default %(default)s)")
    parser.add_argument("--minutes", type=positive_float, metavar="M",
                        help=f"training time (default {DEFAULT_MINUTES:g} when --steps is not given)")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help="training steps (batches); with the same seed and steps the result is the same")
    parser.add_argument("--from", dest="base", default="default", metavar="MODEL",
                        help=f"model to fine-tune: 'default' (the shipped segmenter), a model file, or "
                             f"'{SCRATCH}' (a new network, trained on your outlines alone) (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--device", choices=choices_of(LearnedConfig, "device"),
                        help="where the network trains: cuda (an NVIDIA GPU), mps (Apple's GPU) or cpu (default: "
                             "the fastest available)")
    parser.add_argument("--progress", choices=("auto", "machine"), default="auto",
                        help="machine: also 'MCN-PROGRESS <fraction> <text>' lines on stdout for other programs")
    add_quiet_option(parser)
    parser.set_defaults(run=run_train_segmenter)


def run_train_segmenter(arguments: argparse.Namespace) -> int:
    if len(arguments.images) != len(arguments.outlines):
        log.error("train-segmenter: %d images but %d outline files; give one --outlines file per image, in the "
                  "same order", len(arguments.images), len(arguments.outlines))
        return EXIT_USAGE
    out: Path = arguments.out
    if out.is_dir() or not out.parent.is_dir():
        log.error("train-segmenter: --out %s must be a file in an existing folder", out)
        return EXIT_USAGE

    from ..frameworks import torch_device
    from ..io import ImageInputError, read_sem_image
    from ..io.reference import NotALabelImageError, ReferenceInputError, read_reference_labels
    from ..io.roiset import RoiInputError
    from ..notices import EXCLUDE_BORDER_CRYSTALS, both_wordings
    from ..segment.contrast import SET
    from ..segment.learned.contrast import shipped_judge_reusing
    from ..segment.learned.model_file import is_segmenter_model_file, load_segmenter_model, write_segmenter_model
    from ..segment.learned.training import (REPLAY_SCENES, WORKING_DIAMETER_PX, OutlinedImage,
                                            crops_of_outlined_images, train_on_outlines, with_bright_crystals_outlined)

    if out.exists() and not is_segmenter_model_file(out):
        log.error("train-segmenter: %s exists and is not a segmenter model file; it was left as it is. Choose "
                  "another --out", out)
        return EXIT_USAGE
    device = torch_device(arguments.device, user="train-segmenter")  # one asked for but not there: exit 2
    base = None if arguments.base == SCRATCH else load_segmenter_model(arguments.base)
    pixel_size_um = arguments.pixel_size_nm / 1000 if arguments.pixel_size_nm else None
    outlined_images = []
    try:
        for image_path, outline_path in zip(arguments.images, arguments.outlines):
            image = read_sem_image(image_path, pixel_size_um)
            labels = read_reference_labels(outline_path, arguments.outlines_kind, image.pixels.shape)
            if labels.shape != image.pixels.shape:
                log.error("train-segmenter: the outlines %s are %d x %d px, the image %s %d x %d px; they must "
                          "match", outline_path, labels.shape[1], labels.shape[0], image_path,
                          image.pixels.shape[1], image.pixels.shape[0])
                return EXIT_USAGE
            diameter_px = arguments.crystal_size_px
            if arguments.crystal_size_um:
                if not image.pixel_size_um:
                    log.error("train-segmenter: %s has no pixel size; give --pixel-size-nm, or the crystal size "
                              "in pixels (--crystal-size-px)", image_path)
                    return EXIT_USAGE
                diameter_px = arguments.crystal_size_um / image.pixel_size_um
            rows = image.analysed_pixels.shape[0]
            outlined_images.append(OutlinedImage(image.analysed_pixels, labels[:rows], diameter_px,
                                                 image.pixel_size_um,
                                                 {"image": str(image_path), "outlines": str(outline_path)}))
    except NotALabelImageError as error:
        log.error("train-segmenter: %s (--outlines-kind)", error)
        return EXIT_USAGE
    except (ImageInputError, ReferenceInputError, RoiInputError) as error:
        log.error("train-segmenter: %s", error)
        return EXIT_USAGE
    judge = shipped_judge_reusing(base, device=device)  # the shipped network judges, as in the analysis
    try:
        outlined_images = [with_bright_crystals_outlined(outlined, crystal_contrast_setting=arguments.crystal_contrast,
                                                         judge=judge)[0] for outlined in outlined_images]
    except ValueError as error:  # outlines without a crystal
        log.error("train-segmenter: %s", error)
        return EXIT_USAGE
    for outlined in outlined_images:
        contrast = outlined.source["crystal_contrast"]
        if contrast["crystals"] == "dark":
            log.info("%s: dark crystals (%s): learned from with the gray levels inverted, as the analysis will show "
                     "them", outlined.source["image"], "set" if contrast["source"] == SET else "judged")

    try:
        crops = crops_of_outlined_images(outlined_images, complete=arguments.complete_outlines,
                                         working_diameter_px=base.working_diameter_px if base is not None
                                         else WORKING_DIAMETER_PX)
    except ValueError as error:  # outlines without a crystal, or none large enough at the working scale
        log.error("train-segmenter: %s", error)
        return EXIT_USAGE
    for source in crops.sources:
        log.info("%s: %d outlined crystals, typical diameter %.1f px, %d training crops", source["image"],
                 source["outlined_crystals"], source["crystal_diameter_px"], source["crops"])
        if source.get("edge_band_px"):
            log.info("%s: no outlined crystal touches the image edge, so the crystals cut by it are taken as left "
                     "out, not as background: a band of %.0f px along the edge is not learned from, and the "
                     "thresholds are chosen on crystals off the edge; %s to measure the same way",
                     source["image"], source["edge_band_px"], both_wordings(EXCLUDE_BORDER_CRYSTALS))
    minutes = arguments.minutes or (None if arguments.steps else DEFAULT_MINUTES)
    budget = " and ".join(filter(None, [arguments.steps and f"{arguments.steps} steps",
                                        minutes and f"{minutes:g} min"]))
    log.info("training %s (%s, on %s)%s", f"from {base.name}" if base is not None else "from scratch", budget, device,
             f"; {REPLAY_SCENES} synthetic scenes are mixed in to keep what the model knows" if base else "")
    machine = arguments.progress == "machine"

    def announce(text: str) -> None:
        log.info("%s", text)
        if machine:
            print(f"{Progress.MACHINE_PREFIX} 1.0000 {text}", flush=True)

    model = train_on_outlines(crops, base_model=base, minutes=minutes, steps=arguments.steps, seed=arguments.seed,
                              progress=(None if arguments.quiet and not machine
                                        else training_progress(minutes, machine)),
                              choose_thresholds_on=outlined_images if arguments.complete_outlines else (),
                              announce=announce, device=device)
    if "thresholds" in model.training:
        thresholds = model.thresholds
        log.info("watershed thresholds: seed %g, foreground %g, smallest seed %g, lowest crystal score %g "
                 "(F1 %.3f on the outlined images it learned from, so an optimistic figure)", thresholds.seed,
                 thresholds.foreground, thresholds.min_seed_fraction, thresholds.min_crystal_score,
                 model.training["thresholds"]["mean_f1"])
    digest = write_segmenter_model(model, out)
    print(f"wrote {out} (sha256 {digest}), {model.training['steps']} steps in {model.training['minutes']:.1f} min")
    print(f"use it: microcrystalnet analyze IMAGE --segmenter learned --segmenter-model {out}")
    return EXIT_OK
