import numpy as np
import pytest

from microcrystalnet.metrics import iou_matrix, match_instances


def test_exact_counts_on_constructed_labels():
    truth = np.zeros((10, 10), np.int32)
    truth[0:4, 0:4] = 1   # 16 px
    truth[6:10, 6:10] = 2
    truth[0:2, 8:10] = 3  # missed
    predicted = np.zeros_like(truth)
    predicted[0:4, 0:3] = 1   # IoU 12/16 = 0.75 with truth 1
    predicted[6:10, 6:8] = 2  # IoU 8/16 = 0.5 with truth 2: matches at 0.5, not above
    predicted[5, 0:3] = 3     # false positive
    match = match_instances(truth, predicted, 0.5)
    assert (match.true_positives, match.false_positives, match.false_negatives) == (2, 1, 1)
    assert match.f1 == pytest.approx(2 * 2 / 6) and match.mean_matched_iou == pytest.approx(0.625)
    assert match_instances(truth, predicted, 0.6).true_positives == 1
    assert iou_matrix(truth, predicted)[1, 1] == pytest.approx(0.75)


def test_a_crystal_split_in_equal_halves_matches_one_half_only():
    """At IoU exactly 0.5 a crystal overlaps both of its halves that much: it counts once."""
    truth = np.zeros((6, 8), np.int32)
    truth[1:5, 0:8] = 1
    predicted = np.zeros_like(truth)
    predicted[1:5, 0:4] = 1
    predicted[1:5, 4:8] = 2
    match = match_instances(truth, predicted, 0.5)
    assert (match.true_positives, match.false_positives, match.false_negatives) == (1, 1, 0)
    assert (match.recall, match.precision, match.f1) == (1.0, 0.5, pytest.approx(2 / 3))


def test_perfect_and_empty():
    truth = np.zeros((5, 5), np.int32)
    truth[1:3, 1:3] = 1
    assert match_instances(truth, truth).f1 == 1.0
    assert match_instances(truth, np.zeros_like(truth)).recall == 0.0
    with pytest.raises(ValueError):
        match_instances(truth, truth, 0.3)


def test_score_segmentation_counts_and_size_distribution_by_hand():
    from microcrystalnet.metrics import ks_statistic, score_segmentation

    truth = np.zeros((10, 10), np.int32)
    truth[0:4, 0:4] = 5     # labels need not be consecutive
    truth[6:10, 6:10] = 9
    predicted = np.zeros_like(truth)
    predicted[0:4, 0:2] = 1  # IoU 8/16 = 0.5: a match
    predicted[6:10, 6:10] = 2  # IoU 1
    predicted[5, 0:2] = 3      # a false positive
    score = score_segmentation(truth, predicted)
    assert (score.match.true_positives, score.match.f1) == (2, pytest.approx(0.8))
    assert score.match.mean_matched_iou == pytest.approx(0.75)
    assert (score.count_error, score.relative_count_error) == (1, pytest.approx(0.5))
    # diameters: truth {4.51, 4.51}; found {3.19, 4.51, 1.60}: the CDFs differ most below 4.51, by 2/3
    assert score.size_ks_statistic == pytest.approx(2 / 3)
    assert ks_statistic([1, 2], []) == 1.0 and ks_statistic([1, 2], [2, 1]) == 0.0
    assert set(score.as_dict()) >= {"f1", "precision", "recall", "mean_matched_iou", "count_error", "size_ks_statistic"}
    # truth's second crystal reaches the last row and column; predicted 1 and 3 the first column too
    assert (score.n_true_touching_edge, score.n_predicted_touching_edge) == (2, 3)


def test_tens_of_thousands_of_crystals_on_each_side_are_matched_without_a_dense_table():
    """90,000 crystals of 3 x 3 px on each side: a dense IoU table would need 65 GB."""
    cells = np.arange(300 * 300).reshape(300, 300) + 1
    truth = np.kron(cells, np.ones((3, 3), np.int64))
    renumbered = np.random.default_rng(0).permutation(cells.size) + 1  # the same crystals, other labels
    predicted = renumbered[truth - 1]
    predicted[:3] = 0  # the first row of 300 crystals is missed
    match = match_instances(truth, predicted)
    assert (match.true_positives, match.false_positives, match.false_negatives) == (89_700, 0, 300)
    assert match.mean_matched_iou == 1.0
