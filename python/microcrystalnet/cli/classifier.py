"""``microcrystalnet train``, ``evaluate`` and ``patches``: crystal classifiers on labelled crystals."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import AnalysisConfig, PatchConfig, TrainingConfig, choices_of, default_of
from .common import EXIT_OK, EXIT_USAGE, Progress, add_quiet_option, finite_float, log, positive_int


def _add_training_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="DATA",
                        help="a folder of class folders (RES/, PES/, AA/, RA-SA/ or rhombic/, polyhedral/, "
                             "amorphous/, spherical/), or images each followed by its Fiji RoiSet.zip")
    parser.add_argument("--classes", type=Path, metavar="CSV",
                        help="for ROI sets: a CSV with Name, Class (and optionally Image) columns giving each "
                             "ROI's class (default: the class in the ROI name, e.g. 0001-RES)")
    parser.add_argument("--config", type=Path, metavar="JSON",
                        help="analysis settings file: preprocessing and patch cutting for ROI sets, as analyze uses")
    parser.add_argument("--input-size", type=positive_int, default=default_of(PatchConfig, "size"), metavar="PX",
                        help="patch side in px (default %(default)s, the paper's; it tried 16-128)")
    add_quiet_option(parser)


def _training_option(parser: argparse.ArgumentParser, flag: str, field: str, kind, help_text: str) -> None:
    """An option whose default is the training recipe's (TrainingConfig)."""
    parser.add_argument(flag, type=kind, default=default_of(TrainingConfig, field),
                        help=f"{help_text} (default %(default)s)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a crystal classifier on your labelled crystals",
        description="Train a classifier with the paper's recipe (Adam 1e-3, batch 32, 30 epochs, learning rate "
                    "x0.1 after 5 epochs without progress, early stopping, best model kept, 80/10/10 split by "
                    "image and class, rotations and flips). Writes a run folder: config.json, split.json, "
                    "history.csv, model.keras (+ .json description; use it with 'analyze --model') and "
                    "evaluation/ (report.html) on the held-out images.")
    _add_training_data_options(train)
    train.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder to write")
    train.add_argument("--architecture", choices=choices_of(TrainingConfig, "architecture"),
                       default=default_of(TrainingConfig, "architecture"),
                       help="network (default %(default)s: the paper's, with the NSR block)")
    _training_option(train, "--epochs", "epochs", positive_int, "epochs at most")
    _training_option(train, "--batch-size", "batch_size", positive_int, "patches per batch")
    _training_option(train, "--learning-rate", "learning_rate", finite_float, "Adam learning rate")
    _training_option(train, "--folds", "folds", positive_int,
                     "k >= 3: k-fold cross-validation by image instead of one split (the paper: 5)")
    train.add_argument("--split-by", choices=choices_of(TrainingConfig, "split_by"),
                       default=default_of(TrainingConfig, "split_by"),
                       help="image: every crystal of an image on one side of the train/validation/test split (needs "
                            "10 images or more); crystal: crystals split one by one, to train on the crystals of one "
                            "or a few images (10 labelled crystals or more; optimistic test scores) "
                            "(default %(default)s)")
    train.add_argument("--no-augment", action="store_true", help="no random rotations and flips")
    train.add_argument("--progress", choices=("auto", "machine"), default="auto",
                       help="machine: also 'MCN-PROGRESS <fraction> epoch N/M' lines on stdout for other programs")
    _training_option(train, "--seed", "seed", int, "random seed")
    train.set_defaults(run=run_classifier_command)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a classifier on labelled crystals: scores, plots, HTML report",
        description="Accuracy, top-1/top-2, per-class and macro precision/recall/F1, confusion matrix, "
                    "precision-recall and ROC curves with AP/AUC, t-SNE of the penultimate features, activation "
                    "and saliency maps: OUT/report.html, OUT/metrics.json, PNG plots, OUT/predictions.csv.")
    evaluate.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                          help="a known model name or a .keras/.h5 file with its .json description")
    _add_training_data_options(evaluate)
    evaluate.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the report")
    evaluate.add_argument("--explain", nargs="+", metavar="PATCH",
                          help="patch names (as in predictions.csv) for the activation and saliency maps "
                               "(default: the most confidently correct crystal of each class)")
    evaluate.add_argument("--no-download", action="store_true", help="never download a model")
    evaluate.set_defaults(run=run_classifier_command)

    patches = commands.add_parser(
        "patches", help="write labelled crystal patches as class folders (synthetic, or from Fiji ROI sets)",
        description="Write crystal patches in the class-folder layout train and evaluate read "
                    "(OUT/<class>/<image>__<n>.png): from synthetic scenes with exact classes (--synthetic N), "
                    "or from images with Fiji ROI sets, cut as the analysis cuts them.")
    patches.add_argument("data", nargs="*", metavar="IMAGE ROISET", help="images each followed by its RoiSet.zip")
    patches.add_argument("--synthetic", type=positive_int, metavar="SCENES",
                         help="render this many synthetic scenes instead")
    patches.add_argument("--scene-size", type=positive_int, default=1024, metavar="PX",
                         help="synthetic scene side, px, at 20 nm/px (default 1024: about 95 crystals each)")
    patches.add_argument("--first-seed", type=int, default=1000, help="seed of the first synthetic scene")
    patches.add_argument("--classes", type=Path, metavar="CSV", help="as for train")
    patches.add_argument("--config", type=Path, metavar="JSON", help="as for train")
    patches.add_argument("--input-size", type=positive_int, default=default_of(PatchConfig, "size"), metavar="PX",
                         help="patch side in px (default %(default)s)")
    patches.add_argument("--out", required=True, type=Path, metavar="DIR")
    add_quiet_option(patches)
    patches.set_defaults(run=run_classifier_command)


def _epoch_lines(epoch: int, epochs: int, logs: dict[str, float]) -> None:
    """Training progress for other programs (train --progress machine)."""
    print(f"{Progress.MACHINE_PREFIX} {epoch / epochs:.4f} epoch {epoch}/{epochs}, validation loss "
          f"{logs.get('val_loss', float('nan')):.3f}", flush=True)


def run_classifier_command(arguments: argparse.Namespace) -> int:
    config = AnalysisConfig.from_json(arguments.config) if arguments.config else AnalysisConfig()
    config = config.updated(patch={"size": arguments.input_size})
    training = None
    if arguments.command == "train":  # settings first: a mistake is reported before any data is read
        training = TrainingConfig().updated(architecture=arguments.architecture, epochs=arguments.epochs,
                                            batch_size=arguments.batch_size, learning_rate=arguments.learning_rate,
                                            folds=arguments.folds, augment=not arguments.no_augment,
                                            seed=arguments.seed, split_by=arguments.split_by)
    from ..classify.dataset import DatasetError, load_training_data, synthetic_dataset, write_class_folders
    from ..classify.splits import SplitError
    from ..io import ImageInputError
    from ..io.owned_files import check_output_folder
    from ..io.roiset import RoiInputError

    # the output folder before the data: a folder that cannot be written to is said before minutes of reading
    # (the sign of an earlier run imported for its command only: training's module loads TensorFlow)
    sign = None
    if arguments.command == "train":
        from ..classify.training import RUN_FOLDER_SIGN as sign
    elif arguments.command == "evaluate":
        from ..classify.evaluation import EVALUATION_FOLDER_SIGN as sign
    check_output_folder(arguments.out, earlier_run_sign=sign)
    try:
        if getattr(arguments, "synthetic", None):
            dataset = synthetic_dataset(arguments.synthetic, (arguments.scene_size,) * 2, config=config,
                                        first_seed=arguments.first_seed, progress=log.info)
        else:
            dataset = load_training_data(arguments.data, config, arguments.classes, progress=log.info)
        log.info("data: %s", dataset.describe())
        if arguments.command == "patches":
            write_class_folders(dataset, arguments.out)
            log.info("patches written to %s", arguments.out)
            return EXIT_OK
        if arguments.command == "evaluate":
            from ..classify import CrystalClassifier
            from ..classify.evaluation import write_evaluation

            classifier = CrystalClassifier.load(arguments.model, download=not arguments.no_download)
            scores = write_evaluation(arguments.out, classifier, dataset, arguments.explain)
        else:
            from ..classify.training import train_classifier

            scores = train_classifier(dataset, arguments.out, training, config,
                                      _epoch_lines if arguments.progress == "machine" else None)
            scores = scores.get("mean", scores)
    except (DatasetError, SplitError, RoiInputError, ImageInputError) as error:
        log.error("%s: %s", arguments.command, error)
        return EXIT_USAGE
    log.info("accuracy %.3f, top-2 %.3f, macro F1 %.3f -> %s", scores["accuracy"], scores["top_2_accuracy"],
             scores["macro_f1"], arguments.out)
    return EXIT_OK
