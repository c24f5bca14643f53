"""Train/validation/test splits that keep every crystal of one image on one side.

Crystals of one SEM image share its contrast, noise and sample: a test crystal whose neighbours
were in training measures memory, not generalisation. Splits are therefore grouped by source
image and, as far as the groups allow, stratified by class (scikit-learn's
``StratifiedGroupKFold``). Fractions are met approximately, in whole images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

Array = np.ndarray


class SplitError(ValueError):
    """The data cannot be split as asked (too few source images)."""


@dataclass(frozen=True)
class Split:
    """Indices into a data set."""

    train: Array
    validation: Array
    test: Array


def _one_fold(labels: Array, groups: Array, fraction: float, seed: int) -> tuple[Array, Array]:
    """(rest, held out): about ``fraction`` of the data held out, whole groups, stratified."""
    folds = max(2, int(round(1 / fraction)))
    distinct = len(np.unique(groups))
    if distinct < folds:
        raise SplitError(f"the data come from {distinct} source images; holding out {fraction:.0%} by image needs "
                         f"at least {folds}. Add images, or give patches the image they came from "
                         "(file names 'IMAGE__N.png')")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest, held_out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return rest, held_out


def train_validation_test_split(labels: Array, groups: Array, validation_fraction: float = 0.1,
                                test_fraction: float = 0.1, seed: int = 0) -> Split:
    """One split (the paper's 80/10/10 by default), grouped by source image, stratified by class."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    rest, test = _one_fold(labels, groups, test_fraction, seed)
    train, validation = _one_fold(labels[rest], groups[rest], validation_fraction / (1 - test_fraction), seed)
    return Split(np.sort(rest[train]), np.sort(rest[validation]), np.sort(test))


def cross_validation_splits(labels: Array, groups: Array, folds: int = 5, validation_fraction: float = 0.1,
                            seed: int = 0) -> list[Split]:
    """k-fold cross-validation: each fold tests on one k-th of the images; the rest is split
    into training and validation as in :func:`train_validation_test_split`."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    distinct = len(np.unique(groups))
    if distinct < folds:
        raise SplitError(f"{folds}-fold cross-validation by image needs at least {folds} source images, got {distinct}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = []
    for rest, test in splitter.split(np.zeros(len(labels)), labels, groups):
        train, validation = _one_fold(labels[rest], groups[rest], validation_fraction * folds / (folds - 1), seed)
        splits.append(Split(np.sort(rest[train]), np.sort(rest[validation]), np.sort(test)))
    return splits
