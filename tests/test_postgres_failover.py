"""Many processes on one PostgreSQL database: four writers and two services, one on standby.

Real subprocesses, as on several hosts: each service has its own data
directory (its own API token file, its own port) and shares only the
database. The writers log for a fixed time and note every run id ``log()``
returned; the learner is SIGKILLed mid-stream and the standby takes over.
Then: every noted id is stored, the counts are exact, and the model the
standby ends with learned every run exactly once (its ``n_seen`` is the number
of runs and its ledger holds every run id).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from menace.postgres.backend import PostgresBackend

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests: pip install -e '.[postgres]'")
pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "failover-token-0123456789abcdef"

#: The service, saving its model after every partial update (so kills land during saves too).
SERVICE = textwrap.dedent(
    """
    import faulthandler, signal, sys
    from menace import self_learning_service as service

    faulthandler.register(signal.SIGUSR1)  # a hung test asks for every thread's stack

    start_stack = service.start_stack

    def start_eager_saver(*args, **kwargs):
        kwargs["engine_options"] = {"save_every": 1, "save_interval": 0.0}
        return start_stack(*args, **kwargs)

    service.start_stack = start_eager_saver
    sys.exit(service.main(sys.argv[1:]))
    """
)

#: Logs runs for some seconds through PgPathwayDB.log(), one flushed line per returned run id.
WRITER = textwrap.dedent(
    """
    import sys, time
    from menace.neuroplasticity import PathwayRecord
    from menace.postgres.pathway_db import PgPathwayDB

    url, out_path, name, seconds, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])

    class LastRun:
        run_id = None

        def publish(self, topic, payload):
            self.run_id = payload["run_id"]

    bus = LastRun()
    db = PgPathwayDB(url, event_bus=bus)
    actions = ["fetch->parse", "login->buy", "scan->fix", f"own-{name}"]
    i = 0
    deadline = time.monotonic() + seconds
    with open(out_path, "a", encoding="utf-8") as out:
        while time.monotonic() < deadline:
            db.log(PathwayRecord(actions[i % 4], exec_time=0.5 + i % 5, roi=float(i % 4),
                                 outcome="FAILURE" if i % 3 == 2 else "SUCCESS"))
            out.write(f"{bus.run_id}\\n")
            out.flush()
            i += 1
            time.sleep(pause)
    db.close()
    print(i)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ, MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    for name in ("MENACE_DATA_DIR", "MENACE_API_TOKEN", "MENACE_METRICS_PORT", "MENACE_DATABASE_URL"):
        env.pop(name, None)
    return env


def start_service(script: Path, url: str, data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), "--database-url", url, "--data-dir", str(data_dir),
         "--metrics-port", str(port), "--api-token", TOKEN, "--eval-every", "0", "--eval-interval", "0", "--drift-policy", "none", "--log-level", os.environ.get("FAILOVER_LOG", "INFO"), *extra],
        env=child_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def collect(proc: subprocess.Popen) -> list[str]:
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), name="test-stderr", daemon=True).start()
    return lines


def status(port: int) -> dict | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=2,
                           headers={"Authorization": f"Bearer {TOKEN}"})
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def wait_for(predicate, timeout: float, what: str, logs: list[str] | None = None,
             proc: subprocess.Popen | None = None) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGUSR1)  # its threads' stacks, into the log
                time.sleep(1.0)
            raise AssertionError(f"timed out waiting for {what}\n" + "".join((logs or [])[-60:]))
        time.sleep(0.05)
    return time.monotonic() - started


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def saved_model(url: str) -> dict:
    with psycopg.connect(url) as conn:
        (meta,) = conn.execute("SELECT meta FROM models WHERE engine = 'pathways'").fetchone()
    return meta


def first_learned_after(url: str, moment: float) -> float | None:
    """When the first ``learning:trained`` event after ``moment`` was journaled (seconds since the epoch)."""
    with psycopg.connect(url) as conn:
        (ts,) = conn.execute("SELECT min(ts) FROM events WHERE topic = 'learning:trained' AND ts > %s",
                             (moment,)).fetchone()
    return ts


def learned_ids(meta: dict) -> set[int]:
    ids = set(range(1, meta["trained_through_run_id"] + 1))
    for first, last in meta["learned_runs"]:
        ids.update(range(first, last + 1))
    return ids


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_four_writers_two_services_a_killed_learner_and_every_run_learned_once(pg_url, tmp_path):
    service = tmp_path / "service.py"
    service.write_text(SERVICE)
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    first_port, standby_port = free_port(), free_port()
    first = start_service(service, pg_url, tmp_path / "host-a", first_port)
    first_log = collect(first)
    wait_for(lambda: status(first_port) is not None, 60, "the first service", first_log)
    standby = start_service(service, pg_url, tmp_path / "host-b", standby_port, "--standby")
    standby_log = collect(standby)
    writers = []
    try:
        wait_for(lambda: any("waiting to take over" in line for line in standby_log), 60, "the standby", standby_log)
        writers = [
            subprocess.Popen([sys.executable, str(writer), pg_url, str(tmp_path / f"w{k}.txt"), f"w{k}", "8", "0.004"],
                             env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in range(4)
        ]
        wait_for(lambda: (status(first_port) or {}).get("n_seen", 0) > 200, 30, "the first learner to learn", first_log)
        first.kill()  # mid-stream, the writers go on
        killed_at = time.time()
        first.wait()
        wait_for(lambda: first_learned_after(pg_url, killed_at) is not None, 15, "the standby to learn", standby_log)
        took = first_learned_after(pg_url, killed_at) - killed_at
        assert took < 10.0, f"the standby learned its first run {took:.1f} s after the kill"
        outputs = [w.communicate(timeout=60) for w in writers]
        for proc, (_out, err) in zip(writers, outputs, strict=True):
            assert proc.returncode == 0, err
            assert "Traceback" not in err, err
        counts = [int(out) for out, _ in outputs]
        with PostgresBackend(pg_url) as backend, backend.pathway_db() as db:
            runs = db.count_runs()
            stored = {r["id"] for r in db.runs()}
        assert runs == sum(counts) == len(stored)
        noted = [[int(line) for line in (tmp_path / f"w{k}.txt").read_text().split()] for k in range(4)]
        assert [len(ids) for ids in noted] == counts
        assert set().union(*noted) == stored  # every id log() returned is stored, and only those
        wait_for(lambda: (status(standby_port) or {}).get("n_seen") == runs, 60,
                 f"the standby to learn all {runs} runs (now {status(standby_port)})", standby_log, standby)
        time.sleep(1.0)  # nothing more arrives: no run is learned twice afterwards either
        final = status(standby_port)
        assert final["n_seen"] == runs, final
        stop(standby)
        assert standby.returncode == 0, "".join(standby_log[-30:])
        meta = saved_model(pg_url)
        assert meta["n_seen"] == runs  # learned once each: a run learned twice would count twice
        assert learned_ids(meta) >= stored  # and none missed
        print(f"standby learned its first run {took:.2f} s after the learner was killed; {runs} runs")
    finally:
        for proc in (first, standby, *writers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
