"""PathwayDB folding (schema v3): what a reader sees does not depend on when runs were folded.

A log writes only its run; every ``FOLD_EVERY`` runs (here monkeypatched to a few) the
runs since the last fold are folded into the ``pathways`` rows and ``links``. These
tests drive two or three PathwayDB objects on one file and compare every read with a
brute-force reference computed in plain Python from all runs, and with a *twin*: a
single object on another file that never folds, which must answer exactly the same.

The generated property runs 50 cases in the default run and 1,000 in the slow run.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from menace import neuroplasticity
from menace.neuroplasticity import Outcome, PathwayDB, PathwayRecord

FAST = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))

DAY = 86_400.0
T0 = 1_700_000_000.0
LINK_WINDOW = 10.0
HALF_LIFE_DAYS = 20.0 / DAY  # 20 seconds: the decay shows between runs seconds apart
ACTIONS = ("fetch->parse", "parse->store", "login", "search", "report")
# Seconds from one run to the next: equal, inside and outside the link window, backwards.
STEPS = (0.0, 0.0, 1.0, 2.5, 7.0, 10.0, 10.5, 60.0, -1.0, -12.0)
# Explicit link weights: exact in binary, so sums compare exactly.
WEIGHTS = (0.0, 0.5, 1.0, 2.5)
NEVER = 1 << 62


def close(value):
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def open_db(path: Path) -> PathwayDB:
    return PathwayDB(path, half_life_days=HALF_LIFE_DAYS, link_window=LINK_WINDOW)


@contextlib.contextmanager
def never_folding():
    """FOLD_EVERY out of reach, for the twin (the property patches it small)."""
    saved = neuroplasticity.FOLD_EVERY
    neuroplasticity.FOLD_EVERY = NEVER
    try:
        yield
    finally:
        neuroplasticity.FOLD_EVERY = saved


def raw_tables(path: Path) -> tuple[dict, dict, int]:
    """The ``pathways`` rows, ``links`` and fold point as a plain sqlite3 reader sees them."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        pathways = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM pathways")}
        links = {(r["from_id"], r["to_id"]): r["weight"] for r in conn.execute("SELECT * FROM links")}
        (folded,) = conn.execute("SELECT folded_through FROM fold_state").fetchone()
    return pathways, links, folded


# -- the brute-force reference ---------------------------------------------------------------


def aggregate(runs: list[dict]) -> dict:
    n = len(runs)
    successes = sum(r["outcome"] == "SUCCESS" for r in runs)
    avg_roi = math.fsum(r["roi"] for r in runs) / n
    return {
        "frequency": n,
        "successes": successes,
        "success_rate": successes / n,
        "avg_exec_time": math.fsum(r["exec_time"] for r in runs) / n,
        "avg_roi": avg_roi,
        "last_activation": max(r["ts"] for r in runs),
        "myelination_score": successes * avg_roi,  # undecayed: apply_decay is never called
    }


def reference(runs: list[dict], explicit: dict) -> tuple[dict, list[dict], dict]:
    """From all runs in id order: each pathway's aggregate, each run's columns, the links."""
    by_pathway: dict[int, list[dict]] = {}
    per_run = []
    links = dict(explicit)
    for i, run in enumerate(runs):
        pid = run["pathway_id"]
        earlier = by_pathway.setdefault(pid, [])
        if earlier:
            before = aggregate(earlier)
            age = max(run["ts"] - before["last_activation"], 0.0)
            prior_myelination = (
                before["successes"] * before["avg_roi"] * 0.5 ** (age / (HALF_LIFE_DAYS * DAY))
            )
        else:
            prior_myelination = 0.0
        after = aggregate([*earlier, run])
        per_run.append({
            "label": int(run["outcome"] == "SUCCESS"),
            "prior_frequency": len(earlier),
            "prior_myelination": prior_myelination,
            "previous_run_id": earlier[-1]["id"] if earlier else None,
            **{k: after[k] for k in ("successes", "avg_exec_time", "avg_roi", "last_activation")},
        })
        earlier.append(run)
        if i:
            prev = runs[i - 1]
            if prev["pathway_id"] != pid and 0 <= run["ts"] - prev["ts"] <= LINK_WINDOW:
                pair = (prev["pathway_id"], pid)
                links[pair] = links.get(pair, 0.0) + 1.0
    stats = {pid: {"actions": rs[0]["actions"], **aggregate(rs)} for pid, rs in by_pathway.items()}
    return stats, per_run, links


# -- the driver: writers on one file, and the twin ---------------------------------------------


class Writers:
    """Several PathwayDB objects on one file, a never-folding twin, and what was committed."""

    def __init__(self, folder: Path, count: int) -> None:
        self.path = folder / "pathways.db"
        self.dbs = [open_db(self.path) for _ in range(count)]
        self.twin = open_db(folder / "twin.db")
        self.logged: list[tuple] = []  # (actions, outcome, roi, exec_time, ts) of committed runs
        self.explicit: dict[tuple[int, int], float] = {}  # weights given to link()
        self.ids: dict[str, int] = {}  # pathway id of each action text
        self.ts = T0
        self.records = 0

    def close(self) -> None:
        for db in (*self.dbs, self.twin):
            db.close()

    def record(self, spec: tuple) -> PathwayRecord:
        actions, outcome, roi, exec_time, step = spec
        if isinstance(actions, int):  # generated: 0 takes the next action text in turn
            actions = ACTIONS[(self.records + actions) % len(ACTIONS)]
        self.records += 1
        self.ts += step
        return PathwayRecord(actions, exec_time=exec_time, outcome=outcome, roi=roi, ts=self.ts)

    def _committed(self, records, pathway_ids) -> None:
        for rec, pid in zip(records, pathway_ids, strict=True):
            assert self.ids.setdefault(rec.actions, pid) == pid
            self.logged.append((rec.actions, rec.outcome.value, rec.roi, rec.exec_time, rec.ts))

    def log(self, w: int, spec: tuple) -> int:
        rec = self.record(spec)
        pid = self.dbs[w].log(rec)
        with never_folding():
            assert self.twin.log(rec) == pid
        self._committed([rec], [pid])
        return pid

    def log_many(self, w: int, specs: list[tuple]) -> list[int]:
        records = [self.record(s) for s in specs]
        pids = self.dbs[w].log_many(records)
        with never_folding():
            assert self.twin.log_many(records) == pids
        self._committed(records, pids)
        return pids

    def overflow(self, w: int, specs: list[tuple]) -> None:
        """A batch whose last record is out of range: none of it is written, here and in the twin."""
        records = [self.record(s) for s in specs] + [PathwayRecord("huge", roi=-1e12, ts=self.ts)]
        records[-1].roi = 1.7e308  # changed after construction: checked again when logged
        before = raw_tables(self.path)
        with pytest.raises(ValueError, match="roi"):
            self.dbs[w].log_many(records)
        with never_folding(), pytest.raises(ValueError, match="roi"):
            self.twin.log_many(records)
        assert raw_tables(self.path) == before

    def link(self, w: int, i: int, j: int, weight: float) -> None:
        ids = sorted(self.ids.values())
        if not ids:
            return
        a, b = ids[i % len(ids)], ids[j % len(ids)]
        self.dbs[w].link(a, b, weight)
        self.twin.link(a, b, weight)
        self.explicit[(a, b)] = self.explicit.get((a, b), 0.0) + weight

    def fold(self, w: int) -> int:
        folded_before = raw_tables(self.path)[2]
        folded = self.dbs[w].fold()
        assert folded == len(self.logged) - folded_before
        assert raw_tables(self.path)[2] == len(self.logged)
        other = self.dbs[(w + 1) % len(self.dbs)]
        assert other.fold() == 0  # nothing new since
        return folded

    def reopen(self, w: int) -> None:
        self.dbs[w].close()
        self.dbs[w] = open_db(self.path)

    def check(self, db: PathwayDB) -> None:
        check_against_reference(db, self.logged, self.explicit)

    def check_all(self) -> None:
        for db in self.dbs:
            self.check(db)
        self.check(self.twin)
        self.same_as_twin(self.dbs[0])

    def same_as_twin(self, db: PathwayDB) -> None:
        """Folded or not, the answers are exactly the same."""
        pathways = db.pathways()
        assert pathways == self.twin.pathways()
        assert db.runs() == self.twin.runs()
        assert db.top_pathways(len(pathways) + 1) == self.twin.top_pathways(len(pathways) + 1)
        for p in pathways:
            assert db.links(p.id) == self.twin.links(p.id)
            assert db.next_pathway(p.id) == self.twin.next_pathway(p.id)

    def check_raw_tables_are_current(self) -> None:
        """After a fold, the tables themselves hold what the reads say."""
        db = self.dbs[0]
        pathways, links, folded = raw_tables(self.path)
        assert folded == len(self.logged) == db.count_runs()
        runs = db.runs()
        for p in db.pathways():
            row = pathways.pop(p.id)
            assert {k: row[k] for k in p.stats()} == p.stats()
            assert (row["actions"], row["successes"]) == (p.actions, p.successes)
            assert row["last_run_id"] == max(r["id"] for r in runs if r["pathway_id"] == p.id)
            assert {(p.id, to): w for to, w in db.links(p.id)} == {
                pair: w for pair, w in links.items() if pair[0] == p.id
            }
        assert pathways == {}


def check_against_reference(db: PathwayDB, logged: list[tuple], explicit: dict) -> None:
    runs = db.runs()
    assert [(r["actions"], r["outcome"], r["roi"], r["exec_time"], r["ts"]) for r in runs] == logged
    assert [r["id"] for r in runs] == list(range(1, len(runs) + 1))
    stats, per_run, links = reference(runs, explicit)

    for run, want in zip(runs, per_run, strict=True):
        exact = ("label", "prior_frequency", "previous_run_id", "successes", "last_activation")
        assert {k: run[k] for k in exact} == {k: want[k] for k in exact}, run["id"]
        for k in ("prior_myelination", "avg_exec_time", "avg_roi"):
            assert run[k] == close(want[k]), (run["id"], k)

    listed = db.pathways()
    assert [p.id for p in listed] == sorted(stats)
    assert db.count_pathways() == len(listed) and db.count_runs() == len(runs)
    middle = len(runs) // 2
    for p in listed:
        want = stats[p.id]
        exact = ("actions", "frequency", "successes", "success_rate", "last_activation")
        assert {k: getattr(p, k) for k in exact} == {k: want[k] for k in exact}
        for k in ("avg_exec_time", "avg_roi", "myelination_score"):
            assert getattr(p, k) == close(want[k]), (p.id, k)
        assert db.get(p.id) == p
        assert db.find(p.actions) == p
        own_runs = [r for r in runs if r["pathway_id"] == p.id]
        assert db.runs(p.id) == own_runs
        assert db.runs(p.id, since_id=middle) == [r for r in own_runs if r["id"] > middle]
        want_links = sorted(
            ((to, w) for (frm, to), w in links.items() if frm == p.id), key=lambda x: (-x[1], x[0])
        )
        got_links = db.links(p.id)
        assert got_links == want_links, p.id
        assert db.next_pathway(p.id) == (db.get(got_links[0][0]) if got_links else None)

    top = db.top_pathways(len(listed) + 1)
    assert top == sorted(listed, key=lambda p: (-p.myelination_score, p.id))
    assert [p.myelination_score for p in top] == close(
        sorted((s["myelination_score"] for s in stats.values()), reverse=True)
    )
    assert db.find("huge") is None and db.get(len(listed) + 1) is None


# -- 1. any interleaving of writers, folds and links -------------------------------------------

# Generated indices count from a turn (the action text in turn, the writer in turn), so
# that even the simplest example, all zeros, interleaves writers and pathways.
run_specs = st.tuples(
    st.integers(0, len(ACTIONS) - 1),
    st.sampled_from([o.value for o in Outcome]),
    st.one_of(st.integers(-3, 3), st.floats(-1000, 1000, allow_nan=False)),
    st.one_of(st.just(0.0), st.floats(0, 100)),
    st.sampled_from(STEPS),
)
writer = st.integers(0, 2)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("log"), writer, run_specs),
        st.tuples(st.just("log"), writer, run_specs),
        st.tuples(st.just("log_many"), writer, st.lists(run_specs, max_size=6)),
        st.tuples(st.just("fold"), writer),
        st.tuples(st.just("link"), writer, st.integers(0, 9), st.integers(0, 9), st.sampled_from(WEIGHTS)),
        st.tuples(st.just("overflow"), writer, st.lists(run_specs, max_size=4)),
        st.tuples(st.just("reopen"), writer),
    ),
    min_size=3,
    max_size=30,
)
scenario = dict(
    ops=operations,
    writers=st.integers(2, 3),
    fold_every=st.integers(3, 7),
    cache_limit=st.sampled_from([2, 3, neuroplasticity.CACHE_LIMIT]),
    catch_up_limit=st.sampled_from([1, 3, 4096]),
)


def check_interleaving(ops, writers, fold_every, cache_limit, catch_up_limit) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        # Small limits, so that folds, cache evictions and dropped caches happen often.
        mp.setattr(neuroplasticity, "FOLD_EVERY", fold_every)
        mp.setattr(neuroplasticity, "CACHE_LIMIT", cache_limit)
        mp.setattr(neuroplasticity, "CATCH_UP_LIMIT", catch_up_limit, raising=False)
        w = Writers(Path(folder), writers)
        try:
            for step, (kind, who, *args) in enumerate(ops):
                getattr(w, kind)((step + who) % writers, *args)
                w.check(w.dbs[step % writers])
            folded = raw_tables(w.path)[2]
            event("some runs were folded" if folded else "nothing was folded")
            event("some runs were not folded" if folded < len(w.logged) else "all runs folded")
            w.check_all()
            w.fold(0)
            w.check_all()
            w.check_raw_tables_are_current()
            # The twin never folded: its tables hold only the pathways' first checkpoints.
            twin_rows, twin_links, twin_folded = raw_tables(w.path.with_name("twin.db"))
            assert twin_folded == 0 and all(r["frequency"] == 0 for r in twin_rows.values())
            assert set(twin_links) <= set(w.explicit)
        finally:
            w.close()


@FAST
@given(**scenario)
def test_any_interleaving_of_writers_and_folds_reads_as_the_brute_force_reference(
    ops, writers, fold_every, cache_limit, catch_up_limit
):
    check_interleaving(ops, writers, fold_every, cache_limit, catch_up_limit)


@pytest.mark.slow
@SLOW
@given(**scenario)
def test_any_interleaving_of_writers_and_folds_reads_as_the_brute_force_reference_1000(
    ops, writers, fold_every, cache_limit, catch_up_limit
):
    check_interleaving(ops, writers, fold_every, cache_limit, catch_up_limit)


def spec(actions, roi=1.0, outcome="SUCCESS", exec_time=1.0, step=1.0) -> tuple:
    return (actions, outcome, roi, exec_time, step)


@pytest.fixture
def writers(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", 4)
    w = Writers(tmp_path, 2)
    yield w
    w.close()


def test_interleaved_writers_with_folds_in_between_match_the_reference(writers):
    w = writers
    for i in range(30):  # runs 4, 8, ... fold, by whichever writer logs them
        w.log(i % 3 % 2, spec(ACTIONS[i % 4], roi=float(i % 5 - 1), step=(3.0, 0.0, 12.0)[i % 3]))
        if i % 7 == 0:
            w.log_many(1, [spec("login", roi=2.0), spec("report", outcome="FAILURE")])
        w.check(w.dbs[i % 2])
    assert raw_tables(w.path)[2] > 0
    w.check_all()


# -- 2. a rolled-back log leaves the cache exact -----------------------------------------------


def test_a_rolled_back_batch_leaves_every_writers_cache_exact(writers):
    w = writers
    w.log(0, spec("login", roi=2.0))
    w.log(0, spec("search", roi=1.0, outcome="FAILURE"))
    w.log(1, spec("login", roi=4.0))
    w.log(0, spec("search", roi=3.0))
    folded = raw_tables(w.path)[2]
    # Enough runs to fold, a new pathway, and writer 0's cached pathways advanced: all undone.
    w.overflow(0, [spec("login", roi=100.0), spec("report"), spec("search"), spec("login")] * 2)
    assert raw_tables(w.path)[2] == folded
    assert w.dbs[0].find("report") is None
    w.check_all()
    for i in range(9):
        w.log(i % 2, spec(("login", "search", "report")[i % 3], roi=float(i)))
        w.check(w.dbs[0])
        w.check(w.dbs[1])
    w.overflow(1, [spec("report")])
    w.log(1, spec("report", roi=5.0))
    w.log(0, spec("report", roi=-5.0))
    w.check_all()


# -- 3. reopening ------------------------------------------------------------------------------


def test_a_reopened_store_reads_the_unfolded_runs_then_logs_and_folds_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", NEVER)
    w = Writers(tmp_path, 2)
    try:
        for i in range(20):
            w.log(i % 2, spec(ACTIONS[i % 3], roi=float(i % 4), step=(2.0, 0.0, 30.0, -1.0)[i % 4]))
        w.link(0, 0, 1, 2.5)
        pathways, links, folded = raw_tables(w.path)
        assert folded == 0 and {r["frequency"] for r in pathways.values()} == {0}  # nothing folded
        before = (w.dbs[0].pathways(), w.dbs[0].runs(), [w.dbs[0].links(p) for p in w.ids.values()])
        w.check_all()

        w.reopen(0)
        w.reopen(1)
        again = w.dbs[0]
        assert (again.pathways(), again.runs(), [again.links(p) for p in w.ids.values()]) == before
        w.check_all()

        monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", 5)
        for i in range(14):  # the reopened writers start from the unfolded runs
            w.log(i % 2, spec(ACTIONS[i % 4], roi=float(-i), step=1.0))
        assert 0 < raw_tables(w.path)[2] < len(w.logged)
        w.check_all()
        w.fold(1)
        w.check_all()
        w.check_raw_tables_are_current()

        w.reopen(0)  # reopened right after a fold: nothing to read back
        w.log(0, spec("fetch->parse", roi=7.0))
        w.check_all()
    finally:
        w.close()


# -- 4. the fold writes the tables -------------------------------------------------------------


def test_fold_writes_the_current_aggregates_and_links_into_the_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", NEVER)
    path = tmp_path / "pathways.db"
    db, other = open_db(path), open_db(path)
    try:
        assert db.fold() == 0  # an empty store
        t = T0
        for i, (actions, roi, outcome) in enumerate(
            [("a", 2.0, "SUCCESS"), ("b", 1.0, "FAILURE"), ("a", 4.0, "SUCCESS"), ("b", 3.0, "SUCCESS")]
        ):
            (db if i % 2 == 0 else other).log(PathwayRecord(actions, roi=roi, outcome=outcome, ts=t + i))
        a, b = db.find("a").id, db.find("b").id
        db.link(b, a, 0.5)
        pathways, links, folded = raw_tables(path)
        # Before the fold the tables hold only the checkpoint of each new pathway
        # (and the explicit link), though every read is already current.
        assert folded == 0
        assert [(r["frequency"], r["avg_roi"]) for r in pathways.values()] == [(0, 0.0), (0, 0.0)]
        assert links == {(b, a): 0.5}
        assert db.get(a).frequency == 2 and db.links(a) == [(b, 2.0)]

        assert db.fold() == 4
        pathways, links, folded = raw_tables(path)
        assert folded == 4
        assert pathways[a] == {
            "id": a, "actions": "a", "frequency": 2, "successes": 2, "success_rate": 1.0,
            "avg_exec_time": 0.0, "avg_roi": 3.0, "last_activation": t + 2,
            "myelination_score": 6.0, "last_run_id": 3,
        }
        assert pathways[b] == {
            "id": b, "actions": "b", "frequency": 2, "successes": 1, "success_rate": 0.5,
            "avg_exec_time": 0.0, "avg_roi": 2.0, "last_activation": t + 3,
            "myelination_score": 2.0, "last_run_id": 4,
        }
        assert links == {(a, b): 2.0, (b, a): 1.5}
        assert db.fold() == 0 and other.fold() == 0  # nothing new
        assert raw_tables(path) == (pathways, links, folded)

        other.log(PathwayRecord("a", roi=6.0, outcome="FAILURE", ts=t + 4))  # b -> a again
        assert raw_tables(path)[0][a]["frequency"] == 2  # logged, not folded yet
        assert db.get(a).frequency == 3 and db.links(b) == [(a, 2.5)]
        assert db.fold() == 1
        pathways, links, folded = raw_tables(path)
        assert (pathways[a]["frequency"], pathways[a]["avg_roi"], folded) == (3, 4.0, 5)
        assert links == {(a, b): 2.0, (b, a): 2.5}
    finally:
        db.close()
        other.close()


def test_a_log_folds_every_fold_every_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", 3)
    path = tmp_path / "pathways.db"
    with open_db(path) as db:
        db.log(PathwayRecord("a", roi=1.0, ts=T0))
        db.log(PathwayRecord("b", roi=2.0, ts=T0 + 1))
        assert raw_tables(path)[2] == 0
        db.log(PathwayRecord("a", roi=3.0, ts=T0 + 2))  # the third run folds
        pathways, links, folded = raw_tables(path)
        assert folded == 3
        assert [(r["actions"], r["frequency"], r["avg_roi"]) for r in pathways.values()] == [
            ("a", 2, 2.0), ("b", 1, 2.0),
        ]
        assert links == {(1, 2): 1.0, (2, 1): 1.0}
        db.log_many([PathwayRecord("b", ts=T0 + 3)] * 2)
        assert raw_tables(path)[2] == 3
        db.log(PathwayRecord("b", ts=T0 + 4))
        assert raw_tables(path)[2] == 6
        assert raw_tables(path)[0][2]["frequency"] == 4
        assert db.fold() == 0


def test_apply_decay_folds_first(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", NEVER)
    path = tmp_path / "pathways.db"
    with open_db(path) as db:
        db.log(PathwayRecord("a", roi=2.0, ts=T0))
        db.log(PathwayRecord("a", roi=4.0, ts=T0 + 1))
        assert db.apply_decay(now=T0 + 1 + HALF_LIFE_DAYS * DAY) == 1
        pathways, _, folded = raw_tables(path)
        assert folded == 2
        assert (pathways[1]["frequency"], pathways[1]["avg_roi"]) == (2, 3.0)
        assert pathways[1]["myelination_score"] == close(2 * 3.0 * 0.5)
        assert db.get(1).myelination_score == close(3.0)


# -- a writer's stale cache -------------------------------------------------------------------


def test_a_writer_that_reads_its_pathway_back_does_not_count_its_own_run_twice(tmp_path, monkeypatch):
    # CATCH_UP_LIMIT (if the module has it): past it, a writer drops its cache rather than
    # read every other connection's run back, and reads the pathway of its run again.
    monkeypatch.setattr(neuroplasticity, "CATCH_UP_LIMIT", 1, raising=False)
    path = tmp_path / "pathways.db"
    with open_db(path) as first, open_db(path) as second:
        first.log(PathwayRecord("a", ts=T0))  # run 1: first caches "a"
        second.log_many([PathwayRecord("b", ts=T0)] * 2)  # runs 2 and 3, by another connection
        first.log(PathwayRecord("a", ts=T0))  # run 4
        run = first.runs()[-1]
        assert (run["id"], run["prior_frequency"], run["previous_run_id"]) == (4, 1, 1)
        assert first.find("a").frequency == 2


def test_a_writer_does_not_fold_again_right_after_another_writer_folded(tmp_path, monkeypatch):
    monkeypatch.setattr(neuroplasticity, "FOLD_EVERY", 4)
    path = tmp_path / "pathways.db"
    with open_db(path) as first, open_db(path) as second:
        first.log(PathwayRecord("a", ts=T0))
        second.log_many([PathwayRecord("b", ts=T0 + 1)] * 3)  # the fourth run: second folds
        assert raw_tables(path)[2] == 4
        first.log(PathwayRecord("a", ts=T0 + 2))  # due by its own count, but second just folded
        assert raw_tables(path)[2] == 4
        first.log_many([PathwayRecord("a", ts=T0 + 3)] * 3)  # 4 runs since that fold: due
        assert raw_tables(path)[2] == 8
        assert first.find("a").frequency == 5
        assert second.find("b").frequency == 3
