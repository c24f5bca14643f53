"""Evaluation of a classifier on labelled patches: numbers, plots and one HTML report.

``write_evaluation(out, classifier, dataset)`` writes::

    OUT/metrics.json          classify.scores.classification_scores, plus model and data
    OUT/predictions.csv       per patch: name, source image, true and predicted class, probabilities
    OUT/confusion_matrix.png  OUT/precision_recall.png  OUT/roc.png       (the paper's Figure 6)
    OUT/tsne.png              t-SNE of the penultimate features              (Figure 7)
    OUT/explain.png           activation and saliency maps per chosen crystal (Figure 9)
    OUT/training_curves.png   loss and accuracy per epoch, when a history.csv is given (Figure 5)
    OUT/report.html           all of the above on one page
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..classes import CLASS_CODES, class_by_code  # noqa: E402
from ..io.report import html_figures, html_page, html_table, save_figure  # noqa: E402
from ..io.owned_files import claim_output_folder  # noqa: E402
from .classifier import CrystalClassifier  # noqa: E402
from .dataset import PatchDataset  # noqa: E402
from .explain import activation_maps, penultimate_features, saliency_maps  # noqa: E402
from .scores import classification_scores, one_vs_rest_curves  # noqa: E402

Array = np.ndarray
COLOURS = [class_by_code(code).colour_hex for code in CLASS_CODES]
#: t-SNE of more patches than this uses a random (seeded) sample of them
TSNE_MAX_PATCHES = 3000
#: the scores file; a folder holding it is an evaluation of an earlier version (before the ledger of io.owned_files)
EVALUATION_FOLDER_SIGN = "metrics.json"


def plot_confusion(scores: dict[str, Any], path: Path) -> str:
    matrix = np.asarray(scores["confusion_matrix"])
    figure, axes = plt.subplots(figsize=(4.6, 4))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > matrix.max() / 2 else "black")
    axes.set_xticks(range(len(CLASS_CODES)), CLASS_CODES)
    axes.set_yticks(range(len(CLASS_CODES)), CLASS_CODES)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"accuracy {scores['accuracy']:.3f}")
    return save_figure(figure, path)


def plot_curves(probabilities: Array, labels: Array, scores: dict[str, Any], folder: Path) -> list[str]:
    curves = one_vs_rest_curves(probabilities, labels)
    written = []
    for kind, x, y, xlabel, ylabel, metric in (("precision_recall", "recall", "precision", "recall", "precision",
                                                 "average_precision"),
                                                ("roc", "fpr", "tpr", "false positive rate", "true positive rate",
                                                 "roc_auc")):
        figure, axes = plt.subplots(figsize=(4.6, 4))
        for index, code in enumerate(CLASS_CODES):
            if code in curves:
                value = scores["per_class"][code][metric]
                axes.plot(curves[code][x], curves[code][y], color=COLOURS[index],
                          label=f"{code} ({'AP' if kind == 'precision_recall' else 'AUC'} = {value:.2f})")
        if kind == "roc":
            axes.plot([0, 1], [0, 1], color="0.7", linestyle=":")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.legend(loc="lower left" if kind == "precision_recall" else "lower right", fontsize=8)
        written.append(save_figure(figure, folder / f"{kind}.png"))
    return written


def plot_tsne(features: Array, labels: Array, path: Path, seed: int = 0) -> str | None:
    """2-D t-SNE of the features coloured by true class; None when there are too few patches."""
    from sklearn.manifold import TSNE

    if len(features) < 10:
        return None
    chosen = np.random.default_rng(seed).permutation(len(features))[:TSNE_MAX_PATCHES]
    embedded = TSNE(2, perplexity=min(30.0, (len(chosen) - 1) / 3), init="pca", random_state=seed) \
        .fit_transform(features[chosen])
    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    for index, code in enumerate(CLASS_CODES):
        mine = labels[chosen] == index
        axes.scatter(embedded[mine, 0], embedded[mine, 1], s=8, color=COLOURS[index], label=code)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title("t-SNE of penultimate features")
    axes.legend(fontsize=8, markerscale=2)
    return save_figure(figure, path)


def representative_patches(probabilities: Array, labels: Array) -> list[int]:
    """Per class present, the correctly classified patch with the highest probability (else the
    patch with the highest probability for its true class)."""
    chosen = []
    for index in range(len(CLASS_CODES)):
        mine = np.flatnonzero(labels == index)
        if len(mine) == 0:
            continue
        correct = mine[np.argmax(probabilities[mine], axis=1) == index]
        pool = correct if len(correct) else mine
        chosen.append(int(pool[np.argmax(probabilities[pool, index])]))
    return chosen


def plot_explanations(classifier: CrystalClassifier, dataset: PatchDataset, chosen: Sequence[int],
                      probabilities: Array, path: Path) -> str | None:
    if not chosen:
        return None
    patches = dataset.patches[list(chosen)]
    activations = activation_maps(classifier.keras_model, patches)
    saliency = saliency_maps(classifier.keras_model, patches)
    columns = 2 + len(activations)
    figure, axes = plt.subplots(len(chosen), columns, figsize=(1.7 * columns, 1.8 * len(chosen)), squeeze=False)
    for row, index in enumerate(chosen):
        predicted = CLASS_CODES[int(np.argmax(probabilities[index]))]
        panels = [("patch", patches[row, :, :, 0], "gray")]
        panels += [(name, maps[row], "magma") for name, maps in activations.items()]
        panels.append(("saliency", saliency[row], "inferno"))
        for column, (title, image, colours) in enumerate(panels):
            axes[row, column].imshow(image, cmap=colours)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(title, fontsize=8)
        axes[row, 0].set_ylabel(f"{CLASS_CODES[dataset.labels[index]]} -> {predicted}", fontsize=8)
    return save_figure(figure, path)


def plot_history(history_csv: Path, path: Path) -> str:
    with open(history_csv, newline="") as stream:
        rows = list(csv.DictReader(stream))
    epochs = [int(row["epoch"]) for row in rows]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(8, 3.2))
    for axes, key in ((loss, "loss"), (accuracy, "accuracy")):
        for prefix, label in (("", "training"), ("val_", "validation")):
            if prefix + key in rows[0]:
                axes.plot(epochs, [float(row[prefix + key]) for row in rows], label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.legend(fontsize=8)
    return save_figure(figure, path)


def _write_predictions(path: Path, dataset: PatchDataset, probabilities: Array) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Name", "Image", "TrueClass", "PredictedClass", *[f"P_{code}" for code in CLASS_CODES]])
        for index in range(len(dataset)):
            writer.writerow([dataset.names[index], dataset.groups[index], CLASS_CODES[dataset.labels[index]],
                             CLASS_CODES[int(np.argmax(probabilities[index]))],
                             *[f"{p:.5f}" for p in probabilities[index]]])


def _report_html(title: str, scores: dict[str, Any], description: dict[str, Any], images: list[str]) -> str:
    summary = html_table(["score", "value"], [[key, scores[key]] for key in (
        "patches", "accuracy", "top_1_accuracy", "top_2_accuracy", "macro_precision", "macro_recall", "macro_f1")])
    columns = ("precision", "recall", "f1", "support", "average_precision", "roc_auc")
    per_class = html_table(["class", *columns], [[code, *[scores["per_class"][code][c] for c in columns]]
                                                 for code in CLASS_CODES])
    about = html_table(["", ""], [[key, value] for key, value in description.items()])
    return html_page(title, f"{about}<h2>Scores</h2>{summary}<h2>Per class</h2>{per_class}"
                            f"<h2>Plots</h2>{html_figures(images)}")


def write_evaluation(out: str | Path, classifier: CrystalClassifier, dataset: PatchDataset,
                     explain: Sequence[str] | None = None, history_csv: str | Path | None = None,
                     seed: int = 0) -> dict[str, Any]:
    """Evaluate ``classifier`` on ``dataset`` and write the files listed in the module notes.

    ``explain``: names of the patches to show in ``explain.png`` (default: one per class, the
    most confidently correct). Returns the scores (as in ``metrics.json``). ``out`` must be new,
    empty, or a folder this program wrote (else ``OutputFolderError``).
    """
    out = claim_output_folder(Path(out), earlier_run_sign=EVALUATION_FOLDER_SIGN)
    if len(dataset) == 0:
        raise ValueError("no patches to evaluate on")
    if dataset.input_size != classifier.input_size:
        raise ValueError(f"patches are {dataset.input_size} px, the model takes {classifier.input_size} px")
    probabilities = classifier.predict(dataset.patches)
    scores = classification_scores(probabilities, dataset.labels)
    description = {"model": str(classifier.path), "model sha256": classifier.card.sha256,
                   "data": dataset.describe()}
    images = []
    if history_csv and Path(history_csv).is_file():
        images.append(plot_history(Path(history_csv), out / "training_curves.png"))
    images.append(plot_confusion(scores, out / "confusion_matrix.png"))
    images += plot_curves(probabilities, dataset.labels, scores, out)
    tsne = plot_tsne(penultimate_features(classifier.keras_model, dataset.patches), dataset.labels, out / "tsne.png", seed)
    images += [tsne] if tsne else []
    if explain:
        unknown = sorted(set(explain) - set(dataset.names))
        if unknown:
            raise ValueError(f"no patch named {', '.join(unknown)} in the evaluation data")
        chosen = [dataset.names.index(name) for name in explain]
    else:
        chosen = representative_patches(probabilities, dataset.labels)
    figure = plot_explanations(classifier, dataset, chosen, probabilities, out / "explain.png")
    images += [figure] if figure else []
    _write_predictions(out / "predictions.csv", dataset, probabilities)
    (out / EVALUATION_FOLDER_SIGN).write_text(json.dumps({**scores, **description, "plots": images}, indent=2) + "\n")
    (out / "report.html").write_text(_report_html("MicroCrystalNet classifier evaluation", scores, description,
                                                  images))
    return scores
