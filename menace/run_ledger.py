"""RunLedger: which run ids have been handled, as sorted ``[first, last]`` ranges.

The one way Menace remembers run ids. The engine keeps one of the runs its
model learned (saved with the model, so a run delivered again after a
restart - a replayed journal, a watcher resuming from an older point after a
crash - is not learned twice: it would weigh double); the run watcher keeps
one of the runs already announced on the bus. Runs arrive nearly in order,
so the ranges stay few and a lookup is a binary search. Past :attr:`limit`
ranges the oldest range is forgotten (a warning says which runs), the one
memory cap for every use.

Thread-safe: a lookup from a publisher's thread may race an ``add`` from
the worker.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Iterable

from .errors import FieldError

logger = logging.getLogger(__name__)

#: Most ranges a ledger keeps before it forgets the oldest.
RANGE_LIMIT = 10_000


class RunLedger:
    """A set of run ids stored as ranges (see the module doc)."""

    def __init__(self, ranges: Iterable[Iterable[int]] = (), *, limit: int = RANGE_LIMIT, what: str = "runs") -> None:
        self.limit = limit
        self.what = what
        self._lock = threading.Lock()
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        for pair in ranges:
            first, last = pair
            for run_id in (first, last):
                if isinstance(run_id, bool) or not isinstance(run_id, int):
                    raise FieldError("ranges", f"run ids must be integers, got {run_id!r:.60}")
            self._firsts.append(first)
            self._lasts.append(last)
        firsts, lasts = self._firsts, self._lasts
        if any(f > last for f, last in zip(firsts, lasts, strict=True)) or any(
            a >= b - 1 for a, b in zip(lasts, firsts[1:], strict=False)
        ):
            raise FieldError("ranges", "run ranges must be sorted, disjoint and not adjacent")

    def __contains__(self, run_id: int) -> bool:
        with self._lock:
            i = bisect.bisect_right(self._firsts, run_id) - 1
            return i >= 0 and run_id <= self._lasts[i]

    def __len__(self) -> int:
        """How many run ids."""
        with self._lock:
            return sum(last - first + 1 for first, last in zip(self._firsts, self._lasts, strict=True))

    def missing(self, run_ids: list[int]) -> list[bool]:
        """For each id, whether it is *not* here (one lock for the whole list)."""
        with self._lock:
            firsts, lasts = self._firsts, self._lasts
            newest = lasts[-1] if lasts else -1
            out = []
            for run_id in run_ids:
                if run_id > newest:
                    out.append(True)
                    continue
                i = bisect.bisect_right(firsts, run_id) - 1
                out.append(not (i >= 0 and run_id <= lasts[i]))
            return out

    def add(self, run_id: int) -> None:
        with self._lock:
            self._add(run_id)

    def add_range(self, first: int, last: int) -> None:
        """Add every id from ``first`` to ``last``; cheap when it extends the newest range."""
        with self._lock:
            lasts = self._lasts
            if lasts and lasts[-1] + 1 == first:
                lasts[-1] = max(lasts[-1], last)
                return
            for run_id in range(first, last + 1):
                self._add(run_id)

    def add_all(self, run_ids: Iterable[int]) -> None:
        with self._lock:
            for run_id in run_ids:
                self._add(run_id)

    def _add(self, run_id: int) -> None:
        firsts, lasts = self._firsts, self._lasts
        i = bisect.bisect_right(firsts, run_id) - 1
        if i >= 0 and run_id <= lasts[i]:
            return
        joins_left = i >= 0 and lasts[i] == run_id - 1
        joins_right = i + 1 < len(firsts) and firsts[i + 1] == run_id + 1
        if joins_left and joins_right:
            lasts[i] = lasts[i + 1]
            del firsts[i + 1], lasts[i + 1]
        elif joins_left:
            lasts[i] = run_id
        elif joins_right:
            firsts[i + 1] = run_id
        else:
            firsts.insert(i + 1, run_id)
            lasts.insert(i + 1, run_id)
            if len(firsts) > self.limit:
                logger.warning(
                    "more than %d ranges of %s; forgetting runs %d-%d", self.limit, self.what,
                    firsts[0], lasts[0],
                )
                del firsts[0], lasts[0]

    def clear(self) -> None:
        with self._lock:
            self._firsts.clear()
            self._lasts.clear()

    def newest(self) -> int:
        """The highest run id (0 when empty)."""
        with self._lock:
            return self._lasts[-1] if self._lasts else 0

    def contiguous_from(self, start: int) -> int:
        """The highest id ``n >= start`` such that every run in ``start+1 .. n`` is here."""
        with self._lock:
            i = bisect.bisect_right(self._firsts, start + 1) - 1
            if i >= 0 and self._firsts[i] <= start + 1 <= self._lasts[i]:
                return self._lasts[i]
            return start

    def ranges(self) -> list[list[int]]:
        """JSON-able ``[[first, last], ...]``."""
        with self._lock:
            return [[f, last] for f, last in zip(self._firsts, self._lasts, strict=True)]
