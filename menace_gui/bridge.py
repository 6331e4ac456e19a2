"""The hand-off from the bus thread to the GUI thread.

A bus subscriber runs in the publisher's thread and must be quick, and no
widget may be touched outside the GUI thread. So the subscriber only appends
to a deque (atomic in CPython); a 50 ms ``QTimer`` in the GUI thread drains it
and emits one ``eventsReceived`` per batch. One queued signal per event froze
the window under a flood (p99 stall ~1 s); batches keep it at a few ms.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from menace import events

logger = logging.getLogger(__name__)

#: Drain interval in milliseconds.
DRAIN_INTERVAL_MS = 50


class BusEvent(NamedTuple):
    """One bus event as the GUI sees it; ``received`` is when the bridge got it (epoch s)."""

    received: float
    topic: str
    payload: dict[str, Any]


class EventBridge(QObject):
    """Subscribes to every topic of a bus and delivers the events to Qt in batches.

    ``eventsReceived(list[BusEvent])`` is emitted in the GUI thread, at most
    once per drain interval, in publish order. ``received`` counts every event
    delivered so far.
    """

    eventsReceived = Signal(list)

    def __init__(self, interval_ms: int = DRAIN_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventBridge")
        self._queue: deque[BusEvent] = deque()
        self._bus: Any | None = None
        self.received = 0
        self._timer = QTimer(self)
        self._timer.setObjectName("eventBridgeTimer")
        self._timer.setTimerType(Qt.TimerType.CoarseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)

    @property
    def bus(self) -> Any | None:
        return self._bus

    def attach(self, bus: Any) -> None:
        """Start listening to ``bus`` (``subscribe("*")``); detaches from any previous bus."""
        self.detach()
        self._bus = bus
        bus.subscribe(events.ALL, self._on_event)
        self._timer.start()

    def detach(self) -> None:
        """Stop listening; events already handed over are still delivered."""
        if self._bus is not None:
            self._bus.unsubscribe(events.ALL, self._on_event)
            self._bus = None
        self._timer.stop()
        self.drain()

    def queued(self) -> list[BusEvent]:
        """A copy of the events handed over but not yet delivered."""
        return list(self._queue)

    def pending(self) -> int:
        """Events handed over but not yet delivered."""
        return len(self._queue)

    # Runs in the publisher's thread: append only, nothing else.
    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        self._queue.append(BusEvent(time.time(), topic, payload))

    def drain(self) -> int:
        """Deliver everything queued so far as one batch; returns its size."""
        queue = self._queue
        count = len(queue)
        if not count:
            return 0
        popleft = queue.popleft
        batch = [popleft() for _ in range(count)]
        self.received += count
        self.eventsReceived.emit(batch)
        return count
