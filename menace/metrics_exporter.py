"""Prometheus metrics: every definition in one place (:class:`LearningMetrics`), and the HTTP endpoint.

==============================================  =======  =====================================
name                                            type     meaning
==============================================  =======  =====================================
``learning_cv_score{engine}``                   gauge    cross-validation score of the
                                                         engine's last evaluation (0..1)
``learning_holdout_score{engine}``              gauge    holdout score of the last evaluation
                                                         (0..1)
``learning_training_runs_total{engine,mode}``   counter  trainings finished; ``mode`` is
                                                         ``partial``, ``full`` or ``auto``
``learning_examples_total{engine}``             counter  labelled examples learned
                                                         incrementally (``partial_train``)
``learning_training_duration_seconds``          histo-   wall time of each training, by
``{engine,mode}``                               gram     ``engine`` and ``mode``
``learning_last_training_timestamp_seconds``    gauge    Unix time of the last successful
``{engine}``                                             training of any mode
``learning_evaluations_total{engine}``          counter  evaluations finished
``learning_last_evaluation_timestamp_seconds``  gauge    Unix time of the last evaluation
``{engine}``
``learning_training_errors_total{engine}``      counter  trainings or evaluations that failed
``learning_events_handled_total{topic}``        counter  input events accepted by the
                                                         coordinator, per topic
``learning_events_failed_total{topic}``         counter  input events refused (malformed,
                                                         queue full) or that failed to train
``learning_queue_depth``                        gauge    items waiting for the training worker
``learning_model_info{engine,model}``           gauge    1 for the model each engine uses
``learning_prequential_accuracy{engine}``       gauge    test-then-train accuracy over the last
                                                         N runs learned incrementally (0..1)
``learning_prequential_baseline{engine}``       gauge    majority-class accuracy on the same
                                                         runs (what guessing would score)
``learning_prequential_log_loss{engine}``       gauge    test-then-train log-loss, same runs
``learning_drift_total{engine}``                counter  rises of the error rate found (drift)
``learning_evaluation_info{engine,model}``      gauge    1 for the model whose evaluation the
                                                         score gauges show
==============================================  =======  =====================================

Each fact has one writer: an engine exports its own scores when it evaluates
(and, on start, the last stored ones), labelled with its name, so one
engine's scores never overwrite another's; the coordinator exports training,
events and queue figures. Both go through the methods of one
:class:`LearningMetrics`: :data:`METRICS` on prometheus_client's default
registry, or one a test makes on its own ``CollectorRegistry``. The score
series of an engine appear with its first evaluation, never as a false 0.

:func:`start_metrics_server` serves a registry (plus the client's process and
Python metrics on the default one) on ``http://<addr>:<port>/metrics``; it
binds ``127.0.0.1`` unless told otherwise.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from .events import INPUT_TOPICS

logger = logging.getLogger(__name__)

TRAINING_MODES = ("partial", "full", "auto")
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class LearningMetrics:
    """Every Menace metric, registered on ``registry`` (see the module doc)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry
        self.cv_score = Gauge(
            "learning_cv_score", "Cross-validation score of the last evaluation (0..1), by engine",
            ["engine"], registry=r,
        )
        self.holdout_score = Gauge(
            "learning_holdout_score", "Holdout score of the last evaluation (0..1), by engine",
            ["engine"], registry=r,
        )
        self.training_runs = Counter(
            "learning_training_runs", "Trainings finished, by engine and mode (partial, full, auto)",
            ["engine", "mode"], registry=r,
        )
        self.examples_learned = Counter(
            "learning_examples", "Labelled examples learned incrementally, by engine", ["engine"], registry=r
        )
        self.training_duration = Histogram(
            "learning_training_duration_seconds", "Wall time of each training, by engine and mode",
            ["engine", "mode"], buckets=DURATION_BUCKETS, registry=r,
        )
        self.last_training_timestamp = Gauge(
            "learning_last_training_timestamp_seconds", "Unix time of the last successful training, by engine",
            ["engine"], registry=r,
        )
        self.evaluations = Counter(
            "learning_evaluations", "Evaluations finished, by engine", ["engine"], registry=r
        )
        self.last_evaluation_timestamp = Gauge(
            "learning_last_evaluation_timestamp_seconds", "Unix time of the last evaluation, by engine",
            ["engine"], registry=r,
        )
        self.training_errors = Counter(
            "learning_training_errors", "Trainings or evaluations that failed, by engine", ["engine"], registry=r
        )
        self.events_handled = Counter(
            "learning_events_handled", "Input events accepted by the coordinator, by topic", ["topic"], registry=r
        )
        self.events_failed = Counter(
            "learning_events_failed",
            "Input events refused (malformed, queue full) or that failed to train, by topic",
            ["topic"], registry=r,
        )
        self.queue_depth = Gauge("learning_queue_depth", "Items waiting for the training worker", registry=r)
        self.model_info = Gauge(
            "learning_model_info", "1 for the model each engine uses", ["engine", "model"], registry=r
        )
        self.prequential_accuracy = Gauge(
            "learning_prequential_accuracy",
            "Test-then-train accuracy over the last runs learned incrementally (0..1), by engine",
            ["engine"], registry=r,
        )
        self.prequential_baseline = Gauge(
            "learning_prequential_baseline",
            "Majority-class accuracy on the same runs as learning_prequential_accuracy (0..1), by engine",
            ["engine"], registry=r,
        )
        self.prequential_log_loss = Gauge(
            "learning_prequential_log_loss", "Test-then-train log-loss over the same runs, by engine",
            ["engine"], registry=r,
        )
        self.drift = Counter("learning_drift", "Rises of the prediction error rate found, by engine", ["engine"], registry=r)
        self.evaluation_info = Gauge(
            "learning_evaluation_info", "1 for the model whose evaluation the score gauges show",
            ["engine", "model"], registry=r,
        )
        self._evaluated: dict[str, str] = {}
        self._lock = threading.Lock()
        self._models: dict[str, str] = {}
        # Every input topic shows up (as 0) before its first event, so rate() has a baseline.
        self._handled = {topic: self.events_handled.labels(topic) for topic in INPUT_TOPICS}
        self._failed = {topic: self.events_failed.labels(topic) for topic in INPUT_TOPICS}

    # -- engines ------------------------------------------------------------------------
    def engine_started(self, engine: str, model: str) -> None:
        """Create an engine's counters at 0 (so ``rate()`` sees the first increase) and its model."""
        for mode in TRAINING_MODES:
            self.training_runs.labels(engine, mode)
        self.examples_learned.labels(engine)
        self.evaluations.labels(engine)
        self.training_errors.labels(engine)
        self.drift.labels(engine)
        self.set_model(engine, model)

    def set_model(self, engine: str, model: str) -> None:
        """Record that ``engine`` now uses ``model`` (``learning_model_info``)."""
        with self._lock:
            old = self._models.get(engine)
            if old == model:
                return
            if old is not None:
                try:
                    self.model_info.remove(engine, old)
                except KeyError:
                    pass
            self._models[engine] = model
            self.model_info.labels(engine, model).set(1)

    def observe_evaluation(self, engine: str, entry: Mapping[str, Any], *, new: bool = False) -> None:
        """Show ``entry``'s scores as ``engine``'s; ``new`` also counts it as an evaluation just finished."""
        cv, holdout = _score(entry.get("cv_score")), _score(entry.get("holdout_score"))
        if cv is None or holdout is None:
            logger.warning("%s: evaluation without usable scores: %r", engine, dict(entry))
            return
        self.cv_score.labels(engine).set(cv)
        self.holdout_score.labels(engine).set(holdout)
        self._show_evaluated_model(engine, str(entry.get("model") or "unknown"))
        ts = entry.get("ts")
        if isinstance(ts, int | float) and math.isfinite(ts):
            self.last_evaluation_timestamp.labels(engine).set(ts)
        if new:
            self.evaluations.labels(engine).inc()

    def _show_evaluated_model(self, engine: str, model: str) -> None:
        with self._lock:
            old = self._evaluated.get(engine)
            if old == model:
                return
            if old is not None:
                try:
                    self.evaluation_info.remove(engine, old)
                except KeyError:
                    pass
            self._evaluated[engine] = model
            self.evaluation_info.labels(engine, model).set(1)

    def observe_training(self, engine: str, mode: str, duration: float, examples: int, ts: float) -> None:
        """A training of ``mode`` finished: ``examples`` learned incrementally (0 for full / auto)."""
        self.training_runs.labels(engine, mode).inc()
        self.training_duration.labels(engine, mode).observe(duration)
        self.last_training_timestamp.labels(engine).set(ts)
        if examples:
            self.examples_learned.labels(engine).inc(examples)

    def observe_error(self, engine: str) -> None:
        self.training_errors.labels(engine).inc()

    def observe_prequential(self, engine: str, snapshot: Mapping[str, Any] | None) -> None:
        """Show the engine's test-then-train figures (nothing before its first scored run)."""
        if not snapshot:
            return
        self.prequential_accuracy.labels(engine).set(snapshot["accuracy"])
        self.prequential_baseline.labels(engine).set(snapshot["baseline"])
        self.prequential_log_loss.labels(engine).set(snapshot["log_loss"])

    def observe_drift(self, engine: str) -> None:
        self.drift.labels(engine).inc()

    def observe_saved_training(self, engine: str, ts: Any) -> None:
        """A restart: the last training is as old as the saved model."""
        if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
            self.last_training_timestamp.labels(engine).set(ts)

    # -- the coordinator's intake ---------------------------------------------------------
    def observe_event(self, topic: str, accepted: bool, n: int = 1) -> None:
        """``n`` input events on ``topic`` accepted for learning, or refused / failed."""
        child = (self._handled if accepted else self._failed).get(topic)
        if child is not None:  # bounded label values: only the input topics
            child.inc(n)

    def set_queue_depth(self, depth: int) -> None:
        self.queue_depth.set(depth)


def _score(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return min(1.0, max(0.0, number)) if math.isfinite(number) else None


#: The process-wide metrics, on prometheus_client's default registry.
METRICS = LearningMetrics()


class MetricsServerError(OSError):
    """The metrics endpoint could not be started."""


class MetricsPortInUseError(MetricsServerError):
    """Another program already listens on the requested address and port."""


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


def _format_url(addr: str, port: int) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    return f"http://{host}:{port}/metrics"


class MetricsServer:
    """A running metrics endpoint; returned by :func:`start_metrics_server`.

    ``url`` is the address to scrape, ``port`` the bound port (the real one
    when 0 was asked for). :meth:`stop` shuts it down and joins its thread; it
    may be called more than once.
    """

    def __init__(self, httpd: ThreadingWSGIServer, thread: threading.Thread, addr: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self._lock = threading.Lock()
        self._stopped = False
        self.addr = addr
        self.port: int = httpd.server_port
        self.url = _format_url(addr, self.port)

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and join the server thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("metrics server thread did not stop within %.1f s", timeout)
        logger.info("metrics server on %s stopped", self.url)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MetricsServer {self.url} {state}>"


def start_metrics_server(port: int, addr: str = "127.0.0.1", registry=REGISTRY) -> MetricsServer:
    """Serve the Prometheus metrics on ``http://addr:port/metrics`` from a background thread.

    ``port`` 0 picks a free port (read it from the returned handle's ``port``).
    Returns a :class:`MetricsServer`; call its ``stop()`` to shut it down.

    Raises:
        ValueError: ``port`` is not an integer in 0..65535 or ``addr`` is empty.
        MetricsPortInUseError: something already listens on ``addr:port``.
        MetricsServerError: the address cannot be bound for another reason.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    if not isinstance(addr, str) or not addr.strip():
        raise ValueError(f"addr must be a host name or IP address, got {addr!r}")
    addr = addr.strip()
    where = f"{addr}:{port}"
    try:
        infos = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise MetricsServerError(f"cannot serve metrics on {where}: {exc.strerror}") from None

    class _Server(ThreadingWSGIServer):
        address_family = infos[0][0]

    bind_addr = infos[0][4][0]
    try:
        httpd = make_server(bind_addr, port, make_wsgi_app(registry), _Server, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise MetricsPortInUseError(
                exc.errno,
                f"cannot serve metrics on {where}: the port is already in use "
                "(choose another with --metrics-port / MENACE_METRICS_PORT, or 0 for none)",
            ) from None
        raise MetricsServerError(exc.errno, f"cannot serve metrics on {where}: {exc.strerror}") from None
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="menace-metrics-server", daemon=True
    )
    thread.start()
    server = MetricsServer(httpd, thread, addr)
    logger.info("serving metrics on %s", server.url)
    return server
