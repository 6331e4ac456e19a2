"""The :class:`~menace.client.MenaceClient` of a stack running in this process.

``LocalClient(stack)`` wraps the :class:`~menace.self_learning_service.ServiceStack`
that ``run_background()``'s ``start()`` returns: events come from its bus,
writes go to its stores (which publish as usual), jobs to its coordinator and
predictions to its main engine. It does not own the stack: :meth:`close` lets
go of it, stopping the stack is its owner's job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

from . import events
from .client_interface import (
    ClientStatus,
    Counts,
    EventCallback,
    Explanation,
    LoggedRun,
    Prediction,
)
from .errors import FieldError
from .events import Event
from .jobs import JobInfo
from .neuroplasticity import Pathway, PathwayRecord
from .validation import check_text

#: The keys ``log_run`` accepts: the fields of a PathwayRecord.
RUN_FIELDS = tuple(f.name for f in fields(PathwayRecord))


def last_event_before(bus: Any, ts: float) -> int:
    """The id of the newest journaled event published before ``ts`` (0 if none).

    Ids grow with publish time, so this looks back from the newest event in
    growing steps instead of reading the journal from its start.
    """
    newest = bus.newest_event_id()
    step = 64
    while newest > 0:
        start = max(0, newest - step)
        before = [e.id for e in bus.events_since(start, limit=newest - start) if e.ts < ts]
        if before:
            return before[-1]
        if start == 0:
            break
        step *= 4
    return 0


class LocalClient:
    """A MenaceClient over an in-process stack (see the module doc).

    Args:
        stack: the running ``ServiceStack``.
        session_start: when the stack was asked to start (seconds since the
            epoch; default ``stack.started``): events published from then on
            are this session's (``ClientStatus.session_event_id``).
    """

    def __init__(self, stack: Any, *, session_start: float | None = None) -> None:
        self._stack = stack
        self._bus = stack.bus
        self._local = threading.local()
        self._callbacks: list[EventCallback] = []
        self._lock = threading.Lock()
        self._closed = False
        start = stack.started if session_start is None else session_start
        self._session_event_id = last_event_before(self._bus, start)
        # The stores announce the ids of what they wrote on the bus, in the writer's
        # thread: a thread-local box catches them for the call that wrote.
        self._bus.subscribe(events.PATHWAY_NEW, self._capture)
        self._bus.subscribe(events.MEMORY_NEW, self._capture)

    # -- capturing what a write announced -----------------------------------------
    def _capture(self, topic: str, payload: dict) -> None:
        box = getattr(self._local, "box", None)
        if box is not None:
            box.append((topic, payload))

    @contextmanager
    def _capturing(self) -> Iterator[list[tuple[str, dict]]]:
        outer = getattr(self._local, "box", None)
        self._local.box = box = []
        try:
            yield box
        finally:
            self._local.box = outer

    # -- what it is connected to --------------------------------------------------
    def status(self) -> ClientStatus:
        stack = self._stack
        engine = stack.engine
        learned = stack.coordinator.stats().get("examples", {})
        return ClientStatus(
            location=stack.settings.store_location,
            engine=engine.name,
            model=engine.model_name,
            trained=engine.is_trained,
            examples_learned=int(learned.get(engine.name, 0)),
            metrics_url=stack.metrics_url,
            learner=True,
            started=stack.started,
            session_event_id=self._session_event_id,
            model_examples=int(engine.n_seen) if engine.is_trained else 0,
        )

    # -- events -------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> None:
        self._bus.subscribe_events(callback)
        with self._lock:
            self._callbacks.append(callback)

    def unsubscribe(self, callback: EventCallback) -> None:
        self._bus.unsubscribe_events(callback)
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def events_since(self, event_id: int, limit: int = 1000) -> list[Event]:
        return self._bus.events_since(event_id, limit)

    # -- writes -------------------------------------------------------------------
    def log_run(self, run: Mapping[str, Any]) -> LoggedRun:
        """Store one run given as PathwayRecord fields; an unknown key raises FieldError naming it."""
        if not isinstance(run, Mapping):
            raise FieldError(
                "run", f"run must be a mapping of {', '.join(RUN_FIELDS)}, got {type(run).__name__}"
            )
        unknown = sorted(str(key) for key in run if key not in RUN_FIELDS)
        if unknown:
            raise FieldError(
                unknown[0],
                f"{unknown[0]} is not a field of a run (unknown: {', '.join(unknown)}; "
                f"valid: {', '.join(RUN_FIELDS)})",
            )
        (logged,) = self._stack.pathway_db.log_runs([PathwayRecord(**run)])
        return logged

    def log_interaction(self, prompt: str, response: str, tags: Sequence[str] = ()) -> int:
        with self._capturing() as announced:
            self._stack.gpt_memory.log_interaction(prompt, response, tags)
        for topic, payload in announced:
            if topic == events.MEMORY_NEW:
                return int(payload["memory_id"])
        raise RuntimeError(f"the interaction was stored but {events.MEMORY_NEW} did not announce it")

    # -- the model ------------------------------------------------------------------
    def predict(
        self, freq: float, exec_time: float, roi: float, myelination: float, actions: str
    ) -> Prediction:
        engine = self._stack.engine
        model, trained = engine.model_name, engine.is_trained
        probability = engine.predict_success(freq, exec_time, roi, myelination, actions)
        return Prediction(probability=float(probability), model=model, trained=trained)

    def predict_many(self, queries: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        from .explain import predict_many  # numpy: not needed to open a client

        return predict_many(self._stack.engine, queries)

    def explain(
        self, freq: float, exec_time: float, roi: float, myelination: float, actions: str
    ) -> Explanation:
        from .explain import explain

        return explain(self._stack.engine, freq, exec_time, roi, myelination, actions)

    # -- jobs -----------------------------------------------------------------------
    def submit_job(self, kind: str, **options: Any) -> int:
        return self._stack.coordinator.submit(kind, **options)  # checked by menace.jobs.job_params

    def cancel_job(self, job_id: int) -> bool:
        return bool(self._stack.coordinator.cancel(job_id))

    def job(self, job_id: int) -> JobInfo | None:
        job = self._stack.coordinator.job(job_id)
        return job.info() if job is not None else None

    def jobs(self) -> list[JobInfo]:
        return [job.info() for job in self._stack.coordinator.jobs()]

    # -- reads ----------------------------------------------------------------------
    def pathways(self, limit: int = 5000) -> list[Pathway]:
        return self._stack.pathway_db.pathways(limit=limit)

    def find_pathway(self, actions: str) -> Pathway | None:
        return self._stack.pathway_db.find(actions)

    def memory(self, text: str = "", limit: int = 200) -> list[Any]:
        text = check_text("text", text, max_len=10_000)
        memory = self._stack.memory
        return memory.search(text, limit=limit) if text.strip() else memory.latest(limit)

    def evaluation_history(self) -> list[dict[str, Any]]:
        history = list(self._stack.engine.evaluation_history)  # one copy: the worker appends
        return [dict(entry) for entry in history if isinstance(entry, dict)]

    def prequential_history(self) -> list[dict[str, Any]]:
        return self._stack.engine.prequential_history()

    def counts(self) -> Counts:
        db = self._stack.pathway_db
        return Counts(
            pathways=db.count_pathways(), runs=db.count_runs(), memory=self._stack.memory.count()
        )

    def close(self) -> None:
        """Unsubscribe everything this client subscribed; the stack keeps running."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._bus.unsubscribe_events(callback)
        self._bus.unsubscribe(events.PATHWAY_NEW, self._capture)
        self._bus.unsubscribe(events.MEMORY_NEW, self._capture)
