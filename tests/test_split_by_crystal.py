"""Splits of the crystals of one or a few images, one crystal at a time (train --split-by crystal)."""

from __future__ import annotations

import numpy as np
import pytest

from microcrystalnet.classify.splits import SplitError, cross_validation_splits, train_validation_test_split


def test_a_split_by_crystal_holds_out_a_tenth_of_every_class_and_repeats():
    labels = np.array([0] * 7 + [1] * 8 + [2] * 8 + [3] * 7)  # 30 crystals of one image, no class with 10
    crystals = np.arange(len(labels))
    split = train_validation_test_split(labels, crystals, seed=0, by="crystal")
    parts = [set(split.train), set(split.validation), set(split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(parts[0] | parts[1] | parts[2]) == list(range(len(labels)))
    assert len(split.test) == 3 and len(split.validation) == 3
    assert len(set(labels[split.test])) == 3  # spread over the classes, not drawn from one
    assert set(labels[split.train]) == {0, 1, 2, 3}
    again = train_validation_test_split(labels, crystals, seed=0, by="crystal")
    assert np.array_equal(again.test, split.test) and np.array_equal(again.validation, split.validation)
    assert not np.array_equal(train_validation_test_split(labels, crystals, seed=1, by="crystal").test, split.test)


def test_too_few_crystals_say_how_many_are_needed():
    with pytest.raises(SplitError, match="from 6 labelled crystals; holding out 10% by crystal needs at least 10. "
                                         "Label more crystals"):
        train_validation_test_split(np.arange(6) % 4, np.arange(6), by="crystal")
    with pytest.raises(SplitError, match="5-fold cross-validation by crystal needs at least 5 labelled crystals, "
                                         "got 4"):
        cross_validation_splits(np.arange(4) % 4, np.arange(4), 5, by="crystal")
