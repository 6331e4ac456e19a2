"""API benchmark: logging runs through the service's HTTP API, and its event stream.

Three figures, each beside its same-run baseline:

* batch ingest: ``POST /v1/runs`` with 100 runs per request to a service in its
  own process (``menace-service``, learning as it goes), against the library's
  ``PathwayDB.log_many`` with 100 runs per call on a stack in this process
  (``start_stack``, learning as it goes). The two sides alternate in rounds so
  background load hits both alike; the ratio is of the medians. Target >= 0.5.
  Each side's round ends when its learner has caught up (untimed), so one side's
  learning does not run on into the other's round (it did: a library round left a
  backlog that slowed the API round after it, and the other way round); neither
  side runs periodic evaluations here (one every 1,000 runs, at moments of their
  own, moved single rounds' ratios between 0.4 and 2.9).
* one run per request: ``POST /v1/runs`` with a single run, from 1 and from 4
  client threads (closed loop): requests/s and the p50 / p99 latency at that rate.
* event latency: a writer logs runs through the API on a fixed schedule
  (1,000 runs/s: 10 runs per request, 100 requests/s, from 4 client threads) while an
  ``HttpClient.subscribe`` reader follows ``/v1/events``; for each run, the time
  from just before its POST to its ``pathway:new`` reaching the reader.
  Target p99 < 100 ms. The same at 1,000 single-run requests/s is reported
  beside it (with the rate the server sustained).

    python bench/api.py [--rounds 5] [--runs 5000] [--seconds 10] [--write]

``--write`` also appends the section to ``bench/results/api.md``. The client
and the service share the machine's cores (two here), as they would on a
single host.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-token-0123456789abcdef"
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
#: The batch sides learn as they go, without periodic evaluations (see the module doc;
#: ``bench/sustained.py`` does the same).
NO_PERIODIC_EVALUATION = ("--eval-every", "0", "--eval-interval", "0")
#: Client threads sharing the event-latency schedule.
WRITERS = 4
ACTIONS = ["fetch->parse", "login->buy", "scan->fix", "plan->ship", "search->report", "build->test->deploy"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_dict(rng: random.Random, tag: str = "") -> dict:
    actions = rng.choice(ACTIONS)
    ok = (actions not in ACTIONS[::3]) != (rng.random() < 0.1)
    return {"actions": actions, "inputs": tag, "exec_time": round(rng.uniform(0.1, 5), 3),
            "roi": round(rng.uniform(-1, 5), 3), "outcome": "SUCCESS" if ok else "FAILURE"}


class Service:
    """``menace-service`` in its own process on a fresh data directory."""

    def __init__(self, data_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, MENACE_EMBEDDER=os.environ.get("MENACE_EMBEDDER", "hashing"),
                   PYTHONPATH=str(ROOT), MENACE_API_TOKEN=TOKEN)
        env.pop("MENACE_DATA_DIR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir),
             "--metrics-port", str(self.port), "--log-level", "WARNING", *extra],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- batch ingest --------------------------------------------------------------------------


def wait_learned(client, run_id: int, timeout: float = 120.0) -> None:
    """Until the service has learned through ``run_id`` and nothing waits for its worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/v1/status").json()
        if status["learned_through"] >= run_id and status["queue_depth"] == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the service had not learned run {run_id} after {timeout:.0f} s")


def batch_ingest(service: Service, data_dir: Path, rounds: int, runs: int, batch: int) -> dict:
    import httpx

    from menace.config import Settings
    from menace.http_client import no_delay_transport
    from menace.neuroplasticity import PathwayRecord
    from menace.self_learning_service import start_stack

    rng = random.Random(1)
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=0, eval_every_examples=0, eval_every_seconds=0.0))
    client = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                          transport=no_delay_transport())
    library, api = [], []
    try:
        for round_no in range(rounds + 1):  # round 0 warms both sides up (first model, caches); not counted
            bodies = [[run_dict(rng) for _ in range(batch)] for _ in range(runs // batch)]
            records = [[PathwayRecord(**r) for r in body] for body in bodies]  # built before the clock
            started = time.perf_counter()
            for chunk in records:
                stack.pathway_db.log_many(chunk)
            library.append(runs / (time.perf_counter() - started))
            stack.coordinator.wait_idle(timeout=120)  # its learning does not spill into the next side
            started = time.perf_counter()
            for body in bodies:
                response = client.post("/v1/runs", json=body)
                response.raise_for_status()
            api.append(runs / (time.perf_counter() - started))
            wait_learned(client, response.json()["runs"][-1]["run_id"])
            if round_no == 0:
                library.pop()
                api.pop()
    finally:
        client.close()
        stack.stop()
    ratios = [a / b for a, b in zip(api, library, strict=True)]
    return {"library": statistics.median(library), "api": statistics.median(api),
            "ratio": statistics.median(api) / statistics.median(library), "ratios": ratios}


# -- one run per request ---------------------------------------------------------------------


def single_requests(service: Service, threads: int, seconds: float) -> dict:
    import httpx

    from menace.http_client import no_delay_transport

    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
                      transport=no_delay_transport()) as client:
            while time.perf_counter() < stop_at:
                body = run_dict(rng)
                started = time.perf_counter()
                client.post("/v1/runs", json=body).raise_for_status()
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,), name=f"bench-client-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    took = time.perf_counter() - started
    return {"threads": threads, "rate": len(latencies) / took, "p50": percentile(latencies, 50) * 1e3,
            "p99": percentile(latencies, 99) * 1e3, "n": len(latencies)}


# -- log -> event seen ------------------------------------------------------------------------


def read_events(url: str, ready, stop, results) -> None:
    """The SSE client, in its own process as a monitor would be: when each tagged run arrived."""
    from menace.client import connect
    from menace.http_client import ConnectionState

    seen: dict[str, float] = {}

    def on_event(event) -> None:  # the reader thread
        if event.topic == "pathway:new":
            tag = event.payload.get("inputs", "")
            if tag.startswith("b"):
                seen[tag] = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process

    reader = connect(url, TOKEN)
    reader.subscribe(on_event)
    while reader.stream_status.state is not ConnectionState.CONNECTED:
        time.sleep(0.01)
    ready.set()
    stop.wait(120)
    reader.close()
    results.put(seen)


def event_latency(service: Service, rate: float, per_request: int, seconds: float) -> dict:
    import multiprocessing

    import httpx

    from menace.http_client import no_delay_transport

    sent: dict[str, float] = {}
    ctx = multiprocessing.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=read_events, args=(service.url, ready, stop, results), name="bench-sse-reader")
    reader.start()
    if not ready.wait(60):
        raise RuntimeError("the SSE reader did not connect")
    interval = per_request / rate
    requests = int(seconds * rate / per_request)
    late = [0]
    slots = iter(range(requests))
    slots_lock = threading.Lock()
    start = time.monotonic() + 0.2

    def write(seed: int) -> None:  # writers share one schedule, as several bots would
        wrng = random.Random(seed)
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
                          transport=no_delay_transport()) as client:
            while True:
                with slots_lock:
                    i = next(slots, None)
                if i is None:
                    return
                due = start + i * interval
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > 0.05:
                    late[0] += 1
                tags = [f"b{i}.{k}" for k in range(per_request)]
                body = [run_dict(wrng, tag) for tag in tags]
                stamp = time.monotonic()
                for tag in tags:
                    sent[tag] = stamp
                client.post("/v1/runs", json=body if per_request > 1 else body[0]).raise_for_status()

    writers = [threading.Thread(target=write, args=(seed,), name=f"bench-writer-{seed}") for seed in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    offered_took = time.monotonic() - start
    time.sleep(2)  # the last events on their way
    stop.set()
    seen = results.get(timeout=60)
    reader.join(30)
    latencies = [(seen[t] - sent[t]) * 1e3 for t in sent if t in seen]
    return {"rate": rate, "per_request": per_request, "sustained": len(sent) / offered_took,
            "sent": len(sent), "seen": len(latencies), "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90), "p99": percentile(latencies, 99), "max": max(latencies or [0]),
            "late": late[0]}


# -- report -------------------------------------------------------------------------------------


def markdown(args: argparse.Namespace, batch: dict, singles: list[dict], streams: list[dict]) -> str:
    spread = f"{min(batch['ratios']):.2f}..{max(batch['ratios']):.2f}"
    met = "met" if batch["ratio"] >= TARGET_RATIO else "not met"
    lines = [
        "| side | runs/s (median of rounds) | ratio |",
        "|---|---:|---:|",
        f"| library `PathwayDB.log_many`, {args.batch} runs per call, stack in this process | {batch['library']:,.0f} | 1 |",
        f"| `POST /v1/runs`, {args.batch} runs per request, service in its own process | {batch['api']:,.0f} | "
        f"**{batch['ratio']:.2f}** (rounds {spread}) |",
        "",
        f"{args.rounds} alternating rounds x {args.runs} runs. Target: ratio >= {TARGET_RATIO}: **{met}**.",
        "",
        "| one run per request | requests/s | p50 | p99 |",
        "|---|---:|---:|---:|",
    ]
    for s in singles:
        lines.append(f"| {s['threads']} client thread{'s' if s['threads'] > 1 else ''} (closed loop, {s['n']:,} requests) "
                     f"| {s['rate']:,.0f} | {s['p50']:.1f} ms | {s['p99']:.1f} ms |")
    lines += ["", "| log through the API -> event seen by an SSE client | offered | sustained | events seen | "
                  "p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in streams:
        lines.append(
            f"| {s['per_request']} run{'s' if s['per_request'] > 1 else ''} per request | {s['rate']:,.0f} runs/s "
            f"| {s['sustained']:,.0f} runs/s | {s['seen']:,} of {s['sent']:,} | {s['p50']:.1f} ms | "
            f"{s['p90']:.1f} ms | **{s['p99']:.1f} ms** | {s['max']:.1f} ms |")
    main = streams[0]
    ok = main["p99"] < TARGET_P99_MS and main["seen"] == main["sent"] and main["sustained"] >= 0.95 * main["rate"]
    lines += ["", f"Target: p99 < {TARGET_P99_MS:.0f} ms at {main['rate']:,.0f} runs/s "
                  f"({main['per_request']} runs per request): **{'met' if ok else 'not met'}**. "
                  "Latency is from just before the POST to the reader's callback "
                  "(`HttpClient.subscribe` in a process of its own, as a monitor) receiving the run's `pathway:new`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating batch rounds (default 5)")
    parser.add_argument("--runs", type=int, default=5000, help="runs per side per round (default 5000)")
    parser.add_argument("--batch", type=int, default=100, help="runs per call / request (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per latency measurement (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="runs/s for the event latency (default 1000)")
    parser.add_argument("--write", action="store_true", help="also append the section to bench/results/api.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("MENACE_EMBEDDER", "hashing")
    with tempfile.TemporaryDirectory(prefix="menace-bench-api-") as tmp:
        tmp_path = Path(tmp)
        service = Service(tmp_path / "service", NO_PERIODIC_EVALUATION)
        try:
            batch = batch_ingest(service, tmp_path / "library", args.rounds, args.runs, args.batch)
            singles = [single_requests(service, n, min(args.seconds, 5.0)) for n in (1, 4)]
        finally:
            service.stop()
        service = Service(tmp_path / "stream")  # a fresh store for the latency runs
        try:
            streams = [event_latency(service, args.rate, 10, args.seconds),
                       event_latency(service, args.rate, 1, args.seconds)]
        finally:
            service.stop()
    body = markdown(args, batch, singles, streams)
    machine = (f"{os.cpu_count()} cores ({platform.machine()}), {platform.system()} {platform.release()}, "
               f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(body)
    print(f"\nMachine: {machine}; embedder {os.environ['MENACE_EMBEDDER']}, model logreg.")
    if args.write:
        command = "python bench/api.py " + " ".join(argv if argv is not None else sys.argv[1:])
        out = HERE / "results" / "api.md"
        if not out.exists():
            out.write_text("# API: logging through HTTP, and the event stream\n\nOne section per run, newest last.\n")
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(f"\n## `{command.strip()}`\n\n{machine}, {time.strftime('%Y-%m-%d %H:%M')}\n\n{body}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
