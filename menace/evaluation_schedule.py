"""EvaluationSchedule: when the coordinator evaluates an engine on its own.

Every ``every_examples`` examples an engine learned incrementally, and/or
every ``every_seconds`` seconds while its model keeps changing (0 turns
each trigger off). At most one evaluation per engine per look; the count
keeps its remainder, so evaluations stay every N examples whatever the
batch sizes. Used by the training worker only (one thread).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

#: Longest sleep of an idle worker between looks, seconds.
MAX_IDLE = 0.5


class EvaluationSchedule:
    """See the module doc."""

    def __init__(self, engines: Iterable[str], every_examples: int, every_seconds: float) -> None:
        self.every_examples = every_examples
        self.every_seconds = every_seconds
        self._since: Counter[str] = Counter()
        self._dirty: dict[str, bool] = dict.fromkeys(engines, False)
        self._last: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.every_examples or self.every_seconds)

    def start(self, now: float | None = None) -> None:
        """The clock of the time trigger starts now."""
        now = time.monotonic() if now is None else now
        for name in self._dirty:
            self._last.setdefault(name, now)

    def learned(self, engine: str, examples: int) -> None:
        """``engine`` learned ``examples`` new examples incrementally."""
        self._since[engine] += examples
        self._dirty[engine] = True

    def changed(self, engine: str) -> None:
        """``engine``'s model changed another way (a full training)."""
        self._dirty[engine] = True

    def due(self, now: float | None = None) -> list[tuple[str, str]]:
        """``(engine, trigger)`` for each engine due now (``trigger`` is ``examples`` or
        ``interval``); their counters start again."""
        now = time.monotonic() if now is None else now
        due = []
        for name, dirty in self._dirty.items():
            trigger = None
            if self.every_examples and self._since[name] >= self.every_examples:
                trigger = "examples"
            elif self.every_seconds and dirty and now - self._last.get(name, now) >= self.every_seconds:
                trigger = "interval"
            if trigger is None:
                continue
            self._since[name] = self._since[name] % self.every_examples if self.every_examples else 0
            self._dirty[name] = False
            self._last[name] = now
            due.append((name, trigger))
        return due

    def idle_timeout(self, now: float | None = None) -> float:
        """How long an idle worker may sleep before a timed evaluation is due."""
        if not self.every_seconds:
            return MAX_IDLE
        now = time.monotonic() if now is None else now
        due = min(
            (self._last.get(n, now) + self.every_seconds for n, d in self._dirty.items() if d),
            default=now + MAX_IDLE,
        )
        return min(MAX_IDLE, max(0.01, due - now))
