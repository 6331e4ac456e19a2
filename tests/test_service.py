"""The self-learning service: run_background, main() and the process under SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from menace import config, events
from menace.config import Settings
from menace.metrics_exporter import MetricsPortInUseError
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.self_learning_service import build_parser, main, run_background, settings_from_args
from menace.unified_event_bus import EventJournal

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runs(n: int) -> list[PathwayRecord]:
    return [
        PathwayRecord(
            ["fetch->parse", "login->buy", "scan->fix"][i % 3], exec_time=0.5 + i % 5, roi=i % 4,
            outcome="FAILURE" if i % 3 == 2 else "SUCCESS",
        )
        for i in range(n)
    ]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def journal_topics(data_dir: Path) -> list[str]:
    journal = EventJournal(data_dir / config.EVENTS_DB)
    try:
        return [topic for topic, _ in journal.since(0.0)]
    finally:
        journal.close()


@pytest.fixture
def no_new_threads():
    """Fail if the test leaves a thread running that it did not find."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"threads still running: {[t.name for t in left]}")


def test_run_background_gives_the_running_stack_and_stops_every_thread(data_dir, no_new_threads):
    port = free_port()
    start, stop = run_background(data_dir=data_dir, metrics_port=port)
    stack = start()
    try:
        assert start() is stack  # starting twice gives the same stack
        assert stack.settings.data_dir == data_dir
        assert stack.engines == {"pathways": stack.engine}
        assert stack.coordinator.running
        assert stack.metrics is not None and stack.metrics.url == f"http://127.0.0.1:{port}/metrics"
        for store in (stack.pathway_db, stack.memory, stack.code_db, stack.workflow_db):
            assert Path(store.path).parent == data_dir
        stack.pathway_db.log_many(runs(30))
        stack.gpt_memory.log_interaction("idea?", "try a helper", tags=["improvement"])
        assert stack.coordinator.wait_idle(10)
        assert stack.engine.n_seen == 30
        assert "learning_examples_total" in scrape(stack.metrics.url)
    finally:
        stop()
    stop()  # idempotent
    topics = journal_topics(data_dir)
    assert topics[0] == events.SERVICE_STARTED and topics[-1] == events.SERVICE_STOPPED
    assert events.LEARNING_TRAINED in topics


def test_run_background_keeps_what_lives_as_long_as_the_service_out_of_full_collections(data_dir, no_new_threads):
    import gc

    start, stop = run_background(data_dir=data_dir, metrics_port=0)
    frozen = gc.get_freeze_count()
    try:
        stack = start()
        # As menace-service does: a full collection does not walk the modules, the model and
        # the stores again (each walk stalled the learner ~0.5 s under a stream of runs).
        assert gc.get_freeze_count() > frozen
        assert stack.coordinator.running
    finally:
        stop()


def test_restart_loads_the_saved_model_and_the_evaluation_history(settings_for, no_new_threads):
    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    stack.pathway_db.log_many(runs(60))
    coordinator = stack.coordinator
    assert coordinator.wait_job(coordinator.request_train(), 20).finished_ok
    scores = coordinator.wait_job(coordinator.request_evaluate(), 20).result
    probability = stack.engine.predict_success(3, 1.0, 1.0, 1.0, "scan->fix")
    stop()

    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    try:
        assert stack.engine.is_trained
        assert stack.engine.predict_success(3, 1.0, 1.0, 1.0, "scan->fix") == pytest.approx(probability)
        assert [h["cv_score"] for h in stack.engine.evaluation_history] == [scores["cv_score"]]
        assert stack.pathway_db.count_runs() == 60
    finally:
        stop()


def test_an_auto_train_choice_stays_live_across_a_restart_with_its_scores_and_times(settings_for, no_new_threads):
    from prometheus_client import REGISTRY

    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    stack.pathway_db.log_many(runs(60))
    coordinator = stack.coordinator
    job = coordinator.wait_job(coordinator.request_auto_train(["rf"]), 30)
    assert job.finished_ok and stack.engine.model_name == "rf"
    evaluated_at = stack.engine.evaluation_history[-1]["ts"]
    stop()

    start, stop = run_background(settings_for(metrics_port=0))  # no --model: the one used last
    stack = start()
    try:
        assert stack.engine.model_name == "rf" and stack.engine.is_trained
        assert stack.settings.model is None
        assert REGISTRY.get_sample_value("learning_model_info", {"engine": "pathways", "model": "rf"}) == 1.0
        assert REGISTRY.get_sample_value("learning_cv_score", {"engine": "pathways"}) == pytest.approx(
            stack.engine.evaluation_history[-1]["cv_score"])
        assert REGISTRY.get_sample_value(
            "learning_last_evaluation_timestamp_seconds", {"engine": "pathways"}) == pytest.approx(evaluated_at)
        assert REGISTRY.get_sample_value("learning_last_training_timestamp_seconds", {"engine": "pathways"}) > 0
    finally:
        stop()
    start, stop = run_background(settings_for(metrics_port=0, model="logreg"))  # an explicit choice wins
    try:
        assert start().engine.model_name == "logreg"
    finally:
        stop()


def test_periodic_evaluation_is_on_by_default(data_dir, no_new_threads):
    settings = Settings()
    assert settings.eval_every_examples == config.DEFAULT_EVAL_EVERY > 0
    assert settings.eval_every_seconds == config.DEFAULT_EVAL_INTERVAL > 0
    assert settings.eval_max_examples == config.DEFAULT_EVAL_MAX_EXAMPLES
    start, stop = run_background(data_dir=data_dir, metrics_port=0, eval_every_examples=40)
    stack = start()
    try:
        evaluated = []
        stack.bus.subscribe(events.LEARNING_EVALUATED, lambda _t, p: evaluated.append(p))
        stack.pathway_db.log_many(runs(45))
        assert stack.coordinator.wait_idle(20)
        assert [p["trigger"] for p in evaluated] == ["examples"]
        assert evaluated[0]["model"] == "logreg" and evaluated[0]["n_examples"] == 45
    finally:
        stop()


def test_partial_updates_are_saved_on_stop(settings_for, no_new_threads):
    start, stop = run_background(settings_for(metrics_port=0))
    stack = start()
    stack.pathway_db.log_many(runs(12))
    assert stack.coordinator.wait_idle(10)
    stop()
    stack = run_background(settings_for(metrics_port=0))[0]()
    try:
        assert stack.engine.is_trained and stack.engine.n_seen == 12
    finally:
        stack.stop()


def test_a_taken_metrics_port_is_a_warning_unless_required(data_dir, caplog, no_new_threads):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start, stop = run_background(data_dir=data_dir, metrics_port=port)
        with caplog.at_level(logging.WARNING):
            stack = start()
        try:
            assert stack.metrics is None and stack.coordinator.running
            assert f"127.0.0.1:{port}" in caplog.text and "without metrics" in caplog.text
        finally:
            stop()
        start, stop = run_background(data_dir=data_dir, metrics_port=port, metrics_required=True)
        with pytest.raises(MetricsPortInUseError, match=f"127.0.0.1:{port}"):
            start()
        stop()


def test_run_background_with_no_arguments_uses_the_defaults(data_dir, monkeypatch, no_new_threads):
    monkeypatch.delenv("MENACE_METRICS_PORT", raising=False)
    start, stop = run_background()
    stack = start()
    try:
        assert stack.settings.data_dir == data_dir  # MENACE_DATA_DIR, else the per-user folder
        assert stack.settings.metrics_port == config.DEFAULT_METRICS_PORT
        if stack.metrics is not None:  # 8001 may be taken on this machine: then no metrics
            assert stack.metrics.port == config.DEFAULT_METRICS_PORT
    finally:
        stop()


def test_run_background_refuses_unknown_options():
    with pytest.raises(ValueError, match="metric_port"):
        run_background(metric_port=1)
    with pytest.raises(ValueError, match="model"):
        run_background(model="")[0]()


def test_flags_beat_environment_which_beats_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("MENACE_MODEL", "rf")
    monkeypatch.setenv("MENACE_EVAL_INTERVAL", "30")
    monkeypatch.setenv("MENACE_METRICS_PORT", "9100")
    args = build_parser().parse_args(["--data-dir", str(tmp_path), "--model", "nn", "--eval-every", "50"])
    settings = settings_from_args(args)
    assert settings == Settings(
        data_dir=tmp_path, model="nn", eval_every_examples=50, eval_every_seconds=30.0,
        metrics_port=9100,
    )


@pytest.fixture
def blas_limits():
    """The process's BLAS threads, put back after the test (the stack sets them process-wide)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    before = {lib["prefix"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    threadpool_limits(limits=2, user_api="blas")  # as numpy starts on a 2-core machine
    yield blas_threads
    threadpool_limits(limits=before)


def test_the_stack_runs_blas_on_one_thread_unless_told(data_dir, monkeypatch, blas_limits, no_new_threads):
    """OpenBLAS's idle threads spin between the learner's small matrix products, taking a
    core from the bots that log: the stack sets one thread; --blas-threads 0 leaves it."""
    assert blas_limits() == {2}
    start, stop = run_background(data_dir=data_dir, metrics_port=0)
    start()
    try:
        assert blas_limits() == {1}
    finally:
        stop()
    args = build_parser().parse_args(["--data-dir", str(data_dir), "--metrics-port", "0", "--blas-threads", "0"])
    leave_it = settings_from_args(args)
    assert leave_it.blas_threads == 0
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=2, user_api="blas")
    start, stop = run_background(leave_it)
    start()
    try:
        assert blas_limits() == {2}  # left as it was
    finally:
        stop()
    monkeypatch.setenv("MENACE_BLAS_THREADS", "-1")
    with pytest.raises(ValueError, match="blas_threads"):
        Settings(data_dir=data_dir)


def test_help_documents_every_option_and_its_variable(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag, variable in [
        ("--data-dir", "MENACE_DATA_DIR"),
        ("--model", "MENACE_MODEL"),
        ("--eval-every", "MENACE_EVAL_EVERY"),
        ("--eval-interval", "MENACE_EVAL_INTERVAL"),
        ("--metrics-addr", "MENACE_METRICS_ADDR"),
        ("--metrics-port", "MENACE_METRICS_PORT"),
        ("--blas-threads", "MENACE_BLAS_THREADS"),
    ]:
        assert flag in text and variable in text
    assert "SIGTERM" in text


def test_main_with_a_taken_port_exits_with_a_clear_message(data_dir, capsys, no_new_threads):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--data-dir", str(data_dir), "--metrics-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "already in use" in err and "Traceback" not in err


def test_main_with_a_bad_model_exits_with_a_clear_message(data_dir, capsys, no_new_threads):
    assert main(["--data-dir", str(data_dir), "--model", "bogus", "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "logreg" in err and "Traceback" not in err


def service_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MENACE_EMBEDDER="hashing", PYTHONUNBUFFERED="1")
    env.pop("MENACE_DATA_DIR", None)
    return env


def wait_for_metrics(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited early ({proc.returncode}): {proc.stderr.read()}")
        try:
            return scrape(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"no answer on {url} within {timeout} s")


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
def test_service_process_serves_metrics_and_stops_cleanly_on_signal(tmp_path, signum):
    data_dir = tmp_path / "data"
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
        pdb.log_many(runs(40))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir),
         "--metrics-port", str(port), "--eval-every", "20"],
        env=service_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        text = wait_for_metrics(f"http://127.0.0.1:{port}/metrics", proc)
        assert "learning_cv_score" in text and "learning_events_handled_total" in text
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                                   text=True, timeout=30)
            assert check.returncode == 0, check.stdout + check.stderr
        # Another process writes while the service runs: the service learns those runs
        # (its run watcher), and both leave the data whole.
        with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
            pdb.log_many(runs(10))
        deadline = time.monotonic() + 15
        while "learning_examples_total{engine=\"pathways\"} 10.0" not in text:
            assert time.monotonic() < deadline, "the service did not learn the other process's runs"
            time.sleep(0.2)
            text = scrape(f"http://127.0.0.1:{port}/metrics")
        sent = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert took < 5, f"stopping took {took:.1f} s"
    assert "Traceback" not in stderr and "stopped" in stderr
    for name in (config.PATHWAYS_DB, config.EVENTS_DB, config.MEMORY_DB):
        with sqlite3.connect(data_dir / name) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with PathwayDB(data_dir / config.PATHWAYS_DB) as pdb:
        assert pdb.count_runs() == 50
    topics = journal_topics(data_dir)
    assert topics[0] == events.SERVICE_STARTED and topics[-1] == events.SERVICE_STOPPED
    assert topics.count(events.PATHWAY_NEW) == 10  # the other process's runs, announced once
    assert json.loads((data_dir / "service_state.json").read_text()) == {"last_run_id": 50}


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "menace-service"
    if not script.exists():
        pytest.skip("package not installed with its console scripts")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--metrics-port" in result.stdout


def test_importing_the_service_loads_no_heavy_modules():
    probe = (
        "import sys, menace.self_learning_service, menace.self_learning_coordinator, "
        "menace.metrics_exporter, menace.run_watcher\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert not set(out.stdout.split()) & {"torch", "transformers", "PySide6", "pyqtgraph"}
