"""One learner per data directory: the lease, the refusal of a second service, standby."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from menace import config
from menace.config import Settings
from menace.lease import FileLease, Lease, LeaseHeldError, owner_of
from menace.self_learning_service import main, start_stack

ROOT = Path(__file__).resolve().parent.parent

HOLD = (
    "import sys, time\n"
    "from menace.lease import FileLease\n"
    "lease = FileLease(sys.argv[1]); lease.acquire(); lease.publish(api_url='http://127.0.0.1:9')\n"
    "print('held', flush=True); time.sleep(600)\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ, MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    env.pop("MENACE_DATA_DIR", None)
    return env


def hold_in_another_process(data_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(data_dir)], env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_file_lease_is_a_lease():
    assert isinstance(FileLease("/nonexistent"), Lease)


def test_a_second_lease_on_the_same_directory_is_refused_naming_the_holder(data_dir):
    first = FileLease(data_dir)
    first.acquire()
    try:
        first.publish(api_url="http://127.0.0.1:8123")
        with pytest.raises(LeaseHeldError) as refused:
            FileLease(data_dir).acquire()
        holder = refused.value.holder
        assert holder is not None and holder.pid == os.getpid() and holder.api_url == "http://127.0.0.1:8123"
        assert f"pid {os.getpid()}" in str(refused.value) and "http://127.0.0.1:8123" in str(refused.value)
    finally:
        first.release()
    first.release()  # idempotent
    second = FileLease(data_dir)
    second.acquire()  # free again
    second.release()
    assert not (data_dir / config.LEARNER_FILE).exists()


def test_owner_of_answers_without_taking_anything(data_dir, tmp_path):
    assert owner_of(tmp_path / "missing") is None
    assert owner_of(data_dir) is None
    with FileLease(data_dir) as lease:
        lease.publish(api_url="http://127.0.0.1:8124")
        owner = owner_of(data_dir)
        assert owner is not None and owner.api_url == "http://127.0.0.1:8124" and owner.pid == os.getpid()
        assert lease.held  # asking did not take or break it
    assert owner_of(data_dir) is None


def test_a_crashed_holder_leaves_the_lease_free(data_dir):
    proc = hold_in_another_process(data_dir)
    try:
        owner = owner_of(data_dir)
        assert owner is not None and owner.pid == proc.pid and owner.api_url == "http://127.0.0.1:9"
        with pytest.raises(LeaseHeldError):
            FileLease(data_dir).acquire()
    finally:
        proc.kill()
        proc.wait()
    assert owner_of(data_dir) is None  # the stale learner.json names nobody
    with FileLease(data_dir) as lease:
        assert lease.holder().pid == os.getpid()
        assert lease.previous is not None and lease.previous.pid == proc.pid  # it died holding it
    with FileLease(data_dir) as lease:
        assert lease.previous is None  # the last one released cleanly


def test_wait_takes_the_lease_when_it_is_released_and_stops_when_asked(data_dir):
    first = FileLease(data_dir)
    first.acquire()
    waiting_for = []
    stop = threading.Event()
    stop.set()  # asked to stop: it gives up instead of waiting
    assert not FileLease(data_dir).wait(stop, on_wait=waiting_for.append, poll=0.05)
    assert waiting_for and waiting_for[0].pid == os.getpid()
    second = FileLease(data_dir)
    threading.Timer(0.2, first.release).start()
    started = time.monotonic()
    assert second.wait(threading.Event(), poll=0.05)
    assert second.held and time.monotonic() - started < 2
    second.release()


def test_a_second_stack_on_the_same_directory_is_refused(data_dir):
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=0))
    try:
        with pytest.raises(LeaseHeldError):
            start_stack(Settings(data_dir=data_dir, metrics_port=0))
        assert stack.coordinator.running  # the refused one touched nothing of the first
        assert owner_of(data_dir).pid == os.getpid()
    finally:
        stack.stop()
    assert owner_of(data_dir) is None
    start_stack(Settings(data_dir=data_dir, metrics_port=0)).stop()


def test_the_owner_names_its_api(data_dir):
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=free_port()))
    try:
        owner = owner_of(data_dir)
        assert owner.api_url == stack.api_url and stack.api_url.startswith("http://127.0.0.1:")
        assert owner.ready  # everything it serves is up: a client can stop waiting
        assert json.loads((data_dir / config.LEARNER_FILE).read_text())["metrics_url"] == stack.metrics_url
    finally:
        stack.stop()


def test_a_second_service_exits_2_with_one_line_naming_the_first(data_dir, capsys):
    proc = hold_in_another_process(data_dir)
    try:
        assert main(["--data-dir", str(data_dir), "--metrics-port", "0"]) == 2
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"pid {proc.pid}" in err and "http://127.0.0.1:9" in err and "--standby" in err


def read_until(stream, text: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    result: list[str] = []

    def reader() -> None:
        for line in stream:
            seen.append(line)
            if text in line:
                result.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    assert result, f"{text!r} not seen within {timeout} s: {''.join(seen)[-2000:]}"
    return "".join(seen)


def test_standby_waits_stops_on_sigterm_and_takes_over_after_a_crash(data_dir):
    holder = hold_in_another_process(data_dir)
    args = [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir),
            "--metrics-port", "0", "--standby"]
    standby = subprocess.Popen(args, env=child_env(), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        read_until(standby.stderr, "waiting to take over", 30)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=5) == 0
        standby = subprocess.Popen(args, env=child_env(), cwd=ROOT, stderr=subprocess.PIPE, text=True)
        read_until(standby.stderr, "waiting to take over", 30)
        holder.kill()
        killed = time.monotonic()
        read_until(standby.stderr, "Menace service running", 10)
        assert time.monotonic() - killed < 10
        assert owner_of(data_dir).pid == standby.pid
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=10) == 0
    finally:
        for proc in (holder, standby):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
