"""Test-then-train scores, drift and its policy: what an operator sees while the model learns."""

from __future__ import annotations

import json
import random
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from menace import events
from menace.embeddings import HashingEmbedder
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.metrics_exporter import LearningMetrics
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.prequential import DriftMonitor, OnlineQuality, PrequentialScore
from menace.self_learning_coordinator import SelfLearningCoordinator

STEPS = ["fetch", "parse", "store", "login", "scan", "patch", "deploy", "notify"]


def stream(n: int, seed: int = 0, flip_at: int | None = None, t0: float = 1.7e9) -> list[PathwayRecord]:
    """Runs whose success is learnable from the text; after ``flip_at`` the concept flips."""
    rng = random.Random(seed)
    pathways = ["->".join(rng.sample(STEPS, 3)) for _ in range(30)]
    good = {p: rng.random() < 0.5 for p in pathways}
    out = []
    for i in range(n):
        actions = rng.choice(pathways)
        ok = good[actions] if flip_at is None or i < flip_at else not good[actions]
        if rng.random() < 0.05:
            ok = not ok
        out.append(PathwayRecord(actions, exec_time=1.0, roi=1.0, outcome="SUCCESS" if ok else "FAILURE",
                                 ts=t0 + i))
    return out


@pytest.fixture
def stores(tmp_path, bus):
    pdb = PathwayDB(tmp_path / "pathways.db", event_bus=bus)
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder=HashingEmbedder(64))
    yield pdb, mm
    pdb.close()
    mm.close()


# -- the rolling figures ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(1, 40),
    batches=st.lists(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), max_size=50), max_size=12),
)
def test_rolling_figures_match_a_brute_force_count(window, batches):
    score = PrequentialScore(window)
    seen: list[tuple[int, float]] = []
    for batch in batches:
        score.update(np.array([b[0] for b in batch]), np.array([b[1] for b in batch]))
        seen += batch
    snapshot = score.snapshot()
    if not seen:
        assert snapshot is None
        return
    last = seen[-window:]
    y = np.array([b[0] for b in last])
    p = np.array([b[1] for b in last])
    assert snapshot["n_window"] == len(last) and snapshot["n_total"] == len(seen)
    assert snapshot["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y == 1)))
    assert snapshot["baseline"] == pytest.approx(max(y.mean(), 1 - y.mean()))
    assert snapshot["brier"] == pytest.approx(np.mean((p - y) ** 2))
    all_y = np.array([b[0] for b in seen])
    assert snapshot["accuracy_total"] == pytest.approx(np.mean((np.array([b[1] for b in seen]) >= 0.5) == (all_y == 1)))
    restored = PrequentialScore.from_state(json.loads(json.dumps(score.state())), window).snapshot()
    assert restored == pytest.approx(snapshot)


@pytest.mark.parametrize("state", [
    {"y": [0, 1], "p": [0.5]}, {"y": [2], "p": [0.5], "n_total": 1}, {"y": [1], "p": [1.5], "n_total": 1},
    {"y": [], "p": [], "n_total": -1}, {"y": [1], "p": [0.9], "n_total": 1, "correct_total": 5}, "nope",
])
def test_a_damaged_saved_state_is_refused(state):
    with pytest.raises(ValueError):
        PrequentialScore.from_state(state)


# -- inside every incremental update --------------------------------------------------------------


def test_each_update_scores_its_runs_before_learning_them(stores):
    pdb, mm = stores
    registry = CollectorRegistry()
    engine = LearningEngine(pdb, mm, metrics=LearningMetrics(registry), prequential_window=100)
    runs = stream(600)
    for start in range(0, 600, 50):
        engine.partial_train(runs[start : start + 50])
    snapshot = engine.prequential_snapshot()
    # the first batch met no model (nothing to test it with); the other 550 were predicted first
    assert snapshot["n_total"] == 550 and snapshot["n_window"] == 100
    assert snapshot["model"] == "logreg" and snapshot["engine"] == "pathways"
    assert snapshot["accuracy"] > snapshot["baseline"] + 0.1  # it beats guessing
    assert 0.0 <= snapshot["log_loss"] < 0.7
    gauge = registry.get_sample_value("learning_prequential_accuracy", {"engine": "pathways"})
    assert gauge == pytest.approx(snapshot["accuracy"])
    assert registry.get_sample_value("learning_prequential_baseline", {"engine": "pathways"}) == pytest.approx(
        snapshot["baseline"])


def test_the_curve_survives_a_restart_and_is_never_mixed_across_models(tmp_path, stores):
    pdb, mm = stores
    path = tmp_path / "prequential.jsonl"
    engine = LearningEngine(pdb, mm, prequential_path=path, prequential_save_interval=0.0)
    runs = stream(300)
    for start in range(0, 300, 30):
        engine.partial_train(runs[start : start + 30])
    engine.save()
    before = engine.prequential_snapshot()
    points = engine.prequential_history()
    assert len(points) >= 5 and points[-1]["n_total"] == before["n_total"] == 270
    assert all(p["model"] == "logreg" for p in points)

    restarted = LearningEngine(pdb, mm, prequential_path=path)
    assert restarted.prequential_snapshot()["n_total"] == 270  # the rolling figures go on
    assert restarted.prequential_history() == points
    pdb.log_many(stream(60, seed=3, t0=2e9))
    restarted.auto_train(["rf"], cv=3)  # another model: its figures start afresh
    assert restarted.prequential_snapshot() is None


# -- drift ----------------------------------------------------------------------------------------


def test_the_drift_monitor_finds_a_rise_of_the_error_rate_not_a_fall():
    rng = np.random.default_rng(0)
    monitor = DriftMonitor()
    assert monitor.update((rng.random(2000) < 0.05).astype(int)) is None  # steady
    drift = monitor.update((rng.random(600) < 0.5).astype(int))
    assert drift is not None and drift.error_after > drift.error_before + 0.2
    assert drift.runs_after < 600
    better = DriftMonitor()
    better.update((rng.random(2000) < 0.5).astype(int))
    assert better.update((rng.random(600) < 0.05).astype(int)) is None  # the model got better


def errs(rng, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and labels of n runs, wrong at ``rate``."""
    y = (rng.random(n) < 0.6).astype(np.int64)
    wrong = rng.random(n) < rate
    return np.where(wrong, 1 - y, y).astype(float), y


def test_a_model_learning_from_nothing_is_watched_for_drift_only_once_grown():
    """A fresh model's first runs are its learning: it errs less on pathways seen before,
    which the prefetcher has it learn first, so its errors rise early with no change in the
    workflows. That is not a drift; the same rise in a grown model is."""
    for grown in (False, True):
        rng = np.random.default_rng(5)
        quality = OnlineQuality("pathways", LearningMetrics(CollectorRegistry()))
        if grown:
            quality.new_model(family_changed=False)  # a full training made it
        found = []
        for n, rate in ((300, 0.1), (500, 0.35), (1500, 0.3)):
            for _ in range(0, n, 50):
                quality.score(*errs(rng, 50, rate), "logreg")
                if (drift := quality.pop_drift()) is not None:
                    found.append(drift)
        if grown:
            assert found and found[0].error_after > found[0].error_before + 0.1
        else:
            assert found == [], found


class Recorder:
    def __init__(self, bus) -> None:
        self.events: list[tuple[str, dict]] = []
        bus.subscribe("*", lambda topic, payload: self.events.append((topic, payload)))

    def of(self, topic: str) -> list[dict]:
        return [p for t, p in self.events if t == topic]


@pytest.mark.timeout(120)
def test_a_flipped_concept_is_found_retrained_on_and_accuracy_recovers(bus, stores):
    pdb, mm = stores
    engine = LearningEngine(pdb, mm, prequential_window=200)
    recorder = Recorder(bus)
    coordinator = SelfLearningCoordinator(
        bus, engine, batch_size=25, batch_wait=0.005, eval_every_examples=0, eval_every_seconds=0.0,
    ).start()
    try:
        runs = stream(3000, flip_at=1500)
        for start in range(0, 3000, 25):
            pdb.log_many(runs[start : start + 25])
            assert coordinator.wait_idle(30)  # the engine sees the stream in the batches it was logged in
        assert coordinator.wait_idle(60)
    finally:
        coordinator.stop()
    drifts = recorder.of(events.LEARNING_DRIFT)
    learned = sum(p["examples"] for p in recorder.of(events.LEARNING_TRAINED) if p.get("mode") == "partial")
    assert drifts, (
        f"the flip was not found: {learned} runs learned, errors {recorder.of(events.LEARNING_ERROR)[:3]}, "
        f"curve {[(p['n_total'], round(p['accuracy'], 3)) for p in recorder.of(events.LEARNING_PREQUENTIAL)]}"
    )
    first = drifts[0]
    assert first["n_examples"] > 1500 - 25 and first["error_after"] > first["error_before"]
    assert first["action"] == "retrain"
    retrains = [p for p in recorder.of(events.LEARNING_TRAINED) if p.get("reason") == "drift"]
    assert retrains and retrains[0]["mode"] == "full"
    assert len(retrains) <= 2  # one change, one retrain (a second only if the first came too early)
    assert 200 <= retrains[0]["examples"] <= 5000
    found_after = first["n_examples"] - 1475  # runs after the flip when it was found
    assert found_after < 500, f"found only {found_after} runs after the change"
    curve = recorder.of(events.LEARNING_PREQUENTIAL)
    assert curve and all(p["model"] == "logreg" for p in curve)
    final = curve[-1]
    assert final["accuracy"] > 0.85 and final["accuracy"] > final["baseline"] + 0.1  # recovered


def test_prequential_events_are_rate_limited_under_a_flood(bus, stores):
    pdb, mm = stores
    engine = LearningEngine(pdb, mm)
    recorder = Recorder(bus)
    coordinator = SelfLearningCoordinator(bus, engine, batch_size=8, batch_wait=0.0,
                                          eval_every_examples=0, eval_every_seconds=0.0).start()
    try:
        started = time.monotonic()
        for start in range(0, 2000, 8):
            pdb.log_many(stream(8, seed=start, t0=1.7e9 + start))
        assert coordinator.wait_idle(60)
        took = time.monotonic() - started
    finally:
        coordinator.stop()  # sends the figures as learning stopped
    updates = [p for p in recorder.of(events.LEARNING_TRAINED) if p["mode"] == "partial"]
    published = recorder.of(events.LEARNING_PREQUENTIAL)
    assert len(updates) > 50
    assert 1 <= len(published) <= took / 0.5 + 2  # at most two a second, plus the last
    assert published[-1]["n_total"] == engine.prequential_snapshot()["n_total"]  # the last one is sent


def test_the_drift_monitor_reports_the_same_drift_whatever_the_batch_size():
    rng = np.random.default_rng(3)
    errors = np.r_[(rng.random(1500) < 0.05), (rng.random(800) < 0.5)].astype(int)
    found = []
    for batch in (1, 7, 64, 500):
        monitor = DriftMonitor()
        drifts = [d for i in range(0, len(errors), batch) if (d := monitor.update(errors[i : i + batch]))]
        found.append((drifts[0].n_examples, drifts[0].runs_after, round(drifts[0].error_before, 6)))
    assert len(set(found)) == 1, found
    assert 1500 < found[0][0] < 1800


def test_the_linear_fast_path_gives_the_pipelines_probabilities(stores):
    pdb, mm = stores
    pdb.log_many(stream(300))
    engine = LearningEngine(pdb, mm)
    engine.train()
    live = engine.live_model
    runs = pdb.runs(limit=50)
    X = engine.features_of(np.array([[r["prior_frequency"], r["exec_time"], r["roi"], r["prior_myelination"]]
                                     for r in runs]), [r["actions"] for r in runs])
    fast = live.family.predict_proba(live.estimator, X)
    assert np.allclose(fast, live.estimator.predict_proba(X)[:, 1], atol=1e-12)


def test_a_model_still_learning_from_nothing_is_no_drift(stores):
    """Noisy outcomes from the first run: a model grown by updates alone errs a lot at first;
    that is learning, not drift (no alarm before it has seen a thousand runs)."""
    pdb, mm = stores
    engine = LearningEngine(pdb, mm)
    rng = random.Random(1)
    runs = [PathwayRecord(rng.choice(["a->b", "c->d"]), exec_time=1.0, roi=1.0,
                          outcome="SUCCESS" if rng.random() < 0.67 else "FAILURE", ts=1.7e9 + i)
            for i in range(900)]
    for start in range(0, 900, 30):
        engine.partial_train(runs[start : start + 30])
        assert engine.pop_drift() is None


def test_a_drift_retrain_falling_due_while_stopping_is_not_an_error(bus, stores, caplog):
    """stop() still learns the queued runs; a retrain that falls due among them is not
    queued on a stopping coordinator, and the runs after it are learned all the same."""
    pdb, mm = stores
    engine = LearningEngine(pdb, mm, prequential_window=200)
    recorder = Recorder(bus)
    gate = threading.Event()
    learn = engine.partial_train

    def held(batch):  # the worker waits until every run is queued and stop() has begun
        gate.wait(30)
        return learn(batch)

    engine.partial_train = held
    coordinator = SelfLearningCoordinator(
        bus, engine, batch_size=25, batch_wait=0.005, eval_every_examples=0, eval_every_seconds=0.0,
    ).start()
    runs = stream(3000, flip_at=1500)
    for start in range(0, 3000, 25):
        pdb.log_many(runs[start : start + 25])
    threading.Timer(0.3, gate.set).start()
    with caplog.at_level("ERROR"):
        left = coordinator.stop(timeout=60)
    assert left == []
    assert recorder.of(events.LEARNING_DRIFT)  # the flip was found during the drain
    assert engine.n_seen == 3000  # and every run was learned, after it too
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
