"""Faults: SIGKILL at random moments, several writers at once, broken files, full disks.

Services and writers here are real subprocesses on a temporary data directory
with the hashing embedder (see tests/test_service.py for the same set-up).
The kills and the four writers run on both backends (``stores``: SQLite files
in the data directory, or a PostgreSQL schema the subprocesses find in
``MENACE_DATABASE_URL``); broken files and full disks are SQLite's own.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from store_backends import BACKENDS, open_test_backend

from menace import config, events
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.self_learning_service import run_background

ROOT = Path(__file__).resolve().parent.parent

#: The service, saving its model after every partial update (the shipped
#: default saves every 25 updates / 30 s), so that kills land during saves too.
SERVICE = textwrap.dedent(
    """
    import os, sys
    from menace import self_learning_service as service

    start_stack = service.start_stack
    fitting = os.environ.get("TRAIN_ON_START")  # a file: touched once the model is being fitted

    def start_eager_saver(*args, **kwargs):
        kwargs["engine_options"] = {"save_every": 1, "save_interval": 0.0}
        stack = start_stack(*args, **kwargs)
        if fitting:

            def progress(_topic, payload):
                if payload["fraction"] >= 0.5:
                    open(fitting, "a").close()

            stack.bus.subscribe("learning:progress", progress)
            stack.coordinator.request_train()
        return stack

    service.start_stack = start_eager_saver
    sys.exit(service.main(sys.argv[1:]))
    """
)

#: Logs pathways until killed (n = -1), n runs, or for some seconds; appends each run id whose log()
#: returned to a file, one flushed line per run (a kill may cut only the last line).
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from menace.neuroplasticity import PathwayDB, PathwayRecord

    folder, name, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    pause = float(os.environ.get("WRITER_PAUSE", "0"))

    class LastRun:  # log() returns the pathway id; the run id comes with pathway:new
        run_id = None

        def publish(self, topic, payload):
            self.run_id = payload["run_id"]

    bus = LastRun()
    if os.environ.get("MENACE_DATABASE_URL"):
        from menace.postgres.pathway_db import PgPathwayDB

        pdb = PgPathwayDB(os.environ["MENACE_DATABASE_URL"], event_bus=bus)
    else:
        pdb = PathwayDB(folder / "pathways.db", event_bus=bus)
    actions = ["fetch->parse", "login->buy", "scan->fix", f"own-{name}"]
    i = 0
    deadline = time.monotonic() + seconds
    with open(folder / f"logged-{name}.txt", "a", encoding="utf-8") as out:
        while (n < 0) or (n and i < n) or (seconds and time.monotonic() < deadline):
            pdb.log(PathwayRecord(
                actions[i % 4], exec_time=0.5 + i % 5, roi=float(i % 4),
                outcome="FAILURE" if i % 3 == 2 else "SUCCESS",
            ))
            out.write(f"{bus.run_id}\\n")
            out.flush()
            i += 1
            time.sleep(pause)
    pdb.close()
    print(i)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    result = dict(os.environ, **extra)
    result.update(MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1")
    result.pop("MENACE_DATA_DIR", None)
    result.pop("MENACE_METRICS_PORT", None)
    return result


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def examples_learned(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('learning_examples_total{engine="pathways"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(params=BACKENDS)
def stores(request, tmp_path, monkeypatch):
    """Where the test's processes keep their stores (the data directory, or PostgreSQL)."""
    backend = open_test_backend(request.param, tmp_path / "data", request)
    if backend.kind == "postgres":
        monkeypatch.setenv("MENACE_DATABASE_URL", backend.db.url)  # the subprocesses' env() copies it
    else:
        monkeypatch.delenv("MENACE_DATABASE_URL", raising=False)
    yield backend
    backend.close()


@pytest.fixture
def scripts(tmp_path):
    service = tmp_path / "service.py"
    service.write_text(SERVICE)
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    return service, writer


def start_service(script: Path, data_dir: Path, *extra: str, log: Path | None = None,
                  **environ: str) -> subprocess.Popen:
    err = open(log, "a", encoding="utf-8") if log else subprocess.PIPE  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, str(script), "--data-dir", str(data_dir), *extra],
            env=env(**environ), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )
    finally:
        if log:
            err.close()


def start_writer(script: Path, data_dir: Path, name: str, n: int = 0, seconds: float = 0.0,
                 log: Path | None = None, pause: float = 0.0) -> subprocess.Popen:
    err = open(log, "a", encoding="utf-8") if log else subprocess.PIPE  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, str(script), str(data_dir), name, str(n), str(seconds)],
            env=env(WRITER_PAUSE=str(pause)), cwd=ROOT, stdout=subprocess.PIPE, stderr=err,
            text=True,
        )
    finally:
        if log:
            err.close()


def recorded(data_dir: Path, name: str) -> list[int]:
    path = data_dir / f"logged-{name}.txt"
    if not path.exists():
        return []
    # a kill may cut the last line short: only whole lines were flushed after log() returned
    return [int(line) for line in path.read_text().split("\n")[:-1] if line]


def check_integrity(data_dir: Path | Any) -> None:
    if getattr(data_dir, "kind", "sqlite") == "postgres":
        return  # the server keeps its own files whole (WAL, checksummed pages on replay)
    data_dir = getattr(data_dir, "data_dir", data_dir)
    for db in sorted(data_dir.glob("*.db")):
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db
        finally:
            conn.close()


def saved_model_exists(data_dir: Path | Any) -> bool:
    """Whether a model has been saved (read-only: it does not load it)."""
    if getattr(data_dir, "kind", "sqlite") == "postgres":
        with data_dir.pathway_db() as pdb, data_dir.memory(embedder="hashing") as mm:
            return LearningEngine(pdb, mm, **data_dir.engine_storage("pathways")).is_trained
    folder = getattr(data_dir, "data_dir", data_dir) / config.MODELS_DIR
    return folder.exists() and any(f.is_file() and not f.name.startswith(".") for f in folder.rglob("*"))


def check_saved_model_loads(data_dir: Path | Any) -> bool:
    """A saved model, if there is one, loads in a new engine; returns whether there was one."""
    if getattr(data_dir, "kind", "sqlite") == "postgres":
        backend = data_dir
        with backend.pathway_db() as pdb, backend.memory(embedder="hashing") as mm:
            engine = LearningEngine(pdb, mm, **backend.engine_storage("pathways"))
            if engine.is_trained:
                assert 0.0 <= engine.predict_success(1, 1.0, 1.0, 1.0, "scan->fix") <= 1.0
            return engine.is_trained
    data_dir = getattr(data_dir, "data_dir", data_dir)
    model = data_dir / config.MODELS_DIR / "logreg.skops"
    files = list((data_dir / config.MODELS_DIR).rglob("*")) if (data_dir / config.MODELS_DIR).exists() else []
    saved = [f for f in files if f.is_file() and not f.name.startswith(".")]
    if not saved:
        return False
    assert model in saved, saved
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb, \
            MenaceMemoryManager(data_dir / config.MEMORY_DB, embedder="hashing") as mm:
        engine = LearningEngine(pdb, mm, model_dir=data_dir / config.MODELS_DIR)
        assert engine.is_trained, f"{model} did not load"
        assert 0.0 <= engine.predict_success(1, 1.0, 1.0, 1.0, "scan->fix") <= 1.0
    return True


def wait_for_metrics(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"service exited early ({proc.returncode})"
        try:
            return scrape(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"no answer on {url} within {timeout} s")


def kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=10)


# -- SIGKILL at random moments -----------------------------------------------------------------


def kill_round(scripts, data_dir: Path, stores: Any, name: str, moment: float | None) -> bool:
    """Start a service and a writer, SIGKILL both ``moment`` seconds later (``None``: just after
    the first saved model, within 60 s); check no logged run was lost and the store is whole.
    Returns whether a saved model was left behind (it must load)."""
    service, writer = scripts
    folder = data_dir.parent
    # The service evaluates every 10 examples (a kill may land in an evaluation),
    # saves after every update, and learns the writer's runs through its watcher.
    svc = start_service(service, data_dir, "--metrics-port", "0", "--eval-every", "10",
                        log=folder / "service.err")
    out = start_writer(writer, data_dir, name, n=-1, pause=0.003, log=folder / "writer.err")
    launched = time.monotonic()
    while time.monotonic() - launched < (60.0 if moment is None else moment):
        if moment is None and saved_model_exists(stores):
            break
        time.sleep(0.05)
    kill(svc, out)
    logged = recorded(data_dir, name)
    with stores.pathway_db() as pdb:
        stored = {run["id"] for run in pdb.runs()}
    assert set(logged) <= stored, f"{name}: lost runs {sorted(set(logged) - stored)}"
    check_integrity(stores)
    return check_saved_model_loads(stores)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_nothing_and_learning_goes_on(tmp_path, scripts, stores):
    service, writer = scripts
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rng = random.Random(int(os.environ.get("MENACE_FAULT_SEED", "7")))  # another seed: other moments
    rounds, models_seen, started = 20, 0, time.monotonic()

    for n in range(rounds):
        models_seen += kill_round(scripts, data_dir, stores, f"w{n}", rng.uniform(0.3, 3.5))
    assert sum(len(recorded(data_dir, f"w{n}")) for n in range(rounds)) > 100
    assert time.monotonic() - started < 120
    if not models_seen:  # a slow start outlasted every random moment: kill once just after a save
        models_seen += kill_round(scripts, data_dir, stores, f"w{rounds}", None)
    assert models_seen > 0, "no kill left a saved model behind: the test saw no save"

    # The restarted service goes on learning: new runs by another process are learned.
    port = free_port()
    svc = start_service(service, data_dir, "--metrics-port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        before = examples_learned(wait_for_metrics(url, svc))
        result = subprocess.run([sys.executable, str(writer), str(data_dir), "after", "30"],
                                env=env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 20
        while examples_learned(scrape(url)) < before + 30:
            assert time.monotonic() < deadline, "the restarted service did not learn the new runs"
            time.sleep(0.2)
        svc.send_signal(signal.SIGTERM)
        svc.wait(timeout=10)
        assert svc.returncode == 0
    finally:
        kill(svc)
    err = svc.stderr.read()
    assert "Traceback" not in err, err
    check_integrity(stores)
    assert check_saved_model_loads(stores)
    with stores.pathway_db() as pdb:
        stored = {run["id"] for run in pdb.runs()}
    for n in range(rounds + 1):  # and the extra round's, if there was one
        assert set(recorded(data_dir, f"w{n}")) <= stored
    assert set(recorded(data_dir, "after")) <= stored


def learn_runs_of_a_writer(service: Path, writer: Path, data_dir: Path, name: str, n: int,
                           stop: signal.Signals, learned: int | None = None) -> None:
    """Start the service, let another process log ``n`` runs, wait until ``learned`` (default
    ``n``) examples are learned, stop the service with ``stop``."""
    learned = n if learned is None else learned
    port = free_port()
    svc = start_service(service, data_dir, "--metrics-port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for_metrics(url, svc)
        result = subprocess.run([sys.executable, str(writer), str(data_dir), name, str(n)],
                                env=env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 30
        while examples_learned(scrape(url)) < learned:
            assert time.monotonic() < deadline, f"{name}: the service did not learn {learned} runs"
            time.sleep(0.1)
        svc.send_signal(stop)
        svc.wait(timeout=15)
    finally:
        kill(svc)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_after_a_sigkill_the_restarted_service_learns_no_run_twice(tmp_path, scripts, stores):
    # A clean stop records the last run announced; a SIGKILL does not, so the next
    # start announces the runs since that clean stop again. The saved model lists
    # the runs it learned and must take each of them once.
    service, writer = scripts
    data_dir = tmp_path / "data"
    learn_runs_of_a_writer(service, writer, data_dir, "first", 20, signal.SIGTERM)
    learn_runs_of_a_writer(service, writer, data_dir, "second", 40, signal.SIGKILL)
    # Restarted: runs 21-60 are announced again, then the one new run, in id order.
    learn_runs_of_a_writer(service, writer, data_dir, "third", 1, signal.SIGTERM)
    with stores.pathway_db() as pdb, stores.memory(embedder="hashing") as mm:
        assert pdb.count_runs() == 61
        engine = LearningEngine(pdb, mm, **stores.engine_storage("pathways"))
        assert engine.n_seen == 61
        assert len(engine.learned_runs) == 61


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_service_killed_before_any_clean_stop_learns_the_runs_logged_while_it_was_down(
    tmp_path, scripts, stores
):
    # With no service_state.json the watcher resumes after the newest run the
    # saved model learned, so nothing logged in between is skipped.
    service, writer = scripts
    data_dir = tmp_path / "data"
    learn_runs_of_a_writer(service, writer, data_dir, "before", 20, signal.SIGKILL)
    assert stores.read_state() == {}
    down = subprocess.run([sys.executable, str(writer), str(data_dir), "down", "5"],
                          env=env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    learn_runs_of_a_writer(service, writer, data_dir, "after", 1, signal.SIGTERM, learned=6)
    with stores.pathway_db() as pdb, stores.memory(embedder="hashing") as mm:
        engine = LearningEngine(pdb, mm, **stores.engine_storage("pathways"))
        assert (pdb.count_runs(), engine.n_seen) == (26, 26)


# -- four writers and the service at once ------------------------------------------------------


def test_four_writers_and_the_service_on_one_store_exact_counts_nothing_locked(tmp_path, scripts, stores):
    service, writer = scripts
    data_dir = tmp_path / "data"
    port = free_port()
    svc = start_service(service, data_dir, "--metrics-port", str(port), "--eval-every", "50")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for_metrics(url, svc)
        writers = [start_writer(writer, data_dir, f"w{k}", seconds=4.0) for k in range(4)]
        outputs = [w.communicate(timeout=60) for w in writers]
        deadline = time.monotonic() + 20
        while examples_learned(scrape(url)) < 1:  # the service learned while they wrote
            assert time.monotonic() < deadline, "the service learned nothing"
            time.sleep(0.2)
        svc.send_signal(signal.SIGTERM)
        _, service_err = svc.communicate(timeout=15)
    finally:
        kill(svc)
    assert svc.returncode == 0, service_err
    counts = []
    for proc, (out, err) in zip(writers, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "busy" not in err.lower(), err
        counts.append(int(out))
    assert all(count > 0 for count in counts), counts
    for text in (service_err,):
        assert "locked" not in text.lower() and "Traceback" not in text, text
    with stores.pathway_db() as pdb:
        assert pdb.count_runs() == sum(counts)
        ids = {run["id"] for run in pdb.runs()}
    logged = [recorded(data_dir, f"w{k}") for k in range(4)]
    assert [len(ids_of_writer) for ids_of_writer in logged] == counts
    assert set().union(*logged) == ids and sum(counts) == len(ids)
    check_integrity(stores)


# -- broken files, full disks, taken ports, raising subscribers ----------------------------------


def runs(n: int, offset: int = 0) -> list[PathwayRecord]:
    return [
        PathwayRecord(
            ["fetch->parse", "login->buy", "scan->fix"][(i + offset) % 3], exec_time=0.5 + i % 5,
            roi=float(i % 4), outcome="FAILURE" if (i + offset) % 3 == 2 else "SUCCESS",
        )
        for i in range(n)
    ]


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def collect(bus, topic: str) -> list[dict]:
    seen: list[dict] = []
    bus.subscribe(topic, lambda _t, payload: seen.append(payload))
    return seen


def test_a_corrupted_model_file_is_logged_and_the_service_learns_from_scratch(data_dir, caplog):
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    stack.pathway_db.log_many(runs(12))
    assert stack.coordinator.wait_idle(10)
    stop()
    model = data_dir / config.MODELS_DIR / "logreg.skops"
    assert model.exists()
    model.write_bytes(b"\x00garbage, not a model" * 50)

    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    with caplog.at_level(logging.INFO):
        stack = start()
    try:
        assert "cannot be loaded" in caplog.text and str(model) in caplog.text
        assert "starting untrained" in caplog.text and "Traceback" not in caplog.text
        assert not stack.engine.is_trained
        stack.pathway_db.log_many(runs(9, offset=1))
        assert stack.coordinator.wait_idle(10)
        assert stack.engine.is_trained and stack.engine.n_seen == 9
    finally:
        stop()
    check_saved_model_loads(data_dir)  # the garbage was replaced by a good model on stop


def test_a_full_disk_when_saving_the_model_is_logged_and_keeps_the_old_file(data_dir, caplog):
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    try:
        stack.pathway_db.log_many(runs(30))
        coordinator = stack.coordinator
        assert coordinator.wait_job(coordinator.request_train(), 20).finished_ok
        model = data_dir / config.MODELS_DIR / "logreg.skops"
        good = model.read_bytes()
        family = stack.engine.live_model.family

        def full_disk(estimator, meta, path):
            Path(path).write_bytes(b"half a mod")  # the write got this far
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        original, family.save = family.save, full_disk
        try:
            with caplog.at_level(logging.ERROR):
                job = coordinator.wait_job(coordinator.request_train(), 20)
        finally:
            family.save = original
        assert job.finished_ok  # the model trained; only its file could not be written
        assert "could not save model" in caplog.text and "No space left on device" in caplog.text
        assert model.read_bytes() == good  # the previous file is whole
        assert not [f for f in model.parent.iterdir() if f.name.endswith(".tmp")]
        before = stack.engine.n_seen
        stack.pathway_db.log_many(runs(6))
        assert coordinator.wait_idle(10)
        assert stack.engine.n_seen == before + 6  # and learning goes on
    finally:
        stop()
    check_saved_model_loads(data_dir)


def test_a_full_disk_when_logging_a_run_is_a_clear_error_and_writes_nothing(data_dir, monkeypatch):
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    try:
        pdb = stack.pathway_db
        pdb.log_many(runs(3))
        assert stack.coordinator.wait_idle(10)
        original = PathwayDB._insert  # noqa: SLF001 - the disk fills at the second row
        calls = {"n": 0}

        def insert_then_full(self, conn, rec):
            calls["n"] += 1
            result = original(self, conn, rec)  # the first row of the batch goes in ...
            if calls["n"] == 2:
                raise sqlite3.OperationalError("database or disk is full")  # ... the second fails
            return result

        monkeypatch.setattr(PathwayDB, "_insert", insert_then_full)
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            pdb.log_many(runs(2))
        monkeypatch.undo()
        assert pdb.count_runs() == 3  # the whole batch was rolled back
        pdb.log_many(runs(4))  # and the next write works
        assert pdb.count_runs() == 7 and [r["id"] for r in pdb.runs()] == list(range(1, 8))
        assert stack.coordinator.wait_idle(10)
        assert stack.engine.n_seen == 7
    finally:
        stop()
    check_integrity(data_dir)


def test_an_engine_that_raises_publishes_learning_error_and_learning_goes_on(data_dir, caplog):
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    try:
        errors = collect(stack.bus, events.LEARNING_ERROR)
        engine = stack.engine
        original = engine.partial_train

        def disk_full_once(batch):
            engine.partial_train = original
            raise OSError(errno.ENOSPC, "No space left on device")

        engine.partial_train = disk_full_once
        with caplog.at_level(logging.WARNING):
            stack.pathway_db.log(runs(1)[0])
            assert stack.coordinator.wait_idle(10)
        assert len(errors) == 1 and "No space left on device" in errors[0]["error"]
        assert errors[0]["engine"] == "pathways" and errors[0]["run_id"] == 1
        assert "could not learn run 1" in caplog.text
        stack.pathway_db.log_many(runs(5, offset=1))
        assert stack.coordinator.wait_idle(10)
        assert engine.n_seen == 5 and stack.coordinator.running
    finally:
        stop()


def test_a_subscriber_that_raises_is_logged_and_others_still_get_the_event(data_dir, caplog):
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    try:
        def broken(_topic, _payload):
            raise RuntimeError("subscriber bug")

        stack.bus.subscribe(events.PATHWAY_NEW, broken)
        seen = collect(stack.bus, events.PATHWAY_NEW)
        with caplog.at_level(logging.ERROR):
            ids = stack.pathway_db.log_many(runs(4))
        assert len(ids) == 4 and len(seen) == 4
        assert "subscriber bug" in caplog.text
        assert stack.coordinator.wait_idle(10)
        assert stack.engine.n_seen == 4 and stack.pathway_db.count_runs() == 4
    finally:
        stop()


def test_the_service_process_with_a_taken_metrics_port_exits_2_without_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(tmp_path / "d"),
             "--metrics-port", str(port)],
            env=env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr


# -- shutdown under load -------------------------------------------------------------------------


def many_runs(data_dir: Path, n: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
        pdb.log_many(
            PathwayRecord(f"step{i % 50}->check{i % 7}", exec_time=0.5 + i % 5, roi=float(i % 4),
                          outcome="FAILURE" if i % 3 == 2 else "SUCCESS")
            for i in range(n)
        )


@pytest.mark.slow
def test_sigterm_while_a_forest_trains_on_30000_runs_stops_within_seconds(tmp_path, scripts):
    service, writer = scripts
    data_dir = tmp_path / "data"
    many_runs(data_dir, 30_000)
    fitting = tmp_path / "fitting"
    svc = start_service(service, data_dir, "--model", "rf", "--metrics-port", "0",
                        TRAIN_ON_START=str(fitting))
    try:
        deadline = time.monotonic() + 60
        while not fitting.exists():
            assert svc.poll() is None, svc.stderr.read()
            assert time.monotonic() < deadline, "the training job never started fitting"
            time.sleep(0.05)
        time.sleep(0.3)
        assert svc.poll() is None, "the training was over before the signal"
        sent = time.monotonic()
        svc.send_signal(signal.SIGTERM)
        _, err = svc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        kill(svc)
    assert svc.returncode == 0, err
    assert took < 5, f"stopping took {took:.1f} s"
    assert "Traceback" not in err and "service stopped" in err, err
    check_integrity(data_dir)
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
        assert pdb.count_runs() == 30_000
    model = data_dir / config.MODELS_DIR / "rf.skops"
    if model.exists():  # a forest interrupted mid-fit is not saved; one saved whole must load
        with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb, \
                MenaceMemoryManager(data_dir / config.MEMORY_DB, embedder="hashing") as mm:
            assert LearningEngine(pdb, mm, model="rf", model_dir=model.parent).is_trained


def test_stop_while_a_forest_trains_leaves_no_thread_and_the_data_whole(data_dir):
    many_runs(data_dir, 8_000)
    before = set(threading.enumerate())
    start, stop = run_background(data_dir=data_dir, model="rf", metrics_port=0)
    stack = start()
    progress = collect(stack.bus, events.LEARNING_PROGRESS)
    job = stack.coordinator.request_train()
    wait_until(lambda: any(p["fraction"] >= 0.5 for p in progress), timeout=30)
    assert stack.coordinator.job(job).state == "running"
    stack.pathway_db.log_many(runs(20))  # queued behind the training job
    sent = time.monotonic()
    stop()
    took = time.monotonic() - sent
    assert took < 5, f"stopping took {took:.1f} s"
    assert stack.coordinator.job(job).state in {"cancelled", "done"}
    deadline = time.monotonic() + 3
    while left := [t for t in threading.enumerate() if t not in before and t.is_alive()]:
        assert time.monotonic() < deadline, f"threads still running: {[t.name for t in left]}"
        time.sleep(0.05)
    check_integrity(data_dir)
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
        assert pdb.count_runs() == 8_020


# -- full disk, read-only and broken files (issue 15, items 12-14) -------------------------------
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs: a disk that really fills up (root only)."""
    if not ROOT_USER:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if not mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk)):
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def read_only_view(tmp_path):
    """``make(folder)``: a read-only bind mount of ``folder`` (root only); unmounted after."""
    if not ROOT_USER:
        pytest.skip("a read-only bind mount needs root")
    mounted: list[Path] = []

    def make(folder: Path) -> Path:
        view = tmp_path / f"ro-{len(mounted)}"
        view.mkdir(mode=0o700)
        if not (mount("--bind", str(folder), str(view)) and mount("-o", "remount,ro,bind", str(view))):
            pytest.skip("cannot make a read-only bind mount here")
        mounted.append(view)
        return view

    yield make
    for view in mounted:
        subprocess.run(["umount", "-l", str(view)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler (unlink it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def evaluation(i: int, pad: int = 0) -> dict:
    return {"engine": "pathways", "model": "logreg", "ts": float(i), "cv_score": 0.5, "notes": "x" * pad}


def test_a_full_disk_never_tears_a_line_of_the_evaluation_history(small_disk):
    from menace.history import EvaluationHistory

    path = small_disk / config.EVALUATIONS_FILE
    history = EvaluationHistory("pathways", path)
    for i in range(3):
        history.append(evaluation(i))
    filler = fill(small_disk)
    with pytest.raises(OSError) as caught:
        history.append(evaluation(3, pad=20_000))  # more than the last free page: a short write
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes().endswith(b"\n")  # the part that fitted was cut off again
    filler.unlink()
    history.append(evaluation(4))
    reloaded = EvaluationHistory("pathways", path)
    assert [e["ts"] for e in reloaded] == [0.0, 1.0, 2.0, 4.0]  # nothing after the failure is lost


def test_a_torn_last_line_is_repaired_when_the_history_is_opened(tmp_path, caplog):
    from menace.history import EvaluationHistory

    path = tmp_path / config.EVALUATIONS_FILE
    path.write_text(json.dumps(evaluation(0)) + "\n" + '{"cv')  # a crash in the middle of a line
    with caplog.at_level(logging.WARNING):
        history = EvaluationHistory("pathways", path)
    assert [e["ts"] for e in history] == [0.0] and "torn last line" in caplog.text
    assert path.read_bytes().endswith(b"\n")
    history.append(evaluation(1))
    assert [e["ts"] for e in EvaluationHistory("pathways", path)] == [0.0, 1.0]


def test_the_prequential_figures_are_appended_whole_after_a_torn_line(tmp_path):
    from menace.files import append_line, read_lines

    path = tmp_path / config.PREQUENTIAL_FILE
    path.write_bytes(b'{"a": 1}\n{"engine": "pa')
    append_line(path, '{"b": 2}')
    assert [line for _, line in read_lines(path)] == ['{"a": 1}', '{"b": 2}']


def test_on_a_full_disk_log_names_the_disk_and_the_file_not_an_empty_transaction(small_disk):
    from menace.errors import StorageError

    pdb = PathwayDB(small_disk / config.PATHWAYS_DB)
    try:
        pdb.log_many(runs(10))
        filler = fill(small_disk)
        with pytest.raises(StorageError) as caught:
            for i in range(2000):  # the WAL grows until the disk refuses a commit
                pdb.log(PathwayRecord(f"step {i} -> " + "x" * 2000))
        message = str(caught.value)
        assert str(small_disk / config.PATHWAYS_DB) in message and "the disk is full" in message
        assert "no transaction is active" not in message
        filler.unlink()
        pdb.log_many(runs(3))  # and it works again once there is room
    finally:
        pdb.close()


def test_a_read_only_store_names_the_file_and_the_cause(tmp_path, read_only_view):
    from menace.errors import StorageError

    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    PathwayDB(folder / config.PATHWAYS_DB).close()
    view = read_only_view(folder)
    with pytest.raises(StorageError) as caught:
        pdb = PathwayDB(view / config.PATHWAYS_DB)
        pdb.log_many(runs(2))
    assert str(view / config.PATHWAYS_DB) in str(caught.value) and "read-only" in str(caught.value)


@pytest.mark.parametrize(
    "content, cause", [(b"garbage " * 600, "not an SQLite database"), (b"SQLite format 3\0" + b"\xff" * 5000, "")]
)
def test_a_garbage_database_file_names_the_file_and_the_cause(tmp_path, content, cause):
    from menace.errors import StorageError

    path = tmp_path / config.PATHWAYS_DB
    path.write_bytes(content)
    with pytest.raises(StorageError) as caught:
        PathwayDB(path)
    assert str(path) in str(caught.value) and cause in str(caught.value)


def service_start_error(data_dir: Path, user: int | None = None) -> tuple[int, str]:
    """Start menace-service on ``data_dir`` (as ``user`` in a forked child, if given):
    its exit status and what it wrote to stderr."""
    if user is None:
        proc = subprocess.run(
            [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir),
             "--metrics-port", "0", "--log-level", "ERROR", "--no-watch"],
            capture_output=True, text=True, timeout=120, env=env(), stdin=subprocess.DEVNULL,
        )
        return proc.returncode, proc.stderr
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become another user, start, report
        code = 99
        try:
            os.dup2(write, 2)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            os.setgid(user)
            os.setuid(user)
            from menace import self_learning_service

            code = self_learning_service.main(
                ["--data-dir", str(data_dir), "--metrics-port", "0", "--log-level", "ERROR", "--no-watch"]
            )
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        err = fh.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), err


def assert_one_error_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("menace-service: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_the_service_on_a_full_disk_exits_2_with_one_line(small_disk):
    data_dir = small_disk / "data"
    data_dir.mkdir(mode=0o700)
    filler = fill(small_disk)
    code, err = service_start_error(data_dir)
    assert_one_error_line(code, err, str(data_dir), "disk is full")
    filler.unlink()


def test_the_service_on_a_read_only_mount_exits_2_with_one_line(tmp_path, read_only_view):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    start().pathway_db.log_many(runs(5))
    stop()
    view = read_only_view(data_dir)
    code, err = service_start_error(view)
    assert_one_error_line(code, err, str(view), "read-only")


@pytest.mark.skipif(not ROOT_USER, reason="starting the service as another user needs root")
def test_the_service_on_a_read_only_directory_exits_2_with_one_line():
    import shutil
    import tempfile

    reachable = Path(tempfile.mkdtemp(prefix="menace-ro-"))  # pytest's tmp_path is root-only
    try:
        os.chmod(reachable, 0o755)  # the other user may reach it, not write it
        data_dir = reachable / "data"
        data_dir.mkdir(mode=0o500)
        os.chown(data_dir, 65534, 65534)
        code, err = service_start_error(data_dir, user=65534)
        assert_one_error_line(code, err, str(data_dir), "read-only")
    finally:
        shutil.rmtree(reachable, ignore_errors=True)


def test_the_service_with_a_garbage_pathways_db_exits_2_with_one_line(data_dir):
    (data_dir / config.PATHWAYS_DB).write_bytes(b"this is not a database at all " * 200)
    code, err = service_start_error(data_dir)
    assert_one_error_line(code, err, str(data_dir / config.PATHWAYS_DB), "not an SQLite database")


def test_the_service_with_a_database_of_a_newer_schema_exits_2_with_one_line(data_dir):
    PathwayDB(data_dir / config.PATHWAYS_DB).close()
    conn = sqlite3.connect(data_dir / config.PATHWAYS_DB)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    code, err = service_start_error(data_dir)
    assert_one_error_line(code, err, str(data_dir / config.PATHWAYS_DB), "newer than this Menace")
