"""``microcrystalnet n2v train`` and ``n2v denoise``: Noise2Void on the user's own noisy images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import InputConfig, PreprocessConfig, default_of
from .common import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, add_quiet_option, log, positive_int, training_progress


def add_parsers(commands: argparse._SubParsersAction) -> None:
    n2v = commands.add_parser("n2v", help="Noise2Void: train a denoiser on your own noisy images, or denoise",
                              description="Noise2Void (careamics): self-supervised denoising, no clean images needed.")
    n2v_commands = n2v.add_subparsers(dest="n2v_command", required=True, metavar="ACTION")
    train = n2v_commands.add_parser("train", help="train on noisy SEM images and save a bioimage.io model zip",
                                    description="Train Noise2Void on noisy SEM images (the more, the better; same "
                                                "instrument settings as the images to denoise) and save it as a "
                                                "bioimage.io model zip (runs in careamics, deepImageJ, ...).")
    train.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="noisy training images")
    train.add_argument("--out", required=True, type=Path, metavar="MODEL.zip", help="bioimage.io model zip to write")
    train.add_argument("--steps", type=positive_int, default=1000,
                       help="training batches (default 1000; rounded up to whole passes over the images' patches)")
    train.add_argument("--patch-size", type=positive_int, default=64, help="training patch side, px (default 64)")
    train.add_argument("--batch-size", type=positive_int, default=16, help="patches per batch (default 16)")
    train.add_argument("--keep-data-bar", action="store_true", help="train on the data bar too")
    train.add_argument("--chain", default=",".join(default_of(PreprocessConfig, "steps")), metavar="STEPS",
                       help="the preprocessing chain the model will run in (default: the paper's, as analyze "
                            "uses); training images first go through the steps before n2v (default: nlm)")
    add_quiet_option(train)
    train.set_defaults(run=run_n2v)
    denoise = n2v_commands.add_parser("denoise", help="denoise images with a Noise2Void model",
                                      description="Denoise images tile by tile; writes <OUT>/<name>_n2v.tif "
                                                  "(32-bit, values in [0, 1], calibration kept); never over a "
                                                  "file it did not write.")
    denoise.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    denoise.add_argument("--model", required=True, type=Path, help="bioimage.io zip or careamics .ckpt")
    denoise.add_argument("--out", required=True, type=Path, metavar="DIR")
    denoise.add_argument("--tile-size", type=positive_int, default=default_of(PreprocessConfig, "n2v_tile_px"),
                         help="tile side for prediction, px (default %(default)s)")
    denoise.add_argument("--keep-data-bar", action="store_true",
                         help="denoise the whole image, data bar included (default: the part above the bar)")
    add_quiet_option(denoise)
    denoise.set_defaults(run=run_n2v)


def run_n2v(arguments: argparse.Namespace) -> int:
    from ..io import ImageInputError, read_sem_image, to_unit_range
    from ..io.outputs import write_calibrated_tiff
    from ..io.owned_files import check_replaceable_files, record_own_files
    from ..preprocess import Noise2VoidModel, denoise_as_trained, train_noise2void_for_chain

    assumed_size = default_of(InputConfig, "assumed_pixel_size_um")  # images without calibration
    images = []
    for path in arguments.images:
        try:
            images.append(read_sem_image(path, exclude_data_bar=not arguments.keep_data_bar))
        except ImageInputError as error:
            log.error("%s", error)
            return EXIT_SOME_FAILED
    if arguments.n2v_command == "train":
        chain = PreprocessConfig().updated(steps=[step.strip() for step in arguments.chain.split(",")
                                                  if step.strip()]).steps
        if "n2v" not in chain:
            log.error("--chain must contain n2v (the model is trained for its place in the chain)")
            return EXIT_USAGE
        log.info("training Noise2Void on %d image(s) after the chain's steps before n2v, %d steps "
                 "(2 CPU cores: ~3 min per 1000)", len(images), arguments.steps)
        train_noise2void_for_chain([to_unit_range(image.analysed_pixels) for image in images],
                                   [image.pixel_size_um or assumed_size for image in images], chain, arguments.out,
                                   arguments.steps, arguments.patch_size, arguments.batch_size,
                                   progress=None if arguments.quiet else training_progress())
        log.info("Noise2Void model saved: %s (bioimage.io format)", arguments.out)
        return EXIT_OK
    targets = [arguments.out / f"{image.path.stem}_n2v.tif" for image in images]
    clashing = sorted({str(target.name) for target in targets if targets.count(target) > 1})
    if clashing:
        log.error("several images would be written to the same file (%s): denoise images of the same name "
                  "one folder at a time, each with its own --out", ", ".join(clashing))
        return EXIT_USAGE
    check_replaceable_files(targets)
    model = Noise2VoidModel.load(arguments.model)
    arguments.out.mkdir(parents=True, exist_ok=True)
    if model.trained_after:
        log.info("applying %s first, as the model was trained after it", ", ".join(model.trained_after))
    for image, target in zip(images, targets):
        denoised = denoise_as_trained(model, to_unit_range(image.analysed_pixels), image.pixel_size_um or assumed_size,
                                      arguments.tile_size)
        write_calibrated_tiff(target, denoised, image.pixel_size_um)
        record_own_files([target])
        log.info("%s -> %s", image.path.name, target)
    return EXIT_OK
