"""``/v1/events``: the bus as Server-Sent Events, each with its journal id, resumable.

A stream is served by reading the journal after the client's last id, page
by page, and, once caught up, waiting until the live bus says something new
was published (or ``heartbeat`` seconds pass: a comment line keeps proxies
and the client's read timeout happy). The bus only wakes streams; what is
sent always comes from the journal, so the order is the journal's and a
client that reconnects with ``Last-Event-ID`` gets exactly what it missed:
no gap, no duplicate.

Without a journal (``--no-journal``) there are no durable ids: the stream
serves the bus's in-process ids from a buffer of the last
:data:`RING_SIZE` events, so a reconnect while the service keeps running
resumes (within the buffer); after a restart the ids begin again at 1. An
id ahead of the newest event (an earlier journal, or an earlier run without
one) starts the stream at the newest event.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from ..events import Event

logger = logging.getLogger(__name__)

#: Events read from the journal per step.
PAGE = 500
#: Events kept in memory when the bus has no journal.
RING_SIZE = 10_000
#: Seconds a client waits before reconnecting (sent as the stream's ``retry:``).
RETRY_MS = 1000

_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def format_event(event: Event) -> str:
    """One SSE message: ``id:``, ``event:`` (the topic) and the event as JSON in ``data:``."""
    data = _ENCODE({"id": event.id, "ts": event.ts, "topic": event.topic, "payload": event.payload})
    return f"id: {event.id}\nevent: {event.topic}\ndata: {data}\n\n"


class _Ring:
    """The last ``size`` events by id, for a bus without a journal (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: list[int] = []
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        with self._lock:
            # Publishers race: an id may arrive just after a higher one.
            i = bisect.bisect_right(self._ids, event.id)
            self._ids.insert(i, event.id)
            self._events.insert(i, event)
            if len(self._ids) > self.size * 2:
                del self._ids[: -self.size], self._events[: -self.size]

    def after(self, event_id: int, limit: int) -> list[Event]:
        with self._lock:
            i = bisect.bisect_right(self._ids, event_id)
            return self._events[i : i + limit]

    def newest(self) -> int:
        with self._lock:
            return self._ids[-1] if self._ids else 0


class EventFeed:
    """What every ``/v1/events`` stream reads, and what wakes it.

    :meth:`attach` subscribes to the bus for the life of the server's event
    loop; the bus callback only schedules a wake-up on that loop (coalesced:
    one pending wake-up at a time), so publishing stays cheap.
    """

    def __init__(self, bus: Any, ring_size: int = RING_SIZE) -> None:
        self.bus = bus
        self.journal = bus.persist_path is not None
        self._ring = None if self.journal else _Ring(ring_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()
        self._pending = False
        self._pending_lock = threading.Lock()
        self.closing = False

    # -- the bus side (publisher threads) ----------------------------------------------
    def _on_event(self, event: Event) -> None:
        if self._ring is not None:
            self._ring.add(event)
        loop = self._loop
        if loop is None:
            return
        with self._pending_lock:
            if self._pending:
                return
            self._pending = True
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    def _wake(self) -> None:
        with self._pending_lock:
            self._pending = False
        for waiter in self._waiters:
            waiter.set()

    # -- lifecycle (the server's loop) ---------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.bus.subscribe_events(self._on_event)

    def detach(self) -> None:
        self.bus.unsubscribe_events(self._on_event)
        self._loop = None

    def close(self) -> None:
        """End every stream (called on the loop's thread, or through ``call_soon_threadsafe``)."""
        self.closing = True
        for waiter in self._waiters:
            waiter.set()

    # -- reading -------------------------------------------------------------------------
    def after(self, event_id: int, limit: int = PAGE) -> list[Event]:
        """Up to ``limit`` events after ``event_id``, oldest first (blocking: call off the loop)."""
        if self._ring is not None:
            return self._ring.after(event_id, limit)
        return self.bus.events_since(event_id, limit)

    def newest(self) -> int:
        """The newest event id (blocking)."""
        if self._ring is not None:
            return self._ring.newest()
        return self.bus.newest_event_id()

    async def stream(
        self,
        after: int | None,
        *,
        follow: bool,
        heartbeat: float,
        run: Callable[..., Any],
    ) -> AsyncIterator[str]:
        """The SSE text of every event after ``after`` (``None``: from now on).

        ``run(fn, *args)`` runs a blocking read off the loop and returns an
        awaitable. Ends when caught up if not ``follow``, or when the feed closes.
        """
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            newest = await run(self.newest)
            if after is None or after > newest:
                if after is not None:
                    logger.info("event stream: id %d is ahead of the newest (%d); starting from now", after, newest)
                after = newest
            yield f"retry: {RETRY_MS}\n: after {after}\n\n"
            while True:
                closing = self.closing  # read once more after close(): the last events get out
                waiter.clear()  # before reading: a publish during the read wakes the next wait
                page = await run(self.after, after, PAGE)
                if page:
                    after = page[-1].id
                    yield "".join(_formatted(page))
                    if len(page) == PAGE:
                        continue
                if closing or not follow:
                    return
                try:
                    await asyncio.wait_for(waiter.wait(), heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            self._waiters.discard(waiter)


def _formatted(page: Iterable[Event]) -> Iterable[str]:
    for event in page:
        try:
            yield format_event(event)
        except ValueError:  # cannot happen for a journaled payload; never end the stream for it
            logger.exception("event %d cannot be sent as JSON", event.id)
