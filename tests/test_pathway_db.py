"""PathwayDB: validation, aggregation, myelination and decay, links, events, schema.

Behaviour tests run on both backends (``backend``: SQLite files and PostgreSQL);
the file format, WAL and SQLite version tests are SQLite's own.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_backends import BACKENDS, open_test_backend

from menace import neuroplasticity
from menace.neuroplasticity import Outcome, PathwayDB, PathwayRecord
from menace.storage import SchemaError, connect, migrate

DAY = 86_400.0


@pytest.fixture
def db(backend, bus):
    store = backend.pathway_db(event_bus=bus)
    yield store
    store.close()


def collect(bus, topic="pathway:new"):
    got = []
    bus.subscribe(topic, lambda t, p: got.append(p))
    return got


# -- records -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field_name",
    [
        ({"actions": ""}, "actions"),
        ({"actions": "   \n"}, "actions"),
        ({"actions": None}, "actions"),
        ({"actions": 42}, "actions"),
        ({"actions": "a\x00b"}, "actions"),
        ({"exec_time": -0.001}, "exec_time"),
        ({"exec_time": math.nan}, "exec_time"),
        ({"exec_time": math.inf}, "exec_time"),
        ({"exec_time": "fast"}, "exec_time"),
        ({"exec_time": True}, "exec_time"),
        ({"roi": math.nan}, "roi"),
        ({"roi": -math.inf}, "roi"),
        ({"roi": None}, "roi"),
        ({"outcome": "MAYBE"}, "outcome"),
        ({"outcome": 1}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"inputs": 3}, "inputs"),
        ({"ts": -1.0}, "ts"),
        ({"ts": math.nan}, "ts"),
    ],
)
def test_bad_record_fields_are_refused_naming_the_field(fields, field_name):
    values = {"actions": "fetch->parse", **fields}
    with pytest.raises(ValueError, match=field_name):
        PathwayRecord(**values)


@pytest.mark.parametrize(
    "given_outcome, expected",
    [
        (Outcome.SUCCESS, Outcome.SUCCESS),
        ("SUCCESS", Outcome.SUCCESS),
        ("success", Outcome.SUCCESS),
        ("PARTIAL_SUCCESS", Outcome.PARTIAL_SUCCESS),
        ("partial success", Outcome.PARTIAL_SUCCESS),
        ("partial-success", Outcome.PARTIAL_SUCCESS),
        (" Failure ", Outcome.FAILURE),
    ],
)
def test_outcome_accepts_the_enum_or_its_name(given_outcome, expected):
    assert PathwayRecord("a", outcome=given_outcome).outcome is expected


def test_ts_defaults_to_now_for_each_record():
    before = time.time()
    first = PathwayRecord("a")
    time.sleep(0.01)
    second = PathwayRecord("a")
    assert before <= first.ts < second.ts <= time.time()


# -- bad input writes nothing ------------------------------------------------


def test_record_changed_after_construction_is_refused_and_nothing_written(db, bus):
    got = collect(bus)
    record = PathwayRecord("fetch->parse", exec_time=1.0, roi=1.0)
    record.roi = math.nan
    with pytest.raises(ValueError, match="roi"):
        db.log(record)
    assert (db.count_pathways(), db.count_runs(), got, bus.journal_size()) == (0, 0, [], 0)


def test_a_field_changed_to_an_equal_value_of_another_type_is_checked_again(db):
    record = PathwayRecord("fetch->parse", exec_time=1.0, roi=1.0)
    record.roi = True  # == 1.0, but not a number for Menace
    with pytest.raises(ValueError, match="roi"):
        db.log(record)
    record.roi = 1.0
    record.outcome = "SUCCESS"  # == Outcome.SUCCESS, but a str: coerced again, as at construction
    db.log(record)
    assert db.runs()[0]["outcome"] == "SUCCESS"


def test_one_bad_record_refuses_the_whole_batch(db, bus):
    got = collect(bus)
    db.log(PathwayRecord("before", roi=1.0))
    good = PathwayRecord("fetch->parse", roi=1.0)
    bad = PathwayRecord("fetch->store", roi=1.0)
    bad.exec_time = -5
    with pytest.raises(ValueError, match="exec_time"):
        db.log_many([good, good, bad])
    with pytest.raises(ValueError, match=r"records\[1\]"):
        db.log_many([good, {"actions": "not a record"}])
    assert db.count_runs() == 1
    assert db.count_pathways() == 1
    assert len(got) == 1


def test_a_batch_with_a_number_out_of_range_is_refused_whole_and_announces_nothing(db, bus):
    got = collect(bus)
    with pytest.raises(ValueError, match="roi"):
        PathwayRecord("huge", roi=-1.7e308)  # finite, but no model can learn from it
    records = [PathwayRecord("ok", roi=1.0), PathwayRecord("huge", roi=-1e12), PathwayRecord("huge", roi=1.0)]
    records[2].roi = 1.7e308  # changed after construction: checked again when logged
    with pytest.raises(ValueError, match="roi"):
        db.log_many(records)
    assert (db.count_pathways(), db.count_runs(), got) == (0, 0, [])
    # The store is still usable and its links are not corrupted by the failed batch.
    db.log(PathwayRecord("ok", roi=1.0))
    assert db.count_runs() == 1


def test_log_many_commits_once_before_publishing(backend, bus):
    db = backend.pathway_db(event_bus=bus)
    other = backend.pathway_db()  # another connection
    seen_by_other_reader = []
    bus.subscribe("pathway:new", lambda topic, payload: seen_by_other_reader.append(other.count_runs()))
    ids = db.log_many(PathwayRecord(f"step{i % 3}", roi=1.0) for i in range(5))
    # Every event sees all five runs: one transaction, committed before the first event.
    assert seen_by_other_reader == [5] * 5
    assert ids == [1, 2, 3, 1, 2]
    db.close()
    other.close()


def test_a_batch_is_journaled_in_one_transaction_and_delivered_run_by_run(backend):
    """log_many on a journaling bus: the batch's events go to the journal together (one
    commit, where each used to pay its own), in order, and each subscriber still gets every run."""
    bus = backend.open_bus()
    db = backend.pathway_db(event_bus=bus)
    got, journal_sizes = [], []
    bus.subscribe("pathway:new", lambda topic, payload: (got.append(payload["run_id"]),
                                                         journal_sizes.append(bus.journal_size())))
    runs = db.log_runs(PathwayRecord(f"step{i % 4}", roi=1.0) for i in range(40))
    assert got == [r.run_id for r in runs]
    assert journal_sizes == [40] * 40  # journaled together, before the first delivery
    assert [e.payload["run_id"] for e in bus.events_since(0, 100)] == got
    db.log(PathwayRecord("alone", roi=1.0))  # a single run: one publish, as before
    assert len(got) == 41 and bus.journal_size() == 41
    db.close()
    bus.close()


# -- aggregation ---------------------------------------------------------------


def test_repeated_runs_aggregate_into_one_pathway_and_every_run_is_kept(db):
    t0 = 1_700_000_000.0
    runs = [
        PathwayRecord(" fetch->parse ", exec_time=1.0, roi=3.0, outcome="SUCCESS", ts=t0),
        PathwayRecord("fetch->parse", exec_time=2.0, roi=0.0, outcome="PARTIAL_SUCCESS", ts=t0 + 1),
        PathwayRecord("fetch->parse", exec_time=6.0, roi=3.0, outcome="FAILURE", ts=t0 + 2),
        PathwayRecord("fetch->parse", exec_time=3.0, roi=2.0, outcome="SUCCESS", ts=t0 + 3),
    ]
    ids = [db.log(r) for r in runs]
    assert len(set(ids)) == 1
    pathway = db.get(ids[0])
    assert pathway.actions == "fetch->parse"
    assert pathway.frequency == 4
    assert pathway.successes == 2  # PARTIAL_SUCCESS does not count as success
    assert pathway.success_rate == pytest.approx(0.5)
    assert pathway.avg_exec_time == pytest.approx(3.0)
    assert pathway.avg_roi == pytest.approx(2.0)
    assert pathway.last_activation == t0 + 3
    assert pathway.myelination_score == pytest.approx(4 * 0.5 * 2.0)
    assert db.count_pathways() == 1
    assert [r["outcome"] for r in db.runs(ids[0])] == [
        "SUCCESS", "PARTIAL_SUCCESS", "FAILURE", "SUCCESS",
    ]
    assert [r["label"] for r in db.runs()] == [1, 0, 0, 1]
    assert db.find("fetch->parse") == pathway
    assert db.find("fetch") is None


def test_run_features_are_those_known_before_the_run(db):
    t0 = 1_700_000_000.0
    db.log(PathwayRecord("a", roi=2.0, outcome="SUCCESS", ts=t0))
    db.log(PathwayRecord("a", roi=4.0, outcome="FAILURE", ts=t0 + DAY * 30))
    first, second = db.runs()
    # The first run knew nothing; its own success is not in its features.
    assert (first["prior_frequency"], first["prior_myelination"]) == (0, 0.0)
    # The second sees the first run's score decayed over one half-life (30 days).
    assert second["prior_frequency"] == 1
    assert second["prior_myelination"] == pytest.approx(2.0 * 0.5)


def test_myelination_decays_with_the_half_life_and_is_not_decayed_twice(backend):
    db = backend.pathway_db(half_life_days=2.0)
    t0 = 1_700_000_000.0
    pid = db.log(PathwayRecord("a", roi=3.0, outcome="SUCCESS", ts=t0))
    db.log(PathwayRecord("a", roi=1.0, outcome="SUCCESS", ts=t0))
    assert db.get(pid).myelination_score == pytest.approx(2 * 1.0 * 2.0)

    assert db.apply_decay(now=t0 + 2 * DAY) == 1
    assert db.get(pid).myelination_score == pytest.approx(4.0 * 0.5)
    db.apply_decay(now=t0 + 2 * DAY)  # applying again at the same time changes nothing
    assert db.get(pid).myelination_score == pytest.approx(2.0)
    db.apply_decay(now=t0 + 6 * DAY)
    assert db.get(pid).myelination_score == pytest.approx(4.0 * 0.125)

    # A run after apply_decay starts from the aggregate, not from the decayed score.
    db.log(PathwayRecord("a", roi=2.0, outcome="FAILURE", ts=t0 + 4 * DAY))
    assert db.runs()[-1]["prior_myelination"] == pytest.approx(4.0 * 0.25)
    pathway = db.get(pid)
    assert pathway.myelination_score == pytest.approx(3 * (2 / 3) * 2.0)  # undecayed at log
    db.close()


def test_half_life_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="half_life_days"):
        PathwayDB(tmp_path / "p.db", half_life_days=0)
    assert not (tmp_path / "p.db").exists()


def test_top_pathways_orders_by_myelination(db):
    for actions, roi, times in [("low", 1.0, 1), ("high", 5.0, 3), ("mid", 2.0, 2), ("neg", -1.0, 4)]:
        for _ in range(times):
            db.log(PathwayRecord(actions, roi=roi))
    assert [p.actions for p in db.top_pathways(3)] == ["high", "mid", "low"]
    assert [p.actions for p in db.top_pathways()][-1] == "neg"
    with pytest.raises(ValueError, match="limit"):
        db.top_pathways(0)


def test_similar_actions_treats_like_wildcards_literally(db):
    for actions in ["a%b", "axxb", "a_b", "acb", "back\\slash", "100% done"]:
        db.log(PathwayRecord(actions, roi=1.0))
    assert [p.actions for p in db.similar_actions("%")] == ["a%b", "100% done"]
    assert [p.actions for p in db.similar_actions("_")] == ["a_b"]
    assert [p.actions for p in db.similar_actions("a%b")] == ["a%b"]
    assert [p.actions for p in db.similar_actions("\\")] == ["back\\slash"]
    assert {p.actions for p in db.similar_actions("b")} == {"a%b", "axxb", "a_b", "acb", "back\\slash"}
    assert db.similar_actions("zzz") == []


def test_runs_close_in_time_link_pathways_and_predict_the_next_one(db):
    t = 1_700_000_000.0
    sequence = ["login", "search", "login", "search", "login", "report", "search"]
    for i, actions in enumerate(sequence):
        db.log(PathwayRecord(actions, roi=1.0, ts=t + i))
    login, search, report = (db.find(a).id for a in ("login", "search", "report"))
    assert db.next_pathway(login).id == search  # login->search twice, login->report once
    assert dict(db.links(login)) == {search: 2.0, report: 1.0}
    assert db.next_pathway(report).id == search
    assert db.next_pathway(999) is None


def test_runs_far_apart_are_not_linked(backend):
    db = backend.pathway_db(link_window=60.0)
    db.log(PathwayRecord("a", ts=1000.0))
    db.log(PathwayRecord("b", ts=1000.0 + 61))
    db.log(PathwayRecord("c", ts=1000.0 + 61 + 60))
    a, b, c = (db.find(x).id for x in "abc")
    assert db.links(a) == []
    assert db.links(b) == [(c, 1.0)]
    db.close()


def test_links_follow_runs_logged_by_another_connection(backend):
    first, second = backend.pathway_db(), backend.pathway_db()
    first.log(PathwayRecord("a", ts=100.0))
    second.log(PathwayRecord("b", ts=101.0))
    first.log(PathwayRecord("c", ts=102.0))  # previous run is "b", written by `second`
    a, b, c = (first.find(x).id for x in "abc")
    assert first.links(a) == [(b, 1.0)]
    assert first.links(b) == [(c, 1.0)]
    first.close()
    second.close()


@pytest.mark.parametrize("catch_up_limit", [4096, 3])
def test_a_writer_far_behind_another_still_counts_every_run(backend, monkeypatch, catch_up_limit):
    # With a small limit the slow writer drops its cache instead of reading
    # the other's runs back; the counts must be exact either way.
    monkeypatch.setattr(neuroplasticity, "CATCH_UP_LIMIT", catch_up_limit)
    slow, busy = backend.pathway_db(), backend.pathway_db()
    slow.log(PathwayRecord("a", roi=1.0, outcome="SUCCESS", ts=100.0))
    slow.log(PathwayRecord("b", roi=1.0, ts=100.0))
    busy.log_many(PathwayRecord("ab"[i % 2], roi=3.0, outcome="FAILURE", ts=101.0 + i) for i in range(10))
    slow.log(PathwayRecord("a", roi=1.0, outcome="SUCCESS", ts=200.0))
    slow.log(PathwayRecord("b", roi=1.0, ts=201.0))
    runs = slow.runs(slow.find("a").id)
    assert [r["prior_frequency"] for r in runs] == list(range(7))
    assert runs[-1]["successes"] == 2
    a = busy.find("a")
    assert (a.frequency, a.successes, a.avg_roi) == (7, 2, pytest.approx((2 * 1.0 + 5 * 3.0) / 7))
    assert busy.find("b").frequency == 7
    slow.close()
    busy.close()


def test_the_logging_stores_link_window_decides_whoever_folds_or_reads(backend):
    narrow, wide = backend.pathway_db(link_window=10.0), backend.pathway_db(link_window=3600.0)
    narrow.log(PathwayRecord("x", ts=1000.0))
    narrow.log(PathwayRecord("y", ts=1100.0))  # 100 s later: not linked by the narrow window
    wide.log(PathwayRecord("z", ts=1200.0))  # linked by the wide one
    x, y, z = (wide.find(a).id for a in "xyz")
    for db in (narrow, wide):
        assert (db.links(x), db.links(y)) == ([], [(z, 1.0)])
    wide.fold()
    for db in (narrow, wide):
        assert (db.links(x), db.links(y), db.next_pathway(x)) == ([], [(z, 1.0)], None)
    narrow.close()
    wide.close()


def test_a_process_of_the_previous_release_cannot_write_runs_after_the_upgrade(tmp_path):
    path = tmp_path / "p.db"
    db = PathwayDB(path)
    db.log(PathwayRecord("a", ts=100.0))
    old_insert = (  # what schema v2 code inserts: none of the v3 columns
        "INSERT INTO runs(pathway_id, actions, inputs, outputs, exec_time, resources, outcome, roi, ts,"
        " label, prior_frequency, prior_myelination, prev_run_id) VALUES (1,'a','','',1.0,'','SUCCESS',"
        "1.0,200.0,1,1,1.0,1)"
    )
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.OperationalError, match="prev_run_id"):
        conn.execute(old_insert)
    db.log(PathwayRecord("a", ts=300.0))
    assert [r["prior_frequency"] for r in db.runs()] == [0, 1]
    db.close()


def test_explicit_link_refuses_unknown_pathways(db):
    a = db.log(PathwayRecord("a"))
    b = db.log(PathwayRecord("b", ts=time.time() + 10_000))  # outside the window: no auto link
    db.link(a, b, 2.5)
    db.link(a, b)
    assert db.links(a) == [(b, 3.5)]
    with pytest.raises(ValueError, match="to_id"):
        db.link(a, 99)
    with pytest.raises(ValueError, match="weight"):
        db.link(a, b, -1)
    with pytest.raises(ValueError, match="from_id"):
        db.link(0, b)
    assert db.links(a) == [(b, 3.5)]


# -- events -------------------------------------------------------------------


def test_pathway_new_payload_shape(db, bus):
    got = collect(bus)
    t0 = 1_700_000_000.0
    db.log(PathwayRecord("fetch->parse", inputs="url", outputs="rows", exec_time=1.5,
                         resources="cpu", outcome="partial success", roi=0.5, ts=t0))
    pid = db.log(PathwayRecord("fetch->parse", exec_time=2.5, outcome=Outcome.SUCCESS, roi=1.5,
                               ts=t0 + 10))
    assert len(got) == 2
    payload = got[1]
    assert set(payload) == {
        "pathway_id", "run_id", "ts", "actions", "inputs", "outputs", "exec_time", "resources",
        "outcome", "roi", "label", "prior_frequency", "prior_myelination", "stats",
    }
    assert json.loads(json.dumps(payload)) == payload
    assert payload["pathway_id"] == pid
    assert payload["run_id"] == db.runs()[-1]["id"]
    assert (payload["actions"], payload["outcome"], payload["label"]) == ("fetch->parse", "SUCCESS", 1)
    assert (payload["ts"], payload["exec_time"], payload["roi"]) == (t0 + 10, 2.5, 1.5)
    assert got[0]["outcome"] == "PARTIAL_SUCCESS" and got[0]["label"] == 0
    assert (got[0]["inputs"], got[0]["outputs"], got[0]["resources"]) == ("url", "rows", "cpu")
    assert payload["prior_frequency"] == 1
    assert payload["prior_myelination"] == 0.0  # the first run did not succeed
    assert payload["stats"] == db.get(pid).stats()
    assert payload["stats"]["frequency"] == 2


def test_long_text_is_clipped_in_the_payload_but_stored_whole(db, bus):
    got = collect(bus)
    long_actions = "step->" * 2000
    db.log(PathwayRecord(long_actions, inputs="x" * 10_000))
    assert len(got[0]["actions"]) == 4000
    assert db.runs()[0]["inputs"] == "x" * 10_000
    assert db.find(long_actions) is not None


# -- schema ---------------------------------------------------------------------


def test_schema_is_versioned_and_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "pathways.db"
    db = PathwayDB(path)
    db.log(PathwayRecord("a"))
    assert db.schema_version() == len(PathwayDB.MIGRATIONS) == 3
    db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=7")
    with pytest.raises(SchemaError, match="7"):
        PathwayDB(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_a_version_1_file_is_migrated_in_place(tmp_path):
    path = tmp_path / "pathways.db"
    conn = connect(path)
    migrate(conn, PathwayDB.MIGRATIONS[:1], "v1")  # a file written by the first release
    conn.execute("CREATE INDEX IF NOT EXISTS runs_pathway ON runs(pathway_id)")
    for pid, actions, freq in [(1, "a", 2), (2, "b", 1)]:
        conn.execute(
            "INSERT INTO pathways VALUES (?, ?, ?, ?, 1.0, 1.0, 1.0, 100.0, 1.0)",
            (pid, actions, freq, freq),
        )
    for rid, pid in [(1, 1), (2, 2), (3, 1)]:
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, '', '', 1.0, '', 'SUCCESS', 1.0, ?, 1, 0, 0.0)",
            (rid, pid, "ab"[pid - 1], 100.0 + rid),
        )
    conn.close()

    db = PathwayDB(path)
    assert db.schema_version() == 3
    assert [r["id"] for r in db.runs(1)] == [1, 3]
    assert [r["previous_run_id"] for r in db.runs(1)] == [None, 1]
    assert [r["id"] for r in db.runs(2)] == [2]
    db.log(PathwayRecord("a", ts=200.0))
    assert [r["id"] for r in db.runs(1)] == [1, 3, 4]
    assert [r["id"] for r in db.runs(1, since_id=1)] == [3, 4]
    assert [r["id"] for r in db.runs(1, since_id=1, limit=1)] == [3]
    assert db.find("a").frequency == 3
    db.close()


def test_runs_of_one_pathway_follow_its_own_chain(db):
    for i in range(30):
        db.log(PathwayRecord(f"p{i % 3}", ts=1000.0 + i))
    p1 = db.find("p1").id
    assert [r["ts"] for r in db.runs(p1)] == [1000.0 + i for i in range(1, 30, 3)]
    assert [r["id"] for r in db.runs(p1, since_id=20, limit=2)] == [23, 26]  # run id = i + 1
    assert db.runs(999) == []
    assert len(db.runs()) == 30
    with pytest.raises(ValueError, match="since_id"):
        db.runs(since_id=-1)


def test_an_sqlite_too_old_for_the_stores_is_named_and_nothing_is_created(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 24, 0))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.24.0")
    with pytest.raises(RuntimeError, match=r"needs SQLite 3\.25\.0 or newer.*3\.24\.0"):
        PathwayDB(tmp_path / "p.db")
    assert not (tmp_path / "p.db").exists()


def test_a_path_under_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with PathwayDB("~/menace-data/pathways.db") as db:
        db.log(PathwayRecord("a"))
        assert db.path == str(tmp_path / "menace-data" / "pathways.db")
    assert (tmp_path / "menace-data" / "pathways.db").exists()
    assert not (tmp_path / "~").exists()


def test_stores_survive_reopening(backend):
    with backend.pathway_db() as db:
        db.log(PathwayRecord("a", roi=2.0))
        db.log(PathwayRecord("a", roi=4.0))
    with backend.pathway_db() as again:
        assert again.find("a").frequency == 2
        assert again.find("a").avg_roi == pytest.approx(3.0)
        assert again.log_runs([PathwayRecord("a")])[0].run_id == 3


def test_store_files_use_wal_and_survive_reopening(tmp_path):
    path = tmp_path / "sub" / "pathways.db"
    with PathwayDB(path) as db:
        db.log(PathwayRecord("a", roi=2.0))
        db.log(PathwayRecord("a", roi=4.0))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with PathwayDB(path) as again:
        assert again.find("a").frequency == 2
        assert again.find("a").avg_roi == pytest.approx(3.0)


# -- properties -------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
any_float = st.one_of(st.floats(), st.integers(), st.none(), st.text(max_size=3))


@settings(max_examples=100, deadline=None)
@given(exec_time=any_float, roi=any_float)
def test_property_numbers_are_accepted_only_when_finite_and_in_range(exec_time, roi):
    def ok(value, minimum=None):
        try:
            number = float(value)  # numeric text ("1.5") is accepted, as from a form
        except (TypeError, ValueError):
            return False
        return math.isfinite(number) and (minimum is None or number >= minimum) and abs(number) <= limit

    limit = 1e12
    if ok(exec_time, 0.0) and ok(roi) and float(exec_time) <= 1e9:
        record = PathwayRecord("a", exec_time=exec_time, roi=roi)
        assert math.isfinite(record.exec_time) and record.exec_time >= 0
        assert math.isfinite(record.roi)
    else:
        with pytest.raises(ValueError, match="exec_time|roi"):
            PathwayRecord("a", exec_time=exec_time, roi=roi)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_db(request, tmp_path_factory):
    store_backend = open_test_backend(request.param, tmp_path_factory.mktemp("prop"), request)
    store = store_backend.pathway_db()
    yield store
    store.close()
    store_backend.close()


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(
        st.tuples(st.text(max_size=12), finite, finite, st.sampled_from(list(Outcome))),
        min_size=1,
        max_size=5,
    )
)
def test_property_a_batch_is_stored_whole_or_not_at_all(shared_db, batch):
    db = shared_db
    runs_before = db.count_runs()
    frequency_before = {a.strip(): (p.frequency if (p := db.find(a)) else 0) for a, *_ in batch
                        if "\x00" not in a}
    valid = all(actions.strip() and "\x00" not in actions and abs(t) <= 1e9 and abs(r) <= 1e12
                for actions, t, r, _ in batch)
    try:
        records = [PathwayRecord(a, exec_time=abs(t), roi=r, outcome=o) for a, t, r, o in batch]
    except ValueError as exc:
        assert not valid
        assert exc.field in {"actions", "exec_time", "roi"}
        assert db.count_runs() == runs_before
        return
    assert valid
    ids = db.log_many(records)
    assert db.count_runs() == runs_before + len(batch)
    for actions, count in frequency_before.items():
        pathway = db.find(actions)
        assert pathway.frequency == count + sum(1 for a, *_ in batch if a.strip() == actions)
        assert pathway.id in ids
        assert math.isfinite(pathway.myelination_score)
        assert 0.0 <= pathway.success_rate <= 1.0


def test_log_runs_returns_each_runs_id_and_a_bad_record_is_named_and_writes_nothing(backend):
    db = backend.pathway_db()
    logged = db.log_runs([PathwayRecord("a->b", outcome="SUCCESS"), PathwayRecord("c", outcome="FAILURE")])
    assert [r["id"] for r in db.runs()] == [logged[0].run_id, logged[1].run_id]
    assert db.get(logged[1].pathway_id).actions == "c"
    bad = PathwayRecord("d")
    bad.exec_time = -1.0
    with pytest.raises(ValueError) as caught:
        db.log_runs([PathwayRecord("e"), bad])
    assert caught.value.field == "records[1].exec_time"
    assert db.count_runs() == 2
    db.close()


def test_every_run_refers_to_a_stored_pathway_though_the_store_skips_the_lookup(tmp_path):
    """PathwayDB's connection skips the foreign-key lookup on each insert; its own code keeps
    every run's pathway stored (new pathways, batches, another connection logging between)."""
    path = tmp_path / "pathways.db"
    first, second = PathwayDB(path), PathwayDB(path)
    for i in range(300):
        store = first if i % 7 else second
        store.log(PathwayRecord(f"step{i % 23}->next{i % 5}", exec_time=0.1, roi=1.0))
    first.log_many([PathwayRecord(f"batch{i}->new", roi=0.5) for i in range(50)])
    first.fold()
    first.close()
    second.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA foreign_key_check(runs)").fetchall() == []
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 350
        orphans = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE pathway_id NOT IN (SELECT id FROM pathways)"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()
