"""JobRunner: runs manual jobs and evaluations on the training worker, and announces them.

Called only from the coordinator's worker (the thread that owns the
engines). A job reports progress as ``learning:progress`` (at most every
:data:`PROGRESS_INTERVAL` seconds, plus its start and end) and ends ``done``
(``learning:trained`` / ``learning:evaluated``), ``failed``
(``learning:error``) or ``cancelled`` (``learning:cancelled``). An
evaluation, manual or periodic, publishes ``learning:evaluated``; the engine
itself records the scores (history and gauges).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import events
from .errors import TrainingCancelled
from .jobs import Job, JobKind, JobState
from .learning_stats import LearningStats
from .progress import Progress
from .protocols import Learner

logger = logging.getLogger(__name__)

#: Least time between two ``learning:progress`` events of one job, seconds.
PROGRESS_INTERVAL = 0.1
#: Models ``request_auto_train(candidates=None)`` compares (the fast, tabular ones).
DEFAULT_AUTO_CANDIDATES = ("logreg", "nn", "rf")

Publish = Callable[[str, dict], None]


class JobRunner:
    """See the module doc. ``publish(topic, payload)`` never raises."""

    def __init__(self, engines: Mapping[str, Learner], stats: LearningStats, publish: Publish,
                 on_model_changed: Callable[[str], None]) -> None:
        self.engines = engines
        self.stats = stats
        self.publish = publish
        self.on_model_changed = on_model_changed

    # -- evaluation (manual or periodic) -------------------------------------------------------
    def evaluate(
        self, name: str, cv: int, test_split: float, job_id: int | None, trigger: str,
        progress: Progress | None = None, cancel: threading.Event | None = None,
        max_examples: int | None = None,
    ) -> dict:
        engine = self.engines[name]
        start = time.perf_counter()
        options = {} if max_examples is None else {"max_examples": max_examples}
        scores = engine.evaluate(cv=cv, test_split=test_split, progress=progress, cancel=cancel, **options)
        self.stats.note_evaluation(name)
        payload = {
            "engine": name,
            "model": str(scores.get("model") or engine.model_name),
            "cv_score": _score(scores.get("cv_score")),
            "holdout_score": _score(scores.get("holdout_score")),
            "n_examples": int(scores.get("n_examples") or 0),
            "ts": float(scores.get("ts") or time.time()),
            "duration_s": time.perf_counter() - start,
            "trigger": trigger,
            "job_id": job_id,
        }
        for key in ("holdout_auc", "cv_std"):
            if isinstance(scores.get(key), int | float) and math.isfinite(scores[key]):
                payload[key] = float(scores[key])
        self.publish(events.LEARNING_EVALUATED, payload)
        return scores

    # -- manual jobs -----------------------------------------------------------------------------
    def run(self, job: Job) -> None:
        """Run ``job`` to its end (done, failed or cancelled); never raises."""
        job.started = time.time()
        progress = self._progress(job)
        try:
            if job.cancel_event.is_set():
                raise TrainingCancelled(f"job {job.id} cancelled before it started")
            progress(0.0, f"{job.kind} started")
            job.result = self._dispatch(job, progress)
        except TrainingCancelled:
            job.finished = time.time()
            self.cancelled(job)
            return
        except Exception as exc:
            logger.warning("job %d (%s on %s) failed: %s", job.id, job.kind, job.engine, exc)
            if not isinstance(exc, ValueError):
                logger.debug("job %d traceback", job.id, exc_info=True)
            job.state, job.error = JobState.FAILED, str(exc)
            self.report_error(job.engine, exc, str(job.kind), job.id)
        else:
            job.state = JobState.DONE
            progress(1.0, f"{job.kind} finished")
        job.finished = time.time()
        job.done_event.set()

    def _dispatch(self, job: Job, progress: Progress) -> Any:
        if job.kind is JobKind.TRAIN:
            return self._train(job, progress)
        if job.kind is JobKind.EVALUATE:
            return self.evaluate(
                job.engine, job.params["cv"], job.params["test_split"], job.id, "manual",
                progress=progress, cancel=job.cancel_event,
            )
        return self._auto_train(job, progress)

    def _progress(self, job: Job) -> Progress:
        last = [0.0]

        def progress(fraction: float, message: str = "") -> None:
            try:
                fraction = min(1.0, max(0.0, float(fraction)))
            except (TypeError, ValueError):
                return
            now = time.monotonic()
            if 0.0 < fraction < 1.0 and now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            job.fraction, job.message = fraction if math.isfinite(fraction) else 0.0, str(message)[:500]
            self.publish(
                events.LEARNING_PROGRESS,
                {"job_id": job.id, "kind": str(job.kind), "engine": job.engine, "fraction": job.fraction,
                 "message": job.message, "ts": time.time()},
            )

        return progress

    def _train(self, job: Job, progress: Progress) -> bool:
        engine = self.engines[job.engine]
        start = time.perf_counter()
        recent = job.params.get("recent")
        options = {} if recent is None else {"recent": recent}
        if not engine.train(progress=progress, cancel=job.cancel_event, **options):
            raise ValueError("training did not run: not enough labelled runs with both outcomes yet")
        duration = time.perf_counter() - start
        self.stats.note_training(job.engine, "full", duration)
        self.on_model_changed(job.engine)
        payload = {
            "engine": job.engine, "model": engine.model_name, "mode": "full", "examples": int(engine.n_seen),
            "duration_s": duration, "ts": time.time(), "job_id": job.id,
            "learned_through": engine.newest_learned_run_id(),
        }
        if job.params.get("reason"):
            payload["reason"] = job.params["reason"]
        self.publish(events.LEARNING_TRAINED, payload)
        return True

    def _auto_train(self, job: Job, progress: Progress) -> str:
        engine = self.engines[job.engine]
        start = time.perf_counter()
        candidates = job.params["candidates"] or list(DEFAULT_AUTO_CANDIDATES)
        best = engine.auto_train(
            candidates, time_budget=job.params["time_budget"], progress=progress, cancel=job.cancel_event
        )
        duration = time.perf_counter() - start
        self.stats.note_training(job.engine, "auto", duration)
        self.on_model_changed(job.engine)
        report = engine.last_auto_train or {}
        scores = {
            str(name): _score(result["cv_score"])
            for name, result in (report.get("candidates") or {}).items()
            if isinstance(result, Mapping) and "cv_score" in result
        }
        self.publish(events.LEARNING_TRAINED, {
            "engine": job.engine, "model": engine.model_name, "mode": "auto", "examples": int(engine.n_seen),
            "duration_s": duration, "ts": time.time(), "job_id": job.id, "best": str(best), "scores": scores,
            "learned_through": engine.newest_learned_run_id(),
        })
        return str(best)

    # -- endings ---------------------------------------------------------------------------------
    def cancelled(self, job: Job) -> None:
        """Mark ``job`` cancelled, announce it, then wake whoever waits on it."""
        job.state = JobState.CANCELLED
        job.finished = job.finished or time.time()
        logger.info("job %d (%s on %s) cancelled", job.id, job.kind, job.engine)
        self.publish(
            events.LEARNING_CANCELLED,
            {"job_id": job.id, "kind": str(job.kind), "engine": job.engine, "ts": time.time()},
        )
        job.done_event.set()  # after the event: whoever waits on the job also sees its event

    def report_error(self, engine: str, exc: BaseException, source: str, job_id: int | None, **extra: Any) -> None:
        """Count a failure of ``engine`` and publish ``learning:error``."""
        self.stats.note_error(engine)
        payload = {
            "engine": engine,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "source": source,
            "ts": time.time(),
            "job_id": job_id,
        }
        payload.update(extra)
        self.publish(events.LEARNING_ERROR, payload)


def _score(value: Any) -> float:
    """A score as a finite float in [0, 1] (a missing or NaN score becomes 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, number)) if math.isfinite(number) else 0.0
