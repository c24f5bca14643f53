"""Classification scores, as the paper reports them (section 4.1, Figures 6 and Table 7).

Pure functions of the class probabilities and the true labels (indices into ``CLASS_CODES``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (average_precision_score, confusion_matrix, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score, roc_curve)

from ..classes import CLASS_CODES

Array = np.ndarray


def top_k_accuracy(probabilities: Array, labels: Array, k: int) -> float:
    """Fraction of patches whose true class is among the ``k`` most probable."""
    if len(labels) == 0:
        return float("nan")
    best = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean(np.any(best == np.asarray(labels)[:, None], axis=1)))


def classification_scores(probabilities: Array, labels: Array) -> dict[str, Any]:
    """Accuracy (= top-1), top-2 accuracy, precision/recall/F1 per class and macro-averaged,
    the confusion matrix (rows: true class, columns: predicted, ``CLASS_CODES`` order), and the
    average precision (AP) and ROC AUC of each class against the rest (None where a class is
    absent from ``labels``, as both need positives and negatives)."""
    labels = np.asarray(labels, int)
    predicted = np.argmax(probabilities, axis=1)
    indices = list(range(len(CLASS_CODES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=indices,
                                                                     zero_division=0)
    per_class = {}
    for index, code in enumerate(CLASS_CODES):
        truth = labels == index
        separable = 0 < truth.sum() < len(truth)
        per_class[code] = {
            "precision": float(precision[index]), "recall": float(recall[index]), "f1": float(f1[index]),
            "support": int(support[index]),
            "average_precision": float(average_precision_score(truth, probabilities[:, index])) if separable else None,
            "roc_auc": float(roc_auc_score(truth, probabilities[:, index])) if separable else None}
    present = [code for code in CLASS_CODES if per_class[code]["support"] > 0]
    return {
        "patches": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "top_1_accuracy": top_k_accuracy(probabilities, labels, 1),
        "top_2_accuracy": top_k_accuracy(probabilities, labels, 2),
        "macro_precision": float(np.mean([per_class[c]["precision"] for c in present])),
        "macro_recall": float(np.mean([per_class[c]["recall"] for c in present])),
        "macro_f1": float(np.mean([per_class[c]["f1"] for c in present])),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "class_order": list(CLASS_CODES),
    }


def one_vs_rest_curves(probabilities: Array, labels: Array) -> dict[str, dict[str, Array]]:
    """Per class: precision-recall curve (``precision``, ``recall``) and ROC curve (``fpr``, ``tpr``)."""
    curves = {}
    for index, code in enumerate(CLASS_CODES):
        truth = np.asarray(labels) == index
        if not 0 < truth.sum() < len(truth):
            continue
        precision, recall, _ = precision_recall_curve(truth, probabilities[:, index])
        fpr, tpr, _ = roc_curve(truth, probabilities[:, index])
        curves[code] = {"precision": precision, "recall": recall, "fpr": fpr, "tpr": tpr}
    return curves
