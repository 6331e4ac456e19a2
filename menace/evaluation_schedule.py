"""When the coordinator evaluates an engine on its own, and the thread that does it.

:class:`EvaluationSchedule`: every ``every_examples`` examples an engine
learned incrementally, and/or every ``every_seconds`` seconds while its model
keeps changing (0 turns each trigger off). At most one evaluation per engine
per look; the count keeps its remainder, so evaluations stay every N examples
whatever the batch sizes. Used by the training worker only (one thread).

:class:`PeriodicEvaluator`: the thread the scheduled evaluations run on, so
that learning never waits for one, and that takes at most a share of the
time (:data:`~menace.config.EVAL_MAX_SHARE`): under a flood of runs an
evaluation is due every second or so, and back to back they kept a core busy.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from .config import EVAL_MAX_SHARE

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


class PeriodicEvaluator:
    """Runs the scheduled evaluations on their own thread (``menace-evaluator``).

    An evaluation only reads runs and fits fresh models, so it never needs the
    training worker: learning goes on while it runs. One evaluation at a
    time; one that comes due while another runs waits, and a newer one due
    for the same engine replaces it (so at most one waits per engine). After
    an evaluation of ``d`` seconds the next waits ``d * (1 / max_share - 1)``
    more (``max_share`` 1: no rest); :meth:`stop` ends a rest at once.
    """

    THREAD_NAME = "menace-evaluator"

    def __init__(self, evaluate: Callable[[str, str], None], max_share: float = EVAL_MAX_SHARE) -> None:
        if not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {max_share!r}")
        self._evaluate = evaluate
        self.max_share = max_share
        self._rest_until = 0.0  # monotonic time before which no evaluation starts
        self._cond = threading.Condition()
        self._wanted: dict[str, str] = {}  # engine -> trigger, waiting, oldest first
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    def submit(self, engine: str, trigger: str) -> bool:
        """Evaluate ``engine`` soon; False if that replaced one still waiting (or when stopping)."""
        with self._cond:
            if self._stopping:
                return False
            replaced = engine in self._wanted
            self._wanted[engine] = trigger
            self._cond.notify_all()
            return not replaced

    def idle(self) -> bool:
        with self._cond:
            return not self._busy and not self._wanted

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._busy or self._wanted:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.5 if remaining is None else min(remaining, 0.5))
            return True

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._wanted.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._wanted or time.monotonic() < self._rest_until):
                    rest = self._rest_until - time.monotonic()
                    self._cond.wait(min(0.5, rest) if self._wanted and rest > 0 else 0.5)
                if self._stopping:
                    return
                engine = next(iter(self._wanted))
                trigger = self._wanted.pop(engine)
                self._busy = True
            started = time.monotonic()
            try:
                self._evaluate(engine, trigger)
            finally:
                ended = time.monotonic()
                with self._cond:
                    self._busy = False
                    self._rest_until = ended + (ended - started) * (1 / self.max_share - 1)
                    self._cond.notify_all()
