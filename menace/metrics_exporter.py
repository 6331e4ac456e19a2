"""Prometheus metrics: the definitions live here, in one place.

``learning_cv_score`` and ``learning_holdout_score`` (names as in the spec)
are set by every ``LearningEngine.evaluate()``.
"""

from __future__ import annotations

from prometheus_client import Gauge

learning_cv_score = Gauge("learning_cv_score", "Cross-validation score of the last evaluation (0..1)")
learning_holdout_score = Gauge("learning_holdout_score", "Holdout score of the last evaluation (0..1)")
