"""Seeded, stratified, shuffled splits and the two scores, in numpy only.

Written out here (rather than taken from scikit-learn) so the text-only
families can be measured where scikit-learn is not installed; the splits
match ``StratifiedKFold(shuffle=True)`` and a stratified ``train_test_split``
in spirit: every class is shuffled with the seed and dealt out in proportion.
"""

from __future__ import annotations

import math

import numpy as np


def _n_test(n: int, test_split: float) -> int:
    """Examples of a class of size ``n`` that go to the holdout (at least 1, not all)."""
    return min(max(1, int(round(n * test_split))), n - 1)


def check_splittable(y: np.ndarray, cv: int, test_split: float) -> None:
    """Raise ``ValueError`` saying what is missing when ``y`` is too small to score.

    Each class needs one holdout example and ``cv`` examples left for the folds.
    """
    successes = int(np.sum(y == 1))
    others = int(len(y) - successes)
    need = cv + 1
    while need - _n_test(need, test_split) < cv:
        need += 1
    if successes < need or others < need:
        raise ValueError(
            f"too little data to evaluate with cv={cv}, test_split={test_split}: need at least "
            f"{need} successful and {need} unsuccessful runs, have {successes} and {others}"
        )


def holdout_split(y: np.ndarray, test_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)``: each class shuffled, ``test_split`` of it held out.

    Every class keeps at least one example on each side.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = _n_test(len(idx), test_split)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` ``(train_idx, valid_idx)`` pairs; each class is shuffled and dealt evenly."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        for i, chunk in enumerate(np.array_split(idx, k)):
            parts[i].append(chunk)
    folds = []
    everything = np.arange(len(y))
    for i in range(k):
        valid = np.sort(np.concatenate(parts[i]))
        folds.append((np.setdiff1d(everything, valid, assume_unique=True), valid))
    return folds


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Share of runs where ``proba >= 0.5`` matches the label, in [0, 1]."""
    if len(y_true) == 0:
        raise ValueError("accuracy of no examples")
    return float(np.mean((np.asarray(proba) >= 0.5).astype(int) == np.asarray(y_true)))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); 0.5 with one class."""
    y_true = np.asarray(y_true)
    n_pos = int(np.sum(y_true == 1))
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    _, inverse, counts = np.unique(np.asarray(proba, dtype=float), return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average 1-based rank of each tie group
    auc = (ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return float(min(max(auc, 0.0), 1.0)) if math.isfinite(auc) else 0.5
