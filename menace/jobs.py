"""Manual learning jobs: what can be asked for, the states a job goes through, its record.

A job is a full ``train``, an ``evaluate`` or an ``auto_train`` of one engine,
queued on the coordinator's worker (the thread that owns the engines) with the
incremental updates, so nothing trains a model from two threads. Its state
moves from ``queued`` to ``running`` to ``done``, ``failed`` or
``cancelled``. :class:`JobInfo` is the snapshot a client sees (JSON-able,
no threading objects), in-process or over the API.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
            raise ValueError(f"kind must be one of {valid}, got {value!r:.60}") from None


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
