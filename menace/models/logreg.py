"""``logreg``: logistic regression (log-loss linear model) fitted by SGD.

scikit-learn's ``SGDClassifier(loss="log_loss")`` is logistic regression with
an L2 penalty; unlike ``LogisticRegression`` it has ``partial_fit``, so the
same model is fitted in full by :meth:`fit` (epochs until the loss settles)
and updated by one pass over each new batch (step ``eta0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from .tabular import PartialFitFamily


class LogisticRegressionFamily(PartialFitFamily):
    name = "logreg"
    description = "logistic regression (scikit-learn SGDClassifier, log loss, L2)"
    incremental = "partial_fit: one SGD pass over each new batch"

    def make_classifier(self, seed: int) -> SGDClassifier:
        # "adaptive": steps of eta0 until the loss stalls, then smaller; a
        # partial_fit pass uses eta0, so new batches move the model noticeably.
        # (The default "optimal" schedule diverged on small, collinear data.)
        # alpha 1e-2: with the order features (hundreds of sparse pair columns)
        # 1e-3 overfit; on bench/quality.py 1e-2 gave 0.985 unseen-pathway accuracy
        # on the order generator and 0.761 (best achievable 0.775) on the other.
        # eta0 2e-3: each new run moves the model a small step, so the online model
        # scores nearly as a full fit does (bench/learning_quality.py: test-then-train
        # accuracy within 0.03 of the holdout; 0.055 below it at 1e-2). A changed
        # workflow is caught by the drift monitor and retrained, not by a big step.
        # (Averaged SGD closed the gap too, but a model refit on a few hundred runs
        # then barely moved under updates: the average spans the fit's epochs.)
        return SGDClassifier(
            loss="log_loss", alpha=1e-2, learning_rate="adaptive", eta0=0.002,
            max_iter=1000, tol=1e-4, random_state=seed,
        )

    def predict_proba(self, estimator: Pipeline, X: Any) -> np.ndarray:
        """P(success) computed from the fitted scaler and weights: the same numbers as
        ``Pipeline.predict_proba``, without its per-call input checks (most of the cost
        of scoring a batch; the engine's feature rows are already checked)."""
        scaler, model = estimator.named_steps["scale"], estimator.named_steps["model"]
        if list(getattr(model, "classes_", ())) != [0, 1] or not hasattr(scaler, "scale_"):
            return super().predict_proba(estimator, X)
        # (X - mean) / scale @ coef, folded into one product: no batch-sized temporaries
        # (those cost 14 ms for 1,024 runs against 0.3 ms; the sums agree to 1e-12).
        weights = model.coef_[0] / scaler.scale_
        offset = model.intercept_[0] - float(scaler.mean_ @ weights)
        return expit(np.asarray(X, dtype=np.float64) @ weights + offset)

