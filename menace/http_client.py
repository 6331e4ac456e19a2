"""The :class:`~menace.client.MenaceClient` of a Menace service over HTTP.

A bot on another machine logs runs in two lines::

    from menace.client import connect

    connect("http://menace-host:8001", token).log_run({"actions": "fetch->parse", "exec_time": 1.2})

and a monitor follows the service's events with :meth:`HttpClient.subscribe`:
one reader thread (``menace-http-events``) holds a Server-Sent Events stream
open and calls every callback with each :class:`~menace.events.Event`. When
the connection drops (the service restarts, the network blinks) it reconnects
with ``Last-Event-ID``, waiting 0.25 s, then twice as long each time up to 5 s,
and the service sends exactly what was missed: no gap, no duplicate. Its state
(``connecting``, ``connected``, ``disconnected, retrying``, ``closed``) is
:attr:`HttpClient.stream_status`, and each change goes to the callbacks given
to :meth:`HttpClient.add_state_callback`. Nothing here blocks the caller on
the stream: ``subscribe`` returns at once.

Errors from the service come back as the library's own: a refused input is a
:class:`~menace.errors.FieldError` naming the field (the service answered
422), a refused token a ``PermissionError`` (401), and a service that cannot
be reached a ``ConnectionError`` naming the URL.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource

from . import config
from .api import API_VERSION, tokens
from .client_interface import (
    ClientStatus,
    Contribution,
    Counts,
    EventCallback,
    Explanation,
    LoggedRun,
    Prediction,
)
from .errors import FieldError
from .events import Event
from .jobs import JobInfo, JobKind
from .menace_memory_manager import MemoryEntry
from .neuroplasticity import Pathway

logger = logging.getLogger(__name__)

#: Seconds a request may take (connect, send, each read).
TIMEOUT = 10.0
#: Seconds of silence after which the event stream counts as lost (the service
#: sends a keep-alive every 15 s).
STREAM_READ_TIMEOUT = 45.0
#: Reconnect delays: the first, the longest (seconds); doubled in between.
RETRY_FIRST = 0.25
RETRY_MAX = 5.0


class ConnectionState(StrEnum):
    """Where the event stream is."""

    IDLE = "idle"  # nobody subscribed
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RETRYING = "disconnected, retrying"
    CLOSED = "closed"


@dataclass(frozen=True)
class StreamStatus:
    """The event stream's state; when retrying, why (``error``) and in how many seconds (``retry_in``).

    ``last_event_id`` is the last event delivered (the stream resumes after it).
    """

    state: ConnectionState
    error: str | None = None
    retry_in: float | None = None
    last_event_id: int | None = None


StateCallback = Callable[[StreamStatus], Any]


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_token(url: str, token: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The token to use: ``token``, else ``MENACE_API_TOKEN``, else the one in
    ``data_dir`` (or, for a service on this machine, the default data directory)."""
    if token:
        return token
    env = os.environ.get("MENACE_API_TOKEN")
    if env:
        return env
    if data_dir is not None:
        return tokens.read_token(data_dir)
    if is_loopback_url(url):
        return tokens.read_token(config.default_data_dir())
    return None


def _base_url(url: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise FieldError("url", f"url must be the service's address, e.g. http://127.0.0.1:8001, got {url!r}")
    url = url.strip().rstrip("/")
    if url.endswith(f"/{API_VERSION}"):
        url = url[: -len(API_VERSION) - 1]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError("url", f"url must start with http:// or https:// and name a host, got {url!r}")
    return url


class HttpClient:
    """A :class:`~menace.client.MenaceClient` talking to a service's API (see the module doc).

    Args:
        url: the service, e.g. ``http://127.0.0.1:8001``.
        token: its bearer token (default: :func:`find_token`).
        data_dir: where to read the token from when it is not given.
        timeout: seconds per request.
        transport: an ``httpx`` transport (tests).
    """

    STREAM_THREAD = "menace-http-events"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        timeout: float = TIMEOUT,
        stream_read_timeout: float = STREAM_READ_TIMEOUT,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _base_url(url)
        found = find_token(self.url, token, data_dir)
        if transport is None:
            transport = no_delay_transport()
        headers = {"Authorization": f"Bearer {found}"} if found else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._stream_http = httpx.Client(
            base_url=self.url, headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout, read=stream_read_timeout),
        )
        self.retry_first = retry_first
        self.retry_max = retry_max
        self._lock = threading.Lock()
        self._callbacks: tuple[EventCallback, ...] = ()
        self._state_callbacks: tuple[StateCallback, ...] = ()
        self._status = StreamStatus(ConnectionState.IDLE)
        self._cursor: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<HttpClient {self.url} {self._status.state}>"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The JSON answer of one request (``None`` for a 404 when ``missing_ok``)."""
        try:
            response = self._http.request(method, f"/{API_VERSION}{path}", **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionError(f"the Menace service at {self.url} did not answer in time ({exc})") from None
        except httpx.TransportError as exc:
            raise ConnectionError(f"cannot reach the Menace service at {self.url}: {exc}") from None
        if response.status_code < 400:
            return response.json()
        if response.status_code == 404 and missing_ok:
            return None
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> Exception:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or response.text[:200] or response.reason_phrase)
        status = response.status_code
        if status == 401:
            return PermissionError(f"the Menace service at {self.url} refused the API token: {message}")
        if status == 422:
            return FieldError(str(body.get("field") or "body"), message)
        if status == 503:
            return ConnectionError(f"the Menace service at {self.url} is not available: {message}")
        return RuntimeError(f"{method} {self.url}/{API_VERSION}{path}: {status} {message}")

    # -- what it is connected to --------------------------------------------------------
    def service_status(self) -> dict[str, Any]:
        """Everything ``/v1/status`` says (pid, API URL, journal, newest event id, n_seen, ...)."""
        return self._request("GET", "/status")

    def status(self) -> ClientStatus:
        data = self.service_status()
        known = {f.name for f in fields(ClientStatus)}
        values = {k: v for k, v in data.items() if k in known}
        values["location"] = self.url
        return ClientStatus(**values)

    # -- events -----------------------------------------------------------------------------
    def events_since(self, event_id: int, limit: int = 1000) -> list[Event]:
        data = self._request("GET", f"/events/since/{_int('event_id', event_id)}",
                             params={"limit": _int("limit", limit)})
        return [Event(e["id"], e["ts"], e["topic"], e["payload"]) for e in data["events"]]

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` from the reader thread for every event after the client's cursor.

        The cursor is the newest event when :func:`~menace.client.connect`
        checked the service (or, for a client made directly, when the stream
        first connects), then the last event delivered (:meth:`resume_after`
        sets it). Returns at once; the callback must be quick.
        """
        if not callable(callback):
            raise FieldError("callback", f"callback must be callable, got {callback!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            self._callbacks = (*self._callbacks, callback)
            running = self._thread is not None and self._thread.is_alive()
            if not running:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._follow, args=(self._stop,),
                                                name=self.STREAM_THREAD, daemon=True)
                self._thread.start()

    def unsubscribe(self, callback: EventCallback) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
            self._callbacks = tuple(callbacks)
            last = not callbacks
        if last:
            self._end_stream(join=False)

    def resume_after(self, event_id: int) -> None:
        """Make the event stream (re)start after ``event_id`` (a monitor that has the events up to it)."""
        self._cursor = _int("event_id", event_id)

    @property
    def stream_status(self) -> StreamStatus:
        """The event stream's state now (see :class:`StreamStatus`)."""
        return self._status

    @property
    def last_event_id(self) -> int | None:
        """The id of the last event delivered to the callbacks (or the starting point)."""
        return self._cursor

    def add_state_callback(self, callback: StateCallback) -> None:
        """Call ``callback(status)`` (from the reader thread) whenever the stream's state changes."""
        if not callable(callback):
            raise FieldError("callback", f"callback must be callable, got {callback!r}")
        with self._lock:
            self._state_callbacks = (*self._state_callbacks, callback)

    def remove_state_callback(self, callback: StateCallback) -> None:
        with self._lock:
            self._state_callbacks = tuple(c for c in self._state_callbacks if c != callback)

    def _set_status(self, state: ConnectionState, error: str | None = None, retry_in: float | None = None) -> None:
        status = StreamStatus(state, error, retry_in, self._cursor)
        changed = (status.state, status.error) != (self._status.state, self._status.error)
        self._status = status
        if not changed:
            return
        if state is ConnectionState.RETRYING:
            logger.info("event stream from %s: %s (retrying in %.2f s)", self.url, error, retry_in or 0)
        for callback in self._state_callbacks:
            try:
                callback(status)
            except Exception:  # a failing listener must not end the stream
                logger.exception("state callback %r failed", callback)

    def _follow(self, stop: threading.Event) -> None:
        """The reader thread: hold the stream open, reconnecting with backoff until stopped."""
        delay = self.retry_first
        self._set_status(ConnectionState.CONNECTING)
        while not stop.is_set():
            try:
                self._read_stream(stop)
                error = "the service ended the stream"
            except PermissionError as exc:
                error = str(exc)
            except (httpx.HTTPError, ConnectionError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self._status.state is ConnectionState.CONNECTED:
                delay = self.retry_first  # it was up: start the backoff again
            if stop.is_set():
                break
            wait = delay * random.uniform(0.9, 1.1)
            self._set_status(ConnectionState.RETRYING, error, wait)
            if stop.wait(wait):
                break
            delay = min(delay * 2, self.retry_max)
        self._set_status(ConnectionState.CLOSED if self._closed else ConnectionState.IDLE)

    def _read_stream(self, stop: threading.Event) -> None:
        headers = {"Accept": "text/event-stream"}
        if self._cursor is not None:
            headers["Last-Event-ID"] = str(self._cursor)
        with self._stream_http.stream("GET", f"/{API_VERSION}/events", headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise self._error("GET", "/events", response)
            self._response = response
            try:
                if stop.is_set():
                    return
                self._set_status(ConnectionState.CONNECTED)
                for sse in EventSource(response).iter_sse():
                    if stop.is_set():
                        return
                    if sse.id:
                        self._deliver(sse.id, sse.data)
            finally:
                self._response = None

    def _deliver(self, sse_id: str, data: str) -> None:
        body = json.loads(data)
        event = Event(int(sse_id), float(body["ts"]), str(body["topic"]), body["payload"])
        self._cursor = event.id
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:  # as on the bus: one failing subscriber never stops the others
                logger.exception("subscriber %r failed on %s", callback, event.topic)

    def _end_stream(self, join: bool, timeout: float = 2.0) -> None:
        with self._lock:
            thread, stop = self._thread, self._stop
        stop.set()
        response = self._response
        if response is not None:
            _shutdown_socket(response)
        if join and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not stop within %.1f s", thread.name, timeout)

    # -- writes -----------------------------------------------------------------------------
    def log_run(self, run: Mapping[str, Any]) -> LoggedRun:
        if not isinstance(run, Mapping):
            raise FieldError("run", f"run must be a mapping of PathwayRecord fields, got {type(run).__name__}")
        (logged,) = self._post_runs(_jsonable(run))
        return logged

    def log_runs(self, runs: Sequence[Mapping[str, Any]]) -> list[LoggedRun]:
        """Store several runs in one request (one transaction); each one's run and pathway id, in order.

        A bad run is a :class:`~menace.errors.FieldError` naming it
        (``runs[3].exec_time``) and none of them is stored.
        """
        if isinstance(runs, Mapping | str) or not isinstance(runs, Sequence):
            raise FieldError("runs", f"runs must be a list of mappings, got {type(runs).__name__}")
        for i, run in enumerate(runs):
            if not isinstance(run, Mapping):
                raise FieldError(f"runs[{i}]", f"runs[{i}] must be a mapping, got {type(run).__name__}")
        return self._post_runs([_jsonable(run) for run in runs])

    def _post_runs(self, body: Any) -> list[LoggedRun]:
        data = self._request("POST", "/runs", json=body)
        return [LoggedRun(run_id=r["run_id"], pathway_id=r["pathway_id"]) for r in data["runs"]]

    def log_interaction(self, prompt: str, response: str, tags: Sequence[str] = ()) -> int:
        if isinstance(tags, str):
            tags = [tags]
        data = self._request("POST", "/interactions",
                             json={"prompt": prompt, "response": response, "tags": list(tags or ())})
        return int(data["memory_id"])

    # -- the model --------------------------------------------------------------------------
    def predict(self, freq: float, exec_time: float, roi: float, myelination: float, actions: str) -> Prediction:
        data = self._request("POST", "/predict", json={
            "freq": freq, "exec_time": exec_time, "roi": roi, "myelination": myelination, "actions": actions,
        })
        return Prediction(probability=float(data["probabilities"][0]), model=data["model"], trained=data["trained"])

    def predict_many(self, queries: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """One prediction per query (``freq``, ``exec_time``, ``roi``, ``myelination``,
        ``actions`` each), in one request."""
        queries = list(queries)
        if not queries:
            return []
        data = self._request("POST", "/predict", json=[dict(q) for q in queries])
        return [Prediction(float(p), data["model"], data["trained"]) for p in data["probabilities"]]

    def explain(self, freq: float, exec_time: float, roi: float, myelination: float, actions: str) -> Explanation:
        data = self._request("POST", "/explain", json={
            "freq": freq, "exec_time": exec_time, "roi": roi, "myelination": myelination, "actions": actions,
        })
        contributions = tuple(Contribution(**c) for c in data["contributions"])
        return Explanation(data["probability"], data["model"], data["trained"], contributions, data["method"])

    # -- jobs -------------------------------------------------------------------------------
    def submit_job(self, kind: str, **options: Any) -> int:
        try:
            kind = JobKind.coerce(kind).value
        except ValueError as exc:
            raise FieldError("kind", str(exc)) from None
        data = self._request("POST", "/jobs", json={"kind": kind, **options})
        return int(data["id"])

    def cancel_job(self, job_id: int) -> bool:
        data = self._request("DELETE", f"/jobs/{_int('job_id', job_id)}", missing_ok=True)
        return bool(data and data["cancelled"])

    def job(self, job_id: int) -> JobInfo | None:
        data = self._request("GET", f"/jobs/{_int('job_id', job_id)}", missing_ok=True)
        return JobInfo(**data) if data is not None else None

    def jobs(self) -> list[JobInfo]:
        return [JobInfo(**item) for item in self._request("GET", "/jobs")]

    # -- reads ------------------------------------------------------------------------------
    def pathways(self, limit: int = 5000) -> list[Pathway]:
        return [Pathway(**item) for item in self._request("GET", "/pathways", params={"limit": _int("limit", limit)})]

    def find_pathway(self, actions: str) -> Pathway | None:
        data = self._request("GET", "/pathways/find", params={"actions": actions}, missing_ok=True)
        return Pathway(**data) if data is not None else None

    def memory(self, text: str = "", limit: int = 200) -> list[MemoryEntry]:
        found = self._request("GET", "/memory", params={"text": text, "limit": _int("limit", limit)})
        return [MemoryEntry(**item) for item in found]

    def evaluation_history(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/evaluations"))

    def prequential_history(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/prequential"))

    def counts(self) -> Counts:
        return Counts(**self._request("GET", "/counts"))

    def close(self) -> None:
        """Stop following events and close the connections (idempotent); the service keeps running."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._callbacks = ()
        self._end_stream(join=True)
        self._set_status(ConnectionState.CLOSED)
        self._stream_http.close()
        self._http.close()


def no_delay_transport() -> httpx.HTTPTransport:
    """An httpx transport with ``TCP_NODELAY``: httpx sends a request's head and body in two
    writes, and with Nagle's algorithm the body waits for the server's delayed ACK (40 ms)."""
    return httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"{name} must be an integer, got {value!r:.60}")
    return value


def _jsonable(run: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): (v.value if isinstance(v, Enum) else v) for k, v in run.items()}


def _shutdown_socket(response: httpx.Response) -> None:
    """Wake a reader blocked on ``response`` (closing the socket from another thread would not)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def connect(
    url: str,
    token: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | Path | None = None,
    timeout: float = TIMEOUT,
    check: bool = True,
) -> HttpClient:
    """A client of the Menace service at ``url`` (e.g. ``http://127.0.0.1:8001``), over HTTP.

    Also importable as ``menace.client.connect``. ``token`` defaults to
    ``MENACE_API_TOKEN``, then to the token file of ``data_dir`` (or, for a
    service on this machine, of the default data directory). With ``check``
    it asks the service at once: ``PermissionError`` for a refused token,
    ``ConnectionError`` naming the URL when it cannot be reached; the event
    stream then starts after the newest event at this moment.

    ``menace.lease.owner_of(data_dir)`` tells whether a running service owns
    a data directory, and its ``api_url``.
    """
    client = HttpClient(url, token, data_dir=data_dir, timeout=timeout)
    if check:
        try:
            status = client.service_status()
        except BaseException:
            client.close()
            raise
        client.resume_after(int(status.get("newest_event_id", 0)))
    return client
