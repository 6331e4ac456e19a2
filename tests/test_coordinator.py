"""SelfLearningCoordinator with the real bus, stores and LearningEngine."""

from __future__ import annotations

import random
import re
import threading
import time
import urllib.request

import pytest
from prometheus_client import REGISTRY

from menace import events
from menace.gpt_memory import GPTMemory
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.metrics_exporter import start_metrics_server
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.self_learning_coordinator import JobState, SelfLearningCoordinator

ACTIONS = ["fetch->parse->store", "login->search->buy", "scan->patch->deploy", "read->summarise"]


class Recorder:
    """Every event on the bus, in order, with a wait helper."""

    def __init__(self, bus) -> None:
        self.events: list[tuple[str, dict]] = []
        self._cond = threading.Condition()
        bus.subscribe("*", self)

    def __call__(self, topic: str, payload: dict) -> None:
        with self._cond:
            self.events.append((topic, payload))
            self._cond.notify_all()

    def of(self, topic: str) -> list[dict]:
        with self._cond:
            return [p for t, p in self.events if t == topic]

    def wait_for(self, topic: str, predicate=lambda p: True, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, p in self.events:
                    if t == topic and predicate(p):
                        return p
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {topic} event within {timeout} s; saw {self.topics()}")
                self._cond.wait(remaining)

    def topics(self) -> list[str]:
        return [t for t, _ in self.events]


def records(n: int, seed: int = 0) -> list[PathwayRecord]:
    """Runs whose outcome mostly depends on the action text (learnable)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        actions = ACTIONS[i % len(ACTIONS)]
        good = actions != "scan->patch->deploy"
        if rng.random() < 0.1:
            good = not good
        out.append(
            PathwayRecord(
                actions, exec_time=rng.uniform(0.1, 2.0), roi=rng.uniform(0, 3),
                outcome="SUCCESS" if good else "FAILURE",
            )
        )
    return out


@pytest.fixture
def stores(backend, bus):
    """The coordinator's stores, on each backend (SQLite files, PostgreSQL)."""
    pdb = backend.pathway_db(event_bus=bus)
    mm = backend.memory(event_bus=bus)
    yield pdb, mm
    pdb.close()
    mm.close()


@pytest.fixture
def engine(tmp_path, stores):
    pdb, mm = stores
    return LearningEngine(
        pdb, mm, persist_path=tmp_path / "evaluations.jsonl", model_dir=tmp_path / "models"
    )


@pytest.fixture
def recorder(bus):
    return Recorder(bus)


@pytest.fixture
def make_coordinator(bus, engine):
    made = []

    def make(**kwargs):
        kwargs.setdefault("batch_size", 16)
        kwargs.setdefault("batch_wait", 0.01)
        kwargs.setdefault("eval_every_examples", 0)  # periodic evaluation only where a test asks for it
        kwargs.setdefault("eval_every_seconds", 0.0)
        coordinator = SelfLearningCoordinator(bus, kwargs.pop("engines", engine), **kwargs)
        made.append(coordinator)
        return coordinator.start()

    yield make
    for coordinator in made:
        coordinator.stop()


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == SelfLearningCoordinator.WORKER_NAME]


def test_pathway_events_change_the_model_and_announce_training(stores, engine, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator()
    before = engine.predict_success(0, 1.0, 1.0, 0.0, "scan->patch->deploy")
    ids = [pdb.log(r) for r in records(48)]
    assert coordinator.wait_idle(10)

    trained = recorder.of(events.LEARNING_TRAINED)
    assert trained and all(p["mode"] == "partial" and p["engine"] == "pathways" for p in trained)
    learned_runs = sorted(r for p in trained for r in p["run_ids"])
    assert learned_runs == [r["id"] for r in pdb.runs()]
    assert sum(p["examples"] for p in trained) == len(ids) == engine.n_seen
    assert engine.is_trained
    assert engine.predict_success(0, 1.0, 1.0, 0.0, "scan->patch->deploy") != before
    stats = coordinator.stats()
    assert stats["handled"][events.PATHWAY_NEW] == 48
    assert stats["examples"]["pathways"] == 48
    assert stats["failed"] == {}


def test_batches_are_bounded_by_batch_size_and_grow_only_to_catch_up(stores, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator(batch_size=5, max_batch_size=8, batch_wait=0.2)
    pdb.log_many(records(23))  # all queued at once: the worker is behind
    assert coordinator.wait_idle(10)
    sizes = [p["examples"] for p in recorder.of(events.LEARNING_TRAINED)]
    assert max(sizes) <= 8 and sum(sizes) == 23

    for record in records(3, seed=1):  # a trickle: batches stay small
        pdb.log(record)
        assert coordinator.wait_idle(10)
    assert [p["examples"] for p in recorder.of(events.LEARNING_TRAINED)][-3:] == [1, 1, 1]


def failed_metric(topic: str) -> float:
    return REGISTRY.get_sample_value("learning_events_failed_total", {"topic": topic}) or 0.0


def test_bad_payload_is_counted_and_skipped(bus, stores, engine, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator()
    metric_before = failed_metric(events.PATHWAY_NEW)
    good = {"pathway_id": 1, "run_id": 999, "actions": "a->b", "exec_time": 1.0, "roi": 1.0,
            "outcome": "SUCCESS", "label": 1, "prior_frequency": 0, "prior_myelination": 0.0}
    bad = [
        {},
        {**good, "run_id": "seven"},
        {**good, "exec_time": -1.0},
        {**good, "outcome": "MAYBE"},
        {**good, "label": 0},  # contradicts the outcome
        {k: v for k, v in good.items() if k != "actions"},
    ]
    for payload in bad:
        bus.publish(events.PATHWAY_NEW, payload)
    bus.publish(events.MEMORY_NEW, {"memory_id": "x"})
    pdb.log_many(records(8))
    assert coordinator.wait_idle(10)

    stats = coordinator.stats()
    assert stats["failed"] == {events.PATHWAY_NEW: len(bad), events.MEMORY_NEW: 1}
    assert failed_metric(events.PATHWAY_NEW) - metric_before == len(bad)
    assert coordinator.running and worker_threads()
    assert engine.n_seen == 8  # the good events after the bad ones were learned


def test_engine_failure_is_reported_and_the_worker_carries_on(bus, stores, engine, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator(batch_wait=0.2)
    # Valid for the coordinator, refused by the engine (NUL in the action text).
    poison = {"pathway_id": 1, "run_id": 10_000, "actions": "a\x00b", "exec_time": 1.0, "roi": 1.0,
              "outcome": "FAILURE", "prior_frequency": 0, "prior_myelination": 0.0}
    bus.publish(events.PATHWAY_NEW, poison)
    pdb.log_many(records(6))
    assert coordinator.wait_idle(10)

    error = recorder.wait_for(events.LEARNING_ERROR)
    assert error["source"] == events.PATHWAY_NEW and error["run_id"] == 10_000 and error["job_id"] is None
    assert "actions" in error["error"]
    assert coordinator.stats()["failed"] == {events.PATHWAY_NEW: 1}
    assert engine.n_seen == 6  # the rest of the batch was learned one by one


def scraped_value(text: str, name: str) -> float:
    match = re.search(rf'^{name}{{engine="pathways"}} (\S+)$', text, re.MULTILINE)
    assert match, f"{name} not in the scrape"
    return float(match.group(1))


def test_evaluation_every_n_examples_publishes_scores_that_reach_metrics(stores, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator(eval_every_examples=40, batch_size=20, max_batch_size=20)
    pdb.log_many(records(80))
    assert coordinator.wait_idle(20)

    evaluated = recorder.of(events.LEARNING_EVALUATED)
    assert len(evaluated) == 2 and all(p["trigger"] == "examples" for p in evaluated)
    last = evaluated[-1]
    assert 0.0 <= last["cv_score"] <= 1.0 and 0.0 <= last["holdout_score"] <= 1.0
    assert last["n_examples"] == 80 and last["job_id"] is None
    with start_metrics_server(0) as server:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            text = response.read().decode()
    assert scraped_value(text, "learning_cv_score") == pytest.approx(last["cv_score"])
    assert scraped_value(text, "learning_holdout_score") == pytest.approx(last["holdout_score"])
    assert REGISTRY.get_sample_value("learning_evaluations_total", {"engine": "pathways"}) >= 2


def test_evaluation_every_t_seconds_while_the_model_changes(stores, recorder, make_coordinator):
    pdb, _ = stores
    make_coordinator(eval_every_seconds=0.3)
    pdb.log_many(records(40))
    payload = recorder.wait_for(events.LEARNING_EVALUATED, timeout=10)
    assert payload["trigger"] == "interval"
    time.sleep(0.8)  # nothing new learned: no further evaluation
    assert len(recorder.of(events.LEARNING_EVALUATED)) == 1


def test_periodic_evaluation_with_too_little_data_is_skipped_quietly(stores, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator(eval_every_examples=2)
    pdb.log_many(records(4))
    assert coordinator.wait_idle(10)
    assert recorder.of(events.LEARNING_EVALUATED) == []
    assert recorder.of(events.LEARNING_ERROR) == []


class ThreadRecordingEngine(LearningEngine):
    """The real engine, noting which thread calls its training methods."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.threads: set[str] = set()

    def partial_train(self, batch):
        self.threads.add(threading.current_thread().name)
        return super().partial_train(batch)

    def train(self, progress=None, cancel=None):
        self.threads.add(threading.current_thread().name)
        return super().train(progress, cancel)

    def evaluate(self, *args, **kwargs):
        self.threads.add(threading.current_thread().name)
        return super().evaluate(*args, **kwargs)


def test_manual_jobs_and_events_share_the_one_worker(tmp_path, stores, recorder, make_coordinator):
    pdb, mm = stores
    engine = ThreadRecordingEngine(pdb, mm, model_dir=tmp_path / "m2")
    coordinator = make_coordinator(engines={"pathways": engine})
    pdb.log_many(records(60))
    train_id = coordinator.request_train()
    eval_id = coordinator.request_evaluate(cv=3, test_split=0.25)
    assert coordinator.wait_job(train_id, 20).state == JobState.DONE
    evaluation = coordinator.wait_job(eval_id, 20)
    assert evaluation.state == JobState.DONE and evaluation.result["cv"] == 3
    assert coordinator.wait_idle(10)

    assert engine.threads == {SelfLearningCoordinator.WORKER_NAME}
    full = recorder.wait_for(events.LEARNING_TRAINED, lambda p: p["mode"] == "full")
    assert full["job_id"] == train_id and full["examples"] == 60
    assert recorder.wait_for(events.LEARNING_EVALUATED, lambda p: p["job_id"] == eval_id)["trigger"] == "manual"
    progress = [p for p in recorder.of(events.LEARNING_PROGRESS) if p["job_id"] == train_id]
    assert progress[0]["fraction"] == 0.0 and progress[-1]["fraction"] == 1.0
    assert all(p["kind"] == "train" and p["engine"] == "pathways" for p in progress)


def test_trained_events_say_through_which_run_the_model_learned(stores, recorder, make_coordinator):
    """A full training lists no run ids, so its event says the newest run it learned; runs it
    fitted are not learned again, and later updates carry on from there."""
    pdb, _ = stores
    coordinator = make_coordinator()
    pdb.log_many(records(60))
    assert coordinator.wait_idle(20)
    partial = recorder.of(events.LEARNING_TRAINED)
    assert partial and all(p["mode"] == "partial" for p in partial)
    assert partial[-1]["learned_through"] == max(partial[-1]["run_ids"]) == pdb.newest_run_id()
    assert coordinator.wait_job(coordinator.request_train(), 20).state == JobState.DONE
    full = recorder.wait_for(events.LEARNING_TRAINED, lambda p: p["mode"] == "full")
    assert full["learned_through"] == pdb.newest_run_id() == 60 and "run_ids" not in full
    pdb.log_many(records(5))
    assert coordinator.wait_idle(20)
    after = recorder.of(events.LEARNING_TRAINED)[-1]
    assert after["mode"] == "partial" and after["learned_through"] == max(after["run_ids"]) == 65


def test_auto_train_job_reports_the_best_model(stores, recorder, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator()
    pdb.log_many(records(60))
    job = coordinator.wait_job(coordinator.request_auto_train(["logreg", "rf"]), 60)
    assert job.state == JobState.DONE and job.result in {"logreg", "rf"}
    payload = recorder.wait_for(events.LEARNING_TRAINED, lambda p: p["mode"] == "auto")
    assert payload["best"] == job.result and set(payload["scores"]) == {"logreg", "rf"}


def test_a_failed_job_publishes_an_error(stores, recorder, make_coordinator):
    coordinator = make_coordinator()
    job = coordinator.wait_job(coordinator.request_evaluate(), 10)  # no data at all
    assert job.state == JobState.FAILED and job.error
    error = recorder.wait_for(events.LEARNING_ERROR, lambda p: p["job_id"] == job.id)
    assert error["source"] == "evaluate"
    assert coordinator.running


class SlowEngine(LearningEngine):
    """Training that takes until it is cancelled (or 10 s), checking like the real one."""

    def train(self, progress=None, cancel=None):
        self.entered.set()
        cancel.wait(10)
        return super().train(progress, cancel)  # raises TrainingCancelled once cancel is set


def test_cancel_a_running_and_a_queued_job(tmp_path, stores, recorder, make_coordinator):
    pdb, mm = stores
    engine = SlowEngine(pdb, mm, model_dir=tmp_path / "m3")
    engine.entered = threading.Event()
    coordinator = make_coordinator(engines={"pathways": engine})
    pdb.log_many(records(20))
    running = coordinator.request_train()
    queued = coordinator.request_train()
    assert engine.entered.wait(5)
    assert coordinator.cancel(queued) is True
    assert coordinator.cancel(running) is True
    assert coordinator.wait_job(running, 5).state == JobState.CANCELLED
    assert coordinator.job(queued).state == JobState.CANCELLED
    cancelled = {p["job_id"] for p in recorder.of(events.LEARNING_CANCELLED)}
    assert cancelled == {running, queued}
    assert coordinator.cancel(running) is False  # already over
    assert coordinator.cancel(12345) is False
    assert not engine.is_trained or engine.n_seen == 20  # the cancelled train left the model as it was


def test_stop_unsubscribes_joins_the_worker_and_is_idempotent(bus, stores, engine):
    pdb, _ = stores
    coordinator = SelfLearningCoordinator(bus, engine).start()
    assert bus.subscriber_count(events.PATHWAY_NEW) == 1 and worker_threads()
    pdb.log_many(records(10))
    assert coordinator.stop(timeout=5) == []  # queued events were learned before it stopped
    assert engine.n_seen == 10
    assert not worker_threads()
    assert all(bus.subscriber_count(t) == 0 for t in events.INPUT_TOPICS)
    assert coordinator.stop() == []
    pdb.log_many(records(3))  # no longer listening
    assert engine.n_seen == 10
    with pytest.raises(RuntimeError, match="not running"):
        coordinator.request_train()
    with pytest.raises(RuntimeError, match="cannot be started again"):
        coordinator.start()


def test_stop_cancels_jobs_that_have_not_started(tmp_path, bus, stores, recorder):
    pdb, mm = stores
    engine = SlowEngine(pdb, mm, model_dir=tmp_path / "m4")
    engine.entered = threading.Event()
    coordinator = SelfLearningCoordinator(bus, engine).start()
    first, second = coordinator.request_train(), coordinator.request_evaluate()
    assert engine.entered.wait(5)
    started = time.monotonic()
    coordinator.stop(timeout=5)
    assert time.monotonic() - started < 3
    assert coordinator.job(first).state == JobState.CANCELLED
    assert coordinator.job(second).state == JobState.CANCELLED
    assert not worker_threads()


def test_replayed_events_are_not_learned_twice(bus, stores, engine, make_coordinator):
    pdb, _ = stores
    coordinator = make_coordinator()
    pdb.log_many(records(12))
    assert coordinator.wait_idle(10)
    bus.replay()
    assert coordinator.wait_idle(10)
    assert engine.n_seen == 12
    assert coordinator.stats()["duplicates"] == 12


def test_workflow_plans_are_scored_and_memory_text_is_embedded(backend, bus, stores, engine, recorder, make_coordinator):
    pdb, mm = stores
    workflows = backend.workflow_db(event_bus=bus)
    code = backend.code_db(event_bus=bus)
    coordinator = make_coordinator()
    pdb.log_many(records(40))
    assert coordinator.wait_idle(10)
    cached = mm.embedding_cache_size()

    workflow_id = workflows.add("deploy fix", ["scan", "patch", "deploy"])
    GPTMemory(mm).log_interaction("how do I deploy?", "run the pipeline", tags=["ops"])
    code.add("def add(a, b):\n    return a + b\n", summary="adds two numbers")
    assert coordinator.wait_idle(10)

    scored = recorder.wait_for(events.LEARNING_SCORED)
    assert scored["workflow_id"] == workflow_id and scored["actions"] == "scan->patch->deploy"
    assert scored["pathway_id"] == pdb.find("scan->patch->deploy").id
    assert 0.0 <= scored["success_probability"] <= 1.0
    assert mm.embedding_cache_size() == cached + 2  # the memory entry and the snippet's summary
    stats = coordinator.stats()
    assert stats["embedded_texts"] == 2 and stats["workflows_scored"] == 1
    workflows.close()
    code.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"max_batch_size": 1, "batch_size": 4},
        {"batch_wait": -1},
        {"eval_every_examples": -1},
        {"eval_every_seconds": float("nan")},
    ],
)
def test_bad_settings_are_refused(bus, engine, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SelfLearningCoordinator(bus, engine, **kwargs)


def test_requests_validate_their_arguments(make_coordinator):
    coordinator = make_coordinator()
    with pytest.raises(ValueError, match="engine"):
        coordinator.request_train(engine="nope")
    with pytest.raises(ValueError, match="cv"):
        coordinator.request_evaluate(cv=1)
    with pytest.raises(ValueError, match="time_budget"):
        coordinator.request_auto_train(time_budget=-5)
    with pytest.raises(ValueError, match="candidates"):
        coordinator.request_auto_train(candidates=[])


class SlowTextEmbedder:
    """The hashing embedder, but text containing 'slow' takes 0.5 s (like a cold MiniLM call)."""

    def __init__(self) -> None:
        from menace.embeddings import HashingEmbedder

        self._inner = HashingEmbedder()
        self.name, self.dim = "slow-hashing", self._inner.dim

    def encode(self, texts):
        if any("slow" in t for t in texts):
            time.sleep(0.5)
        return self._inner.encode(texts)


def test_a_run_with_new_text_does_not_hold_up_the_runs_behind_it(tmp_path, bus, recorder):
    pdb = PathwayDB(tmp_path / "p.db", event_bus=bus)
    mm = MenaceMemoryManager(tmp_path / "m.db", embedder=SlowTextEmbedder())
    engine = LearningEngine(pdb, mm, model_dir=tmp_path / "models")
    coordinator = SelfLearningCoordinator(bus, engine, batch_size=8, batch_wait=0.01).start()
    try:
        pdb.log_many(records(8))  # the known texts get embedded
        assert coordinator.wait_idle(10)
        pdb.log(PathwayRecord("slow->new->text", exec_time=1.0, roi=1.0, outcome="SUCCESS"))  # run 9
        pdb.log_many(records(8, seed=3))  # runs 10..17, known texts
        assert coordinator.wait_idle(10)
    finally:
        coordinator.stop()
        pdb.close()
        mm.close()
    order = [r for p in recorder.of(events.LEARNING_TRAINED) for r in p["run_ids"]]
    assert sorted(order) == list(range(1, 18))
    assert order.index(9) > order.index(17)  # the runs behind it were learned while it waited
    assert not [t for t in threading.enumerate() if t.name == SelfLearningCoordinator.PREFETCH_NAME]


def test_periodic_evaluation_reads_a_capped_sample_on_its_own_thread(stores, recorder, make_coordinator):
    pdb, _ = stores
    pdb.log_many(records(300))  # stored before: not learned by this coordinator, but read by evaluations
    coordinator = make_coordinator(eval_every_examples=20, eval_max_examples=120)
    pdb.log_many(records(40, seed=3))
    assert coordinator.wait_idle(30)
    evaluated = recorder.of(events.LEARNING_EVALUATED)
    assert evaluated and all(p["n_examples"] == 120 for p in evaluated)  # the newest 120 runs only
    threads = {t.name for t in threading.enumerate()}
    assert "menace-evaluator" in threads  # evaluations run beside the training worker


def test_periodic_evaluations_take_at_most_their_share_of_the_time():
    """Under a flood an evaluation is due all the time; back to back they kept a core busy.
    After one of d seconds the evaluator rests d * (1/share - 1): here 0.1 s of work, 0.3 s of rest."""
    from menace.evaluation_schedule import PeriodicEvaluator

    ran: list[float] = []

    def evaluate(engine: str, trigger: str) -> None:
        ran.append(time.monotonic())
        time.sleep(0.1)

    evaluator = PeriodicEvaluator(evaluate, max_share=0.25)
    evaluator.start()
    started = time.monotonic()
    while time.monotonic() - started < 1.2:  # due every 10 ms, as a flood makes them
        evaluator.submit("pathways", "examples")
        time.sleep(0.01)
    assert 2 <= len(ran) <= 4, ran  # back to back: 12
    assert all(b - a >= 0.39 for a, b in zip(ran, ran[1:], strict=False)), ran
    stopping = time.monotonic()
    evaluator.stop(timeout=5)  # in a rest: ends at once
    assert time.monotonic() - stopping < 0.7 and not evaluator.thread.is_alive()
    with pytest.raises(ValueError, match="max_share"):
        PeriodicEvaluator(evaluate, max_share=0)


def test_the_drift_detector_is_loaded_when_the_worker_starts_not_by_the_first_runs(tmp_path):
    """river's import holds the GIL for about 0.1 s: done by the worker as it starts, it does
    not stall a stream of runs (and every thread of the service) when the first runs are scored."""
    import subprocess
    import sys

    script = f"""
import sys, time
from menace.unified_event_bus import UnifiedEventBus
from menace.neuroplasticity import PathwayDB
from menace.menace_memory_manager import MenaceMemoryManager
from menace.learning_engine import LearningEngine
from menace.self_learning_coordinator import SelfLearningCoordinator
assert "river.drift" not in sys.modules
bus = UnifiedEventBus()
pdb = PathwayDB(r"{tmp_path}/p.db", event_bus=bus)
mm = MenaceMemoryManager(r"{tmp_path}/m.db", embedder="hashing")
coordinator = SelfLearningCoordinator(bus, LearningEngine(pdb, mm), eval_every_examples=0, eval_every_seconds=0.0)
coordinator.start()
deadline = time.monotonic() + 20
while "river.drift" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.01)
print("loaded" if "river.drift" in sys.modules else "not loaded", coordinator.stats()["handled"])
coordinator.stop()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "loaded", out.stdout  # with no run published at all
