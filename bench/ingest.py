"""Ingest benchmark: PathwayDB.log with a bus subscriber, against raw sqlite3 inserts.

Both sides write the same runs, one transaction (and one commit) per run, to
their own fresh file in the same folder, with the same durability settings:
WAL journal, the same ``PRAGMA synchronous`` as Menace uses
(``MENACE_SQLITE_SYNCHRONOUS``, default NORMAL) and the same busy timeout.

* raw: ``sqlite3`` in the standard way, ``INSERT`` one row into a table with a
  run's columns, then ``commit()``.
* menace: ``PathwayDB.log(PathwayRecord(...))`` with a ``UnifiedEventBus``
  (no journal) that has one ``pathway:new`` subscriber counting events. Each
  log validates the record, computes the pathway's new aggregate, commits the
  run (which carries it), then publishes; every ``FOLD_EVERY`` runs one log
  also folds the runs since into the pathway rows and links. The headline
  ratio is this one.
* menace with journal: the same with the bus journaling every event to its own
  SQLite file (one more commit per run), as the service runs it; for reference.
* SQL floor: the statements a log runs (``BEGIN IMMEDIATE``, ``INSERT`` the
  run, ``COMMIT``), executed directly, with no validation, payload, bus or
  fold: what the store could reach with zero Python overhead.
* log_many: the importer's path, 100 runs per transaction (for reference; the
  raw side still commits every row).

The two sides alternate in rounds so that background load hits both alike; the
ratio is the median PathwayDB throughput over the median raw throughput. A round
is 5,000 runs: at 2,000 a raw round took about 40 ms, and one WAL checkpoint (it
syncs the database file) or one fold landing in a round moved that round's ratio
by a fifth; medians of 9 such rounds read anywhere from 0.43 to 0.59 on the same
code within minutes, where 15 rounds of 5,000 stay within a few hundredths.

    python bench/ingest.py [--rows 5000] [--rounds 15] [--pathways 50] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from menace import events, neuroplasticity, storage
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.unified_event_bus import UnifiedEventBus

OUTCOMES = ("SUCCESS", "SUCCESS", "PARTIAL_SUCCESS", "FAILURE")


def make_rows(count: int, pathways: int, seed: int) -> list[tuple]:
    """The fields of ``count`` runs over ``pathways`` distinct action sequences."""
    rng = random.Random(seed)
    sequences = [
        "->".join(rng.choice(("fetch", "parse", "score", "store", "notify", "retry")) for _ in range(4))
        + f"#{i}"
        for i in range(pathways)
    ]
    return [
        (
            rng.choice(sequences),
            f"input {i}",
            f"output {i}",
            rng.uniform(0.01, 5.0),
            "cpu=1",
            rng.choice(OUTCOMES),
            rng.uniform(-1.0, 3.0),
        )
        for i in range(count)
    ]


def open_raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=storage.BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={storage.SYNCHRONOUS}")
    conn.execute(f"PRAGMA busy_timeout={storage.BUSY_TIMEOUT_MS}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, actions TEXT, inputs TEXT,"
        " outputs TEXT, exec_time REAL, resources TEXT, outcome TEXT, roi REAL, ts REAL)"
    )
    conn.commit()
    return conn


def time_raw(conn: sqlite3.Connection, rows: list[tuple]) -> float:
    sql = (
        "INSERT INTO runs(actions, inputs, outputs, exec_time, resources, outcome, roi, ts)"
        " VALUES (?,?,?,?,?,?,?,?)"
    )
    start = time.perf_counter()
    for actions, inputs, outputs, exec_time, resources, outcome, roi in rows:
        conn.execute(sql, (actions, inputs, outputs, exec_time, resources, outcome, roi, time.time()))
        conn.commit()
    return time.perf_counter() - start


def time_menace(db: PathwayDB, rows: list[tuple]) -> float:
    start = time.perf_counter()
    for actions, inputs, outputs, exec_time, resources, outcome, roi in rows:
        db.log(
            PathwayRecord(
                actions=actions, inputs=inputs, outputs=outputs, exec_time=exec_time,
                resources=resources, outcome=outcome, roi=roi,
            )
        )
    return time.perf_counter() - start


def time_menace_batches(db: PathwayDB, rows: list[tuple], batch: int = 100) -> float:
    """``log_many`` in batches (the importer's path): one commit per ``batch`` runs."""
    start = time.perf_counter()
    for first in range(0, len(rows), batch):
        db.log_many(
            PathwayRecord(
                actions=actions, inputs=inputs, outputs=outputs, exec_time=exec_time,
                resources=resources, outcome=outcome, roi=roi,
            )
            for actions, inputs, outputs, exec_time, resources, outcome, roi in rows[first : first + batch]
        )
    return time.perf_counter() - start


def time_sql_floor(conn: sqlite3.Connection, rows: list[tuple], state: dict) -> float:
    """The statements one ``PathwayDB.log`` runs, with no validation, payload or bus.

    ``BEGIN IMMEDIATE``, the run's ``INSERT`` (a pathway row the first time an
    action sequence is seen), ``COMMIT``: the same pages per commit as a log,
    less its share of the fold every ``FOLD_EVERY`` runs.
    """
    np = neuroplasticity
    pathway_ids = state.setdefault("pathway_ids", {})
    conn = state.setdefault("cursor", conn.cursor())  # one cursor, as PathwayDB reuses its own
    start = time.perf_counter()
    for actions, inputs, outputs, exec_time, resources, outcome, roi in rows:
        ts = time.time()
        conn.execute("BEGIN IMMEDIATE")
        pid = pathway_ids.get(actions)
        if pid is None:
            pid = pathway_ids[actions] = conn.execute(np._INSERT_PATHWAY, (actions, ts)).lastrowid  # noqa: SLF001
        state["previous"] = conn.execute(
            np._INSERT_RUN,  # noqa: SLF001 - the floor runs PathwayDB's own statements
            (pid, actions, inputs, outputs, exec_time, resources, outcome, roi, ts, 1, 0, 0.0,
             state.get("previous"), 1, exec_time, roi, ts, None),
        ).lastrowid
        conn.execute("COMMIT")
    return time.perf_counter() - start


def time_reads(db: PathwayDB, rows: list[tuple], repeat: int = 50) -> dict:
    """Milliseconds per read on the store the benchmark filled, as it was left.

    Reads include the runs not folded yet, so their cost depends on how many
    there are (at most ``FOLD_EVERY``); the count is reported with them.
    """
    pathway = db.find(rows[-1][0])
    reads = {
        "find": lambda: db.find(rows[-1][0]),
        "top_pathways(10)": lambda: db.top_pathways(10),
        "links": lambda: db.links(pathway.id),
        "next_pathway": lambda: db.next_pathway(pathway.id),
    }
    result = {}
    for name, read in reads.items():
        start = time.perf_counter()
        for _ in range(repeat):
            read()
        result[name] = (time.perf_counter() - start) / repeat * 1e3
    result["pathways"] = db.count_pathways()
    result["runs"] = db.count_runs()
    result["unfolded"] = db._read(  # noqa: SLF001 - a diagnostic count, not an API
        "SELECT COUNT(*) FROM runs WHERE id > (SELECT folded_through FROM fold_state)"
    )[0][0]
    return result


def run(rows_per_round: int, rounds: int, pathways: int, seed: int = 7) -> dict:
    """Alternate the sides for ``rounds`` rounds; medians of runs per second."""
    with tempfile.TemporaryDirectory(prefix="menace-ingest-", dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp_path = Path(tmp)
        raw = open_raw(tmp_path / "raw.db")
        received: list[int] = []

        def count(topic: str, payload: dict) -> None:
            received.append(payload["run_id"])

        bus = UnifiedEventBus()
        bus.subscribe(events.PATHWAY_NEW, count)
        db = PathwayDB(tmp_path / "pathways.db", event_bus=bus)
        # The service's set-up: the bus also journals every event to events.db.
        journal_bus = UnifiedEventBus(tmp_path / "events.db")
        journal_bus.subscribe(events.PATHWAY_NEW, count)
        journal_db = PathwayDB(tmp_path / "pathways-journal.db", event_bus=journal_bus)

        batch_db = PathwayDB(tmp_path / "pathways-batch.db", event_bus=bus)
        floor_db = PathwayDB(tmp_path / "pathways-floor.db")  # only for its schema
        floor_state: dict = {}
        sides = {
            "raw": lambda rows: time_raw(raw, rows),
            "sql_floor": lambda rows: time_sql_floor(floor_db._conn, rows, floor_state),  # noqa: SLF001
            "menace_batch": lambda rows: time_menace_batches(batch_db, rows),
            "menace": lambda rows: time_menace(db, rows),
            "menace_journal": lambda rows: time_menace(journal_db, rows),
        }
        warm = make_rows(200, pathways, seed + 1)
        for side in sides.values():
            side(warm)
        rates: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for r in range(rounds):
            rows = make_rows(rows_per_round, pathways, seed + 10 + r)
            for name in names[r % len(names):] + names[: r % len(names)]:  # rotate who goes first
                rates[name].append(rows_per_round / sides[name](rows))
        total = 200 + rows_per_round * rounds
        assert len(received) == 3 * total, (len(received), total)
        assert db.count_runs() == journal_db.count_runs() == batch_db.count_runs() == total
        assert journal_bus.journal_size() == total
        assert raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == total
        raw.close()
        reads = time_reads(db, rows)
        for closable in (db, journal_db, journal_bus, floor_db, batch_db):
            closable.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        **medians,
        "ratio": medians["menace"] / medians["raw"],
        "ratio_journal": medians["menace_journal"] / medians["raw"],
        "ratio_floor": medians["sql_floor"] / medians["raw"],
        "ratio_batch": medians["menace_batch"] / medians["raw"],
        "ratios": [m / r for m, r in zip(rates["menace"], rates["raw"], strict=True)],
        "rows": rows_per_round,
        "rounds": rounds,
        "pathways": pathways,
        "reads": reads,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def read_line(reads: dict) -> str:
    timings = ", ".join(
        f"{name} {ms:.2f} ms" for name, ms in reads.items() if name not in {"pathways", "runs", "unfolded"}
    )
    return (
        f"Reads afterwards ({reads['runs']:,} runs of {reads['pathways']:,} pathways in the "
        f"PathwayDB.log store, {reads['unfolded']:,} not folded yet): {timings}."
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (``--markdown`` for a table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="runs per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    parser.add_argument("--pathways", type=int, default=50, help="distinct action sequences")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1 or args.pathways < 1:
        parser.error("--rows, --rounds and --pathways must be >= 1")
    result = run(args.rows, args.rounds, args.pathways)
    spread = f"{min(result['ratios']):.2f}..{max(result['ratios']):.2f}"
    if args.markdown:
        print("| side | runs/s (median of rounds) | us per run | ratio to raw |")
        print("|---|---:|---:|---:|")
        print(f"| raw sqlite3 INSERT + commit | {result['raw']:,.0f} | {1e6 / result['raw']:.1f} | 1 |")
        print(
            f"| PathwayDB.log + bus subscriber | {result['menace']:,.0f} | "
            f"{1e6 / result['menace']:.1f} | **{result['ratio']:.2f}** (rounds {spread}) |"
        )
        print(
            f"| same, bus journaling to events.db | {result['menace_journal']:,.0f} | "
            f"{1e6 / result['menace_journal']:.1f} | {result['ratio_journal']:.2f} |"
        )
        print(
            f"| floor: log's SQL statements alone | {result['sql_floor']:,.0f} | "
            f"{1e6 / result['sql_floor']:.1f} | {result['ratio_floor']:.2f} |"
        )
        print(
            f"| PathwayDB.log_many, 100 runs per commit | {result['menace_batch']:,.0f} | "
            f"{1e6 / result['menace_batch']:.1f} | {result['ratio_batch']:.2f} |"
        )
        print()
        print(
            f"{args.rounds} rounds x {args.rows} runs over {args.pathways} action sequences, "
            f"synchronous={storage.SYNCHRONOUS}, WAL, one commit per run. Target: ratio >= 0.5."
        )
        print(f"Machine: {machine()}")
        print()
        print(read_line(result["reads"]))
    else:
        print(f"raw sqlite3 inserts:        {result['raw']:10,.0f} runs/s")
        print(f"PathwayDB.log + bus:        {result['menace']:10,.0f} runs/s")
        print(f"  + bus journal:            {result['menace_journal']:10,.0f} runs/s")
        print(f"ratio (target >= 0.5):      {result['ratio']:10.2f}  (per round {spread})")
        print(f"ratio with journal:         {result['ratio_journal']:10.2f}")
        print(f"SQL floor (log's statements alone): {result['ratio_floor']:.2f} of raw")
        print(f"log_many, 100 per commit:   {result['ratio_batch']:10.2f} of raw")
        print(f"synchronous={storage.SYNCHRONOUS}; {machine()}")
        print(read_line(result["reads"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
