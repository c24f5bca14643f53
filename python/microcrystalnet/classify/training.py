"""Training a crystal classifier with the paper's recipe, into a run folder.

A run folder holds everything needed to reuse, reproduce or judge the result::

    RUN/config.json        training settings, patch and preprocessing settings, data description
    RUN/split.json         which patches (by name) trained, validated and tested
    RUN/history.csv        loss, accuracy and learning rate per epoch
    RUN/model.keras        the best model (lowest validation loss); load it by path anywhere
    RUN/model.keras.json   its description: class order, input size and scaling, patch settings
    RUN/evaluation/        the evaluation on the held-out test images (see classify.evaluation)

With ``folds`` > 1 (cross-validation) each fold gets such a folder (``RUN/fold-1`` ...) and
``RUN/cross_validation.json`` holds the metrics per fold with their mean and standard deviation.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import CLASS_CODES
from ..config import AnalysisConfig, TrainingConfig
from ..frameworks import import_keras
from ..io.owned_files import claim_output_folder
from .architecture import build_network
from .classifier import INPUT_SCALING
from .dataset import PatchDataset
from .splits import Split, cross_validation_splits, train_validation_test_split

Array = np.ndarray
log = logging.getLogger(__name__)
keras = import_keras()

MODEL_FILE = "model.keras"
#: what a run folder of an earlier version (before the ledger of io.owned_files) holds: the model's description
RUN_FOLDER_SIGN = f"{MODEL_FILE}.json"

EpochProgress = Callable[[int, int, dict[str, float]], None]


class AugmentedPatches(keras.utils.PyDataset):
    """Shuffled batches; with ``augment`` each patch turned by a random multiple of 90 degrees
    and flipped at random (seeded per epoch, so runs repeat exactly)."""

    def __init__(self, patches: Array, labels: Array, batch_size: int, augment: bool, seed: int) -> None:
        super().__init__()
        self.patches, self.labels = patches, labels
        self.batch_size, self.augment, self.seed = batch_size, augment, seed
        self.epoch = 0
        self.on_epoch_end()  # draws the first epoch's order

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[Array, Array]:
        chosen = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = self.patches[chosen].copy()
        if self.augment:
            generator = np.random.default_rng((self.seed, self.epoch, index))
            turns = generator.integers(0, 4, len(batch))
            flips = generator.integers(0, 2, len(batch))
            for item in range(len(batch)):
                turned = np.rot90(batch[item], turns[item], axes=(0, 1))
                batch[item] = turned[:, ::-1] if flips[item] else turned
        return batch, self.labels[chosen]

    def on_epoch_end(self) -> None:
        self._order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.labels))
        self.epoch += 1


class _EpochReport(keras.callbacks.Callback):
    def __init__(self, epochs: int, progress: EpochProgress | None) -> None:
        super().__init__()
        self.epochs, self.progress = epochs, progress
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        logs["seconds"] = time.perf_counter() - self.started
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        log.info("epoch %d/%d: loss %.3f accuracy %.3f, validation loss %.3f accuracy %.3f (%.1f s)", epoch + 1,
                 self.epochs, logs.get("loss", np.nan), logs.get("accuracy", np.nan), logs.get("val_loss", np.nan),
                 logs.get("val_accuracy", np.nan), logs["seconds"])
        if self.progress:
            self.progress(epoch + 1, self.epochs, {k: float(v) for k, v in logs.items()})


def model_description(input_size: int, architecture: str, analysis: AnalysisConfig) -> dict[str, Any]:
    """What ``<model>.json`` says about a trained model, so it is always fed as it was trained."""
    return {"class_order": list(CLASS_CODES), "input_size": input_size, "input_scaling": INPUT_SCALING,
            "architecture": architecture,
            "patch": {"margin_fraction": analysis.patch.margin_fraction,
                      "mask_background": analysis.patch.mask_background},
            "preprocessing": list(analysis.preprocess.steps)}


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    columns = sorted({key for row in history for key in row} - {"epoch"})
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["epoch", *columns])
        writer.writeheader()
        for epoch, row in enumerate(history, start=1):
            writer.writerow({"epoch": epoch, **{k: f"{row[k]:.6g}" for k in columns if k in row}})


def fit_network(train: PatchDataset, validation: PatchDataset, config: TrainingConfig, checkpoint: Path,
                progress: EpochProgress | None = None) -> list[dict[str, float]]:
    """Train ``config.architecture`` from scratch with the recipe in ``config``; the model with the
    lowest validation loss is saved at ``checkpoint`` (a ``.keras`` file). Returns the per-epoch
    logs (loss, accuracy, val_loss, val_accuracy, learning_rate, seconds)."""
    keras.utils.set_random_seed(config.seed)
    network = build_network(config.architecture, train.input_size)
    network.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    history: list[dict[str, float]] = []

    def record(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        history.append(logs)
        if progress:
            progress(epoch, epochs, logs)

    callbacks = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=config.reduce_lr_factor,
                                          patience=config.reduce_lr_patience),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping_patience),
        _EpochReport(config.epochs, record),
    ]
    network.fit(AugmentedPatches(train.patches, train.labels, config.batch_size, config.augment, config.seed),
                validation_data=(validation.patches, validation.labels), epochs=config.epochs, callbacks=callbacks,
                verbose=0)
    return history


def fit_split(dataset: PatchDataset, split: Split, config: TrainingConfig, analysis: AnalysisConfig, run: Path,
              progress: EpochProgress | None = None) -> dict[str, Any]:
    """Train on ``split.train``, select on ``split.validation``, evaluate on ``split.test`` into ``run``.

    Returns the evaluation metrics on the test part.
    """
    from .classifier import CrystalClassifier
    from .evaluation import write_evaluation

    run.mkdir(parents=True, exist_ok=True)
    history = fit_network(dataset.subset(split.train), dataset.subset(split.validation), config, run / MODEL_FILE,
                          progress)
    _write_history(run / "history.csv", history)
    (run / f"{MODEL_FILE}.json").write_text(json.dumps(model_description(dataset.input_size, config.architecture,
                                                                         analysis), indent=2) + "\n")
    (run / "split.json").write_text(json.dumps({part: [dataset.names[i] for i in getattr(split, part)]
                                                for part in ("train", "validation", "test")}, indent=1) + "\n")
    best = CrystalClassifier.load(run / MODEL_FILE)
    return write_evaluation(run / "evaluation", best, dataset.subset(split.test), history_csv=run / "history.csv",
                            seed=config.seed)


def train_classifier(dataset: PatchDataset, out: str | Path, config: TrainingConfig = TrainingConfig(),
                     analysis: AnalysisConfig = AnalysisConfig(),
                     progress: EpochProgress | None = None) -> dict[str, Any]:
    """Train (one split, or ``config.folds``-fold cross-validation) into the run folder ``out``:
    new, empty, or a run folder of this program (else ``OutputFolderError``, before training).

    Returns the test metrics (one split) or the per-fold metrics with mean and standard deviation.
    """
    out = Path(out)
    # split first: data too few to split leave no run folder behind
    groups = dataset.groups if config.split_by == "image" else np.arange(len(dataset))
    if config.folds == 1:
        splits = [train_validation_test_split(dataset.labels, groups, config.validation_fraction,
                                              config.test_fraction, config.seed, config.split_by)]
    else:
        splits = cross_validation_splits(dataset.labels, groups, config.folds, config.validation_fraction,
                                         config.seed, config.split_by)
    claim_output_folder(out, earlier_run_sign=RUN_FOLDER_SIGN)
    settings = {"training": config.to_dict(), "analysis": analysis.to_dict(), "data": dataset.describe(),
                "class_counts": dataset.class_counts(), "dropped": dataset.dropped}
    (out / "config.json").write_text(json.dumps(settings, indent=2) + "\n")
    log.info("training %s on %s", config.architecture, dataset.describe())
    if config.folds == 1:
        (split,) = splits
        log.info("split by %s: %d train, %d validation, %d test patches", config.split_by, len(split.train),
                 len(split.validation), len(split.test))
        return fit_split(dataset, split, config, analysis, out, progress)
    results = []
    for number, split in enumerate(splits, start=1):
        log.info("fold %d/%d: %d train, %d validation, %d test patches", number, len(splits), len(split.train),
                 len(split.validation), len(split.test))
        results.append(fit_split(dataset, split, config, analysis, out / f"fold-{number}", progress))
    summary = {"folds": results, "mean": {}, "std": {}}
    for key in ("accuracy", "top_2_accuracy", "macro_precision", "macro_recall", "macro_f1"):
        values = [fold[key] for fold in results]
        summary["mean"][key], summary["std"][key] = float(np.mean(values)), float(np.std(values))
    (out / "cross_validation.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
