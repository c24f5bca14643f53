"""Command line: ``microcrystalnet analyze``, ``batch``, ``demo``, ``n2v``, ``train``, ``evaluate``, ``patches``,
``tune-sam`` and ``imagej`` (argument parsing only).

Exit status: 0 all images analysed; 1 some images could not be analysed or written (the others
were); 2 wrong usage or settings, or an output folder refused (not MicroCrystalNet's, or in use by
another batch); 3 the classifier model cannot be had.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from . import __version__
from .classes import RESULT_CODES
from .classify import DEFAULT_MODEL, MODEL_CARDS, CrystalClassifier, ModelDescriptionError, ModelUnavailableError
from .config import AnalysisConfig
from .io import SUPPORTED_SUFFIXES, ImageInputError, read_sem_image
from .io.result_folder import OutputFolderError, OutputWriteError
from .preprocess.n2v import Noise2VoidModelError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
log = logging.getLogger("microcrystalnet")


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    group = parser.add_argument_group("analysis settings (defaults: see microcrystalnet.config)")
    group.add_argument("--config", type=Path, metavar="JSON",
                       help="settings file (the 'settings' object of a summary.json works); "
                            "options below override it")
    group.add_argument("--pixel-size-nm", type=float, metavar="NM",
                       help="pixel size in nanometres; overrides the calibration in the file")
    group.add_argument("--keep-data-bar", action="store_true",
                       help="do not look for and exclude the instrument's data bar at the bottom")
    group.add_argument("--model", metavar="NAME_OR_PATH",
                       help=f"classifier: a known model ({', '.join(MODEL_CARDS)}; default {DEFAULT_MODEL}) "
                            "or a Keras .h5/.keras file with a <file>.json description")
    group.add_argument("--unclear-below", type=float, metavar="P",
                       help="label a crystal 'unclear' when its most probable class has a probability below P "
                            "(default 0.5; 0 turns it off)")
    group.add_argument("--no-download", action="store_true",
                       help="never download the model; fail with instructions if it is not on this machine")
    group.add_argument("--min-area-um2", type=float, metavar="UM2", help="smallest crystal area kept (um^2)")
    group.add_argument("--max-area-um2", type=float, metavar="UM2", help="largest crystal area kept (um^2)")
    group.add_argument("--exclude-border", action="store_true", help="drop crystals touching the image border")
    group.add_argument("--preprocess", metavar="STEPS",
                       help="preprocessing steps in order, comma-separated, from nlm,n2v,unsharp,opening,closing "
                            "(default: all, the paper's chain), or 'none'")
    group.add_argument("--n2v-model", metavar="MODEL",
                       help="Noise2Void model (bioimage.io zip or careamics .ckpt) for the n2v step; without one "
                            "that step is skipped (train one with 'microcrystalnet n2v train')")
    group.add_argument("--segmenter", choices=("watershed", "sam"),
                       help="crystal segmenter: watershed (default; classical, fast) or sam (Segment Anything)")
    group.add_argument("--sam-mode", choices=("prompt", "automatic"),
                       help="SAM: prompt each crystal candidate (default) or SAM's automatic mask generator")
    group.add_argument("--sam-model-type", choices=("vit_b", "vit_l", "vit_h"), help="SAM model size (default vit_b)")
    group.add_argument("--sam-checkpoint", metavar="PTH",
                       help="SAM checkpoint file (e.g. fine-tuned); default: the official one for the model type")
    group.add_argument("--sam-device", choices=("cuda", "mps", "cpu"), help="SAM device (default: the fastest available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microcrystalnet",
        description="Segment, classify (RES, PES, AA, RA/SA) and measure microcrystals in SEM images. "
                    "Results open in Fiji/ImageJ: RoiSet.zip, results.csv, labels.tif, overlay.png, summary.json.")
    parser.add_argument("--version", action="version", version=f"microcrystalnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="analyse SEM images",
                                  description="Analyse SEM images; results go to OUT/<image name>/.")
    analyze.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                         help=f"image files ({', '.join(SUPPORTED_SUFFIXES)})")
    analyze.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the results")
    analyze.add_argument("--image-name", metavar="NAME",
                         help="name of the image in the outputs (one IMAGE only; the Fiji command passes the "
                              "image title); also names the result folder")
    analyze.add_argument("--no-overlay", action="store_true",
                         help="do not write overlay.png (the slowest output; Fiji draws the ROIs itself)")
    analyze.add_argument("--progress", choices=("auto", "machine"), default="auto",
                         help="auto: a bar on a terminal, else a line per stage (stderr); machine: lines "
                              "'MCN-PROGRESS <fraction 0-1> <stage>' on stdout, for the Fiji command")
    _add_analysis_options(analyze)

    demo = commands.add_parser("demo", help="analyse a synthetic SEM scene and score it against its ground truth",
                               description="Render a synthetic SEM scene of micrite crystals with exact ground truth, "
                                           "analyse it like a real image and write the results and demo_report.json.")
    demo.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the demo's files")
    demo.add_argument("--size", type=int, default=2048, metavar="PX",
                      help="scene width and height in pixels, covering 20.48 um (default 2048: 10 nm/px)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the scene (default 0)")
    _add_analysis_options(demo)

    n2v = commands.add_parser("n2v", help="Noise2Void: train a denoiser on your own noisy images, or denoise",
                              description="Noise2Void (careamics): self-supervised denoising, no clean images needed.")
    n2v_commands = n2v.add_subparsers(dest="n2v_command", required=True, metavar="ACTION")
    train = n2v_commands.add_parser("train", help="train on noisy SEM images and save a bioimage.io model zip",
                                    description="Train Noise2Void on noisy SEM images (the more, the better; same "
                                                "instrument settings as the images to denoise) and save it as a "
                                                "bioimage.io model zip (runs in careamics, deepImageJ, ...).")
    train.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="noisy training images")
    train.add_argument("--out", required=True, type=Path, metavar="MODEL.zip", help="bioimage.io model zip to write")
    train.add_argument("--steps", type=int, default=1000, help="training batches (default 1000)")
    train.add_argument("--patch-size", type=int, default=64, help="training patch side, px (default 64)")
    train.add_argument("--batch-size", type=int, default=16, help="patches per batch (default 16)")
    train.add_argument("--keep-data-bar", action="store_true", help="train on the data bar too")
    train.add_argument("--chain", default="nlm,n2v,unsharp,opening,closing", metavar="STEPS",
                       help="the preprocessing chain the model will run in (default: the paper's, as analyze "
                            "uses); training images first go through the steps before n2v (default: nlm)")
    train.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    denoise = n2v_commands.add_parser("denoise", help="denoise images with a Noise2Void model",
                                      description="Denoise images tile by tile; writes <OUT>/<name>_n2v.tif "
                                                  "(32-bit, values in [0, 1], calibration kept).")
    denoise.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    denoise.add_argument("--model", required=True, type=Path, help="bioimage.io zip or careamics .ckpt")
    denoise.add_argument("--out", required=True, type=Path, metavar="DIR")
    denoise.add_argument("--tile-size", type=int, default=256, help="tile side for prediction, px (default 256)")
    denoise.add_argument("--keep-data-bar", action="store_true",
                         help="denoise the whole image, data bar included (default: the part above the bar)")
    denoise.add_argument("-q", "--quiet", action="store_true", help="print only errors")

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
    batch.add_argument("--workers", type=int, metavar="N",
                       help="local Dask worker processes (default: one per core as memory allows, "
                            "about 3 GB each); 0: no Dask, one image after another in this process")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler (e.g. tcp://10.0.0.5:8786) whose workers have MicroCrystalNet "
                            "installed and see INPUT_DIR and OUT_DIR at the same paths")
    batch.add_argument("--no-overlay", action="store_true", help="skip overlay.png (the slowest output)")
    batch.add_argument("--progress", choices=("auto", "machine"), default="auto",
                       help="machine: 'MCN-PROGRESS <fraction> <image>' lines on stdout for other programs")
    _add_analysis_options(batch)

    _add_classifier_commands(commands)

    tune = commands.add_parser(
        "tune-sam", help="tune SAM on images with reference crystals drawn in Fiji (RoiSet.zip)",
        description="Tune SAM for your crystals: on 1-3 images with reference crystals outlined in Fiji "
                    "(saved from the ROI Manager as RoiSet.zip), score prompt mode and a grid of automatic-mode "
                    "settings by F1 at IoU 0.5, and write the best as a settings file for 'analyze --config' and "
                    "the Fiji command, plus a report of every setting's score (<OUT>.report.json).")
    tune.add_argument("pairs", nargs="+", metavar="IMAGE ROISET", help="image files, each followed by its RoiSet.zip")
    tune.add_argument("--out", required=True, type=Path, metavar="JSON", help="settings file to write")
    tune.add_argument("--grid", choices=("full", "quick"), default="full",
                      help="full: 2 grid densities x 4 x 4 x 2 thresholds (default); quick: 4 settings")
    _add_analysis_options(tune)

    imagej = commands.add_parser(
        "imagej", help="start ImageJ with the MicroCrystalNet plugin, this Python registered as its backend",
        description="Start ImageJ in this process with Plugins > MicroCrystalNet installed and this Python session "
                    "registered as its in-process backend (images are handed over without files). Without --fiji, "
                    "ImageJ 1.x from --ij-jar (default: Debian's libij-java) is started with scyjava; with --fiji, "
                    "that Fiji installation is started with pyimagej (the plugin jar is copied into its plugins "
                    "folder if missing).")
    imagej.add_argument("--fiji", type=Path, metavar="FIJI_APP", help="a Fiji installation (Fiji.app folder)")
    imagej.add_argument("--ij-jar", type=Path, metavar="JAR", help="ImageJ 1.x jar (default /usr/share/java/ij.jar)")
    imagej.add_argument("--plugin-jar", type=Path, metavar="JAR",
                        help="MicroCrystalNet_.jar (default: fiji_plugin/target/ of this checkout)")
    imagej.add_argument("--macro", type=Path, metavar="IJM", help="run this macro, then quit (no main window)")
    imagej.add_argument("--macro-argument", default="", metavar="TEXT", help="argument passed to the macro")
    imagej.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return parser


def _add_training_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="DATA",
                        help="a folder of class folders (RES/, PES/, AA/, RA-SA/ or rhombic/, polyhedral/, "
                             "amorphous/, spherical/), or images each followed by its Fiji RoiSet.zip")
    parser.add_argument("--classes", type=Path, metavar="CSV",
                        help="for ROI sets: a CSV with Name, Class (and optionally Image) columns giving each "
                             "ROI's class (default: the class in the ROI name, e.g. 0001-RES)")
    parser.add_argument("--config", type=Path, metavar="JSON",
                        help="analysis settings file: preprocessing and patch cutting for ROI sets, as analyze uses")
    parser.add_argument("--input-size", type=int, default=64, metavar="PX",
                        help="patch side in px (default 64, the paper's; it tried 16-128)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def _add_classifier_commands(commands: argparse._SubParsersAction) -> None:
    from .classify.architecture import ARCHITECTURES

    train = commands.add_parser(
        "train", help="train a crystal classifier on your labelled crystals",
        description="Train a classifier with the paper's recipe (Adam 1e-3, batch 32, 30 epochs, learning rate "
                    "x0.1 after 5 epochs without progress, early stopping, best model kept, 80/10/10 split by "
                    "image and class, rotations and flips). Writes a run folder: config.json, split.json, "
                    "history.csv, model.keras (+ .json description; use it with 'analyze --model') and "
                    "evaluation/ (report.html) on the held-out images.")
    _add_training_data_options(train)
    train.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder to write")
    train.add_argument("--architecture", choices=ARCHITECTURES, default="microcrystalnet",
                       help="network (default microcrystalnet: the paper's, with the NSR block)")
    train.add_argument("--epochs", type=int, default=30, help="epochs at most (default 30)")
    train.add_argument("--batch-size", type=int, default=32, help="patches per batch (default 32)")
    train.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 0.001)")
    train.add_argument("--folds", type=int, default=1,
                       help="k > 1: k-fold cross-validation by image instead of one split (the paper: 5)")
    train.add_argument("--no-augment", action="store_true", help="no random rotations and flips")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a classifier on labelled crystals: scores, plots, HTML report",
        description="Accuracy, top-1/top-2, per-class and macro precision/recall/F1, confusion matrix, "
                    "precision-recall and ROC curves with AP/AUC, t-SNE of the penultimate features, activation "
                    "and saliency maps: OUT/report.html, OUT/metrics.json, PNG plots, OUT/predictions.csv.")
    evaluate.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                          help=f"a known model ({', '.join(MODEL_CARDS)}) or a .keras/.h5 file with its .json")
    _add_training_data_options(evaluate)
    evaluate.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the report")
    evaluate.add_argument("--explain", nargs="+", metavar="PATCH",
                          help="patch names (as in predictions.csv) for the activation and saliency maps "
                               "(default: the most confidently correct crystal of each class)")
    evaluate.add_argument("--no-download", action="store_true", help="never download a model")

    patches = commands.add_parser(
        "patches", help="write labelled crystal patches as class folders (synthetic, or from Fiji ROI sets)",
        description="Write crystal patches in the class-folder layout train and evaluate read "
                    "(OUT/<class>/<image>__<n>.png): from synthetic scenes with exact classes (--synthetic N), "
                    "or from images with Fiji ROI sets, cut as the analysis cuts them.")
    patches.add_argument("data", nargs="*", metavar="IMAGE ROISET", help="images each followed by its RoiSet.zip")
    patches.add_argument("--synthetic", type=int, metavar="SCENES", help="render this many synthetic scenes instead")
    patches.add_argument("--scene-size", type=int, default=1024, metavar="PX",
                         help="synthetic scene side, px, at 20 nm/px (default 1024: about 95 crystals each)")
    patches.add_argument("--first-seed", type=int, default=1000, help="seed of the first synthetic scene")
    patches.add_argument("--classes", type=Path, metavar="CSV", help="as for train")
    patches.add_argument("--config", type=Path, metavar="JSON", help="as for train")
    patches.add_argument("--input-size", type=int, default=64, metavar="PX", help="patch side in px (default 64)")
    patches.add_argument("--out", required=True, type=Path, metavar="DIR")
    patches.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def _training_data(arguments: argparse.Namespace):
    """The labelled patches the arguments name, and the analysis settings they were cut with."""
    from .classify.dataset import DatasetError, load_annotated_images, load_class_folders, synthetic_dataset

    config = AnalysisConfig.from_json(arguments.config) if arguments.config else AnalysisConfig()
    config = replace(config, patch=replace(config.patch, size=arguments.input_size))
    if getattr(arguments, "synthetic", None):
        return synthetic_dataset(arguments.synthetic, (arguments.scene_size,) * 2, config=config,
                                 first_seed=arguments.first_seed, progress=log.info), config
    data = [Path(item) for item in arguments.data]
    if len(data) == 1 and data[0].is_dir():
        return load_class_folders(data[0], arguments.input_size), config
    if not data or len(data) % 2:
        raise DatasetError("give one folder of class folders, or pairs of IMAGE ROISET")
    pairs = list(zip(data[0::2], data[1::2]))
    return load_annotated_images(pairs, config, arguments.classes, progress=log.info), config


def _run_classifier_command(arguments: argparse.Namespace) -> int:
    from .classify.dataset import DatasetError, write_class_folders
    from .classify.splits import SplitError
    from .config import TrainingConfig
    from .io.roiset import RoiInputError

    try:
        dataset, config = _training_data(arguments)
        log.info("data: %s", dataset.describe())
        if arguments.command == "patches":
            write_class_folders(dataset, arguments.out)
            log.info("patches written to %s", arguments.out)
            return EXIT_OK
        if arguments.command == "evaluate":
            from .classify.evaluation import write_evaluation

            classifier = CrystalClassifier.load(arguments.model, download=not arguments.no_download)
            scores = write_evaluation(arguments.out, classifier, dataset, arguments.explain)
        else:
            from .classify.training import train_classifier

            training = TrainingConfig(architecture=arguments.architecture, epochs=arguments.epochs,
                                      batch_size=arguments.batch_size, learning_rate=arguments.learning_rate,
                                      folds=arguments.folds, augment=not arguments.no_augment, seed=arguments.seed)
            scores = train_classifier(dataset, arguments.out, training, config)
            scores = scores.get("mean", scores)
    except (DatasetError, SplitError, RoiInputError, ImageInputError, ValueError) as error:
        log.error("%s: %s", arguments.command, error)
        return EXIT_USAGE
    log.info("accuracy %.3f, top-2 %.3f, macro F1 %.3f -> %s", scores["accuracy"], scores["top_2_accuracy"],
             scores["macro_f1"], arguments.out)
    return EXIT_OK


def config_from_arguments(arguments: argparse.Namespace) -> AnalysisConfig:
    config = AnalysisConfig.from_json(arguments.config) if arguments.config else AnalysisConfig()
    if arguments.pixel_size_nm is not None:
        config = replace(config, input=replace(config.input, pixel_size_um=arguments.pixel_size_nm / 1000))
    if arguments.keep_data_bar:
        config = replace(config, input=replace(config.input, exclude_data_bar=False))
    segment_changes = {key: value for key, value in (("min_crystal_area_um2", arguments.min_area_um2),
                                                     ("max_crystal_area_um2", arguments.max_area_um2)) if value is not None}
    if arguments.exclude_border:
        segment_changes["exclude_border"] = True
    if segment_changes:
        config = replace(config, segment=replace(config.segment, **segment_changes))
    if arguments.preprocess is not None:
        steps = () if arguments.preprocess.strip().lower() == "none" else tuple(
            step.strip() for step in arguments.preprocess.split(",") if step.strip())
        config = replace(config, preprocess=replace(config.preprocess, steps=steps))
    if arguments.n2v_model:
        config = replace(config, preprocess=replace(config.preprocess, n2v_model=arguments.n2v_model))
    if arguments.segmenter:
        config = replace(config, segment=replace(config.segment, backend=arguments.segmenter))
    sam_changes = {key: value for key, value in (("mode", arguments.sam_mode), ("model_type", arguments.sam_model_type),
                                                 ("checkpoint", arguments.sam_checkpoint),
                                                 ("device", arguments.sam_device)) if value is not None}
    if sam_changes:
        config = replace(config, segment=replace(config.segment, sam=replace(config.segment.sam, **sam_changes)))
    if arguments.model:
        config = replace(config, classify=replace(config.classify, model=arguments.model))
    if arguments.unclear_below is not None:
        config = replace(config, classify=replace(config.classify, unclear_below=arguments.unclear_below))
    return config


class _Progress:
    """Stage-by-stage progress: a bar on a terminal, one line per stage otherwise, or
    machine-readable lines on stdout (``MCN-PROGRESS <fraction of all images> <stage>``)."""

    MACHINE_PREFIX = "MCN-PROGRESS"
    RESULT_PREFIX = "MCN-RESULT"

    def __init__(self, total: int, quiet: bool, machine: bool = False) -> None:
        self.total, self.quiet, self.machine, self.bar = total, quiet, machine, None
        if not quiet and not machine and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="image", file=sys.stderr)

    def callback(self, number: int, name: str) -> Callable[[str, float], None]:
        def report(stage: str, fraction: float) -> None:
            if self.machine:
                overall = (number - 1 + fraction) / self.total
                print(f"{self.MACHINE_PREFIX} {overall:.4f} {name}: {stage}", flush=True)
            elif self.bar is not None:
                self.bar.set_postfix_str(f"{name}: {stage}")
                if stage == "done":
                    self.bar.update(1)
            elif not self.quiet:
                print(f"[{number}/{self.total}] {name}: {stage}", file=sys.stderr, flush=True)
        return report

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_analyze(arguments: argparse.Namespace, config: AnalysisConfig) -> int:
    stems = [path.stem for path in arguments.images]
    if arguments.image_name and len(arguments.images) != 1:
        log.error("--image-name needs exactly one IMAGE")
        return EXIT_USAGE
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        log.error("several images share the name(s) %s; their results would share a folder. Rename them.", duplicates)
        return EXIT_USAGE
    from .io.outputs import prepare_result_folders, write_analysis
    from .pipeline import AnalysisModels, analyze_image

    prepare_result_folders(arguments.out, [Path(arguments.image_name).stem] if arguments.image_name else stems,
                           arguments.images)
    models = AnalysisModels.load(config, download=not arguments.no_download)

    progress = _Progress(len(arguments.images), arguments.quiet, arguments.progress == "machine")
    failed = 0
    for number, path in enumerate(arguments.images, start=1):
        try:
            image = read_sem_image(path, config.input.pixel_size_um, config.input.exclude_data_bar)
            if arguments.image_name:
                image.path = Path(arguments.image_name)
            analysis = analyze_image(image, models.classifier, config, progress.callback(number, image.path.name),
                                     models.segmenter, models.n2v)
            folder = write_analysis(arguments.out, analysis, overlay=not arguments.no_overlay)
        except (ImageInputError, OutputFolderError, OutputWriteError) as error:
            failed += 1
            log.error("%s", error)
            continue
        if progress.machine:
            print(f"{progress.RESULT_PREFIX} {folder.resolve()}", flush=True)
        for notice in analysis.notices:
            log.info("%s: %s", path.name, notice)
        log.info("%s: SNR after each preprocessing step: %s", path.name, ", ".join(
            f"{step['step']} {step['snr_db']:.1f} dB" for step in analysis.preprocessing if step["applied"]
            or step["step"] == "input"))
        counts = ", ".join(f"{code} {sum(1 for row in analysis.rows if row['Class'] == code)}"
                           for code in RESULT_CODES)
        log.info("%s: %d crystals (%s) -> %s", path.name, analysis.n_crystals, counts, folder)
    progress.close()
    if failed:
        log.error("%d of %d images could not be analysed (see the messages above)", failed, len(arguments.images))
        return EXIT_SOME_FAILED
    return EXIT_OK


def _run_batch(arguments: argparse.Namespace, config: AnalysisConfig) -> int:
    from .batch import BATCH_ERRORS_NAME, BATCH_RESULTS_NAME, find_batch_inputs, run_batch

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
        if to_do and not arguments.quiet and not machine:
            from tqdm import tqdm

            state["bar"] = tqdm(total=to_do, unit="image", file=sys.stderr, disable=None)

    def finished(outcome) -> None:
        state["done"] += 1
        name = Path(outcome.image).name
        if outcome.error:
            log.error("%s", outcome.error)
        elif state["bar"] is None:
            log.info("%s: %d crystals (%.1f s)", name, outcome.crystals, outcome.seconds)
        if machine:
            print(f"{_Progress.MACHINE_PREFIX} {state['done'] / state['total']:.4f} {name}", flush=True)
        if state["bar"] is not None:
            state["bar"].update(1)

    try:
        outcomes = run_batch(inputs.images, arguments.out, config, skipped=inputs.skipped, force=arguments.force,
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


def _run_demo(arguments: argparse.Namespace, config: AnalysisConfig) -> int:
    from .demo import run_demo

    if arguments.size < 256:
        log.error("--size must be at least 256 px")
        return EXIT_USAGE
    classifier = CrystalClassifier.load(config.classify.model, download=not arguments.no_download)
    progress = _Progress(1, arguments.quiet)
    report = run_demo(arguments.out, arguments.size, arguments.seed, config, classifier,
                      progress.callback(1, "synthetic scene"))
    progress.close()
    segmentation = report["segmentation"]
    log.info("synthetic scene, %d true crystals: found %d, segmentation F1 %.3f at IoU 0.5 "
             "(precision %.3f, recall %.3f); class agreement on matched crystals %s",
             report["scene"]["n_crystals"], segmentation["n_predicted"], segmentation["f1"],
             segmentation["precision"], segmentation["recall"],
             f"{report['classification']['agreement']:.3f}" if report["classification"]["agreement"] is not None else "n/a")
    log.info("results: %s; report: %s", report["results_folder"], Path(arguments.out) / "demo_report.json")
    return EXIT_OK


def _run_n2v(arguments: argparse.Namespace) -> int:
    from .config import InputConfig, PreprocessConfig
    from .io import read_sem_image, to_unit_range
    from .io.outputs import write_calibrated_tiff
    from .preprocess import Noise2VoidModel, denoise_as_trained, preprocess, train_noise2void

    assumed_size = InputConfig().assumed_pixel_size_um  # images without calibration
    images = []
    for path in arguments.images:
        try:
            image = read_sem_image(path, exclude_data_bar=not getattr(arguments, "keep_data_bar", False))
        except ImageInputError as error:
            log.error("%s", error)
            return EXIT_SOME_FAILED
        images.append(image)
    if arguments.n2v_command == "train":
        chain = tuple(step.strip() for step in arguments.chain.split(",") if step.strip())
        if "n2v" not in chain:
            raise ValueError("--chain must contain n2v")
        before = PreprocessConfig(steps=chain[:chain.index("n2v")])
        training = [preprocess(to_unit_range(i.analysed_pixels), i.pixel_size_um or assumed_size, before)[0]
                    for i in images]
        log.info("training Noise2Void on %d image(s) after %s, %d steps (2 CPU cores: ~3 min per 1000)",
                 len(images), ", ".join(before.steps) or "no preprocessing", arguments.steps)
        train_noise2void(training, arguments.out, arguments.steps, arguments.patch_size, arguments.batch_size,
                         trained_after=before.steps)
        log.info("Noise2Void model saved: %s (bioimage.io format)", arguments.out)
        return EXIT_OK
    model = Noise2VoidModel.load(arguments.model)
    arguments.out.mkdir(parents=True, exist_ok=True)
    if model.trained_after:
        log.info("applying %s first, as the model was trained after it", ", ".join(model.trained_after))
    for image in images:
        denoised = denoise_as_trained(model, to_unit_range(image.analysed_pixels), image.pixel_size_um or assumed_size,
                                      arguments.tile_size)
        target = arguments.out / f"{image.path.stem}_n2v.tif"
        write_calibrated_tiff(target, denoised, image.pixel_size_um)
        log.info("%s -> %s", image.path.name, target)
    return EXIT_OK


def _run_tune_sam(arguments: argparse.Namespace, config: AnalysisConfig) -> int:
    import json

    from .io import read_sem_image, to_unit_range
    from .io.outputs import write_json
    from .io.roiset import RoiInputError, read_reference_crystals
    from .segment.sam import SamCrystalSegmenter, load_sam
    from .segment.sam_tuning import QUICK_GRID, TuningGrid, TuningImage, tune_sam, tuned_settings

    if len(arguments.pairs) % 2:
        log.error("tune-sam takes pairs: IMAGE ROISET [IMAGE ROISET ...]")
        return EXIT_USAGE
    images = []
    for image_path, roi_path in zip(arguments.pairs[::2], arguments.pairs[1::2]):
        try:
            image = read_sem_image(image_path, config.input.pixel_size_um, config.input.exclude_data_bar)
            reference = read_reference_crystals(roi_path, image.analysed_pixels.shape)
        except (ImageInputError, RoiInputError) as error:
            log.error("%s", error)
            return EXIT_SOME_FAILED
        size = image.pixel_size_um or config.input.assumed_pixel_size_um
        images.append(TuningImage(Path(image_path).name, to_unit_range(image.analysed_pixels), size, reference.labels))
        log.info("%s: %d reference crystals", Path(image_path).name, reference.labels.max())
    sam = load_sam(config.segment.sam.model_type, config.segment.sam.checkpoint, config.segment.sam.device,
                   download=not arguments.no_download)
    segmenter = SamCrystalSegmenter(sam, config.segment.sam)
    grid = QUICK_GRID if arguments.grid == "quick" else TuningGrid()
    report = tune_sam(segmenter, images, config.segment, grid, progress=lambda message: log.info("tuning: %s", message))
    report["checkpoint"] = sam.describe()
    settings = tuned_settings(report, config.segment.sam)
    write_json(arguments.out, settings)
    write_json(arguments.out.with_name(arguments.out.stem + ".report.json"), report)
    log.info("best: %s (F1 %.3f at IoU 0.5); settings written to %s", json.dumps(settings["segment"]["sam"]),
             report["best"]["f1"], arguments.out)
    return EXIT_OK


def _run_imagej(arguments: argparse.Namespace) -> int:
    import os
    import time

    from . import imagej as bridge

    if not os.environ.get("DISPLAY"):
        log.error("ImageJ's windows and dialogs need a display: set DISPLAY, or run under xvfb-run")
        return EXIT_USAGE
    try:
        if arguments.fiji:
            ij = bridge.start_fiji(arguments.fiji, plugin_jar=arguments.plugin_jar)
        else:
            ij = bridge.start_imagej1(arguments.ij_jar, headless=False,
                                      plugin_jar=bridge.find_plugin_jar(arguments.plugin_jar))
    except bridge.ImageJUnavailableError as error:
        log.error("%s", error)
        return EXIT_USAGE
    bridge.register_backend()
    if arguments.macro:
        result = ij.runMacroFile(str(arguments.macro.resolve()), arguments.macro_argument)
        if result is not None and str(result) == "[aborted]":
            log.error("the macro %s was aborted", arguments.macro)
            return EXIT_SOME_FAILED
        return EXIT_OK
    if ij.getInstance() is None:
        main_window = bridge.jimport("ij.ImageJ")
        main_window(main_window.EMBEDDED)  # quitting closes ImageJ, not this Python process
    log.info("ImageJ is running with Plugins > MicroCrystalNet; this Python session is its backend. "
             "Quit ImageJ to end.")
    while ij.getInstance() is not None:
        time.sleep(0.5)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if arguments.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    logging.getLogger("microcrystalnet.pipeline").setLevel(logging.WARNING)
    if arguments.command == "imagej":
        return _run_imagej(arguments)
    if arguments.command in ("train", "evaluate", "patches"):
        try:
            return _run_classifier_command(arguments)
        except (ModelUnavailableError, ModelDescriptionError) as error:
            log.error("model: %s", error)
            return EXIT_MODEL
    if arguments.command == "n2v":
        try:
            return _run_n2v(arguments)
        except (Noise2VoidModelError, ValueError) as error:
            log.error("Noise2Void: %s", error)
            return EXIT_MODEL if isinstance(error, Noise2VoidModelError) else EXIT_USAGE
    try:
        config = config_from_arguments(arguments)
    except ValueError as error:
        log.error("invalid settings: %s", error)
        return EXIT_USAGE
    try:
        if arguments.command == "analyze":
            return _run_analyze(arguments, config)
        if arguments.command == "batch":
            return _run_batch(arguments, config)
        if arguments.command == "tune-sam":
            return _run_tune_sam(arguments, config)
        return _run_demo(arguments, config)
    except (ModelUnavailableError, ModelDescriptionError, Noise2VoidModelError) as error:
        log.error("model: %s", error)
        return EXIT_MODEL
    except (OutputFolderError, OutputWriteError) as error:
        log.error("%s", error)
        return EXIT_USAGE if isinstance(error, OutputFolderError) else EXIT_SOME_FAILED
    except KeyboardInterrupt:
        log.error("interrupted; results of finished images are complete, the image in progress was not written")
        return 130


if __name__ == "__main__":
    sys.exit(main())
