"""Ingest benchmark: PathwayDB.log with a bus subscriber, against raw sqlite3 inserts.

Both sides write the same runs, one transaction (and one commit) per run, to
their own fresh file in the same folder, with the same durability settings:
WAL journal, the same ``PRAGMA synchronous`` as Menace uses
(``MENACE_SQLITE_SYNCHRONOUS``, default NORMAL) and the same busy timeout.

* raw: ``sqlite3`` in the standard way, ``INSERT`` one row into a table with a
  run's columns, then ``commit()``.
* menace: ``PathwayDB.log(PathwayRecord(...))`` with a ``UnifiedEventBus``
  (no journal) that has one ``pathway:new`` subscriber counting events. Each
  log validates the record, aggregates the pathway, keeps the run, links it to
  the previous pathway, commits, then publishes.

The two sides alternate in rounds so that background load hits both alike; the
ratio is the median PathwayDB throughput over the median raw throughput.

    python bench/ingest.py [--rows 2000] [--rounds 7] [--pathways 50] [--markdown]
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

from menace import events, storage
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


def run(rows_per_round: int, rounds: int, pathways: int, seed: int = 7) -> dict:
    with tempfile.TemporaryDirectory(prefix="menace-ingest-", dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp_path = Path(tmp)
        raw = open_raw(tmp_path / "raw.db")
        bus = UnifiedEventBus()
        received = []
        bus.subscribe(events.PATHWAY_NEW, lambda topic, payload: received.append(payload["run_id"]))
        db = PathwayDB(tmp_path / "pathways.db", event_bus=bus)
        warm = make_rows(200, pathways, seed + 1)
        time_raw(raw, warm)
        time_menace(db, warm)
        raw_rates, menace_rates = [], []
        for r in range(rounds):
            rows = make_rows(rows_per_round, pathways, seed + 10 + r)
            order = (("raw", "menace") if r % 2 == 0 else ("menace", "raw"))
            for side in order:
                if side == "raw":
                    raw_rates.append(rows_per_round / time_raw(raw, rows))
                else:
                    menace_rates.append(rows_per_round / time_menace(db, rows))
        total = 200 + rows_per_round * rounds
        assert len(received) == total, (len(received), total)
        assert db.count_runs() == total
        assert raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == total
        raw.close()
        db.close()
    raw_med, menace_med = statistics.median(raw_rates), statistics.median(menace_rates)
    return {
        "raw": raw_med,
        "menace": menace_med,
        "ratio": menace_med / raw_med,
        "ratios": [m / r for m, r in zip(menace_rates, raw_rates, strict=True)],
        "rows": rows_per_round,
        "rounds": rounds,
        "pathways": pathways,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="runs per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--pathways", type=int, default=50, help="distinct action sequences")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1 or args.pathways < 1:
        parser.error("--rows, --rounds and --pathways must be >= 1")
    result = run(args.rows, args.rounds, args.pathways)
    spread = f"{min(result['ratios']):.2f}..{max(result['ratios']):.2f}"
    if args.markdown:
        print("| side | runs/s (median of rounds) | us per run |")
        print("|---|---:|---:|")
        print(f"| raw sqlite3 INSERT + commit | {result['raw']:,.0f} | {1e6 / result['raw']:.1f} |")
        print(
            f"| PathwayDB.log + bus subscriber | {result['menace']:,.0f} | "
            f"{1e6 / result['menace']:.1f} |"
        )
        print(f"| **ratio** (target >= 0.5) | **{result['ratio']:.2f}** (rounds {spread}) | |")
        print()
        print(
            f"{args.rounds} rounds x {args.rows} runs over {args.pathways} action sequences, "
            f"synchronous={storage.SYNCHRONOUS}, WAL, one commit per run."
        )
        print(f"Machine: {machine()}")
    else:
        print(f"raw sqlite3 inserts:      {result['raw']:10,.0f} runs/s")
        print(f"PathwayDB.log + bus:      {result['menace']:10,.0f} runs/s")
        print(f"ratio (target >= 0.5):    {result['ratio']:10.2f}  (per round {spread})")
        print(f"synchronous={storage.SYNCHRONOUS}; {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
