"""The self-learning service: the whole Menace stack on one data directory.

Run it headless::

    python -m menace.self_learning_service [--data-dir DIR] [--model NAME] ...
    menace-service --help

or in a background thread of another program (the desktop app, a test)::

    from menace.self_learning_service import run_background

    start, stop = run_background()
    stack = start()        # the running stack: bus, stores, engines, coordinator
    ...
    stop()

The stack: a :class:`~menace.unified_event_bus.UnifiedEventBus` (journaled in
``events.db``), the stores (``pathways.db``, ``mem.db`` with a
:class:`~menace.gpt_memory.GPTMemory` on top, ``code.db``, ``workflows.db``), a
:class:`~menace.learning_engine.LearningEngine` named ``pathways`` (models in
``models/``, evaluation history in ``evaluations.jsonl``), the
:class:`~menace.self_learning_coordinator.SelfLearningCoordinator` and the
Prometheus endpoint. On start the engine loads its last saved model and the
stored evaluation history (the score gauges show the last evaluation), and the
service publishes ``service:started``; on stop it publishes
``service:stopped``, saves what the engine keeps, and closes everything.

Runs that other processes commit to ``pathways.db`` are learned too: a
:class:`~menace.run_watcher.RunWatcher` announces them on the service's bus,
and ``service_state.json`` in the data directory remembers up to which run,
so a restart learns the runs committed while the service was down. After a
kill (no state written) it resumes after the newest run the saved model
learned; runs announced again are skipped by the engine (``learned_runs``).

Metrics port: when the port comes from a flag or ``MENACE_METRICS_PORT`` and
is taken, the service refuses to start with a clear message (exit status 2).
When it is only the default (8001) - for instance ``run_background()`` with no
arguments while another Menace already serves metrics - it logs a warning and
runs without metrics. Port 0 turns metrics off.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from . import config, events
from .backends import open_backend, read_state_file, write_state_file
from .code_db import CodeDB
from .config import Settings
from .errors import start_error_message
from .files import check_data_dir
from .gpt_memory import GPTMemory
from .lease import FileLease, Lease, LeaseHeldError
from .menace_memory_manager import MenaceMemoryManager
from .metrics_exporter import (
    MetricsPortInUseError,
    MetricsServer,
    MetricsServerError,
    start_metrics_server,
)
from .models import available_models, get_family
from .neuroplasticity import PathwayDB
from .run_watcher import RunWatcher
from .security import warn_if_exposed
from .self_learning_coordinator import SelfLearningCoordinator
from .storage import SchemaError
from .unified_event_bus import JournalRetention, UnifiedEventBus
from .workflow_db import WorkflowDB

logger = logging.getLogger(__name__)

#: Name of the service's learning engine (the coordinator's main engine).
MAIN_ENGINE = "pathways"
#: Seconds ``stop()`` gives the coordinator to learn what is still queued.
STOP_TIMEOUT = 3.0
#: In the data directory: where the run watcher resumes after a restart.
STATE_FILE = config.SERVICE_STATE_FILE
#: torch threads of the headless service unless ``OMP_NUM_THREADS`` is set.
TORCH_THREADS = 1


@dataclass
class ServiceStack:
    """Everything the service runs, as ``run_background()``'s ``start()`` returns it.

    ``engines`` maps engine names to engines; ``engine`` is the main one.
    ``metrics`` is the server of ``/metrics``: the
    :class:`~menace.api.server.ApiServer` (the HTTP API and the metrics on
    one port), a plain :class:`~menace.metrics_exporter.MetricsServer` when
    the API is off, or ``None`` when metrics are off or their port was taken.
    ``lease`` is the learner lease the stack holds on its data directory
    (released by :meth:`stop`); ``session_event_id`` the newest event before
    the stack started.
    """

    settings: Settings
    bus: UnifiedEventBus
    pathway_db: PathwayDB
    memory: MenaceMemoryManager
    gpt_memory: GPTMemory
    code_db: CodeDB
    workflow_db: WorkflowDB
    engines: dict[str, Any]
    engine: Any
    coordinator: SelfLearningCoordinator
    metrics: MetricsServer | None = None
    watcher: RunWatcher | None = None
    started: float = 0.0
    lease: Lease | None = None
    session_event_id: int = 0
    #: Where the stores live (:mod:`menace.backends`): the data directory, or a PostgreSQL database.
    backend: Any = None
    _stopped: bool = False

    @property
    def metrics_url(self) -> str | None:
        return self.metrics.url if self.metrics is not None else None

    @property
    def api_url(self) -> str | None:
        """The base URL of the HTTP API (``http://127.0.0.1:8001``), or ``None`` when it is off."""
        return getattr(self.metrics, "api_url", None)

    def announce(self, topic: str) -> None:
        """Publish ``service:started`` / ``service:stopped`` (a failing subscriber is logged)."""
        try:
            self.bus.publish(
                topic,
                {
                    "data_dir": str(self.settings.data_dir),
                    "model": self.engine.model_name,
                    "metrics_url": self.metrics_url,
                    "ts": time.time(),
                },
            )
        except Exception:  # a failing subscriber must not stop the service starting or stopping
            logger.exception("could not publish %s", topic)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the coordinator and the metrics server, save, and close every store.

        Idempotent. Everything committed stays on disk; events still queued
        after ``timeout`` seconds are left unlearned (their records are stored).
        """
        if self._stopped:
            return
        self._stopped = True
        if self.watcher is not None:
            self.watcher.stop()
        left = self.coordinator.stop(timeout)
        if left:
            logger.info("%d queued events were not learned before stopping", len(left))
        if self.watcher is not None:
            self._save_state(left)
        if self.coordinator.training_worker_alive:
            # still inside an engine call: saving would wait for it (the engine's lock)
            logger.warning("training worker still busy; not saving the model this time")
        else:
            for name, engine in self.engines.items():
                _save_engine(name, engine)
        self.announce(events.SERVICE_STOPPED)
        if self.metrics is not None:
            self.metrics.stop()
        self._close_stores()
        logger.info("Menace service stopped (%s)", self.settings.store_location)

    def _close_stores(self) -> None:
        for store in (self.pathway_db, self.memory, self.code_db, self.workflow_db, self.bus):
            try:
                store.close()
            except Exception:
                logger.exception("could not close %r", store)
        if self.lease is not None:
            _close(self.lease)  # last: a standby takes over only once everything is saved
        if self.backend is not None:
            self.backend.close()

    def holds_lease(self) -> bool:
        """Whether the stack still holds its learner lease (a database lease can be lost with its connection)."""
        check = getattr(self.lease, "check", None)
        return not callable(check) or bool(check())


    def _save_state(self, left: list[tuple[str, dict]]) -> None:
        """Remember up to which run everything was announced, so a restart resumes there."""
        try:
            through = self.watcher.covered_through()
            unlearned = [p.get("run_id") for t, p in left if t == events.PATHWAY_NEW]
            unlearned = [r for r in unlearned if isinstance(r, int)]
            if unlearned:
                through = min(through, min(unlearned) - 1)
            if self.backend is not None:
                self.backend.write_state({"last_run_id": through})
            else:
                write_state(self.settings, {"last_run_id": through})
        except Exception:
            logger.exception("could not save the service state")


def limit_blas_threads(threads: int) -> None:
    """Run numpy's and scipy's BLAS on ``threads`` threads, for the whole process (0: leave it).

    The learner's matrices are small (a micro-batch of runs), so more threads do not
    make an update faster; OpenBLAS's idle threads spin between calls instead, and
    took more CPU than the learner itself (``config.DEFAULT_BLAS_THREADS``).
    Libraries loaded later keep their own default.
    """
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it the default stays
        logger.info("threadpoolctl is not installed: BLAS keeps its default threads")
        return
    threadpool_limits(limits=threads, user_api="blas")


def read_state(settings: Settings) -> dict[str, Any]:
    """The service's small state file (``service_state.json``), or ``{}``."""
    return read_state_file(settings.path(STATE_FILE))


def write_state(settings: Settings, state: dict[str, Any]) -> None:
    write_state_file(settings.path(STATE_FILE), state)


def _newest_learned(engine: Any) -> int | None:
    """The newest run id ``engine``'s model learned, or ``None`` (untrained, or not known)."""
    newest = getattr(engine, "newest_learned_run_id", None)
    if not callable(newest):
        return None
    try:
        run_id = newest()
    except Exception:
        logger.exception("could not read which runs the model learned")
        return None
    return run_id if isinstance(run_id, int) and run_id > 0 else None


def _save_engine(name: str, engine: Any) -> None:
    """Save the model with what it learned since its last save (partial updates)."""
    save = getattr(engine, "save", None)
    if callable(save):
        try:
            save()
        except Exception:
            logger.exception("engine %s: could not save its model", name)


def _describe_restored(name: str, engine: Any) -> None:
    """Log what the engine loaded from disk (it loads its model and history when built)."""
    history = getattr(engine, "evaluation_history", None) or []
    if getattr(engine, "is_trained", False):
        logger.info(
            "engine %s: loaded saved %s model (%d examples), %d stored evaluations",
            name, getattr(engine, "model_name", "?"), getattr(engine, "n_seen", 0), len(history),
        )
    else:
        logger.info("engine %s: no saved model yet, %d stored evaluations", name, len(history))


def make_engine(
    settings: Settings, pathway_db: PathwayDB, memory: MenaceMemoryManager, *, backend: Any = None,
    lease: Any = None, **options: Any
) -> Any:
    """The service's main engine on ``settings``; ``options`` are more LearningEngine arguments.

    Its evaluations and saved models are where ``backend`` keeps them (files in
    the data directory by default; the database, saved under ``lease``, on PostgreSQL).
    """
    from .learning_engine import LearningEngine  # imported here: it pulls in scikit-learn

    backend = backend if backend is not None else open_backend(settings)
    return LearningEngine(
        pathway_db,
        memory,
        model=settings.model,
        model_params=options.pop("model_params", None) or settings.model_params or None,
        name=MAIN_ENGINE,
        prequential_window=settings.prequential_window,
        prequential_path=settings.path(config.PREQUENTIAL_FILE),
        **backend.engine_storage(MAIN_ENGINE, lease),
        **options,
    )


def start_stack(
    settings: Settings | None = None,
    *,
    metrics_required: bool = False,
    batch_size: int = 256,
    batch_wait: float = 0.02,
    watch_runs: bool = True,
    engine_options: dict[str, Any] | None = None,
    lease: Lease | None = None,
) -> ServiceStack:
    """Take the data directory's lease, open the stores, load the engine and start learning.

    Returns the running stack. One learner per data directory: ``lease`` is
    one already held (``--standby`` waits for it), else the stack takes a
    :class:`~menace.lease.FileLease` and raises
    :class:`~menace.lease.LeaseHeldError` naming the running learner when
    another one holds it. The stack releases the lease when it stops.

    With ``settings.api`` the HTTP API (:mod:`menace.api`) is served on the
    metrics address and port, beside ``/metrics``.

    ``engine_options`` are passed on to the
    :class:`~menace.learning_engine.LearningEngine` (``save_every``,
    ``seed``, ``features``, ``model_params``, ...), so an embedding program or
    a test can tune the engine without reaching inside the service.

    ``metrics_required``: a taken metrics port raises
    :class:`~menace.metrics_exporter.MetricsPortInUseError` instead of logging
    a warning and running without metrics. ``watch_runs``: also learn runs
    that other processes commit to ``pathways.db`` (a
    :class:`~menace.run_watcher.RunWatcher`, resuming where the last run of
    the service stopped). Raises ``ValueError`` for bad settings (an unknown
    model name, say); nothing keeps running then.
    """
    settings = settings if settings is not None else Settings()
    if not isinstance(settings, Settings):
        raise ValueError(f"settings must be a menace.config.Settings, got {type(settings).__name__}")
    if settings.model_params:  # refused before anything is written: the model's own checks
        get_family(settings.model, **settings.model_params).check_available()
    check_data_dir(settings.data_dir)  # 0700 if new; another user's or others-writable: refused
    backend = open_backend(settings)  # ConnectionError: the database cannot be reached
    opened: list[Any] = [backend]
    try:
        if lease is None:
            lease = backend.lease()
            opened.append(lease)
            lease.acquire()  # LeaseHeldError: another learner runs here
        else:
            opened.append(lease)
        bus, pathway_db, memory, code_db, workflow_db = _open_stores(backend, settings, opened)
        session_event_id = bus.newest_event_id()
        engine = make_engine(settings, pathway_db, memory, backend=backend, lease=lease, **(engine_options or {}))
        engines = {MAIN_ENGINE: engine}
        limit_blas_threads(settings.blas_threads)  # after the engine: its model loaded scipy's BLAS
        _describe_restored(MAIN_ENGINE, engine)
        server = None if settings.api else _start_metrics(settings, metrics_required, opened)
        coordinator = SelfLearningCoordinator(
            bus,
            engines,
            batch_size=batch_size,
            batch_wait=batch_wait,
            eval_every_examples=settings.eval_every_examples,
            eval_every_seconds=settings.eval_every_seconds,
            eval_max_examples=settings.eval_max_examples or None,
            drift_policy=settings.drift_policy,
            memory=memory,
            pathway_db=pathway_db,
        )
        coordinator.start()
        opened.append(coordinator)
        watcher = _start_watcher(backend, bus, pathway_db, engine, opened, lease) if watch_runs else None
        stack = ServiceStack(
            settings=settings,
            bus=bus,
            pathway_db=pathway_db,
            memory=memory,
            gpt_memory=GPTMemory(memory),
            code_db=code_db,
            workflow_db=workflow_db,
            engines=engines,
            engine=engine,
            coordinator=coordinator,
            metrics=server,
            watcher=watcher,
            started=time.time(),
            lease=lease,
            session_event_id=session_event_id,
            backend=backend,
        )
        if settings.api:
            stack.metrics = _start_api(stack, metrics_required, opened)
        lease.publish(api_url=stack.api_url, metrics_url=stack.metrics_url, ready=True)
    except BaseException:
        for thing in reversed(opened):
            try:
                _close(thing)
            except Exception:
                logger.exception("could not close %r", thing)
        raise
    stack.announce(events.SERVICE_STARTED)
    logger.info(
        "Menace service running on %s (model %s, metrics %s)",
        settings.store_location, engine.model_name, stack.metrics_url or "off",
    )
    return stack


def _open_stores(backend: Any, settings: Settings, opened: list[Any]) -> tuple:
    """The bus and the four stores of the backend (each added to ``opened``)."""
    retention = JournalRetention.from_settings(settings.journal_max_age_days, settings.journal_max_mb)
    bus = backend.open_bus(settings.journal, retention=retention)
    opened.append(bus)
    pathway_db = backend.pathway_db(event_bus=bus)
    opened.append(pathway_db)
    memory = backend.memory(event_bus=bus)
    opened.append(memory)
    code_db = backend.code_db(event_bus=bus)
    opened.append(code_db)
    workflow_db = backend.workflow_db(event_bus=bus)
    opened.append(workflow_db)
    return bus, pathway_db, memory, code_db, workflow_db


def _start_metrics(settings: Settings, required: bool, opened: list[Any]) -> MetricsServer | None:
    """The metrics endpoint, or ``None`` (off, or its port taken when not ``required``)."""
    if not settings.metrics_port:
        return None
    warn_if_exposed(settings.metrics_addr, "the metrics endpoint")
    try:
        server = start_metrics_server(settings.metrics_port, settings.metrics_addr)
    except MetricsServerError as exc:
        if required:
            raise
        logger.warning("%s; running without metrics", exc)
        return None
    opened.append(server)
    return server


def _close(thing: Any) -> None:
    for name in ("stop", "close", "release"):
        method = getattr(thing, name, None)
        if callable(method):
            method()
            return


def _start_api(stack: ServiceStack, required: bool, opened: list[Any]) -> Any:
    """The HTTP API with ``/metrics`` on the metrics port, or ``None`` (off, or the port taken when not ``required``)."""
    settings = stack.settings
    if not settings.metrics_port:
        return None
    from .api.server import start_api_server  # imported here: it pulls in FastAPI and uvicorn
    from .api.tokens import load_or_create_token

    token = settings.api_token or load_or_create_token(settings.data_dir)
    try:
        server = start_api_server(
            stack, settings.metrics_port, settings.metrics_addr, token=token,
            metrics_auth=settings.metrics_auth,
            tls_cert=str(settings.tls_cert) if settings.tls_cert else None,
            tls_key=str(settings.tls_key) if settings.tls_key else None,
        )
    except MetricsServerError as exc:
        if required:
            raise
        logger.warning("%s; running without metrics or the API", exc.strerror or exc)
        return None
    opened.append(server)
    return server


def _learned_without_gap(engine: Any) -> int | None:
    """The highest run id up to which the saved model learned every run (``None``: untrained).

    Not simply the newest it learned: runs are learned nearly, not strictly,
    in order, so resuming after the newest could skip one still queued when
    the model was saved.
    """
    if not getattr(engine, "is_trained", False):
        return None
    through, ledger = getattr(engine, "trained_through_run_id", None), getattr(engine, "learned_runs", None)
    first_outside = getattr(getattr(engine, "pathway_db", None), "first_run_outside", None)
    if isinstance(through, int) and callable(first_outside) and callable(getattr(ledger, "ranges", None)):
        # Ids a rolled-back transaction took never exist: the store skips them (PostgreSQL).
        first = first_outside(through, ledger.ranges())
        return engine.pathway_db.newest_run_id() if first is None else first - 1
    if isinstance(through, int) and callable(getattr(ledger, "contiguous_from", None)):
        return ledger.contiguous_from(through)
    return _newest_learned(engine)


def _start_watcher(
    backend: Any, bus: Any, pathway_db: PathwayDB, engine: Any, opened: list[Any], lease: Any = None
) -> RunWatcher:
    since = backend.read_state().get("last_run_id")
    if isinstance(since, int) and since > pathway_db.newest_run_id():
        logger.warning("ignoring the saved last_run_id %d: it is beyond the newest run in %s", since, pathway_db.path)
        since = None
    if not isinstance(since, int) or isinstance(since, bool):
        # No clean stop recorded (first start, or the last learner was killed):
        # resume where the saved model has learned every run; with no saved model
        # after a killed learner (a takeover), learn every stored run.
        since = _learned_without_gap(engine)
        crashed = getattr(lease, "previous", None) is not None
        if since is None and crashed:
            since = 0
        if crashed:
            logger.info("the last learner (%s) stopped without saving its state; learning the runs after run %s",
                        lease.previous.describe(), since)
    watcher = RunWatcher(bus, pathway_db, since_run_id=since)
    watcher.start()
    opened.append(watcher)
    return watcher


_SETTING_NAMES = {f.name for f in fields(Settings)}
_STACK_OPTIONS = {"metrics_required", "batch_size", "batch_wait", "watch_runs", "engine_options"}


def run_background(
    settings: Settings | None = None, **overrides: Any
) -> tuple[Callable[[], ServiceStack], Callable[[], None]]:
    """Return ``(start, stop)`` for running the service inside another program.

    ``start()`` builds and starts the stack (see :func:`start_stack`) and
    returns the :class:`ServiceStack`; called again while running it returns
    the same stack. ``stop()`` stops and closes everything and may be called
    more than once. ``overrides`` are :class:`~menace.config.Settings` fields
    (``data_dir``, ``model``, ``eval_every_examples``, ``eval_every_seconds``,
    ``metrics_addr``, ``metrics_port``, ``journal``) applied on top of
    ``settings`` (default: the environment and the defaults), plus
    ``batch_size``, ``batch_wait``, ``metrics_required`` and ``watch_runs``.

    With no arguments it uses the per-user data directory and metrics port
    8001; if that port is taken it logs a warning and runs without metrics.

    As ``menace-service`` does, ``start()`` moves the objects alive once the
    stack runs (modules, the model, the stores, and the host program's own)
    out of the garbage collector's full collections (``gc.freeze()``): they
    live as long as the process, and walking them stalled every thread, the
    learner's included, for ~0.5 s per full collection under a stream of runs.
    """
    unknown = set(overrides) - _SETTING_NAMES - _STACK_OPTIONS
    if unknown:
        valid = ", ".join(sorted(_SETTING_NAMES | _STACK_OPTIONS))
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; valid: {valid}")
    stack_options = {k: overrides.pop(k) for k in list(overrides) if k in _STACK_OPTIONS}
    if settings is not None and not isinstance(settings, Settings):
        raise ValueError(f"settings must be a menace.config.Settings, got {type(settings).__name__}")
    lock = threading.Lock()
    state: dict[str, ServiceStack | None] = {"stack": None}

    def start() -> ServiceStack:
        with lock:
            if state["stack"] is None:
                if settings is None:
                    chosen = Settings(**overrides)
                else:
                    chosen = Settings(**{f.name: getattr(settings, f.name) for f in fields(Settings)} | overrides)
                state["stack"] = start_stack(chosen, **stack_options)
                # See above, and main(). No gc.collect() first: on the monitor's service thread
                # it ran the finalizers of Qt objects off the GUI thread and hung the app.
                gc.freeze()
            return state["stack"]

    def stop() -> None:
        with lock:
            stack, state["stack"] = state["stack"], None
        if stack is not None:
            stack.stop()

    return start, stop


# -- command line --------------------------------------------------------------------------


def _env_or(name: str, default: Any) -> str:
    value = os.environ.get(name)
    return f"{value} from ${name}" if value else f"{default}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="menace-service",
        description=(
            "Run Menace's self-learning service: store pathways, memory, code and "
            "workflows in a data directory, learn from every new record as it is "
            "logged, and serve Prometheus metrics. Runs until Ctrl-C or SIGTERM."
        ),
        epilog=(
            "Each option has an environment variable; a flag beats the variable, "
            "which beats the default. MENACE_EMBEDDER=hashing|minilm chooses the "
            "text embedder (default MiniLM when the transformer extra is installed). "
            "torch runs on one thread unless OMP_NUM_THREADS says otherwise."
        ),
    )
    parser.add_argument(
        "--data-dir", metavar="DIR",
        help=f"data directory for the SQLite files, models and evaluation history "
        f"(env MENACE_DATA_DIR; current: {config.default_data_dir()})",
    )
    parser.add_argument(
        "--model", metavar="NAME",
        help=f"model family: {', '.join(available_models())} "
        f"(env MENACE_MODEL; default: the model used last, e.g. an auto-train's choice, "
        f"else {config.DEFAULT_MODEL}; current: {_env_or('MENACE_MODEL', 'the model used last')})",
    )
    parser.add_argument(
        "--model-param", metavar="NAME=VALUE", action="append", type=_model_param, dest="model_param",
        help="a setting of --model's family, repeatable: e.g. --model transformer --model-param "
        "model_path=/models/my-bert --model-param epochs=2 (VALUE is a number, true/false, null or "
        "text; env MENACE_MODEL_PARAMS='NAME=VALUE;NAME=VALUE', which a flag beats name by name)",
    )
    parser.add_argument(
        "--eval-every", metavar="N", type=int,
        help=f"evaluate after every N learned examples, 0 for never "
        f"(env MENACE_EVAL_EVERY; current: {_env_or('MENACE_EVAL_EVERY', config.DEFAULT_EVAL_EVERY)})",
    )
    parser.add_argument(
        "--eval-interval", metavar="SECONDS", type=float,
        help=f"evaluate every SECONDS while the model changes, 0 for never "
        f"(env MENACE_EVAL_INTERVAL; current: {_env_or('MENACE_EVAL_INTERVAL', config.DEFAULT_EVAL_INTERVAL)})",
    )
    parser.add_argument(
        "--eval-max-examples", metavar="N", type=int,
        help=f"a periodic evaluation reads at most the newest N runs, 0 for all "
        f"(env MENACE_EVAL_MAX_EXAMPLES; current: "
        f"{_env_or('MENACE_EVAL_MAX_EXAMPLES', config.DEFAULT_EVAL_MAX_EXAMPLES)})",
    )
    parser.add_argument(
        "--prequential-window", metavar="N", type=int,
        help=f"runs in the rolling test-then-train accuracy "
        f"(env MENACE_PREQUENTIAL_WINDOW; current: "
        f"{_env_or('MENACE_PREQUENTIAL_WINDOW', config.DEFAULT_PREQUENTIAL_WINDOW)})",
    )
    parser.add_argument(
        "--blas-threads", metavar="N", type=int,
        help=f"threads of numpy's and scipy's BLAS, 0 for one per core "
        f"(env MENACE_BLAS_THREADS; current: {_env_or('MENACE_BLAS_THREADS', config.DEFAULT_BLAS_THREADS)})",
    )
    parser.add_argument(
        "--drift-policy", metavar="POLICY", choices=config.DRIFT_POLICIES,
        help=f"what a drift (the error rate rose) does: retrain on the runs since the change, "
        f"or none (env MENACE_DRIFT_POLICY; current: {_env_or('MENACE_DRIFT_POLICY', config.DEFAULT_DRIFT_POLICY)})",
    )
    parser.add_argument(
        "--metrics-addr", metavar="ADDR",
        help=f"address the Prometheus endpoint binds "
        f"(env MENACE_METRICS_ADDR; current: {_env_or('MENACE_METRICS_ADDR', config.DEFAULT_METRICS_ADDR)})",
    )
    parser.add_argument(
        "--metrics-port", metavar="PORT", type=int,
        help=f"port of the Prometheus endpoint, 0 for no metrics "
        f"(env MENACE_METRICS_PORT; current: {_env_or('MENACE_METRICS_PORT', config.DEFAULT_METRICS_PORT)})",
    )
    parser.add_argument(
        "--no-journal", action="store_true",
        help="do not keep the durable event journal (events.db)",
    )
    parser.add_argument(
        "--journal-max-age", metavar="DAYS", type=float,
        help=f"the journal drops events older than DAYS, 0 for no age limit (env "
        f"MENACE_JOURNAL_MAX_AGE_DAYS; current: "
        f"{_env_or('MENACE_JOURNAL_MAX_AGE_DAYS', config.DEFAULT_JOURNAL_MAX_AGE_DAYS)})",
    )
    parser.add_argument(
        "--journal-max-mb", metavar="MB", type=float,
        help=f"the journal drops its oldest events beyond MB megabytes, 0 for no size limit "
        f"(env MENACE_JOURNAL_MAX_MB; current: {_env_or('MENACE_JOURNAL_MAX_MB', config.DEFAULT_JOURNAL_MAX_MB)})",
    )
    parser.add_argument(
        "--no-watch", action="store_true",
        help="learn only from records logged in this process, not from runs other "
        "processes commit to pathways.db (by default they are picked up within about 50 ms)",
    )
    parser.add_argument(
        "--no-api", action="store_true",
        help="serve only /metrics, not the HTTP API (env MENACE_API=0)",
    )
    parser.add_argument(
        "--api-token", metavar="TOKEN",
        help="bearer token the API requires, 16 to 512 characters (env MENACE_API_TOKEN, which "
        "keeps it out of the process list; default: made on first start in DATA_DIR/api_token, mode 0600)",
    )
    parser.add_argument(
        "--metrics-auth", action="store_true",
        help="/metrics also requires the API token (env MENACE_METRICS_AUTH=1; default: open)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE",
        help="serve HTTPS with this certificate (PEM; env MENACE_TLS_CERT; with --tls-key)",
    )
    parser.add_argument(
        "--tls-key", metavar="FILE",
        help="the certificate's private key (PEM; env MENACE_TLS_KEY)",
    )
    parser.add_argument(
        "--database-url", metavar="URL",
        help="keep every store, the saved models and the learner lease in this PostgreSQL "
        "database (postgresql://user@host/db; env MENACE_DATABASE_URL, which keeps a password "
        "out of the process list; default: SQLite files in the data directory)",
    )
    parser.add_argument(
        "--standby", action="store_true",
        help="if another service learns from the data directory (or database), wait and take "
        "over when it stops or dies (within about a second; a lost host within about 10 s) "
        "instead of exiting with status 2",
    )
    parser.add_argument(
        "--log-level", metavar="LEVEL", default=os.environ.get("MENACE_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
        help="DEBUG, INFO, WARNING or ERROR (env MENACE_LOG_LEVEL; default INFO)",
    )
    return parser


def _model_param(text: str) -> tuple[str, Any]:
    """argparse's reading of one ``--model-param NAME=VALUE``."""
    try:
        return config.parse_model_param(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed flags on top of the environment and the defaults."""
    given = {
        "data_dir": args.data_dir,
        "model": args.model,
        "eval_every_examples": args.eval_every,
        "eval_every_seconds": args.eval_interval,
        "eval_max_examples": args.eval_max_examples,
        "prequential_window": args.prequential_window,
        "drift_policy": args.drift_policy,
        "blas_threads": getattr(args, "blas_threads", None),
        "metrics_addr": args.metrics_addr,
        "metrics_port": args.metrics_port,
        "api_token": getattr(args, "api_token", None),
        "tls_cert": getattr(args, "tls_cert", None),
        "tls_key": getattr(args, "tls_key", None),
        "journal_max_age_days": args.journal_max_age,
        "journal_max_mb": args.journal_max_mb,
        "database_url": getattr(args, "database_url", None),
    }
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if getattr(args, "model_param", None):
        overrides["model_params"] = {**config.env_model_params(), **dict(args.model_param)}
    if args.no_journal:
        overrides["journal"] = False
    if getattr(args, "no_api", False):
        overrides["api"] = False
    if getattr(args, "metrics_auth", False):
        overrides["metrics_auth"] = True
    return Settings(**overrides)


#: Seconds a standby that took over keeps trying the port its dead predecessor held.
TAKEOVER_PORT_WAIT = 5.0


def _start_service(
    settings: Settings, args: argparse.Namespace, explicit_port: bool, stop: threading.Event
) -> ServiceStack | None:
    """Start the stack; with ``--standby`` first wait for the lease (``None``: stopped while waiting)."""
    if not args.standby:
        return start_stack(settings, metrics_required=explicit_port, watch_runs=not args.no_watch)

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder is not None else "another process"
        logger.info("standby: %s is used by %s; waiting to take over", settings.store_location, who)

    _preload(settings)
    deadline = None
    while True:
        lease = _new_lease(settings)
        if not lease.wait(stop, on_wait=waiting):
            _close(lease)
            return None
        deadline = deadline or time.monotonic() + TAKEOVER_PORT_WAIT
        try:
            return start_stack(settings, metrics_required=explicit_port, watch_runs=not args.no_watch, lease=lease)
        except MetricsPortInUseError:
            # The dead learner's socket may outlive its lock by a moment.
            if time.monotonic() > deadline or stop.wait(0.2):
                raise


def _preload(settings: Settings) -> None:
    """Import what starting the stack needs while a standby waits, so a takeover starts learning sooner."""
    import importlib

    names = ["menace.learning_engine", "menace.self_learning_coordinator"]
    if settings.api:
        names.append("menace.api.server")
    if settings.database_url:
        names += ["menace.postgres.backend", "menace.postgres.pathway_db", "menace.postgres.memory",
                  "menace.postgres.documents", "menace.postgres.journal", "menace.postgres.learner_state"]
    for name in names:
        importlib.import_module(name)


def _new_lease(settings: Settings) -> Lease:
    """An unheld lease on the stores of ``settings`` (the database's, or the data directory's)."""
    if settings.database_url:
        from .postgres.lease import PgLease

        return PgLease(settings.database_url)
    return FileLease(settings.data_dir)


def _start_or_explain(
    settings: Settings, args: argparse.Namespace, explicit_port: bool, stop: threading.Event
) -> ServiceStack | int:
    """The running stack, or the exit status after one line on stderr saying why not."""
    try:
        stack = _start_service(settings, args, explicit_port, stop)
    except LeaseHeldError as exc:
        print(f"menace-service: error: {exc} (--standby waits to take over)", file=sys.stderr)
        return 2
    except MetricsPortInUseError as exc:
        print(f"menace-service: error: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, MetricsServerError, ConnectionError, SchemaError) as exc:
        print(f"menace-service: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an unusable data directory or file: one line naming it, exit 2
        message = start_error_message(exc)
        if message is None:
            raise
        logger.debug("start failed", exc_info=True)
        print(f"menace-service: error: {message}", file=sys.stderr)
        return 2
    if stack is None:
        logger.info("stopped while waiting to take over %s", settings.store_location)
        return 0
    return stack


def main(argv: list[str] | None = None) -> int:
    """Run the service until Ctrl-C or SIGTERM; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    explicit_port = args.metrics_port is not None or bool(os.environ.get("MENACE_METRICS_PORT"))

    stop_requested = threading.Event()

    def request_stop(signum, _frame) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    # torch (the MiniLM embedder, transformer models) takes its thread count from
    # OMP_NUM_THREADS when first imported, on the worker. One thread unless the
    # user says otherwise: more threads contending with the threads that log and
    # publish made each MiniLM call ~10x slower here (bench/freshness.py).
    omp_default = "OMP_NUM_THREADS" not in os.environ
    if omp_default:
        os.environ["OMP_NUM_THREADS"] = str(TORCH_THREADS)
    try:
        stack = _start_or_explain(settings, args, explicit_port, stop_requested)
        if not isinstance(stack, ServiceStack):
            return stack
        # What is alive now (modules, the model, the stores) lives as long as the process:
        # out of the collector's sight, a full collection under a stream of runs takes
        # milliseconds, not the 50-110 ms that stalled every thread (bench/sustained.py).
        gc.freeze()
        status = _run_until_stopped(stack, stop_requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if omp_default:
            os.environ.pop("OMP_NUM_THREADS", None)
    if stack.coordinator.worker_alive:
        # The worker is inside a native call (loading the embedder, say) that the
        # interpreter would wait for at exit. Everything is committed and closed,
        # so end the process now rather than after it.
        logger.warning("exiting without waiting for the busy training worker")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _run_until_stopped(stack: ServiceStack, stop_requested: threading.Event) -> int:
    """Run until asked to stop (0) or until the learner lease is lost (3, logged); then stop the stack."""
    status = 0
    try:
        while not stop_requested.wait(0.5):
            if not stack.holds_lease():
                logger.error("lost the learner lease on %s; stopping (a standby takes over)",
                             stack.settings.store_location)
                status = 3
                break
    finally:
        stack.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
