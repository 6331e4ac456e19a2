"""``nn``: a small multi-layer perceptron (scikit-learn ``MLPClassifier``).

Full fits run Adam with early stopping on a 10 % validation split (at most
200 epochs; without early stopping on fewer than 100 runs, where that split
would be too small); incremental updates are one Adam pass (``partial_fit``)
over each new batch, continuing from the fitted weights and optimiser state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .tabular import PartialFitFamily

#: Fewest runs (and of each class, a tenth of this) for early stopping.
EARLY_STOPPING_MIN = 100


class NeuralNetworkFamily(PartialFitFamily):
    name = "nn"
    description = "multi-layer perceptron, one hidden layer of 64 ReLU units (scikit-learn)"
    incremental = "partial_fit: one Adam pass over each new batch"

    def make_classifier(self, seed: int) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1e-2, max_iter=200, early_stopping=True,
            random_state=seed,
        )

    def fit(self, estimator: Pipeline, X: Any, y: np.ndarray, progress: Any = None,
            cancel: Any = None) -> Pipeline:
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2)
        enough = len(y) >= EARLY_STOPPING_MIN and counts.min() >= EARLY_STOPPING_MIN // 10
        estimator.set_params(model__early_stopping=bool(enough))
        # Mini-batches of at most 200 rows: BLAS threads only contend (4x slower
        # measured on 2 busy cores), so the fit runs its matrix products on one.
        with threadpool_limits(1, user_api="blas"):
            return super().fit(estimator, X, y, progress, cancel)

    def ready_for_partial_fit(self, model: MLPClassifier) -> None:
        # partial_fit refuses early_stopping, and after an early-stopped fit the
        # training-loss baseline it compares against is unset.
        model.set_params(early_stopping=False)
        if getattr(model, "loss_curve_", None) and getattr(model, "best_loss_", 0.0) is None:
            model.best_loss_ = min(model.loss_curve_)
