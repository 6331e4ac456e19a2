"""RunWatcher: runs committed by other processes reach the service's bus once (both backends)."""

from __future__ import annotations

import time

import pytest

from menace import events
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.run_watcher import RunWatcher
from menace.self_learning_service import run_background


def runs(n: int, offset: int = 0) -> list[PathwayRecord]:
    return [
        PathwayRecord(
            ["fetch->parse", "login->buy", "scan->fix"][(i + offset) % 3], exec_time=1.0, roi=1.0,
            outcome="FAILURE" if (i + offset) % 3 == 2 else "SUCCESS",
        )
        for i in range(n)
    ]


@pytest.fixture
def pathway_events(bus):
    seen: list[dict] = []
    bus.subscribe(events.PATHWAY_NEW, lambda _t, p: seen.append(p))
    return seen


def test_external_runs_are_announced_at_once_and_our_own_never_twice(backend, bus, pathway_events):
    ours = backend.pathway_db(event_bus=bus)
    theirs = backend.pathway_db()  # another process's connection: no bus here
    watcher = RunWatcher(bus, ours, interval=3599, grace=1.0, wake=False).start()  # polled by hand below
    try:
        ours.log_many(runs(3))
        theirs.log_many(runs(2))
        assert watcher.poll(now=100.0) == 2  # another process's runs: published at once
        assert watcher.poll(now=103.0) == 0
    finally:
        watcher.stop()
    external = [p for p in pathway_events if p.get("external")]
    assert [p["run_id"] for p in external] == [4, 5]
    assert len(pathway_events) == 5  # the in-process runs were not announced again
    live = {p["run_id"]: p for p in pathway_events if not p.get("external")}
    assert external[0]["stats"]["frequency"] >= 1 and external[0]["outcome"] in {"SUCCESS", "FAILURE"}
    assert set(external[0]) == set(live[1]) | {"external"}  # the same payload shape as a live event
    assert watcher.covered_through() == 5
    ours.close()
    theirs.close()


def test_runs_this_process_announced_are_not_read_back(backend, bus, pathway_events):
    """A service ingesting through its own store (the API, the monitor's forms): the watcher
    steps over what was announced instead of reading every run back; another process's run
    among them is still read and announced, once, in order."""
    ours = backend.pathway_db(event_bus=bus)
    theirs = backend.pathway_db()
    watcher = RunWatcher(bus, ours, interval=3599, grace=1.0, wake=False).start()
    read: list[int] = []
    run_events = ours.run_events
    ours.run_events = lambda since, limit=2000: [p for p in run_events(since, limit) if not read.append(p["run_id"])]
    try:
        ours.log_many(runs(600))
        assert watcher.poll(now=100.0) == 0 and read == []  # nothing read back
        theirs.log_many(runs(1))  # run 601
        ours.log_many(runs(300))  # 602..901
        assert watcher.poll(now=101.0) == 1 and read[0] == 601 and len(read) == 301
        ours.log_many(runs(50))
        assert watcher.poll(now=102.0) == 0 and len(read) == 301
        assert watcher.last_run_id == 951
    finally:
        watcher.stop()
    assert [p["run_id"] for p in pathway_events if p.get("external")] == [601]
    ours.close()
    theirs.close()


def test_a_run_of_ours_whose_event_never_came_is_announced_after_the_grace_time(backend, bus, pathway_events):
    silent = backend.pathway_db()  # logs here, but publishes on no bus
    watcher = RunWatcher(bus, silent, interval=3599, grace=1.0, wake=False).start()
    try:
        silent.log_many(runs(2))
        assert watcher.poll(now=100.0) == 0  # ours: its own event should come first
        assert watcher.poll(now=101.5) == 2  # it did not: the watcher announces them
    finally:
        watcher.stop()
        silent.close()
    assert [p["run_id"] for p in pathway_events] == [1, 2]


def test_watcher_starts_after_the_newest_run_unless_told_where(backend, bus, pathway_events):
    with backend.pathway_db() as theirs:
        theirs.log_many(runs(4))
    pdb = backend.pathway_db(event_bus=bus)
    fresh = RunWatcher(bus, pdb, interval=3599, wake=False).start()
    resumed = RunWatcher(bus, pdb, interval=3599, since_run_id=2, wake=False).start()
    try:
        assert fresh.last_run_id == 4 and resumed.last_run_id == 2
        assert fresh.poll(now=0.0) == 0
        assert resumed.poll(now=0.0) == 2
    finally:
        fresh.stop()
        resumed.stop()
        pdb.close()
    assert [p["run_id"] for p in pathway_events] == [3, 4]


@pytest.mark.parametrize("kwargs", [{"interval": 0}, {"grace": -1}, {"since_run_id": -3}])
def test_bad_arguments_are_refused(tmp_path, bus, kwargs):
    with PathwayDB(tmp_path / "p.db") as pdb, pytest.raises(ValueError, match=next(iter(kwargs))):
        RunWatcher(bus, pdb, **kwargs)


def test_a_stream_is_read_as_it_comes_and_an_idle_store_only_every_interval(backend, bus, pathway_events):
    """For an interval after a look that found runs the watcher looks every BUSY_GAP: the
    runs of a stream wait milliseconds to be announced, not up to the interval. Once an
    interval passed with nothing new, it is back to one look per interval."""
    theirs = backend.pathway_db()
    pdb = backend.pathway_db(event_bus=bus)
    looks: list[float] = []
    run_events = pdb.run_events
    pdb.run_events = lambda since, limit=2000: looks.append(time.monotonic()) or run_events(since, limit)
    watcher = RunWatcher(bus, pdb, interval=1.0, wake=False).start()
    try:
        theirs.log_many(runs(1))
        wait_until(lambda: len(pathway_events) == 1, timeout=5)  # the first look: up to 1 s
        waits = []
        for k in range(5):  # a stream: each run logged once the last was announced
            logged = time.monotonic()
            theirs.log_many(runs(1, offset=k))
            wait_until(lambda n=k + 2: len(pathway_events) == n, timeout=5)
            waits.append(time.monotonic() - logged)
        assert max(waits) < 0.3, f"runs of a stream waited {waits} s for a watcher looking every 1 s"
        time.sleep(1.2)  # an interval with nothing new: idle again
        looks.clear()
        time.sleep(1.5)
        assert len(looks) <= 2, f"{len(looks)} looks in 1.5 s at an idle store"
    finally:
        watcher.stop()
        pdb.close()
        theirs.close()


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_service_learns_runs_of_other_processes_also_those_logged_while_it_was_down(backend, settings_for):
    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    try:
        with backend.pathway_db() as script:
            script.log_many(runs(6))
        wait_until(lambda: stack.engine.n_seen == 6)
        stack.pathway_db.log_many(runs(3, offset=1))  # in-process runs are learned as usual
        assert stack.coordinator.wait_idle(10)
        wait_until(lambda: stack.engine.n_seen == 9)
    finally:
        stop()
    assert backend.read_state() == {"last_run_id": 9}

    with backend.pathway_db() as script:  # while the service is down
        script.log_many(runs(4, offset=2))
    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    try:
        wait_until(lambda: stack.engine.n_seen == 13)
        time.sleep(0.6)  # one more look of the watcher: nothing is learned twice
        assert stack.engine.n_seen == 13
        assert stack.coordinator.stats()["duplicates"] == 0
    finally:
        stop()
