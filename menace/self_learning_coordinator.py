"""SelfLearningCoordinator: events in, incremental training on one thread, results out.

What each input topic feeds (see :mod:`menace.events` for the payloads):

``pathway:new``
    One labelled example per logged run (features known before the run, label
    by :mod:`menace.labels`). Every engine learns it: examples are gathered in
    micro-batches and passed to ``engine.partial_train(payloads)``. A run id
    already learned (for instance after ``bus.replay()``) is skipped, not
    learned twice.
``memory:new``
    Not a labelled example (a memory entry has no outcome), so no model
    changes. Its text is embedded in batches on the worker with the shared
    :class:`~menace.menace_memory_manager.MenaceMemoryManager`, which warms
    the embedding cache that vector search (``query_vector``) reads.
``code:new``
    Likewise: the snippet's summary (or its code when it has no summary) is
    embedded in batches on the worker, ready for similarity search.
``workflows:new``
    A plan that has not run yet, so no label either. Each trained engine
    scores it with ``predict_success`` (using the statistics of the pathway
    with the same action text when there is one, zeros for a new sequence)
    and the coordinator publishes ``learning:scored``.

Threads: the bus handlers run in the publisher's thread; they only validate
and enqueue, and return at once. An embedding thread
(``menace-embedding-prefetch``, with ``prefetch=True``, the default) embeds
new text ahead of training: the action text of each run that brings a
sequence not seen before, then the ``memory:new`` and ``code:new`` texts. It
owns no model; it only fills the memory manager's embedding cache, so that a
run with new text (one embedder call, tens of milliseconds with MiniLM) waits
for its own embedding without holding up the runs behind it, which are
learned meanwhile. One worker thread (``menace-learning-worker``) owns the
engines: it drains the queue in micro-batches (up to ``batch_size``
events, waiting at most ``batch_wait`` seconds after the first one; when it
has fallen behind, i.e. more events are queued than a batch holds, it takes up
to ``max_batch_size`` at once to catch up, since much of the cost of a
``partial_train`` call is per call, not per example) and runs
the manual jobs (:meth:`request_train`, :meth:`request_evaluate`,
:meth:`request_auto_train`) from the same queue, in order, so nothing trains a
model from two threads.

Evaluation: every ``eval_every_examples`` learned examples and/or every
``eval_every_seconds`` seconds when the model has changed since the last
evaluation (both 0, the default, turn periodic evaluation off); at most one
per micro-batch, after it is learned. A periodic
evaluation that has too little data is logged and retried at the next trigger.

Bad input: a malformed event is logged, counted in ``stats()["failed"]`` and
``learning_events_failed_total``, and skipped; so is an event that arrives when
the queue holds ``max_queue`` items (the record is committed in its store all
the same, and a full ``train()`` learns it). An engine that raises is reported
on ``learning:error``; the worker carries on.

Stopping: :meth:`stop` unsubscribes, cancels the jobs that have not started
(``learning:cancelled``), asks a running train or auto-train to stop, learns
the events still queued while the timeout allows, joins the worker and hands
back the events it did not learn (normally none).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import events
from . import metrics_exporter as metrics
from .errors import TrainingCancelled
from .jobs import Job, JobKind, JobState
from .labels import label_of

logger = logging.getLogger(__name__)

#: Run ids remembered to skip events already learned (replays).
SEEN_RUNS_LIMIT = 200_000
#: Action texts remembered as embedded; beyond this the memory starts afresh.
READY_TEXTS_LIMIT = 100_000
#: Seconds stop() waits for an embedder that is still loading (torch cannot be interrupted).
WARM_UP_STOP_LIMIT = 60.0
#: Most texts per call of the embedder on the prefetch thread.
PREFETCH_BATCH = 256
#: Models ``request_auto_train(candidates=None)`` compares (the fast, tabular ones).
DEFAULT_AUTO_CANDIDATES = ("logreg", "nn", "rf")
#: Least time between two ``learning:progress`` events of one job, seconds.
PROGRESS_INTERVAL = 0.1

@dataclass
class _Input:
    """One accepted input event, waiting for the worker."""

    topic: str
    payload: dict[str, Any]
    received: float  # time.monotonic()


# -- validation (runs in the publisher's thread: cheap checks only) -----------------------


def _need(payload: Mapping[str, Any], key: str) -> Any:
    if key not in payload:
        raise ValueError(f"missing field {key!r}")
    return payload[key]


def _need_int(payload: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    value = _need(payload, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r:.60}")
    return value


def _need_number(payload: Mapping[str, Any], key: str, minimum: float | None = None) -> float:
    value = _need(payload, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r:.60}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value!r}")
    return float(value)


def _need_text(payload: Mapping[str, Any], key: str, allow_empty: bool = True) -> str:
    value = _need(payload, key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{key} must not be empty")
    return value


def validate_input(topic: str, payload: Any) -> None:
    """Raise ``ValueError`` naming the field if ``payload`` is not a valid ``topic`` event."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
    if topic == events.PATHWAY_NEW:
        _need_int(payload, "pathway_id")
        _need_int(payload, "run_id")
        _need_text(payload, "actions", allow_empty=False)
        _need_number(payload, "exec_time", minimum=0.0)
        _need_number(payload, "roi")
        _need_int(payload, "prior_frequency", minimum=0)
        _need_number(payload, "prior_myelination")
        label = label_of(_need(payload, "outcome"))  # ValueError names the outcome
        if "label" in payload and payload["label"] != label:
            raise ValueError(f"label {payload['label']!r} does not match outcome {payload['outcome']!r}")
    elif topic == events.MEMORY_NEW:
        _need_int(payload, "memory_id")
        _need_text(payload, "data")
    elif topic == events.CODE_NEW:
        _need_int(payload, "code_id")
        _need_text(payload, "code", allow_empty=False)
        if not isinstance(payload.get("summary", ""), str):
            raise ValueError("summary must be text")
    elif topic == events.WORKFLOWS_NEW:
        _need_int(payload, "workflow_id")
        _need_text(payload, "actions", allow_empty=False)
    else:
        raise ValueError(f"unknown input topic {topic!r}")


class SelfLearningCoordinator:
    """Turn input events into incremental training on one worker thread.

    Args:
        bus: the :class:`~menace.unified_event_bus.UnifiedEventBus` to listen and publish on.
        engines: a dict ``name -> LearningEngine``, or one engine (named by its
            ``name`` attribute). The first is the *main* engine: its scores set
            the ``learning_cv_score`` / ``learning_holdout_score`` gauges and
            ``engine=None`` in the ``request_*`` methods means it.
        batch_size: most events per micro-batch while the worker keeps up.
        max_batch_size: most events per micro-batch while it catches up
            (default ``16 * batch_size``, at least ``batch_size``).
        batch_wait: seconds to wait after the first queued event for more to
            fill a batch (lower is fresher, higher batches more).
        eval_every_examples: evaluate after this many learned examples (0: off).
        eval_every_seconds: evaluate this often while the model changes (0: off).
        memory: the memory manager whose embedding cache ``memory:new`` and
            ``code:new`` warm; default the main engine's.
        pathway_db: the store used to look up a workflow plan's pathway
            statistics; default the main engine's.
        max_queue: queued events beyond this are refused and counted as failed.
        prefetch: embed new text on a second thread ahead of training (needs
            ``memory``); off, the worker embeds it inside ``partial_train``.
        eval_cv, eval_test_split: arguments of periodic ``evaluate()`` calls.
    """

    WORKER_NAME = "menace-learning-worker"
    PREFETCH_NAME = "menace-embedding-prefetch"

    def __init__(
        self,
        bus: Any,
        engines: Mapping[str, Any] | Any,
        *,
        batch_size: int = 64,
        max_batch_size: int | None = None,
        batch_wait: float = 0.02,
        eval_every_examples: int = 0,
        eval_every_seconds: float = 0.0,
        memory: Any | None = None,
        pathway_db: Any | None = None,
        max_queue: int = 100_000,
        prefetch: bool = True,
        eval_cv: int = 5,
        eval_test_split: float = 0.2,
    ) -> None:
        if bus is None or not hasattr(bus, "subscribe") or not hasattr(bus, "publish"):
            raise ValueError(f"bus must be a UnifiedEventBus, got {bus!r:.80}")
        if isinstance(engines, Mapping):
            engine_map = dict(engines)
        elif engines is not None:
            engine_map = {str(getattr(engines, "name", None) or "pathways"): engines}
        else:
            engine_map = {}
        if not engine_map:
            raise ValueError("engines must name at least one learning engine")
        for name, engine in engine_map.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"engine names must be non-empty text, got {name!r}")
            if not callable(getattr(engine, "partial_train", None)):
                raise ValueError(f"engines[{name!r}] has no partial_train(); got {engine!r:.80}")
        _check_int("batch_size", batch_size, 1)
        if max_batch_size is None:
            max_batch_size = 16 * batch_size
        _check_int("max_batch_size", max_batch_size, batch_size)
        _check_int("max_queue", max_queue, 1)
        _check_int("eval_every_examples", eval_every_examples, 0)
        _check_int("eval_cv", eval_cv, 2)
        for name, value in (("batch_wait", batch_wait), ("eval_every_seconds", eval_every_seconds)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0 (seconds), got {value!r}")
        if not isinstance(eval_test_split, int | float) or not 0 < eval_test_split < 1:
            raise ValueError(f"eval_test_split must be between 0 and 1, got {eval_test_split!r}")

        self.bus = bus
        self.engines: dict[str, Any] = engine_map
        self.main_engine_name = next(iter(engine_map))
        main = engine_map[self.main_engine_name]
        self.memory = memory if memory is not None else _first_attr(main, "memory_mgr", "memory", "mm")
        self.pathway_db = pathway_db if pathway_db is not None else _first_attr(main, "pathway_db", "pdb", "db")
        self.batch_size = batch_size
        self.max_batch_size = max_batch_size
        self.batch_wait = float(batch_wait)
        self.eval_every_examples = eval_every_examples
        self.eval_every_seconds = float(eval_every_seconds)
        self.max_queue = max_queue
        self.prefetch = bool(prefetch) and callable(getattr(self.memory, "embed_many", None))
        self.eval_cv = eval_cv
        self.eval_test_split = float(eval_test_split)

        self._cond = threading.Condition()
        self._queue: deque[_Input | Job] = deque()
        self._pending = 0  # queued + in progress; 0 means idle
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self._running_job: Job | None = None
        self._seen_runs: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._thread: threading.Thread | None = None
        self._embed_thread: threading.Thread | None = None
        self._ready_texts: set[str] = set()  # action texts already in the embedding cache
        self._warming = threading.Event()  # set while the embedder loads (uninterruptible)
        self._texts_to_embed: dict[str, None] = {}  # ordered set, for the prefetch thread
        self._embed_items: deque[_Input] = deque()  # memory:new / code:new, for the prefetch thread
        self._parked: dict[str, list[_Input]] = {}  # runs waiting for their text's embedding
        self._stopping = False
        self._stopped = False
        self._stop_event = threading.Event()  # interrupts a periodic evaluation on stop()
        self._drain_deadline = math.inf
        self._handlers: list[tuple[str, Callable[[str, dict], None]]] = []

        # per-engine evaluation triggers (worker thread only)
        self._since_eval: Counter[str] = Counter()
        self._dirty: dict[str, bool] = dict.fromkeys(engine_map, False)
        self._last_eval: dict[str, float] = {}

        self._stats_lock = threading.Lock()
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
        self._last_queue_full_warning = 0.0

        self._handled_metric = {t: metrics.events_handled.labels(t) for t in events.INPUT_TOPICS}
        self._failed_metric = {t: metrics.events_failed.labels(t) for t in events.INPUT_TOPICS}
        for name, engine in engine_map.items():
            model = getattr(engine, "model_name", None)
            if isinstance(model, str):
                metrics.set_model(name, model)

    # -- lifecycle -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    @property
    def worker_alive(self) -> bool:
        """True while a thread of the coordinator runs (also if :meth:`stop` timed out on it)."""
        return any(t is not None and t.is_alive() for t in (self._thread, self._embed_thread))

    @property
    def training_worker_alive(self) -> bool:
        """True while the thread that owns the engines runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SelfLearningCoordinator:
        """Subscribe to the input topics and start the worker. Returns ``self``."""
        with self._cond:
            if self._stopped or self._stopping:
                raise RuntimeError("a stopped SelfLearningCoordinator cannot be started again")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._run, name=self.WORKER_NAME, daemon=True)
            if self.prefetch:
                self._embed_thread = threading.Thread(
                    target=self._run_prefetch, name=self.PREFETCH_NAME, daemon=True
                )
            now = time.monotonic()
            for name in self.engines:
                self._last_eval.setdefault(name, now)
        self._thread.start()
        if self._embed_thread is not None:
            self._embed_thread.start()
        for topic in events.INPUT_TOPICS:
            handler = self._make_handler(topic)
            self.bus.subscribe(topic, handler)
            self._handlers.append((topic, handler))
        logger.info(
            "coordinator started: engines %s, batch %d / %.3f s, evaluate every %d examples / %.1f s",
            ", ".join(self.engines), self.batch_size, self.batch_wait,
            self.eval_every_examples, self.eval_every_seconds,
        )
        return self

    def stop(self, timeout: float = 5.0) -> list[tuple[str, dict]]:
        """Stop listening and join the worker; returns the events it did not learn.

        Queued jobs are cancelled, a running train or auto-train is asked to
        stop, and queued events are still learned while ``timeout`` seconds
        allow. Calling it again (or before :meth:`start`) returns ``[]``.
        """
        for topic, handler in self._handlers:
            self.bus.unsubscribe(topic, handler)
        self._handlers.clear()
        with self._cond:
            if self._stopped:
                return []
            self._stopped = True
            self._stopping = True
            self._drain_deadline = time.monotonic() + max(0.0, timeout) * 0.8
            dropped_jobs = [item for item in self._queue if isinstance(item, Job)]
            for job in dropped_jobs:
                self._queue.remove(job)
                self._pending -= 1
            self._unpark(list(self._parked))  # the worker learns them, embedding inline
            running = self._running_job
            self._cond.notify_all()
        self._stop_event.set()
        if running is not None:
            running.cancel_event.set()
        for job in dropped_jobs:
            self._finish_cancelled(job)
        deadline = time.monotonic() + max(0.0, timeout)
        for thread in (self._thread, self._embed_thread):
            if thread is None:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive() and self._warming.is_set():
                # A model load in torch cannot be interrupted, and a thread abandoned
                # in the middle of one aborts the interpreter at exit: wait for it.
                logger.info("%s is still loading the embedder; waiting for it", thread.name)
                thread.join(WARM_UP_STOP_LIMIT)
            if thread.is_alive():
                logger.warning("%s still busy after %.1f s; leaving it to finish", thread.name, timeout)
        with self._cond:
            left = [(item.topic, item.payload) for item in self._queue if isinstance(item, _Input)]
            left += [(item.topic, item.payload) for item in self._embed_items]
            self._queue.clear()
            self._embed_items.clear()
            self._texts_to_embed.clear()
            self._pending = self._pending if self.training_worker_alive else 0
            self._cond.notify_all()
        if left:
            logger.warning(
                "coordinator stopped with %d events not learned (they are committed in their stores)",
                len(left),
            )
        metrics.queue_depth.set(0)
        logger.info("coordinator stopped")
        return left

    def __enter__(self) -> SelfLearningCoordinator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- event handlers (publisher's thread) -------------------------------------------
    def _make_handler(self, topic: str) -> Callable[[str, dict], None]:
        def handler(_topic: str, payload: dict) -> None:
            self._accept(topic, payload)

        handler.__name__ = f"on_{topic.replace(':', '_')}"
        return handler

    def _accept(self, topic: str, payload: Any) -> None:
        try:
            validate_input(topic, payload)
        except ValueError as exc:
            logger.warning("skipping malformed %s event: %s", topic, exc)
            self._count_failed(topic)
            return
        run_id = payload.get("run_id") if topic == events.PATHWAY_NEW else None
        with self._cond:
            if self._stopping:
                return
            if run_id is not None and run_id in self._seen_runs:
                with self._stats_lock:
                    self._duplicates += 1
                return
            if len(self._queue) + len(self._embed_items) >= self.max_queue:
                full = True
            else:
                full = False
                if run_id is not None:
                    self._seen_runs.add(run_id)
                    self._seen_order.append(run_id)
                    if len(self._seen_order) > SEEN_RUNS_LIMIT:
                        self._seen_runs.discard(self._seen_order.popleft())
                item = _Input(topic, payload, time.monotonic())
                if self.prefetch and topic in (events.MEMORY_NEW, events.CODE_NEW):
                    self._embed_items.append(item)
                else:
                    self._queue.append(item)
                    if self.prefetch and topic == events.PATHWAY_NEW:
                        text = payload["actions"].strip()
                        if text not in self._ready_texts:
                            self._texts_to_embed[text] = None
                self._pending += 1
                depth = len(self._queue)
                self._cond.notify_all()
        if full:
            self._count_failed(topic)
            now = time.monotonic()
            if now - self._last_queue_full_warning > 5.0:
                self._last_queue_full_warning = now
                logger.warning("training queue full (%d items): refusing %s events", self.max_queue, topic)
            return
        with self._stats_lock:
            self._handled[topic] += 1
        self._handled_metric[topic].inc()
        metrics.queue_depth.set(depth)

    def _count_failed(self, topic: str, n: int = 1) -> None:
        with self._stats_lock:
            self._failed[topic] += n
        child = self._failed_metric.get(topic)
        if child is not None:
            child.inc(n)

    # -- manual jobs -----------------------------------------------------------------
    def _engine_name(self, engine: str | None) -> str:
        if engine is None:
            return self.main_engine_name
        if engine not in self.engines:
            raise ValueError(f"engine must be one of {', '.join(self.engines)}, got {engine!r}")
        return engine

    def _submit(self, kind: str, engine: str | None, params: dict[str, Any]) -> int:
        name = self._engine_name(engine)
        with self._cond:
            if self._stopping or self._thread is None:
                raise RuntimeError("the coordinator is not running; call start() first")
            job = Job(next(self._job_ids), JobKind.coerce(kind), name, params)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._pending += 1
            self._cond.notify()
        logger.info("job %d queued: %s on %s", job.id, kind, name)
        return job.id

    def request_train(self, engine: str | None = None) -> int:
        """Queue a full ``train()`` of ``engine`` (default the main one); returns the job id."""
        return self._submit("train", engine, {})

    def request_evaluate(self, engine: str | None = None, cv: int = 5, test_split: float = 0.2) -> int:
        """Queue an ``evaluate(cv, test_split)``; returns the job id."""
        _check_int("cv", cv, 2)
        if isinstance(test_split, bool) or not isinstance(test_split, int | float) or not 0 < test_split < 1:
            raise ValueError(f"test_split must be between 0 and 1, got {test_split!r}")
        return self._submit("evaluate", engine, {"cv": cv, "test_split": float(test_split)})

    def request_auto_train(
        self,
        candidates: Iterable[str] | None = None,
        time_budget: float | None = None,
        engine: str | None = None,
    ) -> int:
        """Queue ``auto_train(candidates, time_budget)`` (seconds); returns the job id.

        ``candidates`` ``None`` compares :data:`DEFAULT_AUTO_CANDIDATES`.
        """
        if candidates is not None:
            if isinstance(candidates, str):
                candidates = [candidates]
            candidates = list(candidates)
            if not candidates or not all(isinstance(c, str) and c.strip() for c in candidates):
                raise ValueError(f"candidates must be a non-empty list of model names, got {candidates!r}")
        if time_budget is not None and (
            isinstance(time_budget, bool) or not isinstance(time_budget, int | float)
            or not 0 < time_budget < math.inf
        ):
            raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        return self._submit("auto_train", engine, {"candidates": candidates, "time_budget": time_budget})

    def cancel(self, job_id: int) -> bool:
        """Cancel a job. True if it was queued (it will not run) or is running
        (it stops at the engine's next check, the live model unchanged, and
        ends ``cancelled``); False for an unknown or finished job.
        """
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
                return False
            if job.state == JobState.QUEUED:
                try:
                    self._queue.remove(job)
                except ValueError:
                    return False
                self._pending -= 1
                self._cond.notify_all()
                queued = True
            else:
                job.cancel_event.set()
                queued = False
        if queued:
            self._finish_cancelled(job)
        logger.info("job %d (%s): cancel requested", job.id, job.kind)
        return True

    def job(self, job_id: int) -> Job | None:
        """The job with this id, or ``None``."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job submitted, oldest first."""
        return list(self._jobs.values())

    def wait_job(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until job ``job_id`` has ended (or ``timeout`` seconds); returns it."""
        job = self._jobs.get(job_id)
        if job is None:
            raise ValueError(f"no job with id {job_id!r}")
        job.wait(timeout)
        return job

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or in progress; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            return True

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (what the Prometheus metrics show, per coordinator)."""
        with self._stats_lock:
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
                "queue_depth": len(self._queue),
                "waiting_for_embedding": sum(len(v) for v in self._parked.values()),
            }

    # -- the worker ------------------------------------------------------------------
    def _warm_up(self) -> None:
        """Load the embedder now rather than on the first event (MiniLM takes seconds)."""
        embedder = getattr(self.memory, "embedder", None)
        if embedder is None or not callable(getattr(embedder, "encode", None)):
            return
        started = time.perf_counter()
        self._warming.set()
        try:
            embedder.encode(["warm up"])
        except Exception as exc:
            logger.warning("could not warm up the embedder %s: %s", getattr(embedder, "name", "?"), exc)
            return
        finally:
            self._warming.clear()
        logger.debug("embedder warmed up in %.2f s", time.perf_counter() - started)

    def _run(self) -> None:
        logger.debug("training worker running")
        if not self.prefetch:
            self._warm_up()
        while True:
            work = self._next_work()
            if work is None:
                break
            inputs, job = work
            try:
                if inputs:
                    self._process_inputs(inputs)
                if job is not None:
                    self._run_job(job)
                if not self._stopping:
                    self._maybe_evaluate()
            except Exception:  # the worker must survive anything an engine does
                logger.exception("training worker: unexpected error")
            finally:
                done = len(inputs) + (1 if job is not None else 0)
                if done:
                    with self._cond:
                        self._pending = max(0, self._pending - done)
                        metrics.queue_depth.set(len(self._queue))
                        self._cond.notify_all()
        logger.debug("training worker finished")

    def _wait_timeout(self) -> float:
        """How long the idle worker may sleep before a timed evaluation is due."""
        if not self.eval_every_seconds:
            return 0.5
        now = time.monotonic()
        due = min(
            (self._last_eval.get(n, now) + self.eval_every_seconds for n, d in self._dirty.items() if d),
            default=now + 0.5,
        )
        return min(0.5, max(0.01, due - now))

    def _next_work(self) -> tuple[list[_Input], Job | None] | None:
        """The next micro-batch of inputs or the next job; ``None`` when it is time to exit."""
        with self._cond:
            while True:
                if self._stopping and (not self._queue or time.monotonic() >= self._drain_deadline):
                    return None
                if self._queue:
                    break
                self._cond.wait(self._wait_timeout())
                if not self._queue and not self._stopping:
                    return [], None  # woke up idle: let the worker check timed evaluation
            head = self._queue[0]
            if isinstance(head, Job):
                self._queue.popleft()
                head.state = JobState.RUNNING
                self._running_job = head
                return [], head
            batch: list[_Input] = []
            deadline = head.received + self.batch_wait
            while True:
                while self._queue and isinstance(self._queue[0], _Input) and len(batch) < self.batch_size:
                    self._take(batch)
                if len(batch) >= self.batch_size or self._stopping:
                    break
                if self._queue and isinstance(self._queue[0], Job):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            # Behind: a full batch and more waiting. Take what is queued, up to the cap.
            while (
                len(batch) >= self.batch_size
                and len(batch) < self.max_batch_size
                and self._queue
                and isinstance(self._queue[0], _Input)
            ):
                self._take(batch)
            return batch, None

    def _take(self, batch: list[_Input]) -> None:
        """Move the queue's head input into ``batch``, or park it until its text is embedded."""
        item: _Input = self._queue.popleft()  # type: ignore[assignment]
        if self.prefetch and not self._stopping and item.topic == events.PATHWAY_NEW:
            text = item.payload["actions"].strip()
            if text not in self._ready_texts:
                self._parked.setdefault(text, []).append(item)
                self._texts_to_embed.setdefault(text, None)
                return
        batch.append(item)

    def _unpark(self, texts: Iterable[str]) -> None:
        """Put the runs waiting for ``texts`` back at the front of the queue (caller holds the lock)."""
        items = [item for text in texts for item in self._parked.pop(text, ())]
        if items:
            items.sort(key=lambda item: item.received)
            self._queue.extendleft(reversed(items))

    # -- the prefetch thread ---------------------------------------------------------
    def _engines_embed(self) -> bool:
        """Whether any engine's features use the embedding (text-only models do not)."""
        return any(getattr(engine, "feature_names", True) for engine in self.engines.values())

    def _run_prefetch(self) -> None:
        logger.debug("embedding prefetch running")
        self._warm_up()
        while True:
            with self._cond:
                while not self._texts_to_embed and not self._embed_items and not self._stopping:
                    self._cond.wait(0.5)
                if self._stopping:
                    break
                texts = list(itertools.islice(self._texts_to_embed, PREFETCH_BATCH))
                for text in texts:
                    del self._texts_to_embed[text]
                others: list[_Input] = []
                if not texts:
                    while self._embed_items and len(others) < PREFETCH_BATCH:
                        others.append(self._embed_items.popleft())
            if texts:
                self._prefetch_texts(texts)
            if others:
                try:
                    self._process_inputs(others)
                finally:
                    with self._cond:
                        self._pending = max(0, self._pending - len(others))
                        self._cond.notify_all()
        logger.debug("embedding prefetch finished")

    def _prefetch_texts(self, texts: list[str]) -> None:
        if self._engines_embed():
            try:
                self.memory.embed_many(texts)
            except Exception as exc:  # the worker embeds them inline and reports what fails
                logger.warning("could not prefetch the embeddings of %d texts: %s", len(texts), exc)
        with self._cond:
            if len(self._ready_texts) + len(texts) > READY_TEXTS_LIMIT:
                self._ready_texts.clear()  # bounded: a forgotten text is only prefetched again
            self._ready_texts.update(texts)
            self._unpark(texts)
            self._cond.notify_all()

    def _process_inputs(self, inputs: list[_Input]) -> None:
        pathways = [i.payload for i in inputs if i.topic == events.PATHWAY_NEW]
        texts: list[str] = []
        workflows: list[dict] = []
        for item in inputs:
            if item.topic == events.MEMORY_NEW:
                if item.payload["data"].strip():
                    texts.append(item.payload["data"])
            elif item.topic == events.CODE_NEW:
                texts.append(item.payload.get("summary", "").strip() or item.payload["code"])
            elif item.topic == events.WORKFLOWS_NEW:
                workflows.append(item.payload)
        if pathways:
            for name, engine in self.engines.items():
                self._partial_train(name, engine, pathways)
        if texts:
            self._embed(texts)
        for payload in workflows:
            self._score_workflow(payload)

    def _partial_train(self, name: str, engine: Any, payloads: list[dict]) -> None:
        seen_before = getattr(engine, "n_seen", None)
        start = time.perf_counter()
        try:
            learned = engine.partial_train(payloads)
        except Exception as exc:
            if len(payloads) > 1:
                logger.warning("%s: a batch of %d failed (%s); retrying one by one", name, len(payloads), exc)
                for payload in payloads:
                    self._partial_train(name, engine, [payload])
                return
            logger.warning("%s: could not learn run %s: %s", name, payloads[0].get("run_id"), exc)
            self._count_failed(events.PATHWAY_NEW)
            self._report_error(name, exc, events.PATHWAY_NEW, None, run_id=payloads[0].get("run_id"))
            return
        duration = time.perf_counter() - start
        if not learned:
            logger.debug("%s: partial_train took no update from %d examples", name, len(payloads))
            return
        seen_after = getattr(engine, "n_seen", None)
        examples = len(payloads)
        if isinstance(seen_before, int) and isinstance(seen_after, int) and seen_after >= seen_before:
            examples = seen_after - seen_before  # runs a full train already saw are not counted again
        self._record_training(name, "partial", duration, examples=examples)
        self._since_eval[name] += examples
        self._dirty[name] = True
        self._publish(
            events.LEARNING_TRAINED,
            {
                "engine": name,
                "model": str(getattr(engine, "model_name", "")),
                "mode": "partial",
                "examples": examples,
                "duration_s": duration,
                "ts": time.time(),
                "job_id": None,
                "run_ids": [p["run_id"] for p in payloads],
            },
        )

    def _embed(self, texts: list[str]) -> None:
        if self.memory is None or not callable(getattr(self.memory, "embed_many", None)):
            return
        try:
            self.memory.embed_many(texts)
        except Exception as exc:
            logger.warning("could not embed %d texts: %s", len(texts), exc)
            self._report_error(self.main_engine_name, exc, "embedding", None)
            return
        with self._stats_lock:
            self._embedded += len(texts)

    def _score_workflow(self, payload: dict) -> None:
        actions = payload["actions"]
        freq = exec_time = roi = myelination = 0.0
        pathway_id = None
        finder = getattr(self.pathway_db, "find", None)
        if callable(finder):
            try:
                known = finder(actions)
            except Exception as exc:  # a lookup failure only loses the statistics
                logger.debug("workflow %s: pathway lookup failed: %s", payload["workflow_id"], exc)
                known = None
            if known is not None:
                pathway_id = known.id
                freq, exec_time = float(known.frequency), known.avg_exec_time
                roi, myelination = known.avg_roi, known.myelination_score
        for name, engine in self.engines.items():
            if not getattr(engine, "is_trained", False):
                continue
            try:
                probability = float(engine.predict_success(freq, exec_time, roi, myelination, actions))
            except Exception as exc:
                logger.warning("%s: could not score workflow %s: %s", name, payload["workflow_id"], exc)
                self._count_failed(events.WORKFLOWS_NEW)
                self._report_error(name, exc, events.WORKFLOWS_NEW, None)
                continue
            with self._stats_lock:
                self._scored += 1
            self._publish(
                events.LEARNING_SCORED,
                {
                    "engine": name,
                    "model": str(getattr(engine, "model_name", "")),
                    "workflow_id": payload["workflow_id"],
                    "actions": actions,
                    "pathway_id": pathway_id,
                    "success_probability": probability if math.isfinite(probability) else 0.0,
                    "ts": time.time(),
                },
            )

    # -- evaluation ------------------------------------------------------------------
    def _maybe_evaluate(self) -> None:
        now = time.monotonic()
        for name, engine in self.engines.items():
            trigger = None
            if self.eval_every_examples and self._since_eval[name] >= self.eval_every_examples:
                trigger = "examples"
            elif (
                self.eval_every_seconds
                and self._dirty[name]
                and now - self._last_eval.get(name, now) >= self.eval_every_seconds
            ):
                trigger = "interval"
            if trigger is None:
                continue
            # keep the remainder, so evaluations stay every N examples whatever the batch sizes
            self._since_eval[name] = (
                self._since_eval[name] % self.eval_every_examples if self.eval_every_examples else 0
            )
            self._dirty[name] = False
            self._last_eval[name] = now
            try:
                self._evaluate(
                    name, engine, self.eval_cv, self.eval_test_split, None, trigger,
                    cancel=self._stop_event,
                )
            except TrainingCancelled:
                logger.info("%s: periodic evaluation interrupted by stop()", name)
            except ValueError as exc:  # too little data yet: try again at the next trigger
                logger.info("%s: periodic evaluation skipped: %s", name, exc)
            except Exception as exc:
                logger.exception("%s: periodic evaluation failed", name)
                self._report_error(name, exc, "evaluate", None)

    def _evaluate(
        self,
        name: str,
        engine: Any,
        cv: int,
        test_split: float,
        job_id: int | None,
        trigger: str,
        progress: Callable[[float, str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> dict:
        start = time.perf_counter()
        scores = engine.evaluate(cv=cv, test_split=test_split, progress=progress, cancel=cancel)
        duration = time.perf_counter() - start
        cv_score = _score(scores.get("cv_score"))
        holdout = _score(scores.get("holdout_score"))
        now = time.time()
        with self._stats_lock:
            self._evaluations[name] += 1
        metrics.evaluations.labels(name).inc()
        metrics.last_evaluation_timestamp.labels(name).set(now)
        if name == self.main_engine_name:
            metrics.set_scores(cv_score, holdout)
        self._publish(
            events.LEARNING_EVALUATED,
            {
                "engine": name,
                "model": str(scores.get("model") or getattr(engine, "model_name", "")),
                "cv_score": cv_score,
                "holdout_score": holdout,
                "n_examples": int(scores.get("n_examples") or 0),
                "ts": float(scores.get("ts") or now),
                "duration_s": duration,
                "trigger": trigger,
                "job_id": job_id,
            },
        )
        return scores

    # -- jobs on the worker ----------------------------------------------------------
    def _progress_callback(self, job: Job) -> Callable[[float, str], None]:
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
            self._publish(
                events.LEARNING_PROGRESS,
                {
                    "job_id": job.id,
                    "kind": job.kind,
                    "engine": job.engine,
                    "fraction": fraction if math.isfinite(fraction) else 0.0,
                    "message": str(message)[:500],
                    "ts": time.time(),
                },
            )

        return progress

    def _run_job(self, job: Job) -> None:
        engine = self.engines[job.engine]
        job.started = time.time()
        progress = self._progress_callback(job)
        try:
            if job.cancel_event.is_set():
                raise TrainingCancelled(f"job {job.id} cancelled before it started")
            progress(0.0, f"{job.kind} started")
            if job.kind == "train":
                job.result = self._run_train(job, engine, progress)
            elif job.kind == "evaluate":
                job.result = self._evaluate(
                    job.engine, engine, job.params["cv"], job.params["test_split"], job.id, "manual",
                    progress=progress, cancel=job.cancel_event,
                )
            elif job.kind == "auto_train":
                job.result = self._run_auto_train(job, engine, progress)
            else:  # pragma: no cover - _submit only makes the kinds above
                raise ValueError(f"unknown job kind {job.kind!r}")
        except TrainingCancelled:
            job.finished = time.time()
            with self._cond:
                self._running_job = None
            self._finish_cancelled(job)
            return
        except Exception as exc:
            logger.warning("job %d (%s on %s) failed: %s", job.id, job.kind, job.engine, exc)
            if not isinstance(exc, ValueError):
                logger.debug("job %d traceback", job.id, exc_info=True)
            job.state, job.error = JobState.FAILED, str(exc)
            self._report_error(job.engine, exc, job.kind, job.id)
        else:
            job.state = JobState.DONE
            progress(1.0, f"{job.kind} finished")
        job.finished = time.time()
        with self._cond:
            self._running_job = None
        job.done_event.set()

    def _run_train(self, job: Job, engine: Any, progress) -> bool:
        start = time.perf_counter()
        ok = bool(engine.train(progress=progress, cancel=job.cancel_event))
        duration = time.perf_counter() - start
        if not ok:
            raise ValueError("training did not run: not enough labelled runs with both outcomes yet")
        examples = int(getattr(engine, "n_seen", 0) or 0)
        self._record_training(job.engine, "full", duration)
        self._dirty[job.engine] = True
        self._publish(
            events.LEARNING_TRAINED,
            {
                "engine": job.engine,
                "model": str(getattr(engine, "model_name", "")),
                "mode": "full",
                "examples": examples,
                "duration_s": duration,
                "ts": time.time(),
                "job_id": job.id,
            },
        )
        return True

    def _run_auto_train(self, job: Job, engine: Any, progress) -> str:
        start = time.perf_counter()
        candidates = job.params["candidates"] or list(DEFAULT_AUTO_CANDIDATES)
        best = engine.auto_train(
            candidates, time_budget=job.params["time_budget"], progress=progress, cancel=job.cancel_event
        )
        duration = time.perf_counter() - start
        model = str(getattr(engine, "model_name", best))
        metrics.set_model(job.engine, model)
        self._record_training(job.engine, "auto", duration)
        self._dirty[job.engine] = True
        report = getattr(engine, "last_auto_train", None) or {}
        candidates_scores = report.get("candidates", {}) if isinstance(report, Mapping) else {}
        scores = {
            str(name): _score(result["cv_score"])
            for name, result in candidates_scores.items()
            if isinstance(result, Mapping) and "cv_score" in result
        }
        self._publish(
            events.LEARNING_TRAINED,
            {
                "engine": job.engine,
                "model": model,
                "mode": "auto",
                "examples": int(getattr(engine, "n_seen", 0) or 0),
                "duration_s": duration,
                "ts": time.time(),
                "job_id": job.id,
                "best": str(best),
                "scores": scores,
            },
        )
        return str(best)

    # -- bookkeeping -----------------------------------------------------------------
    def _record_training(self, name: str, mode: str, duration: float, examples: int = 0) -> None:
        now = time.time()
        with self._stats_lock:
            self._runs[(name, mode)] += 1
            self._durations[(name, mode)] += duration
            self._examples[name] += examples
            self._last_training[name] = now
        metrics.training_runs.labels(name, mode).inc()
        metrics.training_duration.labels(name, mode).observe(duration)
        metrics.last_training_timestamp.labels(name).set(now)
        if examples:
            metrics.examples_learned.labels(name).inc(examples)

    def _finish_cancelled(self, job: Job) -> None:
        job.state = JobState.CANCELLED
        job.finished = job.finished or time.time()
        logger.info("job %d (%s on %s) cancelled", job.id, job.kind, job.engine)
        self._publish(
            events.LEARNING_CANCELLED,
            {"job_id": job.id, "kind": job.kind, "engine": job.engine, "ts": time.time()},
        )
        job.done_event.set()  # after the event: whoever waits on the job also sees its event

    def _report_error(
        self, engine: str, exc: BaseException, source: str, job_id: int | None, **extra: Any
    ) -> None:
        with self._stats_lock:
            self._errors[engine] += 1
        metrics.training_errors.labels(engine).inc()
        payload = {
            "engine": engine,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "source": source,
            "ts": time.time(),
            "job_id": job_id,
        }
        payload.update(extra)
        self._publish(events.LEARNING_ERROR, payload)

    def _publish(self, topic: str, payload: dict) -> None:
        try:
            self.bus.publish(topic, payload)
        except Exception:  # a failing monitor must not stop learning
            logger.exception("could not publish %s", topic)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _first_attr(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _score(value: Any) -> float:
    """A score as a finite float in [0, 1] (a missing or NaN score becomes 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, number)) if math.isfinite(number) else 0.0
