"""LearningStats: what a coordinator has done, counted once for its own snapshot and for Prometheus.

Each ``note_*`` method updates the coordinator's counters (read with
:meth:`snapshot`, ``SelfLearningCoordinator.stats()``) and the matching
metric of its :class:`~menace.metrics_exporter.LearningMetrics`, so the two
can never disagree. Thread-safe: the publisher's threads note events, the
worker notes trainings.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from .metrics_exporter import LearningMetrics


class LearningStats:
    """Counters of one coordinator (see the module doc)."""

    def __init__(self, metrics: LearningMetrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._handled: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._duplicates = 0
        self._examples: Counter[str] = Counter()
        self._runs: Counter[tuple[str, str]] = Counter()
        self._durations: Counter[tuple[str, str]] = Counter()
        self._evaluations: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._embedded = 0
        self._scored = 0
        self._last_training: dict[str, float] = {}

    def note_accepted(self, topic: str, n: int = 1) -> None:
        with self._lock:
            self._handled[topic] += n
        self.metrics.observe_event(topic, True, n)

    def note_failed(self, topic: str, n: int = 1) -> None:
        with self._lock:
            self._failed[topic] += n
        self.metrics.observe_event(topic, False, n)

    def note_duplicate(self) -> None:
        with self._lock:
            self._duplicates += 1

    def note_training(self, engine: str, mode: str, duration: float, examples: int = 0) -> None:
        now = time.time()
        with self._lock:
            self._runs[(engine, mode)] += 1
            self._durations[(engine, mode)] += duration
            self._examples[engine] += examples
            self._last_training[engine] = now
        self.metrics.observe_training(engine, mode, duration, examples, now)

    def note_evaluation(self, engine: str) -> None:
        with self._lock:
            self._evaluations[engine] += 1

    def note_error(self, engine: str) -> None:
        with self._lock:
            self._errors[engine] += 1
        self.metrics.observe_error(engine)

    def note_embedded(self, n: int) -> None:
        with self._lock:
            self._embedded += n

    def note_scored(self) -> None:
        with self._lock:
            self._scored += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "handled": dict(self._handled),
                "failed": dict(self._failed),
                "duplicates": self._duplicates,
                "examples": dict(self._examples),
                "training_runs": {f"{e}/{m}": n for (e, m), n in self._runs.items()},
                "training_seconds": {f"{e}/{m}": s for (e, m), s in self._durations.items()},
                "evaluations": dict(self._evaluations),
                "errors": dict(self._errors),
                "embedded_texts": self._embedded,
                "workflows_scored": self._scored,
                "last_training": dict(self._last_training),
            }
