"""WorkflowScorer: scores each new workflow plan with every trained engine.

A ``workflows:new`` plan has not run yet, so it is no training example.
The scorer subscribes to it, and on its own thread (``menace-workflow-scorer``;
a prediction with MiniLM takes tens of milliseconds, too slow for a bus
handler) asks each trained engine for ``predict_success``, with the
statistics of the pathway that has the same action text (zeros for a new
sequence), and publishes ``learning:scored``. Engines predict from any
thread, so this never competes with the training worker for a model.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import events
from .errors import FieldError
from .learning_stats import LearningStats
from .protocols import EventBus, Learner, PathwayStore

logger = logging.getLogger(__name__)

#: Plans waiting beyond this are refused (counted as failed).
MAX_WAITING = 10_000

ReportError = Callable[[str, BaseException, str, "int | None"], None]


class WorkflowScorer:
    """See the module doc. ``report_error(engine, exc, source, job_id)`` publishes a failure."""

    THREAD_NAME = "menace-workflow-scorer"

    def __init__(
        self,
        bus: EventBus,
        engines: Mapping[str, Learner],
        store: PathwayStore | None,
        stats: LearningStats,
        report_error: ReportError,
    ) -> None:
        self.bus = bus
        self.engines = engines
        self.store = store
        self.stats = stats
        self.report_error = report_error
        self._cond = threading.Condition()
        self._waiting: deque[dict] = deque()
        self._busy = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> WorkflowScorer:
        self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()
        self.bus.subscribe(events.WORKFLOWS_NEW, self._on_workflow)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, score what is waiting while ``timeout`` allows, join the thread."""
        self.bus.unsubscribe(events.WORKFLOWS_NEW, self._on_workflow)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("%s still busy after %.1f s", self.THREAD_NAME, timeout)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every plan received has been scored; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._waiting or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.5 if remaining is None else min(remaining, 0.5))
            return True

    # -- the publisher's thread: check and hand over ---------------------------------------------
    def _on_workflow(self, topic: str, payload: Any) -> None:
        try:
            events.validate_input(topic, payload)
        except FieldError as exc:
            logger.warning("skipping malformed %s event: %s", topic, exc)
            self.stats.note_failed(topic)
            return
        with self._cond:
            if self._stopping or len(self._waiting) >= MAX_WAITING:
                full = not self._stopping
            else:
                full = None
                self._waiting.append(payload)
                self._cond.notify_all()
        if full is None:
            self.stats.note_accepted(topic)
        elif full:
            logger.warning("workflow scorer: %d plans waiting, refusing more", MAX_WAITING)
            self.stats.note_failed(topic)

    # -- the scorer's thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait(0.5)
                if not self._waiting:
                    return
                payload = self._waiting.popleft()
                self._busy += 1
            try:
                self.score(payload)
            except Exception:  # the thread must survive anything an engine does
                logger.exception("workflow scorer: unexpected error")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _pathway_stats(self, actions: str, workflow_id: Any) -> tuple[int | None, tuple[float, float, float, float]]:
        """The id and ``(frequency, exec_time, roi, myelination)`` of the pathway with these actions."""
        if self.store is None:
            return None, (0.0, 0.0, 0.0, 0.0)
        try:
            known = self.store.find(actions)
        except Exception as exc:  # a lookup failure only loses the statistics
            logger.debug("workflow %s: pathway lookup failed: %s", workflow_id, exc)
            known = None
        if known is None:
            return None, (0.0, 0.0, 0.0, 0.0)
        return known.id, (float(known.frequency), known.avg_exec_time, known.avg_roi, known.myelination_score)

    def score(self, payload: dict) -> None:
        """Score one plan with every trained engine and publish the results."""
        actions = payload["actions"]
        pathway_id, numbers = self._pathway_stats(actions, payload["workflow_id"])
        for name, engine in self.engines.items():
            if not engine.is_trained:
                continue
            try:
                probability = float(engine.predict_success(*numbers, actions))
            except Exception as exc:
                logger.warning("%s: could not score workflow %s: %s", name, payload["workflow_id"], exc)
                self.stats.note_failed(events.WORKFLOWS_NEW)
                self.report_error(name, exc, events.WORKFLOWS_NEW, None)
                continue
            self.stats.note_scored()
            try:
                self.bus.publish(
                    events.LEARNING_SCORED,
                    events.TOPICS[events.LEARNING_SCORED].build(
                        engine=name, model=engine.model_name, workflow_id=payload["workflow_id"],
                        actions=actions, pathway_id=pathway_id,
                        success_probability=probability if math.isfinite(probability) else 0.0,
                        ts=time.time(),
                    ),
                )
            except Exception:  # a failing monitor must not stop scoring
                logger.exception("could not publish %s", events.LEARNING_SCORED)
