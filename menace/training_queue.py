"""TrainingQueue: what waits for the training worker, handed out in micro-batches.

Input events (runs to learn, texts to embed) and manual jobs share one queue,
in arrival order, so a job runs after the events queued before it and
nothing trains a model from two threads. The worker takes the head: a job
alone, or a micro-batch of input events - up to ``batch_size`` events,
waiting at most ``batch_wait`` seconds after the first for more; when it has
fallen behind (a full batch and more queued) up to ``max_batch_size`` at
once, since much of the cost of a ``partial_train`` call is per call.

A *gate* (the embedding prefetcher) may hold an event back: the event is
parked under a key (its action text) until :meth:`release` of that key puts
it back at the front, in arrival order, so a run whose text is still being
embedded does not hold up the runs behind it.

``pending`` counts what is queued, parked or being worked on; it reaches 0
only when everything handed in has been done (:meth:`wait_idle`). The queue
is bounded twice: by count (``max_queue``) and by the estimated bytes of the
events waiting (``max_bytes``, :func:`payload_bytes`), so large runs cannot
take more memory than that however many arrive.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .events import CheckedPayload
from .jobs import Job

_sizeof = sys.getsizeof


@dataclass
class Input:
    """One accepted input event, waiting for the worker; ``size`` estimates its bytes."""

    topic: str
    payload: dict[str, Any]
    received: float  # time.monotonic()
    size: int = 0

    def __post_init__(self) -> None:
        if not self.size:
            self.size = payload_bytes(self.payload)


#: What a queued event costs beyond its texts: the dict, its numbers, the Input (measured
#: with tracemalloc on pathway:new payloads: about 0.8 KB each besides their texts).
EVENT_OVERHEAD = 800


def payload_bytes(payload: dict[str, Any]) -> int:
    """An estimate of the memory a queued event holds: its texts (``sys.getsizeof``: one,
    two or four bytes a character as Python keeps them) plus :data:`EVENT_OVERHEAD`; texts
    in lists and dicts (tags, steps) count too."""
    if type(payload) is CheckedPayload:
        # A store's pathway:new (events.pathway_new, the only builder): the same sum without
        # the walk, which cost a twentieth of the service's time at 12,500 runs/s.
        return (
            EVENT_OVERHEAD + 32 * len(payload["stats"]) + _sizeof(payload["actions"])
            + _sizeof(payload["inputs"]) + _sizeof(payload["outputs"])
            + _sizeof(payload["resources"]) + _sizeof(payload["outcome"])
        )
    return walked_payload_bytes(payload)


def walked_payload_bytes(payload: dict[str, Any]) -> int:
    """:func:`payload_bytes` by walking every value (any payload)."""
    size = EVENT_OVERHEAD
    for value in payload.values():
        kind = type(value)
        if kind is str:
            size += _sizeof(value)
        elif kind is list or kind is dict:
            items = value.values() if kind is dict else value
            size += sum(_sizeof(v) if type(v) is str else 32 for v in items)
    return size


#: Decides whether an input must wait: a key to park it under, or ``None`` to go now.
Gate = Callable[[Input], "str | None"]


class TrainingQueue:
    """See the module doc. Every method is thread-safe; :attr:`cond` guards the state."""

    def __init__(
        self, *, batch_size: int, max_batch_size: int, batch_wait: float, max_queue: int,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.batch_size = batch_size
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        #: Estimated bytes of the events queued, parked or on the side queue (not yet handed out).
        self.bytes = 0
        self.cond = threading.Condition()
        self.gate: Gate | None = None
        self.pending = 0
        self.stopping = False
        self._items: deque[Input | Job] = deque()
        self._side: deque[Input] = deque()  # events for another consumer (the prefetcher)
        self._parked: dict[str, list[Input]] = {}
        self._drain_deadline = math.inf

    # -- handing in ---------------------------------------------------------------------
    def offer(self, item: Input, *, side: bool = False) -> int | None:
        """Queue ``item`` (on the side queue for the prefetcher); its queue depth, or ``None``
        when refused (full, or stopping). Caller holds :attr:`cond`."""
        if self.stopping or len(self._items) + len(self._side) >= self.max_queue:
            return None
        if self.bytes + item.size > self.max_bytes and self.bytes:  # one event always fits
            return None
        (self._side if side else self._items).append(item)
        self.bytes += item.size
        self.pending += 1
        self.cond.notify_all()
        return len(self._items)

    def put_job(self, job: Job) -> None:
        with self.cond:
            self._items.append(job)
            self.pending += 1
            self.cond.notify()

    def remove_job(self, job: Job) -> bool:
        """Take a queued job out (it will not run); False if it is not queued."""
        with self.cond:
            try:
                self._items.remove(job)
            except ValueError:
                return False
            self.pending -= 1
            self.cond.notify_all()
            return True

    # -- the worker's side ----------------------------------------------------------------
    def next_work(self, idle_timeout: Callable[[], float]) -> tuple[list[Input], Job | None] | None:
        """The next micro-batch of inputs or the next job; ``([], None)`` after an idle
        ``idle_timeout()`` seconds; ``None`` when the worker should exit."""
        with self.cond:
            while True:
                if self.stopping and (not self._items or time.monotonic() >= self._drain_deadline):
                    return None
                if self._items:
                    break
                self.cond.wait(idle_timeout())
                if not self._items and not self.stopping:
                    return [], None
            head = self._items[0]
            if isinstance(head, Job):
                self._items.popleft()
                return [], head
            return self._batch(head), None

    def _batch(self, head: Input) -> list[Input]:
        batch: list[Input] = []
        deadline = head.received + self.batch_wait
        while True:
            while self._items and isinstance(self._items[0], Input) and len(batch) < self.batch_size:
                self._take(batch)
            if len(batch) >= self.batch_size or self.stopping:
                break
            if self._items and isinstance(self._items[0], Job):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.cond.wait(remaining)
        # Behind: a full batch and more waiting. Take what is queued, up to the cap.
        while (
            len(batch) >= self.batch_size
            and len(batch) < self.max_batch_size
            and self._items
            and isinstance(self._items[0], Input)
        ):
            self._take(batch)
        return batch

    def _take(self, batch: list[Input]) -> None:
        item: Input = self._items.popleft()  # type: ignore[assignment]
        key = self.gate(item) if self.gate is not None and not self.stopping else None
        if key is not None:
            self._parked.setdefault(key, []).append(item)
        else:
            self.bytes -= item.size
            batch.append(item)

    def take_side(self, limit: int) -> list[Input]:
        """Up to ``limit`` events of the side queue. Caller holds :attr:`cond`."""
        taken = []
        while self._side and len(taken) < limit:
            taken.append(self._side.popleft())
            self.bytes -= taken[-1].size
        return taken

    def has_side(self) -> bool:
        return bool(self._side)

    def release(self, keys: Iterable[str]) -> None:
        """Put the events parked under ``keys`` back at the front. Caller holds :attr:`cond`."""
        items = [item for key in keys for item in self._parked.pop(key, ())]
        if items:
            items.sort(key=lambda item: item.received)
            self._items.extendleft(reversed(items))
            self.cond.notify_all()

    def finish(self, n: int) -> int:
        """``n`` items handed out are done; returns the queue depth."""
        with self.cond:
            self.pending = max(0, self.pending - n)
            self.cond.notify_all()
            return len(self._items)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or in progress; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while self.pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.cond.wait(remaining if remaining is not None else 0.5)
            return True

    # -- stopping ---------------------------------------------------------------------------
    def close(self, drain_for: float) -> list[Job]:
        """Refuse new input, keep handing out queued events for ``drain_for`` seconds,
        and take the queued jobs out (returned, for cancelling)."""
        with self.cond:
            self.stopping = True
            self._drain_deadline = time.monotonic() + max(0.0, drain_for)
            jobs = [item for item in self._items if isinstance(item, Job)]
            for job in jobs:
                self._items.remove(job)
            self.pending -= len(jobs)
            self.release(list(self._parked))  # the worker learns them, embedding inline
            self.cond.notify_all()
        return jobs

    def leftovers(self, worker_alive: bool) -> list[Input]:
        """Empty the queue after the worker stopped; returns the events never handed out."""
        with self.cond:
            left = [item for item in self._items if isinstance(item, Input)] + list(self._side)
            self._items.clear()
            self._side.clear()
            self.bytes = sum(item.size for items in self._parked.values() for item in items)
            if not worker_alive:
                self.pending = 0
            self.cond.notify_all()
            return left

    @property
    def depth(self) -> int:
        return len(self._items)

    def parked(self) -> int:
        with self.cond:
            return sum(len(v) for v in self._parked.values())
