"""Sustained learning rate: runs logged by other processes, learned by the service.

Bots log from their own processes, so the service learns their runs through
the run watcher (``menace.run_watcher``), not through its own bus. This
benchmark starts ``--writers`` writer processes that log runs one at a time
(one ``PathwayDB.log`` = one transaction, as a bot does) at a combined
``--rate`` for ``--seconds`` seconds, into the data directory of a service
stack running in this process (hashing embedder, logreg, test-then-train
scoring on, journaled bus, periodic evaluation off so it does not compete).

For every run, the writer notes the time just before its ``log()`` call; the
service notes when ``learning:trained`` lists the run (the live model has
learned it), or, for a run a full training fitted (a drift retrain lists no run
ids, and the partial updates then skip its runs), when that training's event
says it learned through the run. Freshness is the difference (one machine, one clock). A rate is
*sustained* when every run logged was learned, freshness p99 < 250 ms, and the
writers kept the pace: the achieved rate is the runs logged over the time the
writers took from the common start to their last log, at least 95% of the rate
asked. (A writer that falls behind still makes every log it owes, later; until
2026-12-01 the rate was taken over the seconds asked, which overstated it when
the writers fell behind: the figures recorded before then were too high.) Each
trial also prints how far the writers fell behind and the CPU per run of the
writers and of the service.

First the writers run alone (no service, no pacing): the most runs/s SQLite
takes from them on this machine, the same-run baseline (they take turns for its
write lock, so they use about one core between them however many are free).
Rates are tried from ``--rate`` upwards by ``--step`` until one is not
sustained (``--once``: only ``--rate``); the highest sustained rate is the
figure, also given as a fraction of the baseline.

``--batch N`` has each writer log N runs per call (``log_runs``, one
transaction) instead of one ``log()`` per run: the writers then take the lock a
tenth as often at N = 10, and what limits the rate is the CPU the writers and
the service need between them.

    .venv/bin/python bench/sustained.py [--rate 2500] [--step 2500] [--seconds 6] [--once] [--batch 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_P99_MS = 250.0
TARGET_RATE = 20_000

WRITER = textwrap.dedent(
    """
    import random, sys, time
    from menace.neuroplasticity import PathwayDB, PathwayRecord

    data, name, rate, seconds, batch = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    steps = ["fetch", "parse", "store", "login", "search", "buy", "scan", "patch", "deploy", "notify"]
    shared = random.Random(0)  # one concept for every writer: which pathways tend to succeed
    texts = ["->".join(shared.sample(steps, shared.randint(2, 5))) for _ in range(300)]
    good = {t: shared.random() < 0.6 for t in texts}
    rng = random.Random(name)

    def record(t):
        actions = rng.choice(texts)
        ok = good[actions] if rng.random() > 0.1 else not good[actions]
        return PathwayRecord(actions, exec_time=rng.uniform(0.1, 3), roi=rng.gauss(1, 1),
                             outcome="SUCCESS" if ok else "FAILURE", ts=t)

    class LastRun:  # log() returns the pathway id; its event names the run
        run_id = None
        def publish(self, topic, payload):
            self.run_id = payload["run_id"]

    bus = LastRun()
    pdb = PathwayDB(f"{data}/pathways.db", event_bus=bus)
    out = open(f"{data}/{name}.log", "w")
    print("ready", flush=True)  # imported and open: the start time comes once every writer is
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.001)
    # one call logs ``batch`` runs (one transaction): log() for 1, log_runs() for more
    n, interval, lag, calls = 0, batch / rate if rate > 0 else 0.0, 0.0, []  # rate 0: as fast as it can
    end = start_at + seconds
    cpu = time.process_time()
    while True:
        due = start_at + n * interval
        now = time.time()
        if (due if interval else now) >= end:
            break
        if due > now:
            time.sleep(due - now)
        t = time.time()
        lag = max(lag, t - due)
        if batch == 1:  # as a bot logs
            pdb.log(record(t))
            run_ids = [bus.run_id]
        else:
            run_ids = [r.run_id for r in pdb.log_runs([record(t) for _ in range(batch)])]
        calls.append(time.time() - t)
        out.write("".join(f"{run_id} {t}\\n" for run_id in run_ids))
        n += 1
    # the calls a writer could not start on time are still made, later: its rate is its runs
    # over the time it took, not over the seconds asked
    calls = sorted(calls) or [0.0]
    print(n * batch, time.process_time() - cpu, time.time(), lag, calls[int(0.999 * len(calls))], calls[-1],
          flush=True)
    out.close()
    """
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def run_writers(data: str, rate: float, seconds: float, writers: int, batch: int = 1) -> tuple:
    """Run ``writers`` writer processes logging ``rate`` runs/s between them (0: each as fast
    as it can), ``batch`` runs per call, into ``data``, from a common start once all are
    ready; returns ``(counts, cpu seconds, start, end of the last call, most seconds a writer
    fell behind, (the slowest writer's 99.9th percentile call, the slowest call) in seconds)``."""
    script = Path(data) / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MENACE_EMBEDDER="hashing")
    procs = [
        subprocess.Popen([sys.executable, str(script), data, f"w{k}", str(rate / writers), str(seconds), str(batch)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        for k in range(writers)
    ]
    for proc in procs:  # a writer starting late would log its first runs behind schedule
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(proc.communicate()[1])
    start_at = time.time() + 0.2
    for proc in procs:
        proc.stdin.write(f"{start_at}\n")
        proc.stdin.flush()
    counts, cpu, ended, lag, p999, slowest = [], 0.0, start_at + seconds, 0.0, 0.0, 0.0
    for proc in procs:
        out, err = proc.communicate(timeout=seconds * 10 + 60)
        if proc.returncode != 0:
            raise RuntimeError(err)
        count, used, end, late, call_p999, call_max = out.split()
        counts.append(int(count))
        cpu += float(used)
        ended, lag = max(ended, float(end)), max(lag, float(late))
        p999, slowest = max(p999, float(call_p999)), max(slowest, float(call_max))
    return counts, cpu, start_at, ended, lag, (p999, slowest)


def ceiling(seconds: float, writers: int, batch: int = 1) -> dict:
    """The same writers alone (no service) logging as fast as they can: the most runs/s this
    machine's SQLite takes from them, the baseline a sustained rate is measured against."""
    from menace.neuroplasticity import PathwayDB

    with tempfile.TemporaryDirectory(prefix="menace-sustained-") as tmp:
        PathwayDB(f"{tmp}/pathways.db").close()
        counts, cpu, start_at, ended, _, (p999, slowest) = run_writers(tmp, 0.0, seconds, writers, batch)
    took = ended - start_at
    return {"rate": sum(counts) / took, "writer_us": cpu / sum(counts) * 1e6, "writer_cores": cpu / took,
            "call_p999_ms": p999 * 1e3, "call_max_ms": slowest * 1e3}


def trial(rate: float, seconds: float, writers: int, batch: int = 1) -> dict:
    os.environ["MENACE_EMBEDDER"] = "hashing"  # the service's embedder in this benchmark
    from menace.config import Settings
    from menace.self_learning_service import start_stack

    with tempfile.TemporaryDirectory(prefix="menace-sustained-") as tmp:
        settings = Settings(data_dir=tmp, model="logreg", metrics_port=0, eval_every_examples=0,
                            eval_every_seconds=0.0)
        stack = start_stack(settings)
        gc.freeze()  # as menace-service does once its stack runs
        learned: dict[int, float] = {}
        lock = threading.Lock()

        fitted_at: dict[int, float] = {}  # learned_through of each full training -> when it ended

        def on_trained(_topic: str, payload: dict) -> None:
            now = time.time()
            with lock:
                for run_id in payload.get("run_ids", ()):
                    learned.setdefault(run_id, now)
                if payload.get("mode") != "partial":  # it lists no run ids; later updates skip its runs
                    fitted_at.setdefault(payload.get("learned_through", 0), now)

        stack.bus.subscribe("learning:trained", on_trained)
        service_cpu = time.process_time()  # this process: the service's threads (and the bookkeeping here)
        counts, writer_cpu, start_at, ended, lag, _ = run_writers(tmp, rate, seconds, writers, batch)
        logged: dict[int, float] = {}
        for k in range(writers):
            for line in (Path(tmp) / f"w{k}.log").read_text().splitlines():
                run_id, t = line.split()
                logged[int(run_id)] = float(t)
        deadline = time.time() + 30
        while time.time() < deadline:
            with lock:
                fitted_through = max(fitted_at, default=0)
                if all(r in learned or r <= fitted_through for r in logged):
                    break
            time.sleep(0.1)
        service_cpu = time.process_time() - service_cpu
        with lock:
            for run_id in logged:  # fitted by a full training: learned when it ended
                if run_id not in learned:
                    ends = [t for through, t in fitted_at.items() if run_id <= through]
                    if ends:
                        learned[run_id] = min(ends)
            missing = [r for r in logged if r not in learned]
            fresh = [(learned[r] - t) * 1e3 for r, t in logged.items() if r in learned]
        stats = stack.coordinator.stats()
        stack.stop()
    took = ended - start_at  # the writers' time: longer than ``seconds`` when they fell behind
    achieved = sum(counts) / took
    p99 = percentile(fresh, 99)
    return {
        "rate": rate, "achieved": achieved, "logged": sum(counts), "missing": len(missing),
        "p50_ms": percentile(fresh, 50), "p99_ms": p99, "max_ms": max(fresh) if fresh else float("nan"),
        "sustained": not missing and p99 < TARGET_P99_MS and achieved >= 0.95 * rate,
        "duplicates": stats["duplicates"],
        # CPU per run logged, in microseconds (the service's from the writers' start until it
        # learned the last run), and the writers' cores over their logging time
        "writer_us": writer_cpu / max(1, sum(counts)) * 1e6, "service_us": service_cpu / max(1, sum(counts)) * 1e6,
        "writer_cores": writer_cpu / took, "seconds": took, "max_lag_ms": lag * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2500.0, help="runs per second, all writers together")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--once", action="store_true", help="try --rate only (default: raise it until not sustained)")
    parser.add_argument("--step", type=float, default=2500.0)
    parser.add_argument("--batch", type=int, default=1,
                        help="runs per call: 1 (default) logs each with log(), as a bot does; more, with log_runs()")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    call = "log()" if args.batch == 1 else f"log_runs() of {args.batch}"
    alone = ceiling(args.seconds, args.writers, args.batch)
    print(f"writers alone (no service, as fast as they can): {alone['rate']:.0f} runs/s; CPU per run: "
          f"{alone['writer_us']:.0f} us ({alone['writer_cores']:.2f} cores); a {call} call: p99.9 "
          f"{alone['call_p999_ms']:.0f} ms, slowest {alone['call_max_ms']:.0f} ms", flush=True)
    rows = []
    rate = args.rate
    while True:
        row = trial(rate, args.seconds, args.writers, args.batch)
        rows.append(row)
        print(f"rate {row['rate']:>7.0f}/s achieved {row['achieved']:>7.0f}/s ({row['logged']} logged in "
              f"{row['seconds']:.1f} s, writers at most {row['max_lag_ms']:.0f} ms behind) "
              f"missing {row['missing']} p50 {row['p50_ms']:.0f} ms p99 {row['p99_ms']:.0f} ms "
              f"max {row['max_ms']:.0f} ms sustained {row['sustained']}; CPU per run: writers "
              f"{row['writer_us']:.0f} us ({row['writer_cores']:.2f} cores), service {row['service_us']:.0f} us",
              flush=True)
        if args.once or not row["sustained"]:
            break
        rate += args.step
    best = max((r["achieved"] for r in rows if r["sustained"]), default=0.0)
    print(f"highest sustained rate: {best:.0f} runs/s from {args.writers} writers ({call} calls), "
          f"{best / alone['rate']:.2f} of what they log alone (target >= {TARGET_RATE}, p99 < {TARGET_P99_MS:.0f} ms)")
    if args.json:
        print(json.dumps({"alone": alone, "trials": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
