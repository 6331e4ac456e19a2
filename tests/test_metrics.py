"""The Prometheus endpoint, its metric names, and the Grafana/Prometheus resources."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from menace import metrics_exporter
from menace.embeddings import HashingEmbedder
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.metrics_exporter import LearningMetrics, MetricsPortInUseError, start_metrics_server
from menace.neuroplasticity import PathwayDB, PathwayRecord

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DASHBOARD = RESOURCES / "grafana" / "dashboards" / "menace.json"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def exported_names() -> set[str]:
    """Every series name the endpoint can show, from its ``# TYPE`` lines.

    A histogram ``x`` also names ``x_bucket``, ``x_sum`` and ``x_count``.
    """
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", scrape_registry(), re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_metrics_server_serves_scores_and_stops():
    registry = CollectorRegistry()
    LearningMetrics(registry).observe_evaluation("main", {"cv_score": 0.75, "holdout_score": 0.5, "ts": 1.7e9})
    server = start_metrics_server(0, registry=registry)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        text = scrape(server.url)
        assert 'learning_cv_score{engine="main"} 0.75' in text
        assert 'learning_holdout_score{engine="main"} 0.5' in text
        assert 'learning_last_evaluation_timestamp_seconds{engine="main"} 1.7e+09' in text
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.running
    with pytest.raises(urllib.error.URLError):
        scrape(server.url)


def test_port_in_use_is_a_clear_error_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortInUseError, match=f"127.0.0.1:{port}.*already in use"):
            start_metrics_server(port)


@pytest.mark.parametrize("port", [-1, 70000, "8001", 1.5, True])
def test_bad_port_is_refused(port):
    with pytest.raises(ValueError, match="port"):
        start_metrics_server(port)


def test_one_engines_scores_never_overwrite_anothers(tmp_path):
    """Two engines evaluate in turn: /metrics shows each one's own scores, side by side."""
    registry = CollectorRegistry()
    metrics = LearningMetrics(registry)
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder=HashingEmbedder(32))
    for i in range(60):
        good = i % 3 != 0
        pdb.log(PathwayRecord("check->deploy" if good else "deploy", exec_time=1.0, roi=2.0 if good else -1.0,
                              outcome="SUCCESS" if good else "FAILURE", ts=1.7e9 + i))
    main = LearningEngine(pdb, mm, name="main", metrics=metrics)
    other = LearningEngine(pdb, mm, name="shadow", features="seed", seed=3, metrics=metrics)
    main_scores = main.evaluate(cv=3)
    other_scores = other.evaluate(cv=3, test_split=0.5)  # evaluated last, as the overwriting engine was
    with start_metrics_server(0, registry=registry) as server:
        text = scrape(server.url)
    for engine, scores in (("main", main_scores), ("shadow", other_scores)):
        for name in ("learning_cv_score", "learning_holdout_score"):
            value = re.search(rf'^{name}{{engine="{engine}"}} (\S+)$', text, re.MULTILINE)
            assert value, f"{name} of {engine} missing"
            assert float(value.group(1)) == pytest.approx(scores[name.removeprefix("learning_")])
        assert f'learning_evaluations_total{{engine="{engine}"}} 1.0' in text
        assert f'learning_evaluation_info{{engine="{engine}",model="logreg"}} 1.0' in text  # who scored it
    pdb.close()
    mm.close()


def test_score_gauges_are_absent_before_the_first_evaluation_never_zero():
    registry = CollectorRegistry()
    metrics = LearningMetrics(registry)
    metrics.engine_started("fresh", "logreg")
    text = generate_latest(registry).decode()
    assert "# TYPE learning_cv_score gauge" in text
    assert 'learning_cv_score{engine="fresh"}' not in text
    assert 'learning_training_runs_total{engine="fresh",mode="partial"} 0.0' in text  # rate() sees the first
    assert 'learning_model_info{engine="fresh",model="logreg"} 1.0' in text


def test_operator_metrics_follow_prometheus_naming():
    names = exported_names()
    for name in (
        "learning_training_runs_total",
        "learning_examples_total",
        "learning_training_duration_seconds_bucket",
        "learning_last_training_timestamp_seconds",
        "learning_evaluations_total",
        "learning_training_errors_total",
        "learning_events_handled_total",
        "learning_events_failed_total",
        "learning_queue_depth",
    ):
        assert name in names, name


def test_events_metrics_have_every_input_topic_before_any_event():
    text = scrape_registry()
    for topic in ("pathway:new", "memory:new", "code:new", "workflows:new"):
        assert f'learning_events_handled_total{{topic="{topic}"}}' in text
        assert f'learning_events_failed_total{{topic="{topic}"}}' in text


def scrape_registry() -> str:
    return generate_latest(REGISTRY).decode()


def test_model_info_shows_only_the_current_model():
    metrics_exporter.METRICS.set_model("info-test", "logreg")
    metrics_exporter.METRICS.set_model("info-test", "rf")
    text = scrape_registry()
    assert 'learning_model_info{engine="info-test",model="rf"} 1.0' in text
    assert 'engine="info-test",model="logreg"' not in text


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
def test_promtool_accepts_the_live_endpoint():
    # Make every metric type appear with labels, as a running service would.
    metrics = metrics_exporter.METRICS
    metrics.engine_started("promtool", "logreg")
    metrics.observe_training("promtool", "partial", 0.02, 3, 1.7e9)
    metrics.observe_evaluation("promtool", {"cv_score": 0.8, "holdout_score": 0.7, "ts": 1.7e9}, new=True)
    metrics.observe_error("promtool")
    with start_metrics_server(0) as server:
        text = scrape(server.url)
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
def test_promtool_accepts_the_scrape_config_example():
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(RESOURCES / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    return exprs


def test_dashboard_queries_only_metrics_that_exist():
    names = exported_names()
    used = {m for expr in dashboard_exprs() for m in re.findall(r"\blearning_[a-z_]+", expr)}
    assert {"learning_cv_score", "learning_holdout_score"} <= used
    assert "learning_training_runs_total" in used
    missing = sorted(used - names)
    assert not missing, f"dashboard queries unknown metrics: {missing}"


def test_dashboard_loads_by_file_provisioning():
    text = DASHBOARD.read_text()
    assert "${DS_" not in text and "__inputs" not in text
    dashboard = json.loads(text)
    provisioned = (RESOURCES / "grafana" / "provisioning" / "datasources" / "menace.yml").read_text()
    uid = re.search(r"^\s*uid:\s*(\S+)", provisioned, re.MULTILINE).group(1)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Cross-validation score", "Holdout score", "Trainings per minute"} <= titles
    provider = (RESOURCES / "grafana" / "provisioning" / "dashboards" / "menace.yml").read_text()
    assert "type: file" in provider and "path:" in provider


def test_spec_example_serves_on_port_8001():
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8001)) == 0:
            pytest.skip("port 8001 is in use on this machine")
    server = start_metrics_server(8001)  # as docs/learning_engine.md writes it
    try:
        assert server.url == "http://127.0.0.1:8001/metrics"
        assert "learning_holdout_score" in scrape("http://localhost:8001/metrics")
    finally:
        server.stop()


def test_dashboard_shows_learning_live_and_keeps_services_apart():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "instance" in variables and variables["instance"]["includeAll"]
    exprs = dashboard_exprs() + [a["expr"] for a in dashboard["annotations"]["list"]]
    for expr in exprs:  # every query is filtered by the chosen services, none sums them together
        for metric in re.findall(r"\blearning_[a-z_]+\{[^}]*\}|\blearning_[a-z_]+\b(?!\{)", expr):
            assert 'instance=~"$instance"' in metric, expr
        for group in re.findall(r"\b(?:sum|max) by \(([^)]*)\)", expr):
            assert "instance" in group, expr
    curve = next(p for p in dashboard["panels"] if p["title"] == "Test-then-train accuracy vs guessing")
    assert [t["expr"].split("{")[0] for t in curve["targets"]] == [
        "learning_prequential_accuracy", "learning_prequential_baseline"]
    (drift,) = dashboard["annotations"]["list"]
    assert "learning_drift_total" in drift["expr"]
    provisioned = (RESOURCES / "grafana" / "provisioning" / "datasources" / "menace.yml").read_text()
    assert "timeInterval: 15s" in provisioned
    assert "scrape_interval: 15s" in (RESOURCES / "prometheus" / "prometheus.yml").read_text()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
def test_promtool_accepts_every_dashboard_query(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs() + [a["expr"] for a in dashboard["annotations"]["list"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"menace:dashboard_query_{i}",
         "expr": e.replace("$instance", ".*").replace("$__rate_interval", "1m")}
        for i, e in enumerate(exprs)
    ]}]}
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
