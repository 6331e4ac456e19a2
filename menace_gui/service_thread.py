"""The self-learning stack in a QThread, through ``run_background``: a client source.

``start()`` of :func:`menace.self_learning_service.run_background` builds the
stores, the bus, the engines and the coordinator and starts the coordinator's
own threads; this QThread calls it, hands the window a
:class:`~menace.local_client.LocalClient` of the stack (``clientReady``),
watches the stack while it runs and calls ``stop()`` when asked. Its state
(starting, running, stopped, crashed) is published by signal so the window can
show it, never hide it. This module and ``app.py`` are the only GUI code that
sees a stack: everything else sees the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from menace.config import Settings
from menace.local_client import LocalClient

from .client_source import CRASHED, RUNNING, STARTING, STOPPED, STOPPING

__all__ = ["CRASHED", "RUNNING", "STARTING", "STOPPED", "STOPPING", "ServiceThread", "stack_problem"]

logger = logging.getLogger(__name__)

#: ``backend(settings, **overrides) -> (start, stop)``; ``run_background`` by default.
Backend = Callable[..., tuple[Callable[[], Any], Callable[[], None]]]

#: Seconds between health checks of a running stack.
HEALTH_INTERVAL = 0.5


def _run_background(settings: Settings, **overrides: Any):
    # Imported late: the service module pulls in the learning stack.
    from menace.self_learning_service import run_background

    return run_background(settings, **overrides)


def stack_problem(stack: Any) -> str | None:
    """Why a started stack is no longer healthy, or ``None``.

    The coordinator's ``running`` is false once its worker thread has died
    (or it was stopped behind our back); either way learning has stopped.
    """
    coordinator = getattr(stack, "coordinator", None)
    if coordinator is None:
        return None
    try:
        running = getattr(coordinator, "running", True)
        running = running() if callable(running) else bool(running)
    except Exception as exc:  # a broken probe is a broken stack
        return f"coordinator check failed: {type(exc).__name__}: {exc}"
    if not running:
        return "the coordinator's worker thread stopped unexpectedly"
    return None


class ServiceThread(QThread):
    """Runs the stack for the window (a :class:`~menace_gui.client_source.ClientSource`).

    Signals (all delivered in the GUI thread):
        clientReady(client): a :class:`~menace.local_client.LocalClient` of
            the stack ``start()`` returned.
        stateChanged(state, detail): one of starting / running / stopping /
            stopped / crashed, with a one-line detail (the error for crashed).

    ``stack`` is the running stack (for the app's glue and for tests that seed
    data; the window never uses it).
    """

    clientReady = Signal(object)
    stateChanged = Signal(str, str)

    def __init__(
        self,
        settings: Settings,
        backend: Backend | None = None,
        parent: QObject | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("serviceThread")
        self.settings = settings
        self._backend = backend or _run_background
        self._overrides = overrides
        self._stop_requested = threading.Event()
        self.stack: Any | None = None
        self.client: LocalClient | None = None
        self.state = STOPPED
        self.detail = ""
        #: ``time.time()`` just before ``start()`` was called (events after it are ours).
        self.start_requested_at: float | None = None

    @property
    def location(self) -> str:
        return str(self.settings.data_dir)

    def open(self) -> None:
        """Start the stack in this thread unless it runs already."""
        if not self.isRunning() and self.client is None:
            self.start()

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        log = logger.error if state == CRASHED else logger.info
        log("service %s%s", state, f": {detail}" if detail else "")
        self.stateChanged.emit(state, detail)

    def run(self) -> None:  # in the service thread
        self._set_state(STARTING, str(self.settings.data_dir))
        try:
            start, stop = self._backend(self.settings, **self._overrides)
            if self._stop_requested.is_set():  # closed while the modules loaded: nothing to start or stop
                self._set_state(STOPPED, "stopped before it started")
                return
            self.start_requested_at = time.time()
            stack = start()
        except Exception as exc:
            logger.exception("the self-learning stack failed to start")
            self._set_state(CRASHED, f"start failed: {type(exc).__name__}: {exc}")
            return
        self.stack = stack
        try:
            self.client = LocalClient(stack, session_start=self.start_requested_at)
        except Exception as exc:
            logger.exception("could not make a client of the stack")
            self._stop_stack(stop)
            self._set_state(CRASHED, f"start failed: {type(exc).__name__}: {exc}")
            return
        self.clientReady.emit(self.client)
        self._set_state(RUNNING, str(self.settings.data_dir))
        problem = None
        while not self._stop_requested.wait(HEALTH_INTERVAL):
            problem = stack_problem(stack)
            if problem:
                break
        if not problem:
            self._set_state(STOPPING)
        t0 = time.monotonic()
        client, self.client = self.client, None
        client.close()
        failure = self._stop_stack(stop)
        problem = problem or failure
        if problem:
            self._set_state(CRASHED, problem)
        else:
            self._set_state(STOPPED, f"stopped in {time.monotonic() - t0:.2f} s")

    @staticmethod
    def _stop_stack(stop: Callable[[], None]) -> str | None:
        """Call ``stop()``; why it failed, or ``None``."""
        try:
            stop()
        except Exception as exc:
            logger.exception("stopping the self-learning stack failed")
            return f"stop failed: {type(exc).__name__}: {exc}"
        return None

    def request_stop(self) -> None:
        """Ask the stack to stop (once it has started, if it is starting); returns at once."""
        self._stop_requested.set()

    def is_stopped(self) -> bool:
        """True once the thread has ended (or was never started)."""
        return not self.isRunning()

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Stop the stack and join the thread; ``True`` if it finished in time."""
        self.request_stop()
        if not self.isRunning():
            return True
        finished = self.wait(int(timeout_s * 1000))
        if not finished:
            logger.error("the service thread did not stop within %.1f s", timeout_s)
        return finished
