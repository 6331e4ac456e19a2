"""Where the window gets its client from, and the states a source goes through.

The window never builds a stack or a connection itself: it is given a
:class:`ClientSource`, asks it to :meth:`~ClientSource.open`, and shows the
:class:`~menace.client.MenaceClient` that ``clientReady`` hands over. The
:class:`~menace_gui.service_thread.ServiceThread` is the source that runs the
stack in this process; :class:`FixedClientSource` hands over a client that
already exists (a remote one, or a test's fake).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, Signal

from menace.client import MenaceClient

logger = logging.getLogger(__name__)

STARTING = "starting"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"
CRASHED = "crashed"
#: A remote service is away; its client retries and resumes the events where they stopped.
RECONNECTING = "disconnected, retrying"


@runtime_checkable
class ClientSource(Protocol):
    """What the window needs from whoever provides its client.

    Signals (delivered in the GUI thread):
        clientReady(client): a :class:`MenaceClient` to show.
        stateChanged(state, detail): one of the states above, with a one-line
            detail (the error when crashed).
    """

    clientReady: Any
    stateChanged: Any
    state: str
    detail: str
    #: The client handed over last, or ``None`` (not ready, or stopped).
    client: MenaceClient | None

    @property
    def location(self) -> str:
        """What the client shows (a data directory, a URL), for the window title."""
        ...

    def open(self) -> None:
        """Start providing a client (``clientReady`` follows); nothing if already started."""
        ...

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Let go of the client and stop what runs behind it; ``True`` if done in time."""
        ...

    def request_stop(self) -> None:
        """Begin what :meth:`shutdown` does and return at once (a window stays responsive meanwhile)."""
        ...

    def is_stopped(self) -> bool:
        """True once nothing runs behind the source any more (after a stop, or before an open)."""
        ...


class FixedClientSource(QObject):
    """A source for a client that already exists: ``open()`` hands it over at once.

    ``shutdown()`` closes the client; the source cannot be opened again.
    """

    clientReady = Signal(object)
    stateChanged = Signal(str, str)

    def __init__(self, client: MenaceClient, location: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fixedClientSource")
        self._client = client
        self._location = location
        self.client: MenaceClient | None = None
        self.state = STOPPED
        self.detail = ""
        self._shut = False

    @property
    def location(self) -> str:
        return self._location

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.stateChanged.emit(state, detail)

    def open(self) -> None:
        if self.client is not None or self._shut:
            return
        self.client = self._client
        self.clientReady.emit(self.client)
        self._set_state(RUNNING, self._location)

    def request_stop(self) -> None:
        self.shutdown()

    def is_stopped(self) -> bool:
        return self.client is None

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        self._shut = True
        if self.client is None:
            return True
        client, self.client = self.client, None
        try:
            client.close()
        except Exception:
            logger.exception("closing the client failed")
        self._set_state(STOPPED)
        return True
