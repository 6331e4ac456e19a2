"""PostgreSQL: ingest against raw psycopg, freshness from four writer processes, failover.

Everything runs against one throwaway PostgreSQL server started from the
installed binaries with the durable defaults (``fsync`` and
``synchronous_commit`` on: every commit waits for its WAL flush), each side in
a fresh schema of its own.

* **ingest**, one run per commit: ``PgPathwayDB.log(PathwayRecord(...))`` with
  a bus subscriber counting events, against raw psycopg inserting a row with a
  run's columns, one commit each, two ways: psycopg's default
  (``conn.execute(INSERT)`` then ``conn.commit()``: the driver sends ``BEGIN``,
  the insert and ``COMMIT``), and an autocommit connection (one round trip,
  the least a commit can cost). The sides alternate in rounds; each ratio is
  the median over rounds. Target >= 0.5.
* **ingest, batches** of 100 runs per commit: ``PgPathwayDB.log_many`` against
  raw ``executemany`` and raw ``COPY`` of the same rows in one transaction,
  ``--batch-rows`` runs per side per round; the menace side's time ends once
  the links of all its runs are folded (``PgPathwayDB.fold()`` after the last
  batch). Target >= 0.8 of either.
* **freshness**: the service in this process (``run_background`` on the
  database, hashing embedder, logreg), four writer *processes* logging
  ``--rate`` runs/s between them on a fixed schedule, one ``log()`` (one
  commit) per run; the clock starts before a writer's ``log()`` and stops
  when the service publishes the ``learning:trained`` event listing the run.
  Target p99 < 250 ms at 1,000 runs/s.
* **failover**, ``--trials`` times: a learner and a ``--standby`` service (two
  processes, two data directories, one database) while four writers log
  ``--failover-rate`` runs/s; SIGKILL the learner; the time until the
  standby's first ``learning:trained`` event is journaled. Target p99 < 10 s.

    python bench/postgres.py [--rows 1000] [--batch-rows 40000] [--rounds 9] [--rate 1000] [--seconds 10]
                             [--trials 10] [--only ingest,freshness,failover] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg

from menace.postgres.cluster import ThrowawayCluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTCOMES = ("SUCCESS", "SUCCESS", "PARTIAL_SUCCESS", "FAILURE")
TOKEN = "bench-token-0123456789abcdef"
TARGETS = {"log": 0.5, "batch": 0.8, "p99_ms": 250.0, "failover_s": 10.0}


def make_rows(count: int, pathways: int, seed: int) -> list[tuple]:
    """The fields of ``count`` runs over ``pathways`` distinct action sequences (as bench/ingest.py)."""
    rng = random.Random(seed)
    sequences = [
        "->".join(rng.choice(("fetch", "parse", "score", "store", "notify", "retry")) for _ in range(4)) + f"#{i}"
        for i in range(pathways)
    ]
    return [
        (rng.choice(sequences), f"input {i}", f"output {i}", rng.uniform(0.01, 5.0), "cpu=1",
         rng.choice(OUTCOMES), rng.uniform(-1.0, 3.0))
        for i in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def new_schema(cluster: ThrowawayCluster) -> str:
    name = f"b_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.url("menace_bench"), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return cluster.url("menace_bench", schema=name)


# -- ingest ---------------------------------------------------------------------------------------

RAW_TABLE = (
    "CREATE TABLE runs (id bigserial PRIMARY KEY, actions text, inputs text, outputs text,"
    " exec_time float8, resources text, outcome text, roi float8, ts float8)"
)
RAW_INSERT = (
    "INSERT INTO runs(actions, inputs, outputs, exec_time, resources, outcome, roi, ts)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def raw_connection(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(RAW_TABLE)
    return conn


def time_raw(url: str, rows: list[tuple]) -> float:
    with raw_connection(url) as conn:
        start = time.perf_counter()
        for row in rows:
            conn.execute(RAW_INSERT, (*row, time.time()))  # autocommit: one round trip, one commit
        return time.perf_counter() - start


def time_raw_commit(url: str, rows: list[tuple]) -> float:
    raw_connection(url).close()
    with psycopg.connect(url) as conn:  # psycopg's default: a transaction, committed by commit()
        start = time.perf_counter()
        for row in rows:
            conn.execute(RAW_INSERT, (*row, time.time()))
            conn.commit()
        return time.perf_counter() - start


def records(rows: list[tuple]) -> list:
    from menace.neuroplasticity import PathwayRecord

    return [PathwayRecord(actions=a, inputs=i, outputs=o, exec_time=t, resources=r, outcome=c, roi=roi)
            for a, i, o, t, r, c, roi in rows]


def time_menace(url: str, rows: list[tuple]) -> float:
    from menace.neuroplasticity import PathwayRecord
    from menace.postgres.pathway_db import PgPathwayDB
    from menace.unified_event_bus import UnifiedEventBus

    bus = UnifiedEventBus()
    seen = [0]
    bus.subscribe("pathway:new", lambda _t, _p: seen.__setitem__(0, seen[0] + 1))
    with PgPathwayDB(url, event_bus=bus) as db:
        start = time.perf_counter()
        for actions, inputs, outputs, exec_time, resources, outcome, roi in rows:
            db.log(PathwayRecord(actions=actions, inputs=inputs, outputs=outputs, exec_time=exec_time,
                                 resources=resources, outcome=outcome, roi=roi))
        took = time.perf_counter() - start
    assert seen[0] == len(rows)
    return took


def time_menace_batches(url: str, rows: list[tuple], batch: int) -> float:
    from menace.postgres.pathway_db import PgPathwayDB

    with PgPathwayDB(url) as db:
        start = time.perf_counter()
        for first in range(0, len(rows), batch):
            db.log_many(records(rows[first : first + batch]))
        # The links of every run logged, folded: the store folds every FOLD_EVERY runs on a
        # thread of its own, and what it leaves for later (or is folding when the loop ends)
        # is counted here, so each side's time holds all of its work.
        db.fold()
        return time.perf_counter() - start


def time_raw_executemany(url: str, rows: list[tuple], batch: int) -> float:
    with raw_connection(url) as conn:
        start = time.perf_counter()
        for first in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur:
                now = time.time()
                cur.executemany(RAW_INSERT, [(*row, now) for row in rows[first : first + batch]])
        return time.perf_counter() - start


def time_raw_copy(url: str, rows: list[tuple], batch: int) -> float:
    columns = "actions, inputs, outputs, exec_time, resources, outcome, roi, ts"
    with raw_connection(url) as conn:
        start = time.perf_counter()
        for first in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY runs({columns}) FROM STDIN") as copy:
                now = time.time()
                for row in rows[first : first + batch]:
                    copy.write_row((*row, now))
        return time.perf_counter() - start


def ingest(cluster: ThrowawayCluster, args: argparse.Namespace) -> dict:
    rows = make_rows(args.rows, 50, 1)
    batch_rows = make_rows(args.batch_rows, 50, 2)
    sides = {
        "raw": lambda url: time_raw(url, rows),
        "raw_commit": lambda url: time_raw_commit(url, rows),
        "menace": lambda url: time_menace(url, rows),
        "raw_executemany": lambda url: time_raw_executemany(url, batch_rows, 100),
        "raw_copy": lambda url: time_raw_copy(url, batch_rows, 100),
        "menace_batch": lambda url: time_menace_batches(url, batch_rows, 100),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_no in range(args.rounds):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for name in order:
            count = len(rows) if name in ("raw", "raw_commit", "menace") else len(batch_rows)
            rates[name].append(count / sides[name](new_schema(cluster)))
    ratio = [m / r for m, r in zip(rates["menace"], rates["raw_commit"], strict=True)]
    ratio_auto = [m / r for m, r in zip(rates["menace"], rates["raw"], strict=True)]
    return {
        "rates": {name: statistics.median(values) for name, values in rates.items()},
        "log_ratio": statistics.median(ratio),
        "log_ratio_range": (min(ratio), max(ratio)),
        "log_ratio_autocommit": statistics.median(ratio_auto),
        "log_ratio_autocommit_range": (min(ratio_auto), max(ratio_auto)),
        "batch_vs_executemany": statistics.median(
            [m / r for m, r in zip(rates["menace_batch"], rates["raw_executemany"], strict=True)]),
        "batch_vs_copy": statistics.median(
            [m / r for m, r in zip(rates["menace_batch"], rates["raw_copy"], strict=True)]),
    }


# -- freshness ------------------------------------------------------------------------------------

#: A writer process: logs its share of the runs on a fixed schedule from a common start time.
WRITER = textwrap.dedent(
    """
    import random, sys, time
    from menace.neuroplasticity import PathwayRecord
    from menace.postgres.pathway_db import PgPathwayDB

    url, out, rate, seconds, start_at, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    rng = random.Random(seed)
    steps = ["fetch", "parse", "store", "login", "search", "buy", "scan", "patch", "deploy", "notify"]
    texts = sorted({"->".join(random.Random(i).sample(steps, 3)) for i in range(300)})
    bad = set(texts[::3])

    class Clock:
        t = 0.0
        noted = []

        def publish(self, topic, payload):
            self.noted.append((payload["run_id"], self.t))

    clock = Clock()
    db = PgPathwayDB(url, event_bus=clock)
    total, interval = int(rate * seconds), 1.0 / rate
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.perf_counter()
    late = 0
    for i in range(total):
        due = t0 + i * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.05:
            late += 1
        actions = rng.choice(texts)
        ok = (actions not in bad) != (rng.random() < 0.1)
        clock.t = time.time()
        db.log(PathwayRecord(actions, exec_time=rng.uniform(0.05, 3.0), roi=rng.uniform(-1, 5),
                             outcome="SUCCESS" if ok else "FAILURE"))
    took = time.perf_counter() - t0
    db.close()
    with open(out, "w") as fh:
        fh.write(f"{total / took} {late}\\n")
        fh.writelines(f"{run_id} {t}\\n" for run_id, t in clock.noted)
    """
)


def start_writers(url: str, folder: Path, rate: float, seconds: float, start_at: float,
                  count: int = 4, name: str = "w") -> list:
    script = folder / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, MENACE_EMBEDDER="hashing")
    return [
        subprocess.Popen([sys.executable, str(script), url, str(folder / f"{name}{k}.txt"), str(rate / count),
                          str(seconds), str(start_at), str(k + 100 * (name != "w"))],
                         env=env, stderr=subprocess.PIPE, text=True)
        for k in range(count)
    ]


def freshness(cluster: ThrowawayCluster, args: argparse.Namespace) -> dict:
    os.environ["MENACE_EMBEDDER"] = "hashing"
    from menace import events
    from menace.config import Settings
    from menace.self_learning_service import run_background

    url = new_schema(cluster)
    learned: dict[int, float] = {}
    announced: dict[int, float] = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="menace-bench-pg-") as tmp:
        folder = Path(tmp)
        start, stop = run_background(Settings(data_dir=folder / "data", database_url=url, metrics_port=0,
                                              eval_every_examples=0, eval_every_seconds=0.0),
                                     batch_size=64, batch_wait=0.02)
        stack = start()
        try:
            def on_trained(_topic: str, payload: dict) -> None:
                now = time.time()
                with lock:
                    for run_id in payload.get("run_ids", ()):
                        learned.setdefault(run_id, now)

            stack.bus.subscribe(events.LEARNING_TRAINED, on_trained)
            drifts: list[dict] = []
            stack.bus.subscribe(events.LEARNING_DRIFT, lambda _t, p: drifts.append(p))
            stack.bus.subscribe(events.PATHWAY_NEW, lambda _t, p: announced.setdefault(p["run_id"], time.time()))
            # Warm-up (not counted): the same kind of runs, so the measured ones find the model
            # trained, the embedding cache warm and no change of distribution to react to.
            for warm in start_writers(url, folder, 250.0, 2.0, time.time() + 0.5, count=1, name="warm"):
                warm.communicate(timeout=120)
            stack.coordinator.wait_idle(60)
            writers = start_writers(url, folder, args.rate, args.seconds, time.time() + 2.0)
            for writer in writers:
                _, err = writer.communicate(timeout=args.seconds + 120)
                assert writer.returncode == 0, err
            noted: dict[int, float] = {}
            achieved, late = 0.0, 0
            for k in range(4):
                lines = (folder / f"w{k}.txt").read_text().split("\n")
                rate, behind = lines[0].split()
                achieved += float(rate)
                late += int(behind)
                for line in lines[1:]:
                    if line:
                        run_id, t = line.split()
                        noted[int(run_id)] = float(t)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    if all(r in learned for r in noted):
                        break
                time.sleep(0.1)
            depth = stack.coordinator.stats()
        finally:
            stop()
    with lock:
        latencies = [(learned[r] - t) * 1000 for r, t in noted.items() if r in learned]
        to_bus = [(announced[r] - t) * 1000 for r, t in noted.items() if r in announced]
    return {
        "announced_p50_ms": percentile(to_bus, 50), "announced_p99_ms": percentile(to_bus, 99),
        "logged": len(noted), "learned": len(latencies), "achieved_rate": achieved, "late_logs": late,
        "median_ms": statistics.median(latencies) if latencies else float("nan"),
        "p90_ms": percentile(latencies, 90), "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "batches": depth["training_runs"].get("pathways/partial", 0), "drifts": len(drifts),
    }


# -- failover -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service(url: str, data_dir: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1")
    env.pop("MENACE_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "menace.self_learning_service", "--database-url", url, "--data-dir", str(data_dir),
         "--metrics-port", str(free_port()), "--api-token", TOKEN, "--drift-policy", "none", "--eval-every", "0",
         "--eval-interval", "0", *extra],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float) -> None:
    found = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            if text in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout):
        raise RuntimeError(f"no {text!r} from the service within {timeout} s")


def trained_events(url: str, after: float) -> tuple[int, float | None]:
    with psycopg.connect(url) as conn:
        count, first = conn.execute(
            "SELECT count(*), min(ts) FROM events WHERE topic = 'learning:trained' AND ts > %s", (after,)
        ).fetchone()
    return count, first


def failover_trial(cluster: ThrowawayCluster, folder: Path, args: argparse.Namespace) -> float:
    url = new_schema(cluster)
    procs: list[subprocess.Popen] = []
    try:
        learner = service(url, folder / "a")
        procs.append(learner)
        wait_for_line(learner, "Menace service running", 120)
        standby = service(url, folder / "b", "--standby")
        procs.append(standby)
        wait_for_line(standby, "waiting to take over", 120)
        began = time.time()
        writers = start_writers(url, folder, args.failover_rate, 30.0, began)
        procs += writers
        deadline = time.monotonic() + 60
        while trained_events(url, began)[0] < 5:  # the learner learns the writers' runs
            if time.monotonic() > deadline:
                raise RuntimeError("the learner learned nothing")
            time.sleep(0.1)
        learner.kill()
        killed = time.time()
        learner.wait()
        deadline = time.monotonic() + 60
        while (first := trained_events(url, killed)[1]) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the standby learned nothing within 60 s")
            time.sleep(0.05)
        return first - killed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


def failover(cluster: ThrowawayCluster, args: argparse.Namespace) -> dict:
    times = []
    for trial in range(args.trials):
        with tempfile.TemporaryDirectory(prefix=f"menace-failover-{trial}-") as tmp:
            times.append(failover_trial(cluster, Path(tmp), args))
        print(f"failover trial {trial + 1}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
    return {"times": times, "median_s": statistics.median(times), "p99_s": percentile(times, 99),
            "max_s": max(times)}


# -- report ---------------------------------------------------------------------------------------


def yes(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def markdown(args: argparse.Namespace, results: dict) -> str:
    lines = [
        "# PostgreSQL: ingest, freshness, failover",
        "",
        "Throwaway PostgreSQL server with the durable defaults (`fsync`, `synchronous_commit` on), "
        f"{os.cpu_count()} cores shared with the benchmark's own processes and whatever else ran on the "
        f"machine (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
    ]
    if "ingest" in results:
        r = results["ingest"]
        rates = r["rates"]
        lines += [
            f"## Ingest ({args.rounds} rounds, {args.rows} single runs / {args.batch_rows} batched runs per side "
            "per round, 50 action sequences, sides alternating)",
            "",
            "| side | runs/s (median) | ratio | target | met |",
            "|---|---:|---:|---:|---|",
            f"| raw psycopg, default: `execute(INSERT)`, `commit()` | {rates['raw_commit']:,.0f} | 1 | | |",
            f"| raw psycopg, autocommit `INSERT` (one round trip) | {rates['raw']:,.0f} | | | |",
            f"| `PgPathwayDB.log` + bus subscriber (one commit each) | {rates['menace']:,.0f} | "
            f"**{r['log_ratio']:.2f}** of the default (rounds {r['log_ratio_range'][0]:.2f}..{r['log_ratio_range'][1]:.2f}); "
            f"**{r['log_ratio_autocommit']:.2f}** of autocommit (rounds {r['log_ratio_autocommit_range'][0]:.2f}.."
            f"{r['log_ratio_autocommit_range'][1]:.2f}) | >= {TARGETS['log']} | "
            f"{yes(r['log_ratio'] >= TARGETS['log'])} / {yes(r['log_ratio_autocommit'] >= TARGETS['log'])} |",
            f"| raw `executemany`, 100 rows per transaction | {rates['raw_executemany']:,.0f} | 1 | | |",
            f"| raw `COPY`, 100 rows per transaction | {rates['raw_copy']:,.0f} | | | |",
            f"| `PgPathwayDB.log_many`, 100 runs per call | {rates['menace_batch']:,.0f} | "
            f"**{r['batch_vs_executemany']:.2f}** of executemany, **{r['batch_vs_copy']:.2f}** of COPY | "
            f">= {TARGETS['batch']} of either | {yes(max(r['batch_vs_executemany'], r['batch_vs_copy']) >= TARGETS['batch'])} |",
            "",
        ]
    if "freshness" in results:
        r = results["freshness"]
        ok = r["p99_ms"] < TARGETS["p99_ms"] and r["learned"] == r["logged"] and r["achieved_rate"] >= 0.95 * args.rate
        lines += [
            f"## Freshness (four writer processes, {args.rate:,.0f} runs/s between them for {args.seconds:.0f} s, "
            "one `log()` per run; service in the bench process, hashing embedder, logreg)",
            "",
            "| offered | sustained | logged | learned | median | p90 | p99 | max | late logs | batches | met (p99 < 250 ms) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {args.rate:,.0f}/s | {r['achieved_rate']:,.0f}/s | {r['logged']} | {r['learned']} | "
            f"{r['median_ms']:.1f} ms | {r['p90_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | "
            f"{r['late_logs']} | {r['batches']} | {yes(ok)} |",
            "",
            f"From `log()` to the run's `pathway:new` on the service's bus (the watcher's part): median "
            f"{r['announced_p50_ms']:.1f} ms, p99 {r['announced_p99_ms']:.1f} ms. Drifts found while measuring: "
            f"{r['drifts']}.",
            "",
        ]
    if "failover" in results:
        r = results["failover"]
        lines += [
            f"## Failover ({args.trials} trials; learner and standby are two service processes on one database; "
            f"four writers log {args.failover_rate:,.0f} runs/s between them; SIGKILL the learner)",
            "",
            "From the kill to the standby's first `learning:trained` event in the journal: "
            + ", ".join(f"{t:.2f}" for t in r["times"]) + " s.",
            "",
            f"Median **{r['median_s']:.2f} s**, p99 (the slowest of {args.trials}) **{r['p99_s']:.2f} s**; "
            f"target p99 < {TARGETS['failover_s']:.0f} s: {yes(r['p99_s'] < TARGETS['failover_s'])}.",
            "",
        ]
    lines.append(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"{platform.system()} {platform.release()}, Python {platform.python_version()}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="single-run logs per side per round (default 1000)")
    parser.add_argument("--batch-rows", type=int, default=40_000,
                        help="runs logged in batches of 100 per side per round (default 40000: the links'"
                             " fold, every 32,768 runs, falls inside)")
    parser.add_argument("--rounds", type=int, default=9, help="ingest rounds (default 9)")
    parser.add_argument("--rate", type=float, default=1000.0, help="freshness: runs/s of the four writers")
    parser.add_argument("--seconds", type=float, default=10.0, help="freshness: seconds the writers log")
    parser.add_argument("--trials", type=int, default=10, help="failover trials (default 10)")
    parser.add_argument("--failover-rate", type=float, default=200.0, help="runs/s logged during failover trials")
    parser.add_argument("--only", default="ingest,freshness,failover", help="which parts, comma-separated")
    parser.add_argument("--synchronous-commit", default="on", choices=["on", "off"],
                        help="the server's synchronous_commit (default on: every commit waits for its WAL flush)")
    parser.add_argument("--write", action="store_true", help="also write bench/results/postgres.md")
    parser.add_argument("--append", action="store_true", help="also append to bench/results/postgres.md")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    results: dict = {}
    with ThrowawayCluster({"synchronous_commit": args.synchronous_commit}, fast=False) as cluster:
        cluster.create_database("menace_bench")
        for part in parts:
            print(f"running {part} ...", file=sys.stderr, flush=True)
            results[part] = {"ingest": ingest, "freshness": freshness, "failover": failover}[part](cluster, args)
    body = markdown(args, results)
    command = "python bench/postgres.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = body.replace("\n\n", f"\n\n```\n{command.strip()}\n```\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')}. ", 1)
    print(body)
    out = HERE / "results" / "postgres.md"
    if args.write:
        out.write_text(body + "\n")
    elif args.append:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write("\n" + body.replace("# PostgreSQL: ingest, freshness, failover", "## Another run", 1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
