"""RunWatcher: announce pathway runs that other processes commit.

The bus is in-process: a script that logs pathways into the same
``pathways.db`` from its own process publishes on its own bus, which the
service never sees. The watcher closes that gap: every ``interval`` seconds
(50 ms by default: one indexed read when nothing is new; every
:data:`BUSY_GAP` for ``interval`` seconds after a look that found runs, so a
stream is read as it comes) it reads the runs
committed since its last look and publishes ``pathway:new`` on the service's
bus for each run that was not already published there, marked
``"external": true``, in one journal transaction per look
(``publish_many``). Its ``stats`` are the pathway's just after the run, as the
run row stores them: the same payload the logging process published.

A run the watched store committed in this process (``logged_here``) is
published by its logger right after the commit; the watcher waits ``grace``
seconds for that before publishing it itself. The engine skips a run it has
already learned, so a late in-process event is never learned twice.

A store that can say when runs arrive (``wait_for_runs(timeout)``: the
PostgreSQL store waits on ``LISTEN``, woken by every commit on any host)
wakes the watcher instead of the clock; it still looks at least every
:data:`WAKE_TIMEOUT` seconds (for the grace time, and in case a wake-up was
lost with a connection). What it reads is the same either way: the store
answers only runs whose ids are settled (no run with a smaller id can still
be committed), so "every run up to ``last_run_id`` was published" holds with
concurrent writers too.

On start it resumes after ``since_run_id`` (the service keeps it in
``service_state.json`` across restarts, so runs committed while the service
was down are learned when it comes back), or after the newest run when there
is no such state.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import events
from .run_ledger import RunLedger

logger = logging.getLogger(__name__)

#: Most runs read per look.
PAGE = 2000
#: Longest wait for a wake-up from a store that sends them, seconds.
WAKE_TIMEOUT = 0.25
#: Time between two looks while runs keep coming (a look published some in the last
#: ``interval`` seconds), seconds:
#: a run waits about half of it to be read, instead of half of ``interval`` (at 10,000 runs/s,
#: freshness p50 fell from 92 to 56 ms and p99 from 265 to 136 ms; bench/sustained.py).
BUSY_GAP = 0.01
#: Least time between two looks when woken, seconds: runs that arrive meanwhile are read and
#: journaled together (at 1,000 runs/s, one journal commit per 10 runs instead of per run).
WAKE_GAP = 0.01


def run_stats(row: dict[str, Any]) -> dict[str, Any]:
    """The pathway's statistics just after a stored run (each run row carries them)."""
    freq = row["prior_frequency"] + 1
    successes = row["successes"]
    return {
        "frequency": freq,
        "success_rate": successes / freq,
        "avg_exec_time": row["avg_exec_time"],
        "avg_roi": row["avg_roi"],
        "myelination_score": successes * row["avg_roi"],
        "last_activation": row["last_activation"],
    }


def run_payload(row: dict[str, Any], stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``pathway:new`` payload for a stored run (a row of ``PathwayDB.runs()``).

    ``stats`` default to the ones the row carries, as the live event had them.
    """
    return events.pathway_new(
        row["pathway_id"], row["id"], row["ts"], row["actions"], row["inputs"], row["outputs"],
        row["exec_time"], row["resources"], row["outcome"], row["roi"], row["label"],
        row["prior_frequency"], row["prior_myelination"], stats if stats is not None else run_stats(row),
        external=True,
    )


class RunWatcher:
    """Publish ``pathway:new`` for runs committed by other processes.

    Args:
        bus: the bus to publish on (and to watch for runs published in-process).
        pathway_db: the :class:`~menace.neuroplasticity.PathwayDB` to read.
        interval: seconds between looks.
        grace: seconds a new run may take to be published in-process.
        since_run_id: publish runs after this id; ``None``: only runs committed
            from now on.
        wake: look when the store says runs arrived (a store with
            ``wait_for_runs``; ``interval`` is then unused), and at least every
            :data:`WAKE_TIMEOUT` seconds; ``False``: look every ``interval`` seconds.
    """

    THREAD_NAME = "menace-run-watcher"

    def __init__(
        self,
        bus: Any,
        pathway_db: Any,
        *,
        interval: float = 0.05,
        grace: float = 1.0,
        since_run_id: int | None = None,
        wake: bool = True,
    ) -> None:
        for name, value in (("interval", interval), ("grace", grace)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 3600:
                raise ValueError(f"{name} must be a number of seconds in (0, 3600), got {value!r}")
        if since_run_id is not None and (
            isinstance(since_run_id, bool) or not isinstance(since_run_id, int) or since_run_id < 0
        ):
            raise ValueError(f"since_run_id must be an integer >= 0, got {since_run_id!r}")
        self.bus = bus
        self.pathway_db = pathway_db
        self.interval = float(interval)
        self.grace = float(grace)
        self.wake = bool(wake)
        self._since = since_run_id
        #: Every run with an id up to this one has been published (here or in-process).
        self.last_run_id = 0
        self.published = 0
        self._announced = RunLedger(what="runs announced in this process")
        self._first_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_pathway(self, _topic: str, payload: dict) -> None:
        if not isinstance(payload, dict) or payload.get("external"):
            return  # announced by a watcher, which notes its own runs in bulk
        run_id = payload.get("run_id")
        if type(run_id) is int:
            self._announced.add(run_id)

    def start(self) -> RunWatcher:
        if self._thread is not None:
            return self
        newest = self.pathway_db.newest_run_id()
        self.last_run_id = newest if self._since is None else min(self._since, newest)
        self.bus.subscribe(events.PATHWAY_NEW, self._on_pathway)
        self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()
        logger.info("watching %s for runs of other processes after run %d", self.pathway_db.path, self.last_run_id)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop looking and join the thread; idempotent."""
        self._stop.set()
        self.bus.unsubscribe(events.PATHWAY_NEW, self._on_pathway)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        wait_for_runs = getattr(self.pathway_db, "wait_for_runs", None) if self.wake else None
        looked = 0.0
        busy_until = 0.0  # look every BUSY_GAP until then: runs came in the last interval
        while not self._stop.is_set():
            if callable(wait_for_runs):
                if not self._woken(wait_for_runs, looked):
                    return
            elif self._stop.wait(min(BUSY_GAP, self.interval) if looked < busy_until else self.interval):
                return
            looked = time.monotonic()
            try:
                if self.poll() > 0:
                    busy_until = looked + self.interval
            except Exception:  # a locked or closed database must not end the watcher quietly
                if self._stop.is_set():
                    return
                logger.exception("run watcher: could not read new runs")

    def _woken(self, wait_for_runs: Any, looked: float) -> bool:
        """Wait for the store's wake-up (at most :data:`WAKE_TIMEOUT`), then for the rest of
        :data:`WAKE_GAP` since the last look; False once the watcher is stopping."""
        try:
            wait_for_runs(WAKE_TIMEOUT)
            gap = looked + WAKE_GAP - time.monotonic()
            if gap > 0 and self._stop.wait(gap):
                return False
        except Exception:  # a closed store while stopping; else logged, and looked at anyway
            if self._stop.is_set():
                return False
            logger.exception("run watcher: could not wait for new runs")
            self._stop.wait(self.interval)
        return not self._stop.is_set()

    def _skip_announced(self) -> None:
        """Step over the runs just after ``last_run_id`` that were announced already (this
        process logged them), without reading them back: under a stream logged through this
        process's own store (the API, the monitor's forms) that read was all the watcher did.
        An id in such a range was committed and published; an id still in flight or rolled
        back was never announced, so the step ends before it."""
        through = self._announced.contiguous_from(self.last_run_id)
        if through <= self.last_run_id:
            return
        if self._first_seen:
            for run_id in [r for r in self._first_seen if r <= through]:
                del self._first_seen[run_id]
        self.last_run_id = through

    def covered_through(self) -> int:
        """The highest run id up to which every run has been published (for resuming).

        Call after :meth:`stop`: runs published in-process after the last look count too.
        """
        last = self.last_run_id
        while True:
            rows = self.pathway_db.runs(since_id=last, limit=PAGE)
            for row in rows:
                if row["id"] not in self._announced:
                    return last
                last = row["id"]
            if len(rows) < PAGE:
                return last

    def poll(self, now: float | None = None) -> int:
        """Look once; returns how many runs were published.

        A run another process committed is published at once. A run this
        process logged through the watched store is published by its logger
        right after the commit; only if it is still not seen after ``grace``
        seconds does the watcher publish it. Runs are published in id order.
        """
        now = time.monotonic() if now is None else now
        self._skip_announced()
        payloads = self.pathway_db.run_events(self.last_run_id, PAGE)
        if not payloads:
            return 0
        ids = [p["run_id"] for p in payloads]
        unannounced = self._announced.missing(ids)
        ours = self.pathway_db.logged_here_many(ids)
        ready: list[dict] = []
        through = self.last_run_id
        for i, (payload, run_id) in enumerate(zip(payloads, ids, strict=True)):
            if unannounced[i]:
                if ours[i]:
                    first = self._first_seen.setdefault(run_id, now)
                    if now - first < self.grace:
                        for j in range(i + 1, len(ids)):  # their grace starts now too
                            if ours[j]:
                                self._first_seen.setdefault(ids[j], now)
                        break  # keep order: later runs wait for this one
                ready.append(payload)
            self._first_seen.pop(run_id, None)
            through = run_id
        if ready:
            self.bus.publish_many(events.PATHWAY_NEW, ready)
            self._announced.add_all(p["run_id"] for p in ready)  # only this thread polls
        self.last_run_id = through
        self.published += len(ready)
        return len(ready)
