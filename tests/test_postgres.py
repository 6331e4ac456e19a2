"""What only a server database has: commits out of id order, the advisory-lock lease, URLs,
migrations in a shared database, models and evaluations in tables.

Behaviour both backends share is tested on both by the store tests (the
``backend`` fixture); these tests are PostgreSQL's own and run on the session's
throwaway server (skipped, saying how to get one, without the binaries).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from menace import events
from menace.config import Settings
from menace.database_url import redact
from menace.errors import FieldError
from menace.lease import Lease, LeaseHeldError
from menace.neuroplasticity import PathwayRecord
from menace.postgres import pathway_db as pathway_db_module
from menace.postgres.arrays import float8_array, int8_array
from menace.postgres.backend import PostgresBackend
from menace.postgres.database import Database
from menace.postgres.lease import PgLease, owner_of
from menace.postgres.pathway_db import PgPathwayDB
from menace.run_watcher import RunWatcher
from menace.storage import SchemaError
from menace.unified_event_bus import UnifiedEventBus

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests: pip install -e '.[postgres]'")
pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg(pg_url, tmp_path):
    backend = PostgresBackend(pg_url, tmp_path / "data")
    yield backend
    backend.close()


def run(actions: str = "fetch->parse", ts: float | None = None) -> PathwayRecord:
    return PathwayRecord(actions, exec_time=1.0, roi=1.0, **({"ts": ts} if ts is not None else {}))


def test_the_postgres_stores_satisfy_the_protocols_the_consumers_use(pg):
    from menace.gpt_memory import GPTMemory
    from menace.protocols import EmbeddingSource, MemoryStore, PathwayStore

    db, mm = pg.pathway_db(), pg.memory(embedder="hashing")
    assert isinstance(db, PathwayStore)
    assert isinstance(mm, EmbeddingSource) and isinstance(mm, MemoryStore)
    assert GPTMemory(mm).manager is mm
    db.close()
    mm.close()


# -- commits out of id order ------------------------------------------------------------------


class HeldCommit:
    """Holds the commit of the logs made in the thread called ``slow-writer`` until released.

    It blocks inside the log's transaction after the run ids are drawn and before the
    rows are written and committed: exactly a writer whose commit is late.
    """

    def __init__(self, monkeypatch) -> None:
        self.drawn = threading.Event()
        self.release = threading.Event()
        original = PgPathwayDB.__dict__["_packed"]  # a batch's rows, given the drawn ids, before they are sent

        def held(store, plan, heads, run_ids, prev):
            if threading.current_thread().name == "slow-writer":
                self.run_ids = list(run_ids)
                self.drawn.set()
                assert self.release.wait(30), "the test never released the held commit"
            return original(store, plan, heads, run_ids, prev)

        monkeypatch.setattr(PgPathwayDB, "_packed", held)


def test_a_delayed_commit_is_neither_skipped_nor_announced_out_of_order(pg, monkeypatch):
    held = HeldCommit(monkeypatch)
    bus = UnifiedEventBus()
    announced: list[int] = []
    bus.subscribe(events.PATHWAY_NEW, lambda _t, p: announced.append(p["run_id"]))
    service_store = pg.pathway_db(event_bus=bus)
    slow, fast = pg.pathway_db(), pg.pathway_db()
    watcher = RunWatcher(bus, service_store, interval=3599, wake=False).start()
    slow_writer = threading.Thread(target=lambda: slow.log_many([run("slow"), run("slow")]), name="slow-writer")
    try:
        slow_writer.start()
        assert held.drawn.wait(10)  # the slow writer holds run ids 1-2, uncommitted
        fast_ids = [r.run_id for r in fast.log_runs([run("fast") for _ in range(3)])]
        assert fast_ids == [3, 4, 5] and fast.count_runs() == 3  # committed, above the held ids
        # "Every id above the last one seen" would hand out 3-5 now and skip 1-2 for good.
        assert watcher.poll() == 0
        assert service_store.newest_run_id() == 0 and service_store.runs() == []
        held.release.set()
        slow_writer.join(10)
        deadline = time.monotonic() + 10
        while len(announced) < 5:
            watcher.poll()
            assert time.monotonic() < deadline, announced
    finally:
        held.release.set()
        watcher.stop()
    assert announced == [1, 2, 3, 4, 5]  # each once, in id order
    assert watcher.covered_through() == 5
    for store in (service_store, slow, fast):
        store.close()


def test_a_rolled_back_writer_leaves_a_gap_that_holds_nothing_up(pg, pg_url):
    db = pg.pathway_db()
    db.log(run("a"))
    # A server-side failure after the ids were drawn (a disk full, a constraint, a cut
    # connection would do the same): the batch's transaction rolls back.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_roi() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF NEW.roi = 4242 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER refuse_roi BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse_roi()")
    with pytest.raises(Exception, match="refused by the test"):
        db.log_many([run("b"), PathwayRecord("b", roi=4242.0), PathwayRecord("b", roi=4242.0)])
    db.log(run("c"))
    assert [r["id"] for r in db.runs()] == [1, 5]  # ids 2-4 were drawn and rolled back
    assert db.newest_run_id() == 5
    assert db.first_run_outside(1, []) == 5  # a learner that learned run 1 resumes at 5
    assert db.first_run_outside(0, [[1, 1], [5, 5]]) is None
    db.close()


def test_the_watcher_wakes_on_a_commit_from_another_connection_without_polling(pg):
    bus = UnifiedEventBus()
    announced: list[int] = []
    bus.subscribe(events.PATHWAY_NEW, lambda _t, p: announced.append(p["run_id"]))
    store = pg.pathway_db(event_bus=bus)
    watcher = RunWatcher(bus, store, interval=30.0).start()  # the clock alone would wait 30 s
    writer = pg.pathway_db()
    try:
        time.sleep(0.3)  # the watcher is waiting on LISTEN
        started = time.monotonic()
        writer.log(run())
        while not announced:
            assert time.monotonic() - started < 2.0, "not woken by the commit"
            time.sleep(0.005)
        assert time.monotonic() - started < 1.0
    finally:
        watcher.stop()
        store.close()
        writer.close()
    assert announced == [1]


def test_a_failed_log_of_a_new_pathway_leaves_neither_run_nor_pathway(pg, pg_url, caplog):
    db = pg.pathway_db()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_roi() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF NEW.roi = 4242 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER refuse_roi BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse_roi()")
    # The new pathway is inserted in the log's first round trip, its run in the second (with
    # the commit): the failure of the second takes the first back too.
    with pytest.raises(Exception, match="refused by the test"):
        db.log(PathwayRecord("new", roi=4242.0))
    with pytest.raises(Exception, match="refused by the test"):
        db.log_many([PathwayRecord("new too"), PathwayRecord("new too", roi=4242.0)])
    assert db.count_pathways() == 0 and db.count_runs() == 0
    assert db.log(PathwayRecord("new", roi=1.0)) == db.find("new").id  # the pooled connection works on
    assert db.count_pathways() == 1 and db.find("new").frequency == 1
    assert not [r for r in caplog.records if "rolling back" in r.getMessage()]  # ended by the store, not the pool


def test_a_store_wakes_watchers_from_its_own_thread_and_stops_it_on_close(pg):
    before = set(threading.enumerate())
    listener = pg.pathway_db()
    writer = pg.pathway_db()
    assert listener.wait_for_runs(0.05) is False  # listening from now on
    writer.log(run())
    assert listener.wait_for_runs(5.0) is True
    ours = [t for t in threading.enumerate() if t.name == "menace-pg-notify" and t not in before]
    assert ours
    writer.close()
    listener.close()
    assert not any(t.is_alive() for t in ours)


def test_concurrent_writers_of_one_pathway_keep_its_aggregate_exact(pg):
    stores = [pg.pathway_db() for _ in range(4)]

    def write(store, k):
        for i in range(25):
            shared = PathwayRecord("shared", roi=float(k), outcome="SUCCESS" if i % 2 else "FAILURE")
            if i % 3:  # one run from the remembered aggregate (guarded), or a batch (read under lock)
                store.log(shared)
                store.log(PathwayRecord(f"own-{k}", roi=1.0))
            else:
                store.log_many([shared, PathwayRecord(f"own-{k}", roi=1.0)])

    threads = [threading.Thread(target=write, args=(s, k), name=f"writer-{k}") for k, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db = stores[0]
    shared = db.find("shared")
    runs = db.runs(shared.id)
    assert shared.frequency == 100 == len(runs)
    assert [r["prior_frequency"] for r in runs] == list(range(100))  # one chain, in id order
    assert shared.successes == 48 and [r["successes"] for r in runs][-1] == 48
    assert shared.avg_roi == pytest.approx(1.5)
    assert db.count_runs() == 200
    for store in stores:
        store.close()


# -- the lease ----------------------------------------------------------------------------------


def test_a_database_lease_is_a_lease_refused_while_held_and_free_after_release(pg):
    first, second = pg.lease(), pg.lease()
    assert isinstance(first, Lease)
    first.acquire()
    first.publish(api_url="http://127.0.0.1:8001")
    with pytest.raises(LeaseHeldError, match="127.0.0.1:8001") as refused:
        second.acquire()
    assert refused.value.holder.pid == os.getpid()
    assert owner_of(pg.db).api_url == "http://127.0.0.1:8001"
    assert first.check()
    first.release()
    assert owner_of(pg.db) is None
    second.acquire()
    assert second.previous is None  # released cleanly: no crashed holder
    second.close()
    first.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from menace.postgres.lease import PgLease
    lease = PgLease(sys.argv[1])
    lease.acquire()
    lease.publish(api_url="http://holder")
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_holder_frees_the_lease_at_once_and_the_next_one_names_it(pg, tmp_path):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, str(script), pg.db.url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert owner_of(pg.db).pid == holder.pid
        standby = pg.lease()
        stop = threading.Event()
        waited: list = []
        taken = threading.Thread(target=lambda: waited.append(standby.wait(stop, on_wait=waited.append)))
        taken.start()
        time.sleep(0.5)
        holder.kill()
        killed = time.monotonic()
        taken.join(10)
        assert time.monotonic() - killed < 2.0
        assert waited[-1] is True and waited[0].pid == holder.pid
        assert standby.previous.pid == holder.pid  # it died holding the lease
        standby.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_lease_whose_session_was_cut_knows_it_and_cannot_save(pg):
    lease = pg.lease()
    lease.acquire()
    with psycopg.connect(pg.db.url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
        )
    assert not lease.check()
    with pytest.raises(RuntimeError, match="not holding"), lease.fenced():
        pass
    other = pg.lease()
    other.acquire()  # the cut session's lock is gone
    other.close()
    lease.close()


# -- the learner's state in the database ------------------------------------------------------


def test_models_and_evaluations_live_in_the_database_with_the_runs_they_learned(pg, tmp_path):
    from menace.learning_engine import LearningEngine

    db, mm = pg.pathway_db(), pg.memory(embedder="hashing")
    db.log_many(PathwayRecord(f"a{i % 3}", roi=1.0, outcome="SUCCESS" if i % 3 else "FAILURE") for i in range(60))
    lease = pg.lease()
    lease.acquire()
    engine = LearningEngine(db, mm, **pg.engine_storage("pathways", lease))
    assert engine.train()
    engine.partial_train(db.run_events(55, 100))  # nothing new: all learned by train()
    engine.evaluate(cv=2)
    assert engine.model_path() is None and not list(tmp_path.rglob("*.skops"))
    lease.release()
    fresh = LearningEngine(db, mm, **pg.engine_storage("pathways"))  # another host would do the same
    assert fresh.is_trained and fresh.n_seen == 60 and fresh.trained_through_run_id == 60
    assert len(fresh.evaluation_history) == 1
    assert fresh.predict_success(1, 1.0, 1.0, 1.0, "a1") == engine.predict_success(1, 1.0, 1.0, 1.0, "a1")
    db.close()
    mm.close()
    lease.close()


def test_a_learner_without_the_lease_cannot_overwrite_the_saved_model(pg, caplog):
    from menace.learning_engine import LearningEngine

    db, mm = pg.pathway_db(), pg.memory(embedder="hashing")
    db.log_many(PathwayRecord(f"a{i % 3}", roi=1.0, outcome="SUCCESS" if i % 2 else "FAILURE") for i in range(40))
    lease = pg.lease()  # never acquired
    engine = LearningEngine(db, mm, **pg.engine_storage("pathways", lease))
    assert engine.train()  # trains, but the save is refused and logged
    assert "not holding the learner lease" in caplog.text
    assert not LearningEngine(db, mm, **pg.engine_storage("pathways")).is_trained
    db.close()
    mm.close()
    lease.close()

def test_a_learner_checks_run_ids_against_what_its_store_saw_settle_and_asks_beyond(pg):
    from menace.learning_engine import LearningEngine

    db, other, mm = pg.pathway_db(), pg.pathway_db(), pg.memory(embedder="hashing")
    db.log_many(PathwayRecord(f"a{i % 3}", roi=1.0, outcome="SUCCESS" if i % 2 else "FAILURE") for i in range(6))
    engine = LearningEngine(db, mm, **pg.engine_storage("pathways"))
    delivered = db.run_events()  # as the watcher reads them: the store has seen runs 1..6 settle
    assert db.known_settled_run_id() == 6
    asked = []
    real = db.newest_run_id
    db.newest_run_id = lambda: asked.append(1) or real()
    assert engine.partial_train(delivered) and engine.newest_learned_run_id() == 6
    assert not asked  # the watcher's runs need no round trip (which would wait for writers in flight)
    with pytest.raises(FieldError, match="ahead of the newest run in the store \\(6\\)"):
        engine.partial_train([dict(delivered[0], run_id=7)])  # the guard still holds beyond it
    assert asked and engine.newest_learned_run_id() == 6
    other.log(PathwayRecord("a1", roi=1.0, outcome="SUCCESS"))  # run 7, logged elsewhere
    assert engine.partial_train([dict(delivered[0], run_id=7)])  # beyond what it saw: it asks, and learns
    assert engine.newest_learned_run_id() == 7
    for store in (db, other, mm):
        store.close()



# -- URLs, settings, migrations ----------------------------------------------------------------


def test_a_password_never_shows_in_messages_or_paths(pg_url):
    url = "postgresql://menace:s3cret@db.example:5432/menace?sslmode=require&password=s3cret"
    assert "s3cret" not in redact(url)
    with pytest.raises(FieldError, match="database_url"):
        Settings(database_url="mysql://user:s3cret@host/db")
    settings = Settings(database_url=url)
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.store_location
    db = PgPathwayDB(pg_url)
    assert db.path == redact(pg_url)
    db.close()


def test_an_unreachable_database_is_a_clear_connection_error():
    with pytest.raises(ConnectionError, match="cannot connect to PostgreSQL at postgresql://menace:\\*\\*\\*@"):
        Database("postgresql://menace:pw@127.0.0.1:1/menace", timeout=2)


def test_migrations_are_recorded_per_store_and_a_newer_schema_is_refused(pg):
    db = pg.pathway_db()
    assert db.schema_version() == len(PgPathwayDB.MIGRATIONS) == 3
    db.close()
    with psycopg.connect(pg.db.url, autocommit=True) as conn:
        versions = dict(conn.execute("SELECT store, version FROM menace_schema").fetchall())
        assert versions["pathways"] == 3
        conn.execute("UPDATE menace_schema SET version = 9 WHERE store = 'pathways'")
    with pytest.raises(SchemaError, match="9"):
        pg.pathway_db()


def test_two_menace_installations_share_a_database_in_two_schemas(pg_schemas):
    first, second = pg_schemas.new(), pg_schemas.new()
    with PgPathwayDB(first) as a, PgPathwayDB(second) as b, PgLease(first) as lease_a, PgLease(second) as lease_b:
        a.log(run("only in a"))
        assert (a.count_runs(), b.count_runs()) == (1, 0)
        assert lease_a.held and lease_b.held  # one learner each


def test_the_service_flags_and_variable_choose_the_database(monkeypatch, pg_url):
    from menace.self_learning_service import build_parser, settings_from_args

    parser = build_parser()
    assert "MENACE_DATABASE_URL" in parser.format_help()
    assert settings_from_args(parser.parse_args(["--database-url", pg_url])).database_url == pg_url
    monkeypatch.setenv("MENACE_DATABASE_URL", pg_url)
    assert settings_from_args(parser.parse_args([])).database_url == pg_url


def test_a_service_on_an_unreachable_database_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MENACE_EMBEDDER="hashing")
    result = subprocess.run(
        [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(tmp_path), "--metrics-port", "0",
         "--database-url", "postgresql://menace:pw@127.0.0.1:1/menace"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "cannot connect to PostgreSQL" in result.stderr and "pw@" not in result.stderr
    assert "Traceback" not in result.stderr


# -- links, folded from the runs ---------------------------------------------------------------


def links_from_runs(db: PgPathwayDB) -> dict[tuple[int, int], float]:
    """Every link as the runs say it: one per run whose row names the pathway it follows."""
    counts: dict[tuple[int, int], float] = {}
    for r in db.runs():
        if r["link_from"] is not None:
            pair = (r["link_from"], r["pathway_id"])
            counts[pair] = counts.get(pair, 0.0) + 1.0
    return counts


def all_links(db: PgPathwayDB) -> dict[tuple[int, int], float]:
    return {(p.id, to): w for p in db.pathways() for to, w in db.links(p.id)}


def fold_point(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return conn.execute("SELECT folded_through FROM link_fold").fetchone()[0]


def test_links_of_many_writers_are_exact_before_during_and_after_their_folds(pg, pg_url, monkeypatch):
    monkeypatch.setattr("menace.postgres.pathway_db.FOLD_EVERY", 64)  # a fold every 64 runs,
    monkeypatch.setattr("menace.postgres.pathway_db.FOLD_CHUNK", 4)  # in transactions of 4 links
    stores = [pg.pathway_db() for _ in range(3)]
    texts = ["fetch->parse", "parse->store", "store->notify", "notify->fetch"]

    def write(store, k):
        for i in range(60):
            if i % 4:
                store.log(PathwayRecord(texts[(i + k) % 4], ts=1000.0 + i))
            else:
                store.log_many([PathwayRecord(texts[(i + j) % 4], ts=1000.0 + i) for j in range(3)])

    threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db = stores[0]
    deadline = time.monotonic() + 10
    while fold_point(pg_url) == 0 and time.monotonic() < deadline:  # folds run on the notifier thread
        time.sleep(0.05)
    assert fold_point(pg_url) > 0
    expected = links_from_runs(db)
    assert sum(expected.values()) > 100
    assert all_links(db) == expected  # folded weights plus the runs since, each run once
    folded = db.fold()  # the rest, now
    assert fold_point(pg_url) == db.newest_run_id() and folded >= 0
    assert all_links(db) == expected
    with psycopg.connect(pg_url, autocommit=True) as conn:
        table = {(a, b): w for a, b, w in conn.execute("SELECT from_id, to_id, weight FROM folded_links")}
    assert table == expected  # after a full fold the table alone holds them
    first, then = db.find(texts[0]), db.find(texts[1])
    db.link(first.id, then.id, 2.5)  # a weight of one's own adds to the counted ones
    assert dict(db.links(first.id))[then.id] == expected.get((first.id, then.id), 0.0) + 2.5
    for store in stores:
        store.close()


def test_a_database_of_the_first_schema_keeps_its_links_and_an_old_writer_cannot_count_them_twice(pg_url):
    v1 = PgPathwayDB.MIGRATIONS[:1]
    database = Database(pg_url)
    database.migrate(PgPathwayDB.STORE, v1)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what the first release left: 2 runs, 1 link
        conn.execute(
            "INSERT INTO pathways(id, actions, actions_key, frequency, successes, success_rate, avg_exec_time,"
            " avg_roi, last_activation, myelination_score, last_run_id) VALUES"
            " (1, 'a', '\\x01', 1, 1, 1, 1, 1, 10, 1, 1), (2, 'b', '\\x02', 1, 1, 1, 1, 1, 11, 1, 2)"
        )
        conn.execute(
            "INSERT INTO runs SELECT id, id, 'a', '', '', 1, '', 'SUCCESS', 1, 9 + id, 1, 0, 0, NULL, 1, 1, 1,"
            " 9 + id, CASE WHEN id = 2 THEN 1 END FROM generate_series(1, 2) AS id"
        )
        conn.execute("SELECT setval('runs_id_seq', 2)")
        conn.execute("INSERT INTO links VALUES (1, 2, 1.0), (2, 1, 7.0)")
    db = PgPathwayDB(database)
    assert db.schema_version() == len(PgPathwayDB.MIGRATIONS)
    assert db.links(1) == [(2, 1.0)] and db.links(2) == [(1, 7.0)]  # not 2.0: run 2 was counted already
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("INSERT INTO links VALUES (1, 2, 1.0)")  # the old release's upsert fails loudly
    db.close()
    database.close()


def test_a_fold_cut_short_counts_each_run_once_and_the_next_folder_of_any_store_finishes_it(pg, pg_url, monkeypatch):
    monkeypatch.setattr("menace.postgres.pathway_db.FOLD_EVERY", 10**9)  # folds only when asked
    monkeypatch.setattr("menace.postgres.pathway_db.FOLD_CHUNK", 3)  # in transactions of 3 links
    texts = ["fetch->parse", "parse->store", "store->notify", "notify->fetch"]
    order = [0, 1, 2, 3, 0, 2, 1, 3, 2, 0, 3, 1, 0, 3, 2, 1, 3, 0, 1, 2]  # 12 different links
    db, other = pg.pathway_db(), pg.pathway_db()
    db.log_many([PathwayRecord(texts[k], ts=1000.0 + i) for i, k in enumerate(order)])
    expected = links_from_runs(db)
    assert len(expected) == 12
    pairs = pathway_db_module._FoldPairs  # noqa: SLF001 - the fold's writes, cut short below
    real_columns = pairs.columns
    written = []

    def columns(self, start, end):  # the third transaction fails: two of four were committed
        if len(written) == 2:
            raise RuntimeError("the folder's host died")
        written.append((start, end))
        return real_columns(self, start, end)

    monkeypatch.setattr(pairs, "columns", columns)
    with pytest.raises(RuntimeError, match="host died"):
        db.fold()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        folded, folding = conn.execute("SELECT folded_through, folding_through FROM link_fold").fetchone()
        table = {(a, b): w for a, b, w in conn.execute("SELECT from_id, to_id, weight FROM folded_links")}
    assert (folded, folding) == (0, 20) and len(table) == 6  # under way: 6 links of 12 written
    assert all_links(db) == expected == all_links(other)  # each run counted once all the same
    db.log_many([PathwayRecord(texts[k], ts=2000.0 + i) for i, k in enumerate(order[:5])])
    expected = links_from_runs(db)
    assert all_links(db) == expected  # runs after the fold's end count too
    monkeypatch.setattr(pairs, "columns", real_columns)
    assert other.fold() == 25  # the other store finishes it, then folds the five new runs
    assert fold_point(pg_url) == 25 and all_links(db) == expected
    with psycopg.connect(pg_url, autocommit=True) as conn:
        table = {(a, b): w for a, b, w in conn.execute("SELECT from_id, to_id, weight FROM folded_links")}
        assert table == expected  # after a full fold the table alone holds them
        # A writer of the release before folds by moving the fold point alone: it fails.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE link_fold SET folded_through = folded_through + 1")
    db.close()
    other.close()


def test_a_fold_writes_its_links_in_order_whatever_order_the_server_sent_them_in():
    pairs = pathway_db_module._FoldPairs((0, 9), [2, 1, 1], [1, 3, 2], [4.0, 1.0, 2.0], 9.0)  # noqa: SLF001 - unit
    assert pairs.keys == [(1, 2), (1, 3), (2, 1)] and pairs.runs == 9
    froms, tos, weights = pairs.columns(0, 3)
    assert (froms, tos, weights) == (int8_array([1, 1, 2]), int8_array([2, 3, 1]), float8_array([2.0, 1.0, 4.0]))
    assert pathway_db_module._FoldPairs((0, 5), None, None, None, 5.0).keys == []  # noqa: SLF001 - no links


def test_a_store_whose_tables_were_emptied_behind_it_logs_its_pathways_as_new(pg, pg_url):
    db = pg.pathway_db()
    db.log_many([run("a->b"), run("c->d")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE pathways, runs")
    db.log_many([run("a->b"), run("c->d"), run("a->b")])
    again = db.find("a->b")
    assert again.frequency == 2 and db.count_pathways() == 2 and db.count_runs() == 3
    db.close()


def test_packed_arrays_reach_the_server_as_the_lists_they_pack(pg_url):
    import struct

    from menace.postgres.arrays import bytea_array, int4_array, int8_array

    database = Database(pg_url)
    with database.connection() as conn:
        row = conn.execute(
            "SELECT %b, %b, %b, %b, %b", (
                int8_array([1, None, -(2**63), 2**63 - 1]), int4_array([-5, 7]), bytea_array([b"ab", None, b""]),
                int8_array([]), bytea_array([]),
            ),
        ).fetchone()
    database.close()
    assert row == ([1, None, -(2**63), 2**63 - 1], [-5, 7], [b"ab", None, b""], [], [])
    with pytest.raises(struct.error):
        int4_array([2**31])


# -- batches of known pathways: one query of two round trips (copy_query) ---------------------


def stream(count: int, seed: int) -> list[PathwayRecord]:
    """Runs of five pathways with awkward floats (15 digits do not round-trip them) and times."""
    import random

    rng = random.Random(seed)
    return [
        PathwayRecord(f"step{rng.randrange(5)}->next", exec_time=rng.random() * 3, roi=rng.uniform(-1, 1) / 3,
                      outcome=rng.choice(["SUCCESS", "FAILURE", "PARTIAL_SUCCESS"]), ts=1e9 + i * 7.3 + rng.random())
        for i in range(count)
    ]


def test_batches_of_known_pathways_write_the_same_numbers_as_sqlite_to_the_last_bit(pg, tmp_path):
    from menace.neuroplasticity import PathwayDB

    lite, db = PathwayDB(tmp_path / "p.db"), pg.pathway_db()
    records = stream(400, 1)
    for first in range(0, len(records), 40):  # the first batch meets the pathways, the others know them
        assert len(lite.log_many(records[first:first + 40])) == len(db.log_many(records[first:first + 40]))
    columns = ["pathway_id", "prior_frequency", "prior_myelination", "previous_run_id", "successes",
               "avg_exec_time", "avg_roi", "last_activation", "roi", "exec_time", "ts", "label"]
    ours = [[r[c] for c in columns] for r in db.runs()]
    theirs = [[r[c] for c in columns] for r in lite.runs()]
    assert len(ours) == 400 and ours == theirs  # ==, not approx: every float exact
    for pathway in lite.pathways():
        mine = db.find(pathway.actions)
        assert (mine.frequency, mine.successes, mine.avg_exec_time, mine.avg_roi, mine.myelination_score) == (
            pathway.frequency, pathway.successes, pathway.avg_exec_time, pathway.avg_roi, pathway.myelination_score)
    lite.close()
    db.close()


def test_a_failed_batch_of_known_pathways_writes_nothing_and_the_next_one_logs(pg, pg_url, caplog):
    db = pg.pathway_db()
    db.log_many([run("a->b"), run("c->d")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_roi() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF NEW.roi = 4242 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER refuse_roi BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse_roi()")
    refused = [run("a->b"), PathwayRecord("c->d", roi=4242.0)]
    with pytest.raises(psycopg.errors.RaiseException, match="refused by the test"):
        db.log_many(refused)  # refused by the server, in the COPY
    assert db.count_runs() == 2 and db.find("a->b").frequency == 1 and db.find("c->d").frequency == 1
    logged = db.log_runs([run("a->b"), run("c->d"), run("a->b")])
    runs = db.runs(db.find("a->b").id)
    assert [r["prior_frequency"] for r in runs] == [0, 1, 2] and runs[-1]["id"] == logged[2].run_id
    assert [r["previous_run_id"] for r in runs][1:] == [r["id"] for r in runs][:-1]  # one chain, no gap
    assert not [r for r in caplog.records if "rolling back" in r.getMessage()]  # ended by the store
    db.close()


def test_batches_go_on_when_the_connections_lose_their_prepared_statements(pg):
    db = pg.pathway_db()
    db.log_many([run("a->b"), run("c->d")])
    db.log_many([run("a->b"), run("c->d")])  # prepared on the pool's connection by now
    for _ in range(2):
        with pg.db.connection() as conn:
            conn.execute("DEALLOCATE ALL")  # as psycopg does after a rollback it sees
        db.log_many([run("a->b"), run("c->d")])
    assert db.find("a->b").frequency == 4 == db.find("c->d").frequency and db.count_runs() == 8
    db.close()


def test_a_batch_never_lands_on_another_pathway_that_took_its_remembered_id(pg, pg_url):
    db, other = pg.pathway_db(), pg.pathway_db()
    db.log_many([run("a->b"), run("c->d")])  # a->b is pathway 1 and c->d pathway 2 to db
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE pathways, runs RESTART IDENTITY")
    other.log_many([run("c->d"), run("a->b")])  # now c->d is 1 and a->b is 2
    db.log_many([run("a->b"), run("c->d"), run("a->b")])
    assert db.find("a->b").frequency == 3 and db.find("c->d").frequency == 2
    assert {r["actions"] for r in db.runs(db.find("c->d").id)} == {"c->d"}
    db.close()
    other.close()


def test_copy_in_query_runs_statements_around_the_copy_and_keeps_the_connection_usable(pg_url):
    from menace.postgres.copy_query import copy_in_query

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int8)")
        seen = []

        def data(before):
            seen.append([r.command_status for r in before] + [before[1].get_value(0, 0)])
            return b"1\n2\n3\n"

        after = copy_in_query(conn, b"BEGIN; SELECT 41 + 1; COPY t FROM STDIN; SELECT sum(x) FROM t; COMMIT", data)
        assert seen == [[b"BEGIN", b"SELECT 1", b"42"]]
        assert [r.command_status for r in after] == [b"COPY 3", b"SELECT 1", b"COMMIT"]
        assert after[1].get_value(0, 0) == b"6"
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)

        def refuse(before):
            raise KeyError("no data")

        with pytest.raises(KeyError):  # the data's own error, with nothing copied
            copy_in_query(conn, b"BEGIN; COPY t FROM STDIN; COMMIT", refuse)
        conn.rollback()
        with pytest.raises(psycopg.errors.DivisionByZero):  # the server's error, as psycopg raises it
            copy_in_query(conn, b"BEGIN; SELECT 1 / 0; COPY t FROM STDIN; COMMIT", data)
        conn.rollback()
        with pytest.raises(psycopg.ProgrammingError, match="no COPY"):
            copy_in_query(conn, b"SELECT 1", data)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,) and not conn.closed

        def interrupted(before):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):  # the COPY is failed in order: the connection goes on
            copy_in_query(conn, b"BEGIN; COPY t FROM STDIN; COMMIT", interrupted)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_copy_in_query_closes_a_connection_interrupted_while_waiting(pg_url, monkeypatch):
    from menace.postgres import copy_query

    with psycopg.connect(pg_url, autocommit=True) as conn:
        def interrupt(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr(copy_query, "_wait", interrupt)
        with pytest.raises(KeyboardInterrupt):
            copy_query.copy_in_query(conn, b"SELECT pg_sleep(0.2); COPY t FROM STDIN", lambda before: b"")
        assert conn.closed  # its state unknown: a pool replaces a closed connection


def test_a_single_log_never_lands_on_another_pathway_that_took_its_remembered_id(pg, pg_url):
    db, other = pg.pathway_db(), pg.pathway_db()
    db.log(run("a->b"))
    db.log(run("c->d"))  # db remembers a->b as pathway 1 whose newest run is 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE pathways, runs RESTART IDENTITY")
    other.log(run("c->d"))  # now c->d is pathway 1, and its newest run is 1
    other.log(run("a->b"))
    db.log(run("a->b"))
    assert db.find("a->b").frequency == 2 and db.find("c->d").frequency == 1
    assert {r["actions"] for r in db.runs(db.find("c->d").id)} == {"c->d"}
    db.close()
    other.close()


def test_a_store_whose_prepared_statements_never_last_logs_the_long_way(pg, monkeypatch, caplog):
    from menace.postgres import pathway_db

    prepare = pathway_db._prepare_known  # noqa: SLF001 - the pooler is simulated where statements are made

    def forgetful(conn):  # as behind a transaction-mode pooler: the next transaction has other sessions
        prepare(conn)
        conn.execute("DEALLOCATE ALL")

    monkeypatch.setattr(pathway_db, "_prepare_known", forgetful)
    db = pg.pathway_db()
    for _ in range(4):
        db.log_many([run("a->b"), run("c->d")])
    assert db.find("a->b").frequency == 4 == db.find("c->d").frequency and db.count_runs() == 8
    warned = [r for r in caplog.records if "the long way" in r.getMessage()]
    assert len(warned) == 1  # said once; the store does not try again and again
    db.close()


def test_runs_packed_in_two_parts_are_the_bytes_psycopg_would_copy(pg_url):
    import io

    from psycopg.copy import Copy, FileWriter

    from menace.postgres import run_rows

    types = ["int8", "text", "text", "text", "float8", "text", "text", "float8", "float8", "int4", "int8", "float8",
             "int8", "float8", "float8", "float8", "int8", "int8", "int8"]
    runs = [  # the head's columns, then prior_frequency .. last_activation, then the ids (NULLs too)
        (7 + i, f"fetch->parse é #{i}", f"input {i}", "" if i % 4 == 0 else "out ∑", 1.25 * i, "cpu=1", "SUCCESS",
         -0.5 + i / 3, 1.7e9 + i, i % 2, 12 + i, 3.5 / (i + 1), 10 * i, 1.1**i, 0.4, 1.7e9, 1000 + i,
         None if i % 5 == 0 else 999 + i, None if i % 3 == 0 else 5)
        for i in range(12)
    ]
    database = Database(pg_url)
    with database.connection() as conn:
        buffer = io.BytesIO()
        with conn.cursor() as cur, Copy(cur, binary=True, writer=FileWriter(buffer)) as copy:
            copy.set_types(types)
            for row in runs:
                copy.write_row(row)
        ours = run_rows.SIGNATURE + b"".join(
            run_rows.head(*row[:10], (row[10], row[11], None, *row[12:16]), conn.info.encoding) + run_rows.ids(*row[16:])
            for row in runs
        ) + run_rows.TRAILER
        assert ours == buffer.getvalue()
        columns = zip(run_rows.HEAD_COLUMNS + run_rows.ID_COLUMNS, types, strict=True)
        conn.execute("CREATE TABLE runs (" + ", ".join(f"{name} {kind}" for name, kind in columns) + ")")
        with conn.cursor() as cur, cur.copy(run_rows.COPY) as copy:  # and the server takes them
            copy.write(ours)
        assert conn.execute("SELECT count(*), sum(id), count(link_from) FROM runs").fetchone() == (12, 12066, 8)
    database.close()
