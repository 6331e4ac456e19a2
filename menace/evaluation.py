"""Measuring a model family on data: cross-validation, a holdout, and choosing among families.

Every score comes from fresh estimators, never the live model: a seeded,
stratified ``test_split`` share of the examples is held out; the rest is cut
into ``cv`` stratified, shuffled folds (``cv_score`` is the mean accuracy over
the folds, ``cv_std`` their spread); then a model fitted on the whole rest is
scored on the holdout it never saw (``holdout_score``, ``holdout_auc``).

Where scikit-learn is installed the splits and scores are scikit-learn's
(``StratifiedKFold``, ``train_test_split``, ``accuracy_score``,
``roc_auc_score``). The text models may run without scikit-learn; for them
:mod:`menace.models.selection` keeps a minimal numpy version of the same
(tested against scikit-learn's results).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .models import ModelFamily
from .models import selection as fallback
from .progress import Progress, check_cancel, report, within
from .validation import check_number, check_positive_int

check_splittable = fallback.check_splittable


def _sklearn() -> Any | None:
    try:
        from sklearn import metrics, model_selection
    except ImportError:  # the text-only install: numpy fallback
        return None
    return model_selection, metrics


def holdout_split(y: np.ndarray, test_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)``, stratified and shuffled with ``seed``."""
    sk = _sklearn()
    if sk is None:
        return fallback.holdout_split(y, test_split, seed)
    model_selection, _ = sk
    train, test = model_selection.train_test_split(
        np.arange(len(y)), test_size=test_split, stratify=y, random_state=seed, shuffle=True
    )
    return np.sort(train), np.sort(test)


def folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified, shuffled ``(fit_idx, valid_idx)`` pairs."""
    sk = _sklearn()
    if sk is None:
        return fallback.stratified_folds(y, k, seed)
    model_selection, _ = sk
    splitter = model_selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Share of examples where ``proba >= 0.5`` matches the label, in [0, 1]."""
    sk = _sklearn()
    if sk is None:
        return fallback.accuracy(y_true, proba)
    _, metrics = sk
    return float(metrics.accuracy_score(y_true, (np.asarray(proba) >= 0.5).astype(int)))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve; 0.5 when only one class is present."""
    sk = _sklearn()
    if sk is None or len(np.unique(y_true)) < 2:
        return fallback.roc_auc(y_true, proba)
    _, metrics = sk
    return float(metrics.roc_auc_score(y_true, np.asarray(proba, dtype=float)))


def check_eval_args(cv: Any, test_split: Any) -> tuple[int, float]:
    """``cv`` an integer >= 2 and ``test_split`` in (0, 1), else ``ValueError`` naming it."""
    cv = check_positive_int("cv", cv, minimum=2)
    test_split = check_number("test_split", test_split, minimum=0.0, maximum=1.0)
    if not 0.0 < test_split < 1.0:
        raise ValueError(f"test_split must be between 0 and 1 (exclusive), got {test_split}")
    return cv, test_split


def score(
    family: ModelFamily,
    X: Any,
    y: np.ndarray,
    *,
    cv: int,
    test_split: float,
    seed: int,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    deadline: float | None = None,
) -> dict[str, Any]:
    """Score fresh copies of ``family`` on ``(X, y)`` (see the module doc).

    Raises ``TimeoutError`` once ``deadline`` (``time.monotonic()``) has
    passed between folds, :class:`~menace.errors.TrainingCancelled` on ``cancel``.
    """
    train_idx, test_idx = holdout_split(y, test_split, seed)
    X_train, y_train = X[train_idx], y[train_idx]
    left = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=2)
    if left.min() < cv:
        raise ValueError(
            f"too little data to evaluate with cv={cv}, test_split={test_split}: after the holdout, "
            f"{int(left[1])} successful and {int(left[0])} unsuccessful runs are left for {cv} folds"
        )
    steps = cv + 1
    lo, hi = span

    def at(i: float) -> float:
        return lo + (hi - lo) * i / steps

    fold_scores = []
    for i, (fit_idx, valid_idx) in enumerate(folds(y_train, cv, seed)):
        check_cancel(cancel)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("time budget spent")
        report(progress, at(i), f"{family.name}: fold {i + 1} of {cv}")
        estimator = family.fit(
            family.build(seed), X_train[fit_idx], y_train[fit_idx], within(progress, at(i), at(i + 1)), cancel
        )
        fold_scores.append(accuracy(y_train[valid_idx], family.predict_proba(estimator, X_train[valid_idx])))
    check_cancel(cancel)
    report(progress, at(cv), f"{family.name}: holdout")
    estimator = family.fit(family.build(seed), X_train, y_train, within(progress, at(cv), hi), cancel)
    proba = family.predict_proba(estimator, X[test_idx])
    return {
        "cv_score": float(np.mean(fold_scores)),
        "cv_scores": [float(s) for s in fold_scores],
        "cv_std": float(np.std(fold_scores)),
        "holdout_score": accuracy(y[test_idx], proba),
        "holdout_auc": roc_auc(y[test_idx], proba),
        "n_train": int(len(train_idx)),
        "n_holdout": int(len(test_idx)),
    }


def compare(
    families: Sequence[ModelFamily],
    inputs_for: Callable[[ModelFamily], Any],
    y: np.ndarray,
    *,
    cv: int,
    test_split: float,
    seed: int,
    time_budget: float | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[ModelFamily, dict[str, dict[str, Any]]]:
    """Score each family like :func:`score`; return the best (highest ``cv_score``) and every result.

    The earlier family wins a tie. ``time_budget`` (seconds) bounds the
    scoring: once spent, the remaining families are recorded as
    ``{"skipped": "time budget spent"}``; the first family is always scored.
    """
    deadline = None if time_budget is None else time.monotonic() + time_budget
    results: dict[str, dict[str, Any]] = {}
    share = (span[1] - span[0]) / len(families)
    for i, family in enumerate(families):
        part = (span[0] + i * share, span[0] + (i + 1) * share)
        if i > 0 and deadline is not None and time.monotonic() > deadline:
            results[family.name] = {"skipped": "time budget spent"}
            continue
        try:
            results[family.name] = score(
                family, inputs_for(family), y, cv=cv, test_split=test_split, seed=seed,
                progress=progress, cancel=cancel, span=part, deadline=deadline if i > 0 else None,
            )
        except TimeoutError:
            results[family.name] = {"skipped": "time budget spent"}
    scored = [f for f in families if "cv_score" in results[f.name]]
    best = max(scored, key=lambda f: results[f.name]["cv_score"])  # max keeps the first tie
    return best, results
