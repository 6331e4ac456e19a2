"""LocalClient: the MenaceClient of a stack running in this process, on real files."""

from __future__ import annotations

import threading
import time

import pytest

from menace import events
from menace.client import ClientStatus, Counts, LoggedRun, MenaceClient, Prediction
from menace.errors import FieldError
from menace.jobs import JobState
from menace.local_client import LocalClient, last_event_before
from menace.self_learning_service import run_background


@pytest.fixture
def running(data_dir):
    asked = time.time()
    start, stop = run_background(data_dir=data_dir, metrics_port=0, watch_runs=False)
    stack = start()
    client = LocalClient(stack, session_start=asked)
    yield stack, client
    client.close()
    stop()


def test_it_is_a_menace_client_and_says_where_it_is(running):
    stack, client = running
    assert isinstance(client, MenaceClient)
    status = client.status()
    assert isinstance(status, ClientStatus)
    assert status.location == str(stack.settings.data_dir)
    assert status.model == stack.engine.model_name and status.learner
    assert status.trained is False and status.metrics_url is None


def test_log_run_returns_the_run_and_pathway_ids(running):
    stack, client = running
    logged = client.log_run({"actions": "a->b", "exec_time": 1.5, "outcome": "FAILURE", "roi": 0.5})
    assert isinstance(logged, LoggedRun)
    (run,) = stack.pathway_db.runs(logged.pathway_id)
    assert run["id"] == logged.run_id
    again = client.log_run({"actions": "a->b"})
    assert again.pathway_id == logged.pathway_id and again.run_id > logged.run_id
    assert client.find_pathway("a->b").frequency == 2
    assert client.counts() == Counts(pathways=1, runs=2, memory=0)


def test_log_run_refuses_unknown_keys_and_bad_values_naming_the_field_and_writes_nothing(running):
    stack, client = running
    with pytest.raises(FieldError) as unknown:
        client.log_run({"actions": "a->b", "speed": 3, "colour": "red"})
    assert unknown.value.field == "colour" and "speed" in str(unknown.value)
    with pytest.raises(FieldError) as bad:
        client.log_run({"actions": "a->b", "exec_time": -1})
    assert bad.value.field == "exec_time"
    with pytest.raises(FieldError) as outcome:
        client.log_run({"actions": "a->b", "outcome": "MAYBE"})
    assert outcome.value.field == "outcome"
    assert stack.pathway_db.count_runs() == 0


def test_concurrent_log_runs_each_get_their_own_run_id(running):
    stack, client = running
    results: dict[str, list[LoggedRun]] = {}

    def writer(name: str) -> None:
        results[name] = [client.log_run({"actions": f"{name}->step", "roi": float(i)}) for i in range(40)]

    threads = [threading.Thread(target=writer, args=(f"w{i}",), name=f"writer-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = {r["id"]: r for r in stack.pathway_db.runs()}
    ids = [logged.run_id for logged_runs in results.values() for logged in logged_runs]
    assert len(set(ids)) == len(ids) == 160
    for name, logged_runs in results.items():
        pathway = stack.pathway_db.find(f"{name}->step")
        for i, logged in enumerate(logged_runs):
            assert logged.pathway_id == pathway.id
            assert runs[logged.run_id]["pathway_id"] == pathway.id and runs[logged.run_id]["roi"] == float(i)


def test_log_interaction_returns_the_memory_id_and_memory_finds_it(running):
    _stack, client = running
    memory_id = client.log_interaction("where is the zebra report?", "in the archive", ["reports"])
    found = client.memory("zebra")
    assert [entry.id for entry in found] == [memory_id]
    assert client.memory()[0].id == memory_id
    with pytest.raises(FieldError) as empty:
        client.log_interaction("", "orphan answer")
    assert empty.value.field == "prompt"
    assert client.counts().memory == 1


def test_events_live_and_since_an_id_without_duplicates(running):
    stack, client = running
    start = client.status().session_event_id
    early = client.events_since(start)
    assert [e.topic for e in early] == [events.SERVICE_STARTED]
    received = []
    client.subscribe(received.append)
    client.log_run({"actions": "x->y"})
    assert [e.topic for e in received] == [events.PATHWAY_NEW]
    assert client.events_since(early[-1].id) == received
    client.unsubscribe(received.append)
    client.log_run({"actions": "x->y"})
    assert len(received) == 1


def test_last_event_before_looks_back_past_many_events(bus):
    for i in range(300):
        bus.publish("test:old", {"i": i})
    boundary_ts = time.time()
    time.sleep(0.01)
    for i in range(1000):
        bus.publish("test:new", {"i": i})
    boundary = last_event_before(bus, boundary_ts)
    after = bus.events_since(boundary, limit=5000)
    assert len(after) == 1000 and {e.topic for e in after} == {"test:new"}
    assert last_event_before(bus, 0.0) == 0


def test_predict_and_jobs_go_to_the_engine_and_coordinator(running):
    stack, client = running
    for i in range(30):
        client.log_run({"actions": f"s{i % 3}->t", "outcome": "SUCCESS" if i % 2 else "FAILURE", "roi": i / 10})
    untrained = client.predict(1, 1.0, 0.5, 0.0, "s1->t")
    assert untrained == Prediction(0.5, stack.engine.model_name, False)
    job_id = client.submit_job("train")
    stack.coordinator.wait_job(job_id, timeout=30)
    info = client.job(job_id)
    assert info.id == job_id and info.kind == "train" and info.state == JobState.DONE
    assert client.predict(1, 1.0, 0.5, 0.0, "s1->t").trained
    assert client.cancel_job(job_id) is False  # it has ended
    assert [j.id for j in client.jobs()] == [job_id]
    assert client.job(10_000) is None
    with pytest.raises(FieldError) as kind:
        client.submit_job("dance")
    assert kind.value.field == "kind"
    with pytest.raises(FieldError) as option:
        client.submit_job("train", cv=3)
    assert option.value.field == "cv"
    evaluation = client.submit_job("evaluate", cv=3, test_split=0.25)
    stack.coordinator.wait_job(evaluation, timeout=30)
    history = client.evaluation_history()
    assert history and 0.0 <= history[-1]["cv_score"] <= 1.0


def test_close_unsubscribes_everything_and_leaves_the_stack_running(running):
    stack, client = running
    before = stack.bus.subscriber_count()
    received = []
    client.subscribe(received.append)
    client.close()
    client.close()
    assert stack.bus.subscriber_count() == before - 2  # its two capture subscriptions too
    stack.pathway_db.log_many([])
    assert stack.coordinator.running
    assert received == []


def test_explain_predict_many_and_model_examples_reach_the_engine(running):
    stack, client = running
    assert client.status().model_examples == 0 and not client.status().trained
    for i in range(30):
        client.log_run({"actions": f"s{i % 3}->t", "outcome": "SUCCESS" if i % 2 else "FAILURE", "roi": i / 10})
    stack.coordinator.wait_job(client.submit_job("train"), timeout=30)
    assert client.status().model_examples == stack.engine.n_seen == 30
    explanation = client.explain(1, 1.0, 0.5, 0.0, "s1->t")
    assert explanation.probability == pytest.approx(client.predict(1, 1.0, 0.5, 0.0, "s1->t").probability)
    assert {c.name for c in explanation.contributions} >= {"roi", "step 1", "step 2"}
    batch = client.predict_many([{"freq": 1, "exec_time": 1.0, "roi": 0.5, "myelination": 0.0, "actions": "s1->t"}])
    assert batch[0].probability == pytest.approx(explanation.probability)
