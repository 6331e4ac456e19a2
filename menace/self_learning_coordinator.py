"""SelfLearningCoordinator: events in, incremental training on one thread, results out.

The coordinator is wiring; each part is a small module of its own:

* :mod:`menace.events`: checks each input event against its topic's spec;
* :mod:`menace.training_queue`: the one queue of input events and manual
  jobs, handed to the worker in micro-batches;
* :mod:`menace.embedding_prefetch`: embeds new text on its own thread ahead
  of training (``prefetch=True``, the default);
* :mod:`menace.evaluation_schedule`: when to evaluate on its own;
* :mod:`menace.job_runner`: runs manual jobs and evaluations, and announces them;
* :mod:`menace.workflow_scorer`: scores ``workflows:new`` plans (its own subscriber);
* :mod:`menace.learning_stats`: counters and Prometheus figures.

What each input topic feeds (see :mod:`menace.events` for the payloads):

``pathway:new``
    One labelled example per logged run. Every engine learns it: examples
    are gathered in micro-batches and passed to ``engine.partial_train``. A
    run every engine already learned (``engine.has_learned``: after
    ``bus.replay()``, say) is skipped and counted as a duplicate.
``memory:new`` / ``code:new``
    No label, so no model changes: the text is embedded in batches with the
    shared memory manager, which warms the embedding cache that vector search
    (``query_vector``) reads.
``workflows:new``
    Scored by the :class:`~menace.workflow_scorer.WorkflowScorer`
    (``learning:scored``).

Threads: bus handlers run in the publisher's thread; they only validate and
enqueue, and return at once. One worker thread (``menace-learning-worker``)
owns the engines: it drains the queue and runs the manual jobs
(:meth:`request_train`, :meth:`request_evaluate`, :meth:`request_auto_train`)
from the same queue, in order, so nothing trains a model from two threads.

Evaluation: every ``eval_every_examples`` learned examples and/or every
``eval_every_seconds`` seconds while the model changes (0 turns each off); at
most one per micro-batch, after it is learned. A periodic evaluation that has
too little data is logged and retried at the next trigger.

Bad input: a malformed event is logged, counted in ``stats()["failed"]`` and
``learning_events_failed_total``, and skipped; so is an event that arrives
when ``max_queue`` items wait (the record is committed in its store all the
same, and a full ``train()`` learns it). An engine that raises is reported on
``learning:error``; the worker carries on.

Stopping: :meth:`stop` unsubscribes, cancels the jobs that have not started
(``learning:cancelled``), asks a running train or auto-train to stop, learns
the events still queued while the timeout allows, joins every thread and
hands back the events it did not learn (normally none).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import config, events
from . import metrics_exporter as metrics_module
from .embedding_prefetch import EmbeddingPrefetcher, side_text, warm_up
from .errors import FieldError, TrainingCancelled
from .evaluation_schedule import EvaluationSchedule, PeriodicEvaluator
from .job_runner import DEFAULT_AUTO_CANDIDATES, JobRunner
from .jobs import Job, JobKind, JobState, job_params
from .learning_stats import LearningStats
from .prequential import preload_drift_detector
from .protocols import EmbeddingSource, EventBus, Learner, PathwayStore
from .training_queue import Input, TrainingQueue
from .validation import check_positive_int
from .workflow_scorer import WorkflowScorer

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_AUTO_CANDIDATES", "Job", "JobKind", "JobState", "SelfLearningCoordinator"]

#: Seconds stop() waits for an embedder that is still loading (torch cannot be interrupted).
WARM_UP_STOP_LIMIT = 60.0
#: Seconds between two "queue full" warnings.
QUEUE_FULL_WARNING_INTERVAL = 5.0


class SelfLearningCoordinator:
    """Turn input events into incremental training on one worker thread.

    Args:
        bus: the :class:`~menace.unified_event_bus.UnifiedEventBus` to listen and publish on.
        engines: a dict ``name -> LearningEngine``, or one engine (named by its
            ``name``). The first is the *main* engine: ``engine=None`` in the
            ``request_*`` methods means it.
        batch_size: most events per micro-batch while the worker keeps up
            (256: much of a ``partial_train`` call's cost is per call; logreg
            learned a run in 44 us in batches of 64, 20 us in batches of 256,
            14 us in batches of 1,024; see docs/self_learning_service.md).
        max_batch_size: most events per micro-batch while it catches up
            (default ``4 * batch_size``, at least ``batch_size``).
        batch_wait: seconds to wait after the first queued event for more to
            fill a batch (lower is fresher, higher batches more).
        eval_every_examples: evaluate after this many learned examples (0: off).
        eval_every_seconds: evaluate this often while the model changes (0: off).
        eval_max_examples: a periodic evaluation reads at most the newest this
            many runs (``None``: all), so it costs seconds at any store size.
            Periodic evaluations run on their own thread: learning goes on.
        drift_policy: ``"retrain"`` (a full retrain on the runs since the
            change, :data:`~menace.config.DRIFT_RETRAIN_MIN` to
            :data:`~menace.config.DRIFT_RETRAIN_MAX` of them) or ``"none"``.
        memory: the embedding source whose cache ``memory:new`` and ``code:new``
            warm; default the main engine's ``memory_mgr``.
        pathway_db: the store used to look up a workflow plan's pathway
            statistics; default the main engine's ``pathway_db``.
        max_queue: queued events beyond this are refused and counted as failed.
        max_queue_bytes: the same for the estimated bytes of the queued events
            (:func:`menace.training_queue.payload_bytes`; default 64 MB), so a
            flood of large runs cannot take more memory; ``stats()`` counts the
            refusals in ``refused_queue_full`` and shows ``queue_bytes``.
        prefetch: embed new text on a second thread ahead of training (needs
            ``memory``); off, the worker embeds it inside ``partial_train``.
        eval_cv, eval_test_split: arguments of periodic ``evaluate()`` calls.
        metrics: where its figures are exported (default the process-wide
            :data:`~menace.metrics_exporter.METRICS`).
    """

    WORKER_NAME = "menace-learning-worker"
    PREFETCH_NAME = EmbeddingPrefetcher.THREAD_NAME

    def __init__(
        self,
        bus: EventBus,
        engines: Mapping[str, Learner] | Learner,
        *,
        batch_size: int = 256,
        max_batch_size: int | None = None,
        batch_wait: float = 0.02,
        eval_every_examples: int = config.DEFAULT_EVAL_EVERY,
        eval_every_seconds: float = config.DEFAULT_EVAL_INTERVAL,
        eval_max_examples: int | None = config.DEFAULT_EVAL_MAX_EXAMPLES,
        memory: EmbeddingSource | None = None,
        pathway_db: PathwayStore | None = None,
        max_queue: int = 100_000,
        max_queue_bytes: int = config.DEFAULT_MAX_QUEUE_BYTES,
        prefetch: bool = True,
        eval_cv: int = 5,
        eval_test_split: float = 0.2,
        drift_policy: str = config.DEFAULT_DRIFT_POLICY,
        metrics: metrics_module.LearningMetrics | None = None,
    ) -> None:
        if not isinstance(bus, EventBus):
            raise FieldError("bus", f"bus must be a UnifiedEventBus, got {bus!r:.80}")
        self.bus = bus
        self.engines: dict[str, Learner] = _engine_map(engines)
        self.main_engine_name = next(iter(self.engines))
        main = self.engines[self.main_engine_name]
        if max_batch_size is None:
            max_batch_size = 4 * batch_size
        self.queue = TrainingQueue(
            batch_size=check_positive_int("batch_size", batch_size),
            max_batch_size=check_positive_int("max_batch_size", max_batch_size, minimum=batch_size),
            batch_wait=_seconds("batch_wait", batch_wait),
            max_queue=check_positive_int("max_queue", max_queue),
            max_bytes=check_positive_int("max_queue_bytes", max_queue_bytes),
        )
        self._refused_full = 0
        self.schedule = EvaluationSchedule(
            self.engines,
            check_positive_int("eval_every_examples", eval_every_examples, minimum=0),
            _seconds("eval_every_seconds", eval_every_seconds),
        )
        self.eval_cv = check_positive_int("eval_cv", eval_cv, minimum=2)
        if not isinstance(eval_test_split, int | float) or not 0 < eval_test_split < 1:
            raise FieldError("eval_test_split", f"eval_test_split must be between 0 and 1, got {eval_test_split!r}")
        self.eval_test_split = float(eval_test_split)
        self.eval_max_examples = (
            None if eval_max_examples is None else check_positive_int("eval_max_examples", eval_max_examples)
        )
        if drift_policy not in config.DRIFT_POLICIES:
            raise FieldError(
                "drift_policy", f"drift_policy must be one of {', '.join(config.DRIFT_POLICIES)}, got {drift_policy!r}"
            )
        self.drift_policy = drift_policy
        self.evaluator = PeriodicEvaluator(self._periodic_evaluate)
        self._prequential_sent: dict[str, float] = {}
        self._prequential_due: set[str] = set()
        self._retrain_after: dict[str, int] = {}  # engine -> scored-run count when its drift was found
        self._drift_jobs: dict[str, Job] = {}  # engine -> its drift retrain, until it ends
        self.memory = memory if memory is not None else main.memory_mgr
        self.pathway_db = pathway_db if pathway_db is not None else main.pathway_db

        self.metrics = metrics if metrics is not None else metrics_module.METRICS
        self.stats_ = LearningStats(self.metrics)
        self.jobs_ = JobRunner(self.engines, self.stats_, self._publish, self.schedule.changed)
        self.scorer = WorkflowScorer(bus, self.engines, self.pathway_db, self.stats_, self.jobs_.report_error)
        self.prefetcher: EmbeddingPrefetcher | None = None
        if prefetch and isinstance(self.memory, EmbeddingSource):
            self.prefetcher = EmbeddingPrefetcher(
                self.queue, self.memory, lambda: any(e.uses_embeddings for e in self.engines.values()),
                self._embed,
            )
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self._running_job: Job | None = None
        self._thread: threading.Thread | None = None
        self._warming = threading.Event()  # set while the worker loads the embedder
        self._stopped = False
        self._stop_event = threading.Event()  # interrupts a periodic evaluation on stop()
        self._handlers: list[tuple[str, Callable[..., None]]] = []
        self._last_queue_full_warning = 0.0
        for name, engine in self.engines.items():
            self.metrics.engine_started(name, engine.model_name)

    @property
    def prefetch(self) -> bool:
        """Whether new text is embedded on the prefetch thread."""
        return self.prefetcher is not None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive() and not self.queue.stopping

    def _threads(self) -> list[threading.Thread]:
        threads = [
            self._thread, self.prefetcher.thread if self.prefetcher else None, self.scorer.thread,
            self.evaluator.thread,
        ]
        return [t for t in threads if t is not None]

    @property
    def worker_alive(self) -> bool:
        """True while a thread of the coordinator runs (also if :meth:`stop` timed out on it)."""
        return any(t.is_alive() for t in self._threads())

    @property
    def training_worker_alive(self) -> bool:
        """True while the thread that owns the engines runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SelfLearningCoordinator:
        """Subscribe to the input topics and start the threads. Returns ``self``."""
        with self.queue.cond:
            if self._stopped:
                raise RuntimeError("a stopped SelfLearningCoordinator cannot be started again")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._run, name=self.WORKER_NAME, daemon=True)
            self.schedule.start()
        self._thread.start()
        if self.prefetcher is not None:
            self.prefetcher.start()
        self.scorer.start()
        self.evaluator.start()
        for topic in (events.PATHWAY_NEW, events.MEMORY_NEW, events.CODE_NEW):
            self._handlers.append((topic, self._subscribe(topic, self._make_handler(topic))))
        logger.info(
            "coordinator started: engines %s, batch %d / %.3f s, evaluate every %d examples / %.1f s",
            ", ".join(self.engines), self.queue.batch_size, self.queue.batch_wait,
            self.schedule.every_examples, self.schedule.every_seconds,
        )
        return self

    def stop(self, timeout: float = 5.0) -> list[tuple[str, dict]]:
        """Stop listening and join the threads; returns the events not learned.

        Queued jobs are cancelled, a running train or auto-train is asked to
        stop, and queued events are still learned while ``timeout`` seconds
        allow. Calling it again (or before :meth:`start`) returns ``[]``.
        """
        for topic, handler in self._handlers:
            self.bus.unsubscribe(topic, handler)
        self._handlers.clear()
        with self.queue.cond:
            if self._stopped:
                return []
            self._stopped = True
            running = self._running_job
        dropped = self.queue.close(drain_for=max(0.0, timeout) * 0.8)
        self._stop_event.set()
        if running is not None:
            running.cancel_event.set()
        for job in dropped:
            self.jobs_.cancelled(job)
        deadline = time.monotonic() + max(0.0, timeout)
        self.scorer.stop(max(0.0, deadline - time.monotonic()))
        self.evaluator.stop(max(0.0, deadline - time.monotonic()))
        self._join(deadline, timeout)
        if not self.training_worker_alive:
            self._publish_prequential(force=True)  # the figures as learning stopped
        left = [(item.topic, item.payload) for item in self.queue.leftovers(self.training_worker_alive)]
        if self.prefetcher is not None:
            self.prefetcher.clear()
        if left:
            logger.warning(
                "coordinator stopped with %d events not learned (they are committed in their stores)", len(left)
            )
        self.metrics.set_queue_depth(0)
        logger.info("coordinator stopped")
        return left

    def _join(self, deadline: float, timeout: float) -> None:
        warmers = [(self._thread, self._warming)]
        if self.prefetcher is not None:
            warmers.append((self.prefetcher.thread, self.prefetcher.warming))
        for thread, warming in warmers:
            if thread is None:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive() and warming.is_set():
                # A model load in torch cannot be interrupted, and a thread abandoned
                # in the middle of one aborts the interpreter at exit: wait for it.
                logger.info("%s is still loading the embedder; waiting for it", thread.name)
                thread.join(WARM_UP_STOP_LIMIT)
            if thread.is_alive():
                logger.warning("%s still busy after %.1f s; leaving it to finish", thread.name, timeout)

    def __enter__(self) -> SelfLearningCoordinator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- event handlers (publisher's thread) -------------------------------------------
    def _make_handler(self, topic: str) -> Callable[[str, list[dict]], None]:
        def handler(_topic: str, payloads: list[dict]) -> None:
            self._accept(topic, payloads)

        handler.__name__ = f"on_{topic.replace(':', '_')}"
        return handler

    def _subscribe(self, topic: str, handler: Callable[[str, list[dict]], None]) -> Callable[..., None]:
        """Take a batch published at once (the run watcher's) in one call where the bus can;
        returns what to unsubscribe."""
        subscribe_many = getattr(self.bus, "subscribe_many", None)
        if callable(subscribe_many):
            subscribe_many(topic, handler)
            return handler

        def one(t: str, payload: dict) -> None:
            handler(t, [payload])

        one.__name__ = handler.__name__
        self.bus.subscribe(topic, one)
        return one

    def _accept(self, topic: str, payloads: list[Any]) -> None:
        """Queue the events (one publish, or one batch): checked, then offered under one lock."""
        now = time.monotonic()
        # A store's own payload (checked, and announcing a run just committed) goes straight on;
        # the engine still skips a run it has learned.
        items = [
            Input(topic, payload, now) for payload in payloads
            if type(payload) is events.CheckedPayload or self._worth_learning(topic, payload)
        ]
        if not items:
            return
        to_side = self.prefetcher is not None and topic != events.PATHWAY_NEW
        note = self.prefetcher.note if self.prefetcher is not None and topic == events.PATHWAY_NEW else None
        accepted = 0
        with self.queue.cond:
            stopping = self.queue.stopping
            for item in items:
                if self.queue.offer(item, side=to_side) is None:
                    continue
                accepted += 1
                if note is not None:
                    note(item)
        if accepted < len(items) and not stopping:
            self._refuse_full(topic, len(items) - accepted)
        if accepted:
            self.stats_.note_accepted(topic, accepted)

    def _worth_learning(self, topic: str, payload: Any) -> bool:
        """Check an event from anyone but a store: False (logged, counted) when malformed, or
        a run every engine learned already (a replayed event)."""
        try:
            events.validate_input(topic, payload)
        except (ValueError, ArithmeticError) as exc:  # 10**400 in a number: refused, counted
            logger.warning("skipping malformed %s event: %s", topic, exc)
            self.stats_.note_failed(topic)
            return False
        if topic == events.PATHWAY_NEW and all(e.has_learned(payload["run_id"]) for e in self.engines.values()):
            self.stats_.note_duplicate()
            return False
        return True

    def _refuse_full(self, topic: str, n: int = 1) -> None:
        self.stats_.note_failed(topic, n)
        with self.queue.cond:
            self._refused_full += n
            depth, size = self.queue.depth, self.queue.bytes
        now = time.monotonic()
        if now - self._last_queue_full_warning > QUEUE_FULL_WARNING_INTERVAL:
            self._last_queue_full_warning = now
            logger.warning(
                "training queue full (%d items, about %.1f MB; limits %d items, %.1f MB): refusing %s events",
                depth, size / 1e6, self.queue.max_queue, self.queue.max_bytes / 1e6, topic,
            )

    # -- manual jobs -----------------------------------------------------------------
    def _engine_name(self, engine: str | None) -> str:
        if engine is None:
            return self.main_engine_name
        if engine not in self.engines:
            raise FieldError("engine", f"engine must be one of {', '.join(self.engines)}, got {engine!r}")
        return engine

    def submit(self, kind: str, engine: str | None = None, **options: Any) -> int:
        """Queue a job of ``kind`` (``train``, ``evaluate``, ``auto_train``) with its options
        (see :func:`~menace.jobs.job_params`); returns its id."""
        kind = JobKind.coerce(kind)
        return self._submit(kind, engine, job_params(kind, **options))

    def _submit(self, kind: JobKind, engine: str | None, params: dict[str, Any]) -> int:
        job_id = self._submit_if_running(kind, engine, params)
        if job_id is None:
            raise RuntimeError("the coordinator is not running; call start() first")
        return job_id

    def _submit_if_running(self, kind: JobKind, engine: str | None, params: dict[str, Any]) -> int | None:
        """Queue a job; ``None`` (nothing queued) when the coordinator is stopped or stopping."""
        name = self._engine_name(engine)
        with self.queue.cond:
            if self.queue.stopping or self._thread is None:
                return None
            job = Job(next(self._job_ids), kind, name, params)
            self._jobs[job.id] = job
        self.queue.put_job(job)
        logger.info("job %d queued: %s on %s", job.id, kind, name)
        return job.id

    def request_train(self, engine: str | None = None, recent: int | None = None) -> int:
        """Queue a full ``train()`` of ``engine`` (default the main one); returns the job id.

        ``recent``: fit on the newest that many runs only.
        """
        return self.submit(JobKind.TRAIN, engine, recent=recent)

    def request_evaluate(self, engine: str | None = None, cv: int = 5, test_split: float = 0.2) -> int:
        """Queue an ``evaluate(cv, test_split)``; returns the job id."""
        return self.submit(JobKind.EVALUATE, engine, cv=cv, test_split=test_split)

    def request_auto_train(
        self,
        candidates: Iterable[str] | None = None,
        time_budget: float | None = None,
        engine: str | None = None,
    ) -> int:
        """Queue ``auto_train(candidates, time_budget)`` (seconds); returns the job id.

        ``candidates`` ``None`` compares :data:`~menace.job_runner.DEFAULT_AUTO_CANDIDATES`.
        """
        return self.submit(JobKind.AUTO_TRAIN, engine, candidates=candidates, time_budget=time_budget)

    def cancel(self, job_id: int) -> bool:
        """Cancel a job. True if it was queued (it will not run) or is running
        (it stops at the engine's next check, the live model unchanged, and
        ends ``cancelled``); False for an unknown or finished job.
        """
        job = self._jobs.get(job_id)
        if job is None or job.state.ended:
            return False
        if job.state == JobState.QUEUED and self.queue.remove_job(job):
            self.jobs_.cancelled(job)
        else:  # running, or just taken by the worker: it checks the event before it starts
            job.cancel_event.set()
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
            raise FieldError("job_id", f"no job with id {job_id!r}")
        job.wait(timeout)
        return job

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or in progress (workflow scoring too);
        False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if not self.queue.wait_idle(timeout):
            return False
        if not self.evaluator.wait_idle(left()) or not self.scorer.wait_idle(left()):
            return False
        return self.queue.wait_idle(left())  # an evaluation's events may have queued more

    @property
    def queue_depth(self) -> int:
        return self.queue.depth

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (what the Prometheus metrics show, per coordinator)."""
        return {
            **self.stats_.snapshot(),
            "queue_depth": self.queue.depth,
            "queue_bytes": self.queue.bytes,
            "refused_queue_full": self._refused_full,
            "waiting_for_embedding": self.queue.parked(),
        }

    # -- the worker ------------------------------------------------------------------
    def _run(self) -> None:
        logger.debug("training worker running")
        preload_drift_detector()  # before runs come: its import would stall them
        if self.prefetcher is None:
            warm_up(self.memory, self._warming)
        while True:
            work = self.queue.next_work(self.schedule.idle_timeout)
            if work is None:
                break
            inputs, job = work
            try:
                if inputs:
                    self._process_inputs(inputs)
                if job is not None:
                    self._run_job(job)
                if not self.queue.stopping:
                    self._publish_prequential()  # idle ticks (<= 0.5 s) send the last one
                    self._evaluate_due()
            except Exception:  # the worker must survive anything an engine does
                logger.exception("training worker: unexpected error")
            finally:
                done = len(inputs) + (1 if job is not None else 0)
                if done:
                    self.metrics.set_queue_depth(self.queue.finish(done))
        logger.debug("training worker finished")

    def _run_job(self, job: Job) -> None:
        with self.queue.cond:
            job.state = JobState.RUNNING
            self._running_job = job
        try:
            self.jobs_.run(job)
        finally:
            with self.queue.cond:
                self._running_job = None

    def _process_inputs(self, inputs: list[Input]) -> None:
        pathways = [i.payload for i in inputs if i.topic == events.PATHWAY_NEW]
        texts = [t for t in (side_text(i) for i in inputs if i.topic != events.PATHWAY_NEW) if t]
        if pathways:
            for name, engine in self.engines.items():
                self._partial_train(name, engine, pathways)
        if texts:
            self._embed(texts)

    def _partial_train(self, name: str, engine: Learner, payloads: list[dict]) -> None:
        seen_before = engine.n_seen
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
            self.stats_.note_failed(events.PATHWAY_NEW)
            self.jobs_.report_error(name, exc, events.PATHWAY_NEW, None, run_id=payloads[0].get("run_id"))
            return
        duration = time.perf_counter() - start
        if not learned:
            logger.debug("%s: partial_train took no update from %d examples", name, len(payloads))
            return
        examples = engine.n_seen - seen_before if engine.n_seen >= seen_before else len(payloads)
        self.stats_.note_training(name, "partial", duration, examples=examples)
        self.schedule.learned(name, examples)
        self._publish(events.LEARNING_TRAINED, {
            "engine": name, "model": engine.model_name, "mode": "partial", "examples": examples,
            "duration_s": duration, "ts": time.time(), "job_id": None,
            "run_ids": [p["run_id"] for p in payloads], "learned_through": engine.newest_learned_run_id(),
        })
        self._prequential_due.add(name)
        drift = engine.pop_drift()
        if drift is not None:
            self._on_drift(name, engine, drift)
        self._retrain_if_ready(name, engine)

    # -- learning quality ---------------------------------------------------------------
    def _publish_prequential(self, force: bool = False) -> None:
        """``learning:prequential`` for engines that learned since, at most every
        :data:`~menace.config.PREQUENTIAL_EVENT_INTERVAL` seconds (``force``: now, at stop)."""
        now = time.monotonic()
        for name in list(self._prequential_due):
            if not force and now - self._prequential_sent.get(name, -math.inf) < config.PREQUENTIAL_EVENT_INTERVAL:
                continue
            self._prequential_due.discard(name)
            snapshot = self.engines[name].prequential_snapshot()
            if snapshot is not None:
                self._prequential_sent[name] = now
                self._publish(events.LEARNING_PREQUENTIAL, snapshot)

    def _on_drift(self, name: str, engine: Learner, drift: Any) -> None:
        """Announce a drift and apply the drift policy (see the class doc)."""
        pending = self._retrain_after.get(name) is not None or self._drift_retrain_running(name)
        action = "none" if self.drift_policy != "retrain" else ("retrain pending" if pending else "retrain")
        self._publish(events.LEARNING_DRIFT, {
            "engine": name, "model": engine.model_name, "n_examples": drift.n_examples,
            "error_before": drift.error_before, "error_after": drift.error_after,
            "runs_after": drift.runs_after, "action": action, "ts": time.time(),
        })
        if action == "retrain":
            self._retrain_after[name] = drift.n_examples

    def _drift_retrain_running(self, name: str) -> bool:
        job = self._drift_jobs.get(name)
        return job is not None and not job.state.ended

    def _retrain_if_ready(self, name: str, engine: Learner) -> None:
        """The drift policy: once :data:`~menace.config.DRIFT_RETRAIN_MIN` runs came after the
        drift was found, retrain on those runs (the newest; at most
        :data:`~menace.config.DRIFT_RETRAIN_MAX`): runs after the finding are the workflow as it
        is now, where ADWIN's cut may still hold runs from before the change."""
        found = self._retrain_after.get(name)
        snapshot = engine.prequential_snapshot() if found is not None else None
        if snapshot is None:
            return
        since = snapshot["n_total"] - found
        if since < config.DRIFT_RETRAIN_MIN:
            return
        runs = min(since, config.DRIFT_RETRAIN_MAX)
        # The worker may learn its last inputs while stop() runs: no retrain is queued then
        # (the drift stays noted; a service started again finds it anew from its own errors).
        job_id = self._submit_if_running(JobKind.TRAIN, name, {"recent": runs, "reason": "drift"})
        if job_id is None:
            return
        del self._retrain_after[name]
        self._drift_jobs[name] = self._jobs[job_id]
        logger.info("%s: drift policy: retraining on the newest %d runs (job %d)", name, runs, job_id)

    def _embed(self, texts: list[str]) -> None:
        if self.memory is None:
            return
        try:
            self.memory.embed_many(texts)
        except Exception as exc:
            logger.warning("could not embed %d texts: %s", len(texts), exc)
            self.jobs_.report_error(self.main_engine_name, exc, "embedding", None)
            return
        self.stats_.note_embedded(len(texts))

    def _evaluate_due(self) -> None:
        for name, trigger in self.schedule.due():
            if not self.evaluator.submit(name, trigger):
                logger.debug("%s: an evaluation was still waiting; the newer one (%s) replaces it", name, trigger)

    def _periodic_evaluate(self, name: str, trigger: str) -> None:
        """One scheduled evaluation, on the evaluator's thread (a capped sample of runs)."""
        try:
            self.jobs_.evaluate(
                name, self.eval_cv, self.eval_test_split, None, trigger, cancel=self._stop_event,
                max_examples=self.eval_max_examples,
            )
        except TrainingCancelled:
            logger.info("%s: periodic evaluation interrupted by stop()", name)
        except ValueError as exc:  # too little data yet: try again at the next trigger
            logger.info("%s: periodic evaluation skipped: %s", name, exc)
        except Exception as exc:
            logger.exception("%s: periodic evaluation failed", name)
            self.jobs_.report_error(name, exc, "evaluate", None)

    def _publish(self, topic: str, payload: dict) -> None:
        try:
            self.bus.publish(topic, payload)
        except Exception:  # a failing monitor must not stop learning
            logger.exception("could not publish %s", topic)


def _engine_map(engines: Any) -> dict[str, Learner]:
    if isinstance(engines, Mapping):
        engine_map = dict(engines)
    elif engines is not None:
        engine_map = {str(getattr(engines, "name", None) or "pathways"): engines}
    else:
        engine_map = {}
    if not engine_map:
        raise FieldError("engines", "engines must name at least one learning engine")
    for name, engine in engine_map.items():
        if not isinstance(name, str) or not name:
            raise FieldError("engines", f"engine names must be non-empty text, got {name!r}")
        if not callable(getattr(engine, "partial_train", None)):
            raise FieldError("engines", f"engines[{name!r}] has no partial_train(); got {engine!r:.80}")
    return engine_map


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise FieldError(name, f"{name} must be a finite number >= 0 (seconds), got {value!r}")
    return float(value)
