"""``rf``: a random forest, updated by growing new trees on a replay window.

A forest has no ``partial_fit``. A full fit grows :data:`BASE_TREES` trees on
all the data. An incremental update keeps those and grows
:data:`TREES_PER_UPDATE` new trees on the engine's replay window (the newest
examples, the batch included, at most ``ReplayBuffer.capacity``); update trees
beyond :data:`MAX_UPDATE_TREES` retire oldest first. So recent data get up to a
third of the vote, the full history keeps the rest, and an update costs a few
small trees whatever the size of the database. The scaler stays as fitted
(trees are scale-free, and their thresholds must not move under them).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from ..progress import check_cancel, report
from .base import ReplayBuffer
from .tabular import TabularFamily

BASE_TREES = 100
TREES_PER_UPDATE = 10
MAX_UPDATE_TREES = 50
#: A full fit grows its trees this many at a time, checking for a cancel between
#: (the same forest as one fit: warm_start draws the same tree seeds).
FIT_CHUNK = 10


class RandomForestFamily(TabularFamily):
    name = "rf"
    needs_replay = True
    description = f"random forest, {BASE_TREES} trees (scikit-learn)"
    incremental = (
        f"replay window + warm refit: {TREES_PER_UPDATE} new trees per update on the newest "
        f"examples, at most {MAX_UPDATE_TREES} update trees kept"
    )

    def make_classifier(self, seed: int, n_trees: int = BASE_TREES) -> RandomForestClassifier:
        return RandomForestClassifier(n_estimators=n_trees, min_samples_leaf=2, random_state=seed)

    def fit(self, estimator: Pipeline, X: Any, y: np.ndarray, progress: Any = None, cancel: Any = None) -> Pipeline:
        """Grow the forest :data:`FIT_CHUNK` trees at a time: progress between, and a
        cancel stops it within one chunk (a forest's own fit cannot be interrupted)."""
        scaler, forest = estimator.named_steps["scale"], estimator.named_steps["model"]
        Xs = scaler.fit_transform(X)
        total = forest.n_estimators
        forest.set_params(warm_start=True)
        try:
            for grown in range(FIT_CHUNK, total + FIT_CHUNK, FIT_CHUNK):
                check_cancel(cancel)
                forest.set_params(n_estimators=min(grown, total))
                forest.fit(Xs, y)
                report(progress, min(grown, total) / total, f"grew {min(grown, total)} of {total} trees")
        finally:
            forest.set_params(warm_start=False, n_estimators=total)
        return estimator

    def partial_update(
        self, estimator: Pipeline | None, X: Any, y: np.ndarray, replay: ReplayBuffer, seed: int
    ) -> Pipeline | None:
        Xw, yw = replay.arrays("features")
        if len(np.unique(yw)) < 2:
            return None  # a forest needs both classes to learn anything
        if estimator is None:
            return self.fit(self.build(seed), Xw, yw)
        scaler = estimator.named_steps["scale"]
        forest = estimator.named_steps["model"]
        new_trees = self.make_classifier(seed + len(forest.estimators_), TREES_PER_UPDATE)
        new_trees.fit(scaler.transform(Xw), yw)
        base = forest.estimators_[:BASE_TREES]
        updates = (forest.estimators_[BASE_TREES:] + new_trees.estimators_)[-MAX_UPDATE_TREES:]
        grown = copy.copy(forest)  # shares the fitted trees; only the list is new
        grown.estimators_ = base + updates
        grown.n_estimators = len(grown.estimators_)
        return Pipeline([("scale", scaler), ("model", grown)])
