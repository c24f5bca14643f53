"""How well a segmentation matches a ground truth: instance matching at an IoU threshold.

The usual measure for instance segmentation (e.g. StarDist's ``matching``): a predicted
crystal is a true positive when its intersection-over-union with a true crystal reaches the
threshold. Above 0.5 a crystal can overlap at most one other that much; at exactly 0.5 it can
overlap two (a crystal split into equal halves), so pairs are taken one to one, the highest IoU
first (:func:`matched_pairs`).

:func:`score_segmentation` adds what a petrographer checks against their own outlines: the
count error, how far the size distributions differ (Kolmogorov-Smirnov statistic on the
equivalent diameters), and how many crystals on each side touch the image edge (outlines often
leave out the crystals cut by it, and then so should the analysis).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.segmentation import relabel_sequential

Array = np.ndarray


@dataclass(frozen=True)
class InstanceMatch:
    """Counts and scores of one comparison; ``mean_matched_iou`` is over true positives."""

    iou_threshold: float
    n_true: int
    n_predicted: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: (true labels, predicted labels, IoU) of the pairs that overlap, three arrays of one length
PairIoUs = tuple[Array, Array, Array]


def pair_ious(true_labels: Array, predicted_labels: Array) -> PairIoUs:
    """The IoU of every pair of a true and a predicted label (1..) that overlap: their labels and
    IoU, three arrays. Memory grows with the pixels and the overlapping pairs, not with the number
    of true times predicted labels (tens of thousands of crystals on each side are common)."""
    if true_labels.shape != predicted_labels.shape:
        raise ValueError(f"label images differ in shape: {true_labels.shape} vs {predicted_labels.shape}")
    true_flat = true_labels.ravel().astype(np.int64)
    predicted_flat = predicted_labels.ravel().astype(np.int64)
    n_predicted = int(predicted_flat.max(initial=0)) + 1
    both = (true_flat > 0) & (predicted_flat > 0)
    pairs, intersections = np.unique(true_flat[both] * n_predicted + predicted_flat[both], return_counts=True)
    true_ids, predicted_ids = pairs // n_predicted, pairs % n_predicted
    true_areas, predicted_areas = np.bincount(true_flat), np.bincount(predicted_flat)
    union = true_areas[true_ids] + predicted_areas[predicted_ids] - intersections
    return true_ids, predicted_ids, intersections / union


def iou_matrix(true_labels: Array, predicted_labels: Array) -> Array:
    """IoU between every true (rows, 1..) and predicted (columns, 1..) label; row/column 0 unused.
    Dense: for a few hundred labels (:func:`pair_ious` for many)."""
    true_ids, predicted_ids, ious = pair_ious(true_labels, predicted_labels)
    iou = np.zeros((int(true_labels.max(initial=0)) + 1, int(predicted_labels.max(initial=0)) + 1))
    iou[true_ids, predicted_ids] = ious
    return iou


def matched_pairs(pairs: PairIoUs, iou_threshold: float = 0.5) -> tuple[Array, Array]:
    """The (true, predicted) label pairs of :func:`pair_ious` with IoU >= ``iou_threshold``
    (>= 0.5), each label in one pair at most: ties at exactly 0.5 go to the highest IoU, then the
    lowest labels."""
    kept = _matched_indices(pairs, iou_threshold)
    return pairs[0][kept], pairs[1][kept]


def _matched_indices(pairs: PairIoUs, iou_threshold: float) -> Array:
    if iou_threshold < 0.5:
        raise ValueError("iou_threshold below 0.5 needs an assignment step, which is not implemented")
    true_ids, predicted_ids, ious = pairs
    candidates = np.nonzero(ious >= iou_threshold)[0]
    candidates = candidates[np.lexsort((predicted_ids[candidates], true_ids[candidates], -ious[candidates]))]
    used_true: set[int] = set()
    used_predicted: set[int] = set()
    kept = []
    for index in candidates:
        true_id, predicted_id = int(true_ids[index]), int(predicted_ids[index])
        if true_id not in used_true and predicted_id not in used_predicted:
            used_true.add(true_id)
            used_predicted.add(predicted_id)
            kept.append(index)
    return np.sort(np.asarray(kept, int))


def match_instances(true_labels: Array, predicted_labels: Array, iou_threshold: float = 0.5) -> InstanceMatch:
    """Match predicted crystals to true ones at ``iou_threshold`` (>= 0.5), one to one."""
    pairs = pair_ious(true_labels, predicted_labels)
    matched_ious = pairs[2][_matched_indices(pairs, iou_threshold)]
    n_true = int(np.count_nonzero(np.unique(true_labels)))
    n_predicted = int(np.count_nonzero(np.unique(predicted_labels)))
    tp = len(matched_ious)
    precision = tp / n_predicted if n_predicted else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_true + n_predicted) if n_true + n_predicted else 0.0
    return InstanceMatch(iou_threshold, n_true, n_predicted, tp, n_predicted - tp, n_true - tp,
                         precision, recall, f1, float(matched_ious.mean()) if tp else 0.0)


def equivalent_diameters(labels: Array) -> Array:
    """Diameter of the disk of each label's area (1..N present), px."""
    areas = np.bincount(np.asarray(labels, np.int64).ravel())[1:]
    return np.sqrt(4 * areas[areas > 0] / np.pi)


def count_touching_edge(labels: Array) -> int:
    """How many labels touch the image's outermost rows or columns."""
    labels = np.asarray(labels)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return int(np.count_nonzero(np.unique(edge)))


def ks_statistic(sample_a: Array, sample_b: Array) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical
    distribution functions (0 same distribution, 1 disjoint); 1.0 when either sample is empty
    and the other is not."""
    a, b = np.sort(np.asarray(sample_a, float)), np.sort(np.asarray(sample_b, float))
    if a.size == 0 or b.size == 0:
        return 0.0 if a.size == b.size else 1.0
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / a.size - np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(gap)))


@dataclass(frozen=True)
class SegmentationScore:
    """A prediction scored against reference outlines: matching at IoU 0.5 (:class:`InstanceMatch`),
    the count error (predicted - reference, and relative to the reference count), the
    difference of the size distributions (KS statistic on equivalent diameters) and the crystals
    touching the image edge on each side."""

    match: InstanceMatch
    count_error: int
    relative_count_error: float
    size_ks_statistic: float
    n_true_touching_edge: int
    n_predicted_touching_edge: int

    def as_dict(self) -> dict[str, float]:
        return {**self.match.as_dict(), "count_error": self.count_error,
                "relative_count_error": self.relative_count_error, "size_ks_statistic": self.size_ks_statistic,
                "n_true_touching_edge": self.n_true_touching_edge,
                "n_predicted_touching_edge": self.n_predicted_touching_edge}


def score_segmentation(true_labels: Array, predicted_labels: Array, iou_threshold: float = 0.5) -> SegmentationScore:
    """Score ``predicted_labels`` against ``true_labels`` (int (Y, X), 0 background; label values
    need not be consecutive)."""
    true_labels = relabel_sequential(np.asarray(true_labels))[0]
    predicted_labels = relabel_sequential(np.asarray(predicted_labels))[0]
    match = match_instances(true_labels, predicted_labels, iou_threshold)
    count_error = match.n_predicted - match.n_true
    relative = count_error / match.n_true if match.n_true else float(match.n_predicted > 0)
    return SegmentationScore(match, count_error, relative,
                             ks_statistic(equivalent_diameters(true_labels), equivalent_diameters(predicted_labels)),
                             count_touching_edge(true_labels), count_touching_edge(predicted_labels))
