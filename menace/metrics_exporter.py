"""Prometheus metrics: the definitions live here, in one place.

``learning_cv_score`` and ``learning_holdout_score`` are set by every
``LearningEngine.evaluate()``; the coordinator and the bus feed the others.
The HTTP exposition is :func:`start_metrics_server`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

learning_cv_score = Gauge(
    "learning_cv_score", "Cross-validation score of the last evaluation (0..1)", ["engine"]
)
learning_holdout_score = Gauge(
    "learning_holdout_score", "Holdout score of the last evaluation (0..1)", ["engine"]
)
