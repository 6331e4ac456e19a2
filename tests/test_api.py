"""The HTTP API of the service: auth, every route, refused input, the event stream, the server's threads."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
import time

import httpx
import pytest

from menace import config, events
from menace.api import tokens
from menace.api.server import start_api_server
from menace.config import Settings
from menace.self_learning_service import start_stack

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(i: int = 0, **fields) -> dict:
    return {"actions": ["fetch->parse", "login->buy", "scan->fix"][i % 3], "exec_time": 0.5 + i % 5,
            "roi": float(i % 4), "outcome": "FAILURE" if i % 3 == 2 else "SUCCESS", **fields}


@pytest.fixture
def service(data_dir):
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=free_port(), api_token=TOKEN))
    yield stack
    stack.stop()


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.api_url, headers=AUTH, timeout=10) as client:
        yield client


def counts(stack) -> tuple[int, int, int, int]:
    return (stack.pathway_db.count_pathways(), stack.pathway_db.count_runs(), stack.memory.count(),
            len(stack.coordinator.jobs()))


# -- auth ---------------------------------------------------------------------------------


def test_every_v1_route_needs_the_token_and_healthz_does_not(service, http):
    paths = http.get("/openapi.json").json()["paths"]
    v1 = [(method, path) for path, ops in paths.items() for method in ops if path.startswith("/v1/")]
    assert len(v1) >= 13
    for method, path in v1:
        url = path.replace("{job_id}", "1").replace("{event_id}", "0")
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
            answer = httpx.request(method, service.api_url + url, headers=headers, timeout=10)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"] == "Bearer"
    assert httpx.get(service.api_url + "/healthz").json() == {"status": "ok"}
    assert http.get("/v1/status").status_code == 200


def test_the_token_is_made_once_with_mode_0600_and_kept(data_dir):
    token = tokens.load_or_create_token(data_dir)
    path = data_dir / config.API_TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_or_create_token(data_dir) == token == tokens.read_token(data_dir)
    assert len(token) >= tokens.MIN_TOKEN_LENGTH


def test_a_given_token_writes_no_file_and_a_short_one_is_refused(data_dir, monkeypatch):
    monkeypatch.setenv("MENACE_API_TOKEN", "short")
    with pytest.raises(ValueError, match="api_token"):
        Settings(data_dir=data_dir)
    monkeypatch.setenv("MENACE_API_TOKEN", TOKEN)
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=free_port()))
    try:
        assert not (data_dir / config.API_TOKEN_FILE).exists()
        assert httpx.get(stack.api_url + "/v1/counts", headers=AUTH).status_code == 200
    finally:
        stack.stop()


def test_metrics_are_open_unless_told_to_require_the_token(data_dir, service, http):
    assert "learning_queue_depth" in httpx.get(service.metrics_url).text
    other = data_dir.parent / "other"
    stack = start_stack(Settings(data_dir=other, metrics_port=free_port(), api_token=TOKEN, metrics_auth=True))
    try:
        assert httpx.get(stack.metrics_url).status_code == 401
        assert "learning_queue_depth" in httpx.get(stack.metrics_url, headers=AUTH).text
    finally:
        stack.stop()


def test_binding_beyond_loopback_without_tls_warns(service, caplog):
    with caplog.at_level(logging.WARNING, logger="menace.api.server"):
        server = start_api_server(service, 0, "0.0.0.0", token=TOKEN)
    server.stop()
    assert "without TLS" in caplog.text and "reverse proxy" in caplog.text


# -- writes -------------------------------------------------------------------------------


def test_runs_one_or_a_list_are_stored_and_learned(service, http):
    one = http.post("/v1/runs", json=run(0))
    assert one.status_code == 201
    (logged,) = one.json()["runs"]
    many = http.post("/v1/runs", json=[run(i) for i in range(1, 30)]).json()["runs"]
    assert [r["run_id"] for r in many] == list(range(logged["run_id"] + 1, logged["run_id"] + 30))
    assert service.pathway_db.count_runs() == 30
    assert service.coordinator.wait_idle(10) and service.engine.n_seen == 30
    assert http.get("/v1/pathways/find", params={"actions": "fetch->parse"}).json()["frequency"] == 10
    assert http.get("/v1/pathways/find", params={"actions": "nope"}).status_code == 404
    assert len(http.get("/v1/pathways", params={"limit": 2}).json()) == 2
    assert http.get("/v1/counts").json() == {"pathways": 3, "runs": 30, "memory": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([run(0), run(1, exec_time=-1)], "runs[1].exec_time"),
        ([run(0), run(1, outcome="MAYBE")], "runs[1].outcome"),
        ([run(0), run(1, colour="red")], "runs[1].colour"),
        ([run(0), {"exec_time": 1}], "runs[1].actions"),
        ([run(0), run(1, actions="   ")], "runs[1].actions"),
        (run(0, roi="high"), "roi"),
        (run(0, inputs="a\x00b"), "inputs"),
        (run(0, ts=-5), "ts"),
        ("a run", "body"),
    ],
)
def test_a_bad_run_is_a_422_naming_the_field_and_nothing_is_written(service, http, body, field):
    http.post("/v1/runs", json=run(7))
    before = counts(service)
    answer = http.post("/v1/runs", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field and answer.json()["message"].startswith(field)
    assert counts(service) == before


def test_nan_and_infinity_are_refused(service, http):
    before = counts(service)
    for text in ('{"actions": "a", "roi": NaN}', '{"actions": "a", "exec_time": Infinity}'):
        answer = http.post("/v1/runs", content=text, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422 and answer.json()["field"] in ("roi", "exec_time")
    assert counts(service) == before


def test_an_interaction_is_stored_with_its_memory_id_and_found(service, http):
    answer = http.post("/v1/interactions", json={"prompt": "how to cache?", "response": "use lru_cache",
                                                 "tags": ["python"]})
    assert answer.status_code == 201
    memory_id = answer.json()["memory_id"]
    found = http.get("/v1/memory", params={"text": "lru_cache"}).json()
    assert [e["id"] for e in found] == [memory_id] and "python" in found[0]["tags"]
    assert http.get("/v1/memory").json()[0]["id"] == memory_id
    assert http.post("/v1/interactions", json={"prompt": ""}).json()["field"] == "prompt"


def test_predict_one_or_a_list_names_the_model(service, http):
    query = {"freq": 3, "exec_time": 1.0, "roi": 2.0, "myelination": 1.0, "actions": "fetch->parse"}
    untrained = http.post("/v1/predict", json=query).json()
    assert untrained == {"probabilities": [0.5], "model": "logreg", "trained": False}
    http.post("/v1/runs", json=[run(i) for i in range(60)])
    assert service.coordinator.wait_idle(10)
    answer = http.post("/v1/predict", json=[query, {**query, "actions": "scan->fix"}]).json()
    assert answer["trained"] and answer["model"] == "logreg" and len(answer["probabilities"]) == 2
    assert all(0 <= p <= 1 for p in answer["probabilities"])
    bad = http.post("/v1/predict", json=[query, {**query, "freq": -1}])
    assert bad.status_code == 422 and bad.json()["field"] == "queries[1].freq"


# -- jobs ---------------------------------------------------------------------------------


def test_jobs_are_queued_read_listed_and_cancelled(service, http):
    http.post("/v1/runs", json=[run(i) for i in range(60)])
    evaluate = http.post("/v1/jobs", json={"kind": "evaluate", "cv": 3})
    assert evaluate.status_code == 202 and evaluate.json()["kind"] == "evaluate"
    job_id = evaluate.json()["id"]
    deadline = time.monotonic() + 20
    while (job := http.get(f"/v1/jobs/{job_id}").json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["state"] == "done" and 0 <= job["result"]["cv_score"] <= 1 and job["fraction"] == 1.0
    assert http.get("/v1/evaluations").json()[-1]["cv_score"] == job["result"]["cv_score"]
    assert [j["id"] for j in http.get("/v1/jobs").json()] == [job_id]
    ended = http.delete(f"/v1/jobs/{job_id}").json()
    assert ended["cancelled"] is False and ended["job"]["state"] == "done"
    assert http.get("/v1/jobs/999").status_code == 404 and http.delete("/v1/jobs/999").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "sleep"}, "kind"),
        ({"kind": "train", "cv": 3}, "cv"),
        ({"kind": "evaluate", "cv": 1}, "cv"),
        ({"kind": "evaluate", "test_split": 1.5}, "test_split"),
        ({"kind": "auto_train", "candidates": ["nope"]}, "candidates"),
        ({"kind": "auto_train", "candidates": []}, "candidates"),
        ({"kind": "train", "engine": "other"}, "engine"),
        ({"kind": "train", "priority": 1}, "priority"),
    ],
)
def test_a_bad_job_is_a_422_naming_the_field_and_queues_nothing(service, http, body, field):
    answer = http.post("/v1/jobs", json=body)
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert service.coordinator.jobs() == []


# -- events -------------------------------------------------------------------------------


def read_sse(lines, n: int) -> list[dict]:
    """The next ``n`` events from an open stream's ``iter_lines()``, as dicts with their SSE id."""
    got: list[dict] = []
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                got.append({**json.loads(fields["data"]), "sse_id": int(fields["id"]), "event": fields["event"]})
                if len(got) == n:
                    return got
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value
    return got


def test_the_event_stream_resumes_with_last_event_id_without_gap_or_duplicate(service, http):
    http.post("/v1/runs", json=[run(i) for i in range(5)])
    assert service.coordinator.wait_idle(10)
    with http.stream("GET", "/v1/events", params={"after": 0}) as stream:
        first = read_sse(stream.iter_lines(), 4)
    assert [e["sse_id"] for e in first] == [1, 2, 3, 4] and first[0]["topic"] == events.SERVICE_STARTED
    assert all(e["sse_id"] == e["id"] and e["event"] == e["topic"] for e in first)
    http.post("/v1/runs", json=[run(i) for i in range(5, 10)])  # while disconnected
    assert service.coordinator.wait_idle(10)
    newest = service.bus.newest_event_id()
    with http.stream("GET", "/v1/events", params={"after": 0}, headers={"Last-Event-ID": "4"}) as stream:
        lines = stream.iter_lines()
        rest = read_sse(lines, newest - 4)
        ids = [e["sse_id"] for e in rest]
        assert ids == list(range(5, newest + 1))
        http.post("/v1/runs", json=run(11))  # live, on the same stream
        (live,) = read_sse(lines, 1)
    assert live["id"] == newest + 1 and live["topic"] == events.PATHWAY_NEW


def test_a_stream_without_a_position_starts_with_the_next_event(service, http):
    http.post("/v1/runs", json=run(0))
    with http.stream("GET", "/v1/events") as stream:
        http.post("/v1/interactions", json={"prompt": "p"})
        (event,) = read_sse(stream.iter_lines(), 1)
    assert event["topic"] == events.MEMORY_NEW


def test_events_since_pages_the_journal(service, http):
    http.post("/v1/runs", json=[run(i) for i in range(5)])
    page = http.get("/v1/events/since/1", params={"limit": 3}).json()
    assert [e["id"] for e in page["events"]] == [2, 3, 4] and page["newest_id"] >= 6
    assert http.get("/v1/events/since/-1").json()["field"] == "event_id"
    assert http.get("/v1/events", headers={"Last-Event-ID": "x"}).json()["field"] == "Last-Event-ID"


def test_without_a_journal_the_stream_serves_the_live_ids_from_memory(data_dir):
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=free_port(), api_token=TOKEN, journal=False))
    try:
        with httpx.Client(base_url=stack.api_url, headers=AUTH, timeout=10) as http:
            assert http.get("/v1/status").json()["journal"] is False
            http.post("/v1/runs", json=[run(i) for i in range(3)])
            with http.stream("GET", "/v1/events", params={"after": 0, "follow": "false"}) as stream:
                got = read_sse(stream.iter_lines(), 100)
            topics = [e["topic"] for e in got]
            assert topics.count(events.PATHWAY_NEW) == 3
            ids = [e["id"] for e in got]
            assert ids == sorted(set(ids))
            assert stack.coordinator.wait_idle(10)
            time.sleep(0.7)  # the last learning:prequential follows an idle tick (<= 0.5 s)
            with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "999999"}) as stream:
                http.post("/v1/runs", json=run(4))  # an id from an earlier run: starts from now
                (event,) = read_sse(stream.iter_lines(), 1)
            assert event["topic"] == events.PATHWAY_NEW
    finally:
        stack.stop()


# -- the server's life ----------------------------------------------------------------------


def test_stop_ends_open_streams_and_leaves_no_thread(data_dir):
    before = set(threading.enumerate())
    stack = start_stack(Settings(data_dir=data_dir, metrics_port=free_port(), api_token=TOKEN))
    received: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", stack.api_url + "/v1/events", headers=AUTH, timeout=30) as stream:
                for line in stream.iter_lines():
                    received.append(line)
        except httpx.HTTPError:
            pass
        ended.set()

    listener = threading.Thread(target=listen, name="test-sse-listener")
    listener.start()
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    stack.stop()
    assert time.monotonic() - started < 2.5
    assert ended.wait(5)
    listener.join(5)
    assert any(events.SERVICE_STOPPED in line for line in received)  # the last word reached the stream
    deadline = time.monotonic() + 3
    while (left := [t.name for t in threading.enumerate() if t not in before and t.is_alive()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left


def test_the_openapi_document_types_every_route(service, http):
    spec = http.get("/openapi.json").json()
    assert spec["info"]["version"] == "v1"
    assert "bearerAuth" in json.dumps(spec["components"]["securitySchemes"]) or "HTTPBearer" in json.dumps(
        spec["components"]["securitySchemes"])
    for schema in ("RunIn", "RunsOut", "PredictIn", "PredictionsOut", "EvaluateJobIn", "JobOut", "StatusOut", "ErrorOut"):
        assert schema in spec["components"]["schemas"]
    assert os.getpid() == http.get("/v1/status").json()["pid"]


def test_answers_on_a_kept_alive_connection_do_not_wait_for_a_delayed_ack(service):
    # Without TCP_NODELAY on the server's connections every answer after the first
    # waited about 40 ms for the client's delayed ACK.
    with httpx.Client(base_url=service.api_url, headers=AUTH) as plain:
        plain.get("/v1/counts")
        took = []
        for _ in range(15):
            started = time.perf_counter()
            plain.post("/v1/predict", json={"freq": 1, "exec_time": 1, "roi": 1, "myelination": 0, "actions": "a"})
            took.append(time.perf_counter() - started)
    assert sorted(took)[len(took) // 2] < 0.03, took


def test_help_documents_the_api_flags_and_their_variables(capsys):
    from menace.self_learning_service import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, variable in [("--no-api", "MENACE_API"), ("--api-token", "MENACE_API_TOKEN"),
                           ("--metrics-auth", "MENACE_METRICS_AUTH"), ("--tls-cert", "MENACE_TLS_CERT"),
                           ("--tls-key", "MENACE_TLS_KEY")]:
        assert flag in text and variable in text
    assert "--standby" in text
