"""The hand-off of a client's events to the GUI thread, resumable by event id.

A client calls its subscriber in a thread of its own and the callback must be
quick, and no widget may be touched outside the GUI thread. So the subscriber
only appends to a deque (atomic in CPython); a 50 ms ``QTimer`` in the GUI
thread drains it and emits one ``eventsReceived`` per batch. One queued signal
per event froze the window under a flood (p99 stall ~1 s); batches keep it at
a few ms.

Every event carries an id. On :meth:`EventBridge.attach` the bridge subscribes
first, then reads what it missed with ``client.events_since``: from the last
id it delivered (a reattach), or from the start of the client's session (the
first attach, so the events published while the stack started are shown too).
Live events wait until that catch-up is delivered, and one that the catch-up
already brought (its id is not above the last id read) is dropped: no gap, no
duplicate.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from menace.client import MenaceClient
from menace.events import Event

from .task_runner import TaskRunner

logger = logging.getLogger(__name__)

#: Drain interval in milliseconds.
DRAIN_INTERVAL_MS = 50
#: Events read per ``events_since`` call while catching up.
CATCH_UP_PAGE = 1000
#: Most events the timer's drain emits at once; the rest follow with the event loop run in
#: between, so a storm's batch stalls the window a few milliseconds at a time.
MAX_EMIT = 200


class EventBridge(QObject):
    """Subscribes to a client's events and delivers them to Qt in batches.

    ``eventsReceived(list[Event])`` is emitted in the GUI thread, in publish
    order: once per drain interval, in slices of at most :data:`MAX_EMIT`
    events with the event loop run in between (and once per page while
    catching up, or per call of :meth:`drain`). ``received`` counts every
    event handed to delivery; ``last_id`` is the highest id handed (``None``
    before the first): a slice still to go out is delivered before anything
    newer, a reattach included.
    """

    eventsReceived = Signal(object)  # object: a list would be converted for every connected panel

    def __init__(self, interval_ms: int = DRAIN_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventBridge")
        self._queue: deque[Event] = deque()
        self._slices: deque[list[Event]] = deque()  # the rest of a tick's batch, still to emit
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._catching_up = False
        self._floor = 0  # live events with an id up to this came with the catch-up
        self._attachment = 0  # which attach a catch-up answer belongs to
        self.received = 0
        self.last_id: int | None = None
        self._timer = QTimer(self)
        self._timer.setObjectName("eventBridgeTimer")
        self._timer.setTimerType(Qt.TimerType.CoarseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    @property
    def client(self) -> MenaceClient | None:
        return self._client

    def is_catching_up(self) -> bool:
        """True while the events missed before this attach are being read."""
        return self._catching_up

    def attach(self, client: MenaceClient, runner: TaskRunner) -> None:
        """Follow ``client``'s events (detaching from any previous client) and catch up.

        ``client.subscribe`` is called here, in the GUI thread: it must return
        at once. The catch-up reads run on ``runner``.
        """
        self.detach()
        self._client, self._runner = client, runner
        self._attachment += 1
        self._catching_up = True
        client.subscribe(self._on_event)
        self._timer.start()
        attachment, resume = self._attachment, self.last_id

        def first_page() -> tuple[int, list[Event]]:
            after = resume if resume is not None else client.status().session_event_id
            return after, client.events_since(after, CATCH_UP_PAGE)

        runner.submit(
            first_page,
            on_done=lambda result: self._caught_up(attachment, *result),
            on_error=lambda exc: self._catch_up_failed(attachment, exc),
        )

    def detach(self) -> None:
        """Stop following; events already handed over are still delivered."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.unsubscribe(self._on_event)
            except Exception:
                logger.exception("could not unsubscribe from the client")
        self._timer.stop()
        self._attachment += 1  # a catch-up still under way is dropped
        if self._catching_up:
            # Delivering live events now would skip the older ones not read yet;
            # the next attach reads them all from the last id delivered.
            self._catching_up = False
            self._queue.clear()
        self.drain()

    def pending(self) -> int:
        """Events handed over but not yet delivered."""
        return len(self._queue) + sum(len(part) for part in self._slices)

    # Runs in the client's thread: append only, nothing else.
    def _on_event(self, event: Event) -> None:
        self._queue.append(event)

    def _caught_up(self, attachment: int, after: int, page: list[Event]) -> None:
        if attachment != self._attachment:
            return
        if page:
            self._floor = max(self._floor, page[-1].id)
            self._deliver(page)
        else:
            self._floor = max(self._floor, after)
        runner, client = self._runner, self._client
        if len(page) >= CATCH_UP_PAGE and runner is not None and client is not None and not runner.closed:
            after = page[-1].id
            runner.submit(
                lambda: (after, client.events_since(after, CATCH_UP_PAGE)),
                on_done=lambda result: self._caught_up(attachment, *result),
                on_error=lambda exc: self._catch_up_failed(attachment, exc),
            )
            return
        self._catching_up = False
        self.drain()

    def _catch_up_failed(self, attachment: int, exc: BaseException) -> None:
        if attachment != self._attachment:
            return
        logger.warning("could not read the events missed before listening: %s", exc)
        self._catching_up = False
        self.drain()

    def drain(self) -> int:
        """Deliver everything queued so far at once (what a tick left to emit first); its size."""
        self._emit_slices(everything=True)
        return self._deliver(self._take())

    def _tick(self) -> None:
        """The timer's drain: what is queued, in slices of :data:`MAX_EMIT` (see the class doc)."""
        if self._slices:  # the last tick's batch is still going out: these wait their turn
            return
        batch = self._take()
        if len(batch) <= MAX_EMIT:
            self._deliver(batch)
            return
        self._note(batch)
        self._slices.extend(batch[i : i + MAX_EMIT] for i in range(0, len(batch), MAX_EMIT))
        self._emit_slices()

    def _emit_slices(self, everything: bool = False) -> None:
        """Emit the next slice (``everything``: all of them), then let the event loop run."""
        while self._slices:
            self.eventsReceived.emit(self._slices.popleft())
            if not everything:
                break
        if self._slices:
            QTimer.singleShot(0, self, self._emit_slices)

    def _take(self) -> list[Event]:
        """What is queued (none while catching up), without what the catch-up brought."""
        if self._catching_up:
            return []
        queue = self._queue
        count = len(queue)
        if not count:
            return []
        popleft = queue.popleft
        batch = [popleft() for _ in range(count)]
        floor = self._floor
        if floor:
            batch = [e for e in batch if e.id > floor]
        return batch

    def _deliver(self, batch: Sequence[Event]) -> int:
        if not batch:
            return 0
        self._emit_slices(everything=True)  # older events first
        self._note(batch)
        self.eventsReceived.emit(list(batch))
        return len(batch)

    def _note(self, batch: Sequence[Event]) -> None:
        newest = max(e.id for e in batch)
        if self.last_id is None or newest > self.last_id:
            self.last_id = newest
        self.received += len(batch)
