"""SelfImprovementEngine: one call retrains on the latest data and measures the result.

Each :meth:`SelfImprovementEngine.run_cycle` runs ``train()`` on every run now
in the database, then ``evaluate()``, and returns a :class:`CycleReport`. Too
little data is a normal outcome of a cycle (reported, not raised); the reports
of this engine's cycles are kept in :attr:`SelfImprovementEngine.reports`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .validation import check_number, check_positive_int

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did.

    ``trained``: the model was refitted on all current runs. ``cv_score`` and
    ``holdout_score`` (0..1) are ``None`` when the cycle did not evaluate
    (``note`` says why). ``duration_s`` in seconds; ``ts`` seconds since the epoch.
    """

    cycle: int
    model: str | None
    trained: bool
    n_examples: int
    cv_score: float | None
    holdout_score: float | None
    duration_s: float
    ts: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SelfImprovementEngine:
    """Retrains and evaluates a :class:`~menace.learning_engine.LearningEngine` per cycle.

    Args:
        learning_engine: the engine to improve; without one a cycle does nothing
            and says so.
        cv, test_split: passed to ``evaluate()``.
        evaluate: set False to only retrain.
    """

    def __init__(
        self,
        learning_engine: Any = None,
        *,
        cv: int = 5,
        test_split: float = 0.2,
        evaluate: bool = True,
    ) -> None:
        self.learning_engine = learning_engine
        self.cv = check_positive_int("cv", cv, minimum=2)
        self.test_split = check_number("test_split", test_split, minimum=0.0, maximum=1.0)
        if not 0.0 < self.test_split < 1.0:
            raise ValueError(f"test_split must be between 0 and 1 (exclusive), got {test_split}")
        self.evaluate = bool(evaluate)
        #: Reports of every cycle run so far, oldest first.
        self.reports: list[CycleReport] = []
        self._lock = threading.Lock()

    def run_cycle(self, progress=None, cancel: threading.Event | None = None) -> CycleReport:
        """Retrain on the latest data, evaluate, and report.

        ``progress(fraction, message)`` and ``cancel`` are handed to the engine
        (a cancelled cycle raises ``TrainingCancelled``, model unchanged).
        """
        with self._lock:
            started = time.perf_counter()
            cycle = len(self.reports) + 1
            engine = self.learning_engine
            if engine is None:
                report = CycleReport(cycle, None, False, 0, None, None, 0.0, time.time(),
                                     "no learning engine: nothing to improve")
                self.reports.append(report)
                return report
            trained = engine.train(progress=progress, cancel=cancel)
            cv_score = holdout = None
            n_examples = int(getattr(engine, "n_seen", 0)) if trained else 0
            note = "" if trained else "not enough data to train (need runs of both outcomes)"
            if self.evaluate and trained:
                try:
                    result = engine.evaluate(cv=self.cv, test_split=self.test_split)
                except ValueError as exc:  # too little data to split: a normal early state
                    note = f"not evaluated: {exc}"
                else:
                    cv_score, holdout = result["cv_score"], result["holdout_score"]
                    n_examples = int(result["n_examples"])
            report = CycleReport(
                cycle=cycle,
                model=engine.model_name,
                trained=trained,
                n_examples=n_examples,
                cv_score=cv_score,
                holdout_score=holdout,
                duration_s=time.perf_counter() - started,
                ts=time.time(),
                note=note,
            )
            self.reports.append(report)
            logger.info("self-improvement cycle %d: %s", cycle, report)
            return report
