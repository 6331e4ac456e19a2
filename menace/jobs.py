"""Manual learning jobs: what can be asked for, the states a job goes through, its record.

A job is a full ``train``, an ``evaluate`` or an ``auto_train`` of one engine,
queued on the coordinator's worker (the thread that owns the engines) with the
incremental updates, so nothing trains a model from two threads. Its state
moves from ``queued`` to ``running`` to ``done``, ``failed`` or
``cancelled``. :class:`JobInfo` is the snapshot a client sees (JSON-able,
no threading objects), in-process or over the API.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import FieldError
from .validation import check_positive_int


class JobKind(StrEnum):
    """What a job does to its engine."""

    TRAIN = "train"
    EVALUATE = "evaluate"
    AUTO_TRAIN = "auto_train"

    @classmethod
    def coerce(cls, value: Any) -> JobKind:
        """The kind named ``value`` (``"train"``, ``"evaluate"``, ``"auto_train"``), else ``ValueError``."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(k.value for k in cls)
            raise FieldError("kind", f"kind must be one of {valid}, got {value!r:.60}") from None


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job.

    ``fraction`` (0..1) and ``message`` are its last progress report;
    ``result`` what the engine returned (True for train, the scores dict for
    evaluate, the best model name for auto_train); ``error`` the message of a
    failure. Times are seconds since the epoch.
    """

    id: int
    kind: str
    engine: str
    state: str
    params: dict[str, Any]
    fraction: float
    message: str
    result: Any
    error: str | None
    submitted: float
    started: float | None
    finished: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "engine": self.engine, "state": self.state,
            "params": dict(self.params), "fraction": self.fraction, "message": self.message,
            "result": self.result, "error": self.error, "submitted": self.submitted,
            "started": self.started, "finished": self.finished,
        }


@dataclass
class Job:
    """A manual job as the coordinator keeps it (see the module doc).

    Only the coordinator's worker changes a job; anyone may read it, wait for
    it (:meth:`wait`) or take a :meth:`info` snapshot.
    """

    id: int
    kind: JobKind
    engine: str
    params: dict[str, Any]
    submitted: float = field(default_factory=time.time)
    state: JobState = JobState.QUEUED
    result: Any = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    fraction: float = 0.0
    message: str = ""
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    done_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished_ok(self) -> bool:
        return self.state == JobState.DONE

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended; False if ``timeout`` seconds passed first."""
        return self.done_event.wait(timeout)

    def info(self) -> JobInfo:
        return JobInfo(
            id=self.id, kind=str(self.kind), engine=self.engine, state=str(self.state),
            params=dict(self.params), fraction=self.fraction, message=self.message,
            result=self.result, error=self.error, submitted=self.submitted,
            started=self.started, finished=self.finished,
        )


def job_params(kind: JobKind | str, **options: Any) -> dict[str, Any]:
    """The checked parameters of a job of ``kind`` (``FieldError`` naming a bad or unknown one).

    ``train``: ``recent`` (fit on the newest that many runs; default all).
    ``evaluate``: ``cv`` (folds, >= 2, default 5), ``test_split`` (0..1, default 0.2).
    ``auto_train``: ``candidates`` (model names; default the fast tabular ones),
    ``time_budget`` (seconds; default none).
    """
    kind = JobKind.coerce(kind)
    allowed = _OPTIONS[kind]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise FieldError(unknown[0], f"unknown option(s) {', '.join(unknown)} for {kind}; valid: {', '.join(allowed)}")
    return _CHECKS[kind](**options)


def _train_params(recent: Any = None) -> dict[str, Any]:
    if recent is None:
        return {}
    return {"recent": check_positive_int("recent", recent, minimum=2)}


def _evaluate_params(cv: Any = 5, test_split: Any = 0.2) -> dict[str, Any]:
    check_positive_int("cv", cv, minimum=2)
    if isinstance(test_split, bool) or not isinstance(test_split, int | float) or not 0 < test_split < 1:
        raise FieldError("test_split", f"test_split must be between 0 and 1, got {test_split!r}")
    return {"cv": cv, "test_split": float(test_split)}


def _auto_train_params(candidates: Any = None, time_budget: Any = None) -> dict[str, Any]:
    if candidates is not None:
        if isinstance(candidates, str):
            candidates = [candidates]
        try:
            candidates = list(candidates)
        except TypeError:
            raise FieldError("candidates", f"candidates must be a list of model names, got {candidates!r:.60}") from None
        if not candidates or not all(isinstance(c, str) and c.strip() for c in candidates):
            raise FieldError("candidates", f"candidates must be a non-empty list of model names, got {candidates!r:.80}")
    if time_budget is not None and (
        isinstance(time_budget, bool) or not isinstance(time_budget, int | float) or not 0 < time_budget < math.inf
    ):
        raise FieldError("time_budget", f"time_budget must be a positive number of seconds, got {time_budget!r}")
    return {"candidates": candidates, "time_budget": time_budget}


_OPTIONS = {
    JobKind.TRAIN: ("recent",),
    JobKind.EVALUATE: ("cv", "test_split"),
    JobKind.AUTO_TRAIN: ("candidates", "time_budget"),
}
_CHECKS = {JobKind.TRAIN: _train_params, JobKind.EVALUATE: _evaluate_params, JobKind.AUTO_TRAIN: _auto_train_params}
