"""The service in its own process, driven through HttpClient: learning, jobs, a kill while a
client streams, and two services on one data directory (refusal, standby takeover)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from menace import config
from menace.client import connect
from menace.errors import FieldError
from menace.http_client import ConnectionState
from menace.lease import owner_of
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.unified_event_bus import EventJournal

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "service-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(i: int) -> dict:
    return {"actions": ["fetch->parse", "login->buy", "scan->fix", "plan->ship"][i % 4],
            "exec_time": 0.5 + i % 5, "roi": float(i % 4), "outcome": "FAILURE" if i % 3 == 2 else "SUCCESS"}


def start_service(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    env.pop("MENACE_DATA_DIR", None)
    env.pop("MENACE_API_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir),
         "--metrics-port", str(port), "--api-token", TOKEN, *extra],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                if pid is None or httpx.get(f"{url}/v1/status", timeout=2,
                                            headers={"Authorization": f"Bearer {TOKEN}"}).json()["pid"] == pid:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no healthy service on {url} within {timeout} s")


def collect(proc: subprocess.Popen) -> list[str]:
    """The lines of ``proc``'s stderr so far (read by a thread until it ends)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), name="test-stderr", daemon=True).start()
    return lines


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def journal_ids(data_dir: Path) -> list[int]:
    journal = EventJournal(data_dir / config.EVENTS_DB)
    try:
        return [e.id for e in journal.iter_events()]
    finally:
        journal.close()


@pytest.mark.slow
def test_a_service_process_learns_runs_evaluates_and_cancels_through_the_client(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    proc = start_service(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        client = connect(url, TOKEN)
        seen: list = []
        client.subscribe(seen.append)
        wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED, what="the stream")
        logged = client.log_run(run(0))
        wait_for(lambda: any(e.topic == "learning:trained" and logged.run_id in e.payload.get("run_ids", [])
                             for e in seen), what="the run learned")
        client.log_runs([run(i) for i in range(1, 200)])
        job_id = client.submit_job("evaluate", cv=3)
        wait_for(lambda: client.job(job_id).state in ("done", "failed"), what="the evaluation")
        assert client.job(job_id).state == "done"
        wait_for(lambda: any(e.topic == "learning:evaluated" and e.payload["job_id"] == job_id for e in seen),
                 what="learning:evaluated")
        auto = client.submit_job("auto_train", candidates=["logreg", "rf", "nn"])
        assert client.cancel_job(auto)
        wait_for(lambda: client.job(auto).state in ("cancelled", "done", "failed"), what="the cancel")
        assert client.job(auto).state == "cancelled"
        with pytest.raises(FieldError):
            client.log_run({**run(1), "exec_time": -1})
        assert client.counts().runs == 200
        client.close()
    finally:
        stop(proc)
    assert proc.returncode == 0, proc.stderr.read()[-3000:]


@pytest.mark.slow
def test_a_killed_service_is_resumed_by_the_stream_with_no_missing_or_duplicated_event(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service(data_dir, port)
    wait_healthy(url, proc)
    client = connect(url, TOKEN)
    client.retry_first, client.retry_max = 0.1, 0.5
    ids: list[int] = []
    client.subscribe(lambda event: ids.append(event.id))
    writer_stop = threading.Event()
    logged = [0]

    def write() -> None:  # a bot that keeps logging, and retries while the service is away
        with connect(url, TOKEN) as bot:
            i = 0
            while not writer_stop.is_set():
                try:
                    bot.log_runs([run(i + k) for k in range(5)])
                    logged[0] += 5
                    i += 5
                except ConnectionError:
                    time.sleep(0.1)
                time.sleep(0.01)

    writer = threading.Thread(target=write, name="test-writer")
    try:
        wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED, what="the stream")
        writer.start()
        wait_for(lambda: logged[0] >= 200, what="runs before the kill")
        proc.kill()  # SIGKILL: no clean stop, no service:stopped
        proc.wait()
        wait_for(lambda: client.stream_status.state is ConnectionState.RETRYING, what="the client to notice")
        before = len(ids)
        proc = start_service(data_dir, port)
        wait_healthy(url, proc)
        wait_for(lambda: logged[0] >= 600, what="runs after the restart")
        writer_stop.set()
        writer.join(10)
        client_ids = lambda: ids[-1] if ids else 0  # noqa: E731
        wait_for(lambda: client_ids() == httpx.get(f"{url}/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}
                                                   ).json()["newest_event_id"], what="the client to catch up")
        assert len(ids) > before
    finally:
        writer_stop.set()
        client.close()
        stop(proc)
    stored = journal_ids(data_dir)
    first = ids[0]
    expected = [i for i in stored if first <= i <= ids[-1]]
    assert ids == expected, "the client missed or repeated events across the kill"


@pytest.mark.slow
def test_a_second_service_exits_2_and_a_standby_takes_over_learning_every_run_once(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    # Every run learned once is counted in n_seen; a drift retrain would refit a window instead.
    first = start_service(data_dir, port, "--drift-policy", "none")
    first_log = collect(first)
    wait_healthy(url, first, pid=first.pid)
    second = start_service(data_dir, free_port())
    assert second.wait(30) == 2
    err = second.stderr.read().strip().splitlines()
    assert len(err) == 1 and f"pid {first.pid}" in err[0] and url in err[0], err
    standby = start_service(data_dir, port, "--standby", "--drift-policy", "none")
    writer_stop = threading.Event()

    def write() -> None:  # a third process (here: a thread with its own PathwayDB) logs all along
        with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
            i = 0
            while not writer_stop.is_set():
                pdb.log_many([PathwayRecord(**run(i + k)) for k in range(10)])
                i += 10
                time.sleep(0.02)

    writer = threading.Thread(target=write, name="test-writer")
    try:
        standby_log = collect(standby)
        wait_for(lambda: any("waiting to take over" in line for line in standby_log), 30, "the standby to wait")
        writer.start()
        time.sleep(3)  # the first service learns (and saves now and then)
        assert owner_of(data_dir).pid == first.pid
        first.kill()
        killed = time.monotonic()
        first.wait()
        wait_healthy(url, standby, timeout=10, pid=standby.pid)
        assert time.monotonic() - killed < 10
        time.sleep(2)
        writer_stop.set()
        writer.join(10)
        with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
            runs = pdb.count_runs()
            newest = pdb.newest_run_id()
        with connect(url, TOKEN) as client:
            wait_for(lambda: client.service_status()["learned_through"] == newest, 30, "the standby to learn all")
            status = client.service_status()
        assert status["n_seen"] == runs, f"learned {status['n_seen']} examples from {runs} runs: {status}\n" + "".join(standby_log[-40:]) + "\nFIRST:\n" + "".join(first_log[-40:])
    finally:
        writer_stop.set()
        for proc in (first, standby):
            stop(proc)
    assert standby.returncode == 0
