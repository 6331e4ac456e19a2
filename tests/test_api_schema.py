"""Property-based tests of every route from the service's own /openapi.json (schemathesis).

Valid and invalid requests are generated from the schema for each operation:
no answer is a 5xx, every answer matches what the schema declares, and a
refused request (4xx) named the field and wrote nothing.
"""

from __future__ import annotations

import os
import socket

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from menace.config import Settings
from menace.self_learning_service import start_stack

TOKEN = "schema-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Cheap models only: a generated auto_train must not load torch.
CHEAP_MODELS = ["logreg"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("schema") / "data"
    running = start_stack(Settings(data_dir=data_dir, metrics_port=free_port(), api_token=TOKEN))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_schema(stack):
    return schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json", headers=AUTH)


#: Every operation the API has (a test below checks this is the whole list).
OPERATIONS = [
    ("POST", "/v1/runs"), ("POST", "/v1/interactions"), ("POST", "/v1/predict"),
    ("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/{job_id}"), ("DELETE", "/v1/jobs/{job_id}"),
    ("GET", "/v1/events"), ("GET", "/v1/events/since/{event_id}"), ("GET", "/v1/status"),
    ("GET", "/v1/counts"), ("GET", "/v1/pathways"), ("GET", "/v1/pathways/find"), ("GET", "/v1/memory"),
    ("GET", "/v1/evaluations"), ("GET", "/v1/prequential"), ("POST", "/v1/explain"), ("GET", "/healthz"),
]


def stored(stack) -> tuple[int, int, int, int]:
    return (stack.pathway_db.count_pathways(), stack.pathway_db.count_runs(), stack.memory.count(),
            len(stack.coordinator.jobs()))


def tame(case, mode: GenerationMode) -> None:
    """Keep generated requests finite: a stream that ends, jobs that train only cheap models.

    (A refused request runs nothing, so only valid ones are tamed: taming an invalid
    one could make it valid.)
    """
    if case.path == "/v1/events" and isinstance(case.query or {}, dict):
        follow = (case.query or {}).get("follow", True)
        if str(follow).lower() in ("true", "1", "yes", "on"):  # valid either way: the stream must end
            case.query = {**(case.query or {}), "follow": "false"}
    if mode is not GenerationMode.POSITIVE:
        return
    if case.path == "/v1/jobs" and case.method == "POST" and isinstance(case.body, dict):
        if isinstance(case.body.get("candidates"), list) and case.body["candidates"]:
            case.body["candidates"] = CHEAP_MODELS
        if isinstance(case.body.get("time_budget"), int | float) and case.body["time_budget"] > 1:
            case.body["time_budget"] = 1


def test_the_list_of_operations_is_the_whole_api(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_route_answers_as_its_schema_says(api_schema, stack, method, path, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=int(os.environ.get("SCHEMA_EXAMPLES", "20")), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        tame(case, mode)
        before = stored(stack)
        response = case.call_and_validate(headers=AUTH, timeout=30)
        assert response.status_code < 500, response.text
        if 400 <= response.status_code < 500:
            body = response.json()
            assert body["message"], body
            if response.status_code == 422:
                assert body["field"], body
            assert stored(stack) == before, f"{method} {path} refused with {response.status_code} but wrote"
        # Cancel what a generated job queued, so jobs never pile up behind each other.
        for job in stack.coordinator.jobs():
            stack.coordinator.cancel(job.id)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            pytest.skip("the operation takes no input, so no request to it is invalid")
        raise
