"""Prometheus metrics: every definition in one place, and the HTTP endpoint.

The metrics (all in the default ``prometheus_client`` registry):

==============================================  =======  =====================================
name                                            type     meaning
==============================================  =======  =====================================
``learning_cv_score``                           gauge    cross-validation score of the last
                                                         evaluation (0..1)
``learning_holdout_score``                      gauge    holdout score of the last evaluation
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
==============================================  =======  =====================================

``learning_cv_score`` and ``learning_holdout_score`` keep the names the spec
gives them and carry no labels; they show the service's main engine.

:func:`start_metrics_server` serves them (plus the client's process and Python
metrics) on ``http://<addr>:<port>/metrics``; it binds ``127.0.0.1`` unless
told otherwise.
"""

from __future__ import annotations

import logging
import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from .events import INPUT_TOPICS

logger = logging.getLogger(__name__)

learning_cv_score = Gauge("learning_cv_score", "Cross-validation score of the last evaluation (0..1)")
learning_holdout_score = Gauge("learning_holdout_score", "Holdout score of the last evaluation (0..1)")

training_runs = Counter(
    "learning_training_runs",
    "Trainings finished, by engine and mode (partial, full, auto)",
    ["engine", "mode"],
)
examples_learned = Counter(
    "learning_examples", "Labelled examples learned incrementally, by engine", ["engine"]
)
training_duration = Histogram(
    "learning_training_duration_seconds",
    "Wall time of each training, by engine and mode",
    ["engine", "mode"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
last_training_timestamp = Gauge(
    "learning_last_training_timestamp_seconds",
    "Unix time of the last successful training, by engine",
    ["engine"],
)
evaluations = Counter("learning_evaluations", "Evaluations finished, by engine", ["engine"])
last_evaluation_timestamp = Gauge(
    "learning_last_evaluation_timestamp_seconds",
    "Unix time of the last evaluation, by engine",
    ["engine"],
)
training_errors = Counter(
    "learning_training_errors", "Trainings or evaluations that failed, by engine", ["engine"]
)
events_handled = Counter(
    "learning_events_handled", "Input events accepted by the coordinator, by topic", ["topic"]
)
events_failed = Counter(
    "learning_events_failed",
    "Input events refused (malformed, queue full) or that failed to train, by topic",
    ["topic"],
)
queue_depth = Gauge("learning_queue_depth", "Items waiting for the training worker")
model_info = Gauge("learning_model_info", "1 for the model each engine uses", ["engine", "model"])

# Every input topic shows up (as 0) before its first event, so rate() has a baseline.
for _topic in INPUT_TOPICS:
    events_handled.labels(_topic)
    events_failed.labels(_topic)

_model_lock = threading.Lock()
_models: dict[str, str] = {}


def set_model(engine: str, model: str) -> None:
    """Record that ``engine`` now uses ``model`` (``learning_model_info``)."""
    with _model_lock:
        old = _models.get(engine)
        if old == model:
            return
        if old is not None:
            try:
                model_info.remove(engine, old)
            except KeyError:
                pass
        _models[engine] = model
        model_info.labels(engine, model).set(1)


def set_scores(cv_score: float, holdout_score: float) -> None:
    """Set the two score gauges (values in 0..1)."""
    learning_cv_score.set(cv_score)
    learning_holdout_score.set(holdout_score)


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
