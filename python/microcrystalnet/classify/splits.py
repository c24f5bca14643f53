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


#: what to say about too few groups: by image (the default) or one group per crystal
_TOO_FEW = {"image": ("source images", "Add images, or give patches the image they came from (file names "
                                       "'IMAGE__N.png')"),
            "crystal": ("labelled crystals", "Label more crystals")}


def _one_fold(labels: Array, groups: Array, fraction: float, seed: int, by: str = "image") -> tuple[Array, Array]:
    """(rest, held out): about ``fraction`` of the data held out, whole groups, stratified."""
    folds = max(2, int(round(1 / fraction)))
    distinct = len(np.unique(groups))
    if distinct < folds:
        what, fix = _TOO_FEW[by]
        raise SplitError(f"the data come from {distinct} {what}; holding out {fraction:.0%} by {by} needs "
                         f"at least {folds}. {fix}")
    if by == "crystal":
        # every folds-th crystal of a random order sorted by class: stratified, and unlike scikit-learn's
        # splitters it needs no class with `folds` members, which a few outlined crystals rarely give
        order = np.random.default_rng(seed).permutation(len(labels))
        order = order[np.argsort(labels[order], kind="stable")]
        held_out = np.zeros(len(labels), bool)
        held_out[order[::folds]] = True
        return np.flatnonzero(~held_out), np.flatnonzero(held_out)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest, held_out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return rest, held_out


def train_validation_test_split(labels: Array, groups: Array, validation_fraction: float = 0.1,
                                test_fraction: float = 0.1, seed: int = 0, by: str = "image") -> Split:
    """One split (the paper's 80/10/10 by default), grouped by source image, stratified by class.

    ``by="crystal"``: ``groups`` hold one value per crystal (a split of the crystals of one or a few
    images; its test scores are optimistic, as test crystals share their images with training)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    rest, test = _one_fold(labels, groups, test_fraction, seed, by)
    train, validation = _one_fold(labels[rest], groups[rest], validation_fraction / (1 - test_fraction), seed, by)
    return Split(np.sort(rest[train]), np.sort(rest[validation]), np.sort(test))


def cross_validation_splits(labels: Array, groups: Array, folds: int = 5, validation_fraction: float = 0.1,
                            seed: int = 0, by: str = "image") -> list[Split]:
    """k-fold cross-validation: each fold tests on one k-th of the images; the rest is split
    into training and validation as in :func:`train_validation_test_split`."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    distinct = len(np.unique(groups))
    if distinct < folds:
        raise SplitError(f"{folds}-fold cross-validation by {by} needs at least {folds} {_TOO_FEW[by][0]}, got "
                         f"{distinct}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = []
    for rest, test in splitter.split(np.zeros(len(labels)), labels, groups):
        train, validation = _one_fold(labels[rest], groups[rest], validation_fraction * folds / (folds - 1), seed,
                                      by)
        splits.append(Split(np.sort(rest[train]), np.sort(rest[validation]), np.sort(test)))
    return splits
