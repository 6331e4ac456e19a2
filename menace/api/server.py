"""The API server: uvicorn on one thread the stack owns, serving the API and ``/metrics``.

:func:`start_api_server` binds the socket itself (so a taken port is a clear
:class:`~menace.metrics_exporter.MetricsPortInUseError` at once, as for the
plain metrics server), then runs uvicorn's event loop on the thread
``menace-api-server``; blocking work runs on a small pool of
``menace-api-worker`` threads. :meth:`ApiServer.stop` ends every event
stream, lets requests in flight finish (one second at most) and joins both,
so no thread is left behind.

Binding anything but a loopback address without TLS logs a warning: the
token and everything logged would cross the network in clear text (put a
TLS reverse proxy in front, or give ``tls_cert`` / ``tls_key``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import REGISTRY

from ..metrics_exporter import MetricsPortInUseError, MetricsServerError
from ..security import is_loopback
from .app import HEARTBEAT, MAX_HEAD_BYTES, MenaceApi

logger = logging.getLogger(__name__)

#: Seconds :func:`start_api_server` waits for uvicorn to serve.
START_TIMEOUT = 10.0
#: Seconds requests in flight get when the server stops.
GRACEFUL_SHUTDOWN = 1.0
#: Threads running blocking calls (SQLite, the model).
WORKERS = 8


def format_base_url(addr: str, port: int, tls: bool) -> str:
    host = f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _bind(addr: str, port: int) -> socket.socket:
    where = f"{addr}:{port}"
    try:
        infos = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise MetricsServerError(f"cannot serve the API on {where}: {exc.strerror}") from None
    family, kind, proto, _, sockaddr = infos[0]
    # With its protocol named (IPPROTO_TCP), asyncio sets TCP_NODELAY on every accepted
    # connection; with proto 0 it does not, and each answer on a kept-alive connection
    # waited 40 ms for the client's delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise MetricsPortInUseError(
                exc.errno,
                f"cannot serve the API and metrics on {where}: the port is already in use "
                "(choose another with --metrics-port / MENACE_METRICS_PORT, or 0 for none)",
            ) from None
        raise MetricsServerError(exc.errno, f"cannot serve the API on {where}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


class ApiServer:
    """A running API server; :func:`start_api_server` returns it.

    It stands where a :class:`~menace.metrics_exporter.MetricsServer` would:
    ``url`` is the metrics URL, ``port`` the bound port, :meth:`stop` is
    idempotent. ``api_url`` is the base of the API (``http://127.0.0.1:8001``).
    """

    THREAD_NAME = "menace-api-server"

    def __init__(self, api: MenaceApi, server: Any, loop: Any, thread: threading.Thread,
                 executor: ThreadPoolExecutor, base_url: str, port: int) -> None:
        self.api = api
        self._server = server
        self._loop = loop
        self._thread = thread
        self._executor = executor
        self._lock = threading.Lock()
        self._stopped = False
        self.port = port
        self.api_url = base_url
        self.url = f"{base_url}/metrics"

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """End the event streams, stop serving, join the server thread and the worker pool."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.api.feed.close)
            except RuntimeError:  # the loop already ended
                pass
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(1.0)
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._thread.is_alive():
            logger.warning("API server thread did not stop within %.1f s", timeout)
        logger.info("API server on %s stopped", self.api_url)

    def __repr__(self) -> str:
        return f"<ApiServer {self.api_url} {'running' if self.running else 'stopped'}>"


def start_api_server(
    stack: Any,
    port: int,
    addr: str = "127.0.0.1",
    *,
    token: str,
    metrics_auth: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    registry: Any = REGISTRY,
    heartbeat: float = HEARTBEAT,
) -> ApiServer:
    """Serve ``stack``'s API and metrics on ``addr:port`` from a background thread.

    ``port`` 0 picks a free port. Raises
    :class:`~menace.metrics_exporter.MetricsPortInUseError` if the port is
    taken, :class:`~menace.metrics_exporter.MetricsServerError` if the
    address cannot be bound or the server does not start.
    """
    import asyncio

    import uvicorn

    quiet = logging.getLogger("uvicorn.error")
    if quiet.level == logging.NOTSET:  # no "Started server process" at INFO in the service's log
        quiet.setLevel(logging.WARNING)

    tls = bool(tls_cert)
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("tls_cert and tls_key go together: give both or neither")
    sock = _bind(addr, port)
    bound_port = sock.getsockname()[1]
    base_url = format_base_url(addr, bound_port, tls)
    executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="menace-api-worker")
    api = MenaceApi(stack, token, executor, metrics_auth=metrics_auth, registry=registry,
                    heartbeat=heartbeat, api_url=base_url)
    config = uvicorn.Config(
        api.app, log_config=None, access_log=False, lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        server_header=False, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    server = uvicorn.Server(config)  # in a thread it installs no signal handlers
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit from uvicorn's startup included
            failed.append(exc)
            logger.exception("API server stopped with an error")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()

    thread = threading.Thread(target=serve, name=ApiServer.THREAD_NAME, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(2.0)
            executor.shutdown(wait=True, cancel_futures=True)
            sock.close()
            if not thread.is_alive() and not loop.is_closed():
                loop.close()
            raise MetricsServerError(f"the API server on {base_url} did not start: {failed[0] if failed else 'timed out'}")
        time.sleep(0.01)
    handle = ApiServer(api, server, loop, thread, executor, base_url, bound_port)
    if not tls and not is_loopback(addr):
        logger.warning(
            "the API listens on %s without TLS: the bearer token and all data cross the network "
            "in clear text; put a TLS reverse proxy in front (see docs/api.md) or give --tls-cert/--tls-key",
            base_url,
        )
    logger.info("serving the API on %s/v1 and metrics on %s", base_url, handle.url)
    return handle
