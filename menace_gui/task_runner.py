"""Runs store writes, searches and predictions off the GUI thread.

One named worker thread (a single-worker executor) does the work in order;
the result or the error comes back by a queued signal and the callback runs in
the GUI thread. The window therefore never waits on SQLite or on a model.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

logger = logging.getLogger(__name__)

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class TaskRunner(QObject):
    """``submit(fn, *args, on_done=..., on_error=...)`` runs ``fn`` in the worker thread.

    ``on_done(result)`` / ``on_error(exception)`` are called in the GUI thread.
    After :meth:`shutdown` nothing more is run and no callback is called.
    """

    _finished = Signal(int, object)
    _failed = Signal(int, object)

    def __init__(self, parent: QObject | None = None, name: str = "menace-gui-worker") -> None:
        super().__init__(parent)
        self.setObjectName("taskRunner")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Done | None, Failed | None]] = {}
        self._closed = False
        self._drained = threading.Event()
        self._joiner: threading.Thread | None = None
        self._finished.connect(self._on_finished)
        self._failed.connect(self._on_failed)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Done | None = None,
        on_error: Failed | None = None,
    ) -> int:
        """Queue ``fn(*args)``; returns a task id. Raises ``RuntimeError`` after shutdown."""
        if self._closed:
            raise RuntimeError("the task runner is shut down")
        task_id = next(self._ids)
        self._callbacks[task_id] = (on_done, on_error)
        self._executor.submit(self._run, task_id, fn, args)
        return task_id

    @property
    def closed(self) -> bool:
        """True after :meth:`shutdown`: nothing more can be submitted."""
        return self._closed

    def pending(self) -> int:
        """Tasks submitted whose callback has not run yet."""
        return len(self._callbacks)

    def _run(self, task_id: int, fn: Callable[..., Any], args: tuple) -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # delivered to the GUI, which shows it
            if not isinstance(exc, ValueError):
                logger.exception("background task %s failed", getattr(fn, "__name__", fn))
            if not self._closed:
                self._failed.emit(task_id, exc)
            return
        if not self._closed:
            self._finished.emit(task_id, result)

    @Slot(int, object)
    def _on_finished(self, task_id: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(task_id, (None, None))
        if on_done is not None and not self._closed:
            on_done(result)

    @Slot(int, object)
    def _on_failed(self, task_id: int, error: BaseException) -> None:
        _, on_error = self._callbacks.pop(task_id, (None, None))
        if self._closed:
            return
        if on_error is not None:
            on_error(error)
        else:
            logger.error("background task failed: %s", error)

    def shutdown(self, wait: bool = True) -> None:
        """Drop queued tasks, let the running one finish (joined when ``wait``)."""
        self._closed = True
        self._callbacks.clear()
        if self._joiner is not None:
            if wait:
                self._joiner.join()
            return
        self._executor.shutdown(wait=wait, cancel_futures=True)
        if wait:
            self._drained.set()

    def shutdown_later(self) -> None:
        """:meth:`shutdown` without waiting: :meth:`is_drained` tells when the running task has ended."""
        if self._joiner is not None or self._drained.is_set():
            return
        self._closed = True
        self._callbacks.clear()

        def join() -> None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._drained.set()

        self._joiner = threading.Thread(target=join, name="menace-gui-worker-join", daemon=True)
        self._joiner.start()

    def is_drained(self) -> bool:
        """True once the worker has ended after a shutdown (no task runs any more)."""
        if self._drained.is_set() and self._joiner is not None:
            self._joiner.join()
        return self._drained.is_set()
