"""A client source for a Menace service running elsewhere: the window over the HTTP API.

``menace-gui --connect URL`` and ``menace-gui`` on a data directory that a
running service owns both give the window a :class:`RemoteClientSource`.
It connects off the GUI thread (a service that is slow or away never
freezes the window), hands over the :class:`~menace.http_client.HttpClient`
(``clientReady``), and turns the client's event-stream states into the
window's: ``running`` while the stream is up, :data:`RECONNECTING`
("disconnected, retrying") while the service is away, when the stream
resumes from the last event id it delivered, with no gap and no duplicate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from .client_source import CRASHED, RECONNECTING, RUNNING, STARTING, STOPPED

logger = logging.getLogger(__name__)

Connector = Callable[[str, str | None], Any]


def _connect(url: str, token: str | None) -> Any:
    from menace.client import connect  # httpx: loaded only for a remote window

    return connect(url, token)


class RemoteClientSource(QObject):
    """The window's source for the service at ``url`` (see the module doc).

    ``note`` is shown with the state (e.g. "attached to the service of this
    data directory, pid 1234"). ``connector(url, token)`` makes the client
    (tests hand in their own).
    """

    clientReady = Signal(object)
    stateChanged = Signal(str, str)
    _connected = Signal(object)
    _failed = Signal(str)
    _stream = Signal(str, str)

    def __init__(
        self, url: str, token: str | None = None, *, note: str = "", connector: Connector | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("remoteClientSource")
        self.url = url
        self.note = note
        self._token = token
        self._connector = connector or _connect
        self.client: Any | None = None
        self.state = STOPPED
        self.detail = ""
        self._thread: threading.Thread | None = None
        self._closer: threading.Thread | None = None
        self._stopped = threading.Event()
        self._connected.connect(self._on_connected)
        self._failed.connect(self._on_failed)
        self._stream.connect(self._set_state)

    @property
    def location(self) -> str:
        return self.url

    @property
    def remote_label(self) -> str:
        """What the status bar says of the service this window watches."""
        return f"watching {self.url}" + (" (attached)" if self.note else "")

    def _set_state(self, state: str, detail: str = "") -> None:
        if self._stopped.is_set() and state not in (STOPPED, CRASHED):
            return
        self.state, self.detail = state, detail
        self.stateChanged.emit(state, detail)

    def open(self) -> None:
        if self._thread is not None or self._stopped.is_set():
            return
        self._set_state(STARTING, f"connecting to {self.url}")
        self._thread = threading.Thread(target=self._open, name="menace-gui-connect", daemon=True)
        self._thread.start()

    def _open(self) -> None:  # in its own thread: connecting may take a while
        try:
            client = self._connector(self.url, self._token)
        except Exception as exc:  # a refused token, an unreachable URL: said in the window
            self._failed.emit(str(exc) or type(exc).__name__)
            return
        self._connected.emit(client)

    def _on_connected(self, client: Any) -> None:
        if self._stopped.is_set():
            client.close()
            return
        self.client = client
        add = getattr(client, "add_state_callback", None)
        if callable(add):
            add(self._on_stream_state)
        self.clientReady.emit(client)
        self._set_state(RUNNING, self._running_detail())

    def _running_detail(self) -> str:
        return f"{self.note}: {self.url}" if self.note else f"connected to {self.url}"

    def _on_failed(self, message: str) -> None:
        logger.error("could not connect to %s: %s", self.url, message)
        self._set_state(CRASHED, f"cannot connect to {self.url}: {message}")

    def _on_stream_state(self, status: Any) -> None:  # in the client's reader thread
        state = str(getattr(getattr(status, "state", None), "value", getattr(status, "state", "")))
        if state == "connected":
            self._stream.emit(RUNNING, self._running_detail())
        elif state == RECONNECTING:
            retry = getattr(status, "retry_in", None)
            when = f"; next try in {retry:.1f} s" if isinstance(retry, int | float) else ""
            self._stream.emit(RECONNECTING, f"{self.url}: {getattr(status, 'error', '') or 'no answer'}{when}")

    # -- closing ----------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Let go of the service (it keeps running); returns at once."""
        self._stopped.set()
        client, self.client = self.client, None
        if client is not None:  # closing joins the event stream's reader: not in the GUI thread
            self._closer = threading.Thread(target=client.close, name="menace-gui-disconnect", daemon=True)
            self._closer.start()
        self._set_state(STOPPED, f"disconnected from {self.url} (the service keeps running)")

    def is_stopped(self) -> bool:
        """Whether the window has let go: asked to stop, and the client's event stream has ended
        (a connection still being opened is dropped when it arrives)."""
        closer = self._closer
        return self._stopped.is_set() and (closer is None or not closer.is_alive())

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        self._stopped.set()
        client, self.client = self.client, None
        if client is not None:
            client.close()
        for thread in (self._thread, self._closer):
            if thread is not None:
                thread.join(timeout_s)
        if self.state != STOPPED:
            self._set_state(STOPPED)
        return self.is_stopped() and (self._thread is None or not self._thread.is_alive())
