"""HttpClient: the MenaceClient of a service over HTTP, against a real service in this process."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from menace.client import ClientStatus, Counts, MenaceClient, Prediction, connect
from menace.config import Settings
from menace.errors import FieldError
from menace.http_client import ConnectionState, HttpClient
from menace.jobs import JobInfo
from menace.neuroplasticity import Pathway
from menace.self_learning_service import start_stack

TOKEN = "client-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(i: int = 0, **fields) -> dict:
    return {"actions": ["fetch->parse", "login->buy", "scan->fix"][i % 3], "exec_time": 0.5 + i % 5,
            "roi": float(i % 4), "outcome": "FAILURE" if i % 3 == 2 else "SUCCESS", **fields}


def serve(data_dir, port: int):
    return start_stack(Settings(data_dir=data_dir, metrics_port=port, api_token=TOKEN))


@pytest.fixture
def service(data_dir):
    stack = serve(data_dir, free_port())
    yield stack
    stack.stop()


@pytest.fixture
def client(service):
    with connect(service.api_url, TOKEN) as http:
        yield http


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_bot_logs_a_run_in_two_lines(service):
    from menace.client import connect

    connect(service.api_url, TOKEN).log_run({"actions": "fetch->parse", "exec_time": 1.2, "outcome": "SUCCESS"})
    assert service.pathway_db.count_runs() == 1


def test_a_local_client_finds_the_token_in_the_data_dir(service, data_dir, monkeypatch):
    monkeypatch.delenv("MENACE_API_TOKEN", raising=False)
    other = data_dir.parent / "other"
    stack = start_stack(Settings(data_dir=other, metrics_port=free_port()))  # makes other/api_token
    try:
        with connect(stack.api_url, data_dir=other) as http:
            assert http.counts() == Counts(0, 0, 0)
        monkeypatch.setenv("MENACE_DATA_DIR", str(other))  # a loopback URL: the default data dir's token
        with connect(stack.api_url) as http:
            assert http.counts().runs == 0
    finally:
        stack.stop()


def test_it_is_a_menace_client_and_every_method_answers(service, client):
    assert isinstance(client, MenaceClient)
    status = client.status()
    assert isinstance(status, ClientStatus) and status.location == service.api_url and status.learner
    assert status.model == "logreg" and not status.trained
    logged = client.log_run(run(0))
    assert (logged.run_id, logged.pathway_id) == (1, 1)
    assert [r.run_id for r in client.log_runs([run(i) for i in range(1, 40)])] == list(range(2, 41))
    memory_id = client.log_interaction("how to cache?", "functools.lru_cache", ["python"])
    assert [e.id for e in client.memory("lru_cache")] == [memory_id]
    assert service.coordinator.wait_idle(10)
    prediction = client.predict(3, 1.0, 2.0, 1.0, "fetch->parse")
    assert isinstance(prediction, Prediction) and prediction.trained and 0 <= prediction.probability <= 1
    predictions = client.predict_many([
        {"freq": 1, "exec_time": 1, "roi": 1, "myelination": 0, "actions": "scan->fix"}] * 3)
    assert len(predictions) == 3 and all(p.model == "logreg" and p.trained for p in predictions)
    why = client.explain(1, 1.0, 1.0, 0.0, "scan->fix")
    assert why.trained and why.contributions and 0.0 <= why.probability <= 1.0
    assert client.status().model_examples > 0
    pathways = client.pathways()
    assert len(pathways) == 3 and all(isinstance(p, Pathway) for p in pathways)
    assert client.find_pathway("login->buy").frequency == 13 and client.find_pathway("nope") is None
    assert client.counts() == Counts(pathways=3, runs=40, memory=1)
    events = client.events_since(0, limit=3)
    assert [e.id for e in events] == [1, 2, 3] and events[0].topic == "service:started"
    job_id = client.submit_job("evaluate", cv=3)
    wait_for(lambda: client.job(job_id).state in ("done", "failed"), 20)
    job = client.job(job_id)
    assert isinstance(job, JobInfo) and job.state == "done" and job.result["cv_score"] >= 0
    assert [j.id for j in client.jobs()] == [job_id]
    assert client.evaluation_history()[-1]["cv_score"] == job.result["cv_score"]
    assert client.cancel_job(job_id) is False and client.cancel_job(999) is False and client.job(999) is None


def test_refused_input_is_a_field_error_and_nothing_is_written(service, client):
    with pytest.raises(FieldError) as refused:
        client.log_run(run(0, exec_time=-1))
    assert refused.value.field == "exec_time"
    with pytest.raises(FieldError) as refused:
        client.log_runs([run(0), run(1, outcome="MAYBE")])
    assert refused.value.field == "runs[1].outcome"
    with pytest.raises(FieldError) as refused:
        client.log_run(run(0, colour="red"))
    assert refused.value.field == "colour"
    with pytest.raises(FieldError) as refused:
        client.submit_job("train", cv=3)
    assert refused.value.field == "cv"
    with pytest.raises(FieldError) as refused:
        client.submit_job("sleep")
    assert refused.value.field == "kind"
    with pytest.raises(FieldError):
        client.predict(-1, 1, 1, 1, "a")
    assert service.pathway_db.count_runs() == 0 and service.coordinator.jobs() == []


def test_a_wrong_token_is_a_permission_error_and_a_dead_url_a_connection_error(service):
    with pytest.raises(PermissionError, match="refused the API token"):
        connect(service.api_url, "wrong-token-0123456789")
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=dead):
        connect(dead, TOKEN)
    with pytest.raises(FieldError):
        connect("ftp://example", TOKEN)


def test_subscribe_never_blocks_and_reports_the_connection_state(data_dir):
    port = free_port()
    states: list[str] = []
    client = HttpClient(f"http://127.0.0.1:{port}", TOKEN, retry_first=0.05, retry_max=0.2)
    client.add_state_callback(lambda s: states.append(s.state))
    got: list = []
    started = time.monotonic()
    client.subscribe(got.append)  # nothing listens there yet
    assert time.monotonic() - started < 0.1
    wait_for(lambda: client.stream_status.state is ConnectionState.RETRYING)
    assert "127.0.0.1" in (client.stream_status.error or "") or client.stream_status.error
    stack = serve(data_dir, port)  # the service comes up: the client connects by itself
    try:
        wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED)
        client_log = HttpClient(stack.api_url, TOKEN)
        client_log.log_run(run(0))
        wait_for(lambda: any(e.topic == "pathway:new" for e in got))
        client_log.close()
    finally:
        client.close()
        stack.stop()
    assert states[0] == ConnectionState.CONNECTING and ConnectionState.RETRYING in states
    assert ConnectionState.CONNECTED in states and states[-1] == ConnectionState.CLOSED
    assert not [t for t in threading.enumerate() if t.name == HttpClient.STREAM_THREAD]


def test_the_stream_resumes_across_a_restart_without_gap_or_duplicate(data_dir):
    port = free_port()
    stack = serve(data_dir, port)
    client = connect(stack.api_url, TOKEN)
    client.retry_first, client.retry_max = 0.05, 0.2
    ids: list[int] = []
    client.subscribe(lambda event: ids.append(event.id))
    writer = HttpClient(stack.api_url, TOKEN)
    try:
        wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED)
        writer.log_runs([run(i) for i in range(10)])
        assert stack.coordinator.wait_idle(10)
        wait_for(lambda: ids and ids[-1] == stack.bus.newest_event_id())
        stack.stop()  # the service goes away ...
        wait_for(lambda: client.stream_status.state is ConnectionState.RETRYING)
        stack = serve(data_dir, port)  # ... and comes back on the same port
        writer.log_runs([run(i) for i in range(10, 20)])
        assert stack.coordinator.wait_idle(10)
        wait_for(lambda: ids and ids[-1] == stack.bus.newest_event_id())
    finally:
        client.close()
        writer.close()
        stack.stop()
    assert ids == list(range(ids[0], ids[-1] + 1)), "a gap or a duplicate"
    assert len(ids) >= 22  # 20 runs, the stop and the start: both lives of the service, with the stop and start between
    assert client.stream_status.state is ConnectionState.CLOSED


def test_unsubscribing_the_last_callback_ends_the_stream(service, client):
    got: list = []
    client.subscribe(got.append)
    wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED)
    client.unsubscribe(got.append)
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == HttpClient.STREAM_THREAD], 5)
    assert client.stream_status.state is ConnectionState.IDLE
    client.subscribe(got.append)  # and it can start again
    wait_for(lambda: client.stream_status.state is ConnectionState.CONNECTED)
