"""CodeDB and WorkflowDB: what they store and what they announce, on both backends."""

from __future__ import annotations

import json

import pytest

from menace.neuroplasticity import PathwayRecord


@pytest.fixture
def code_db(backend, bus):
    store = backend.code_db(event_bus=bus)
    yield store
    store.close()


@pytest.fixture
def workflow_db(backend, bus):
    store = backend.workflow_db(event_bus=bus)
    yield store
    store.close()


def test_code_add_publishes_code_new_after_commit(code_db, bus):
    got = []
    bus.subscribe("code:new", lambda t, p: got.append((p, code_db.count())))
    code_id = code_db.add("def add(a, b):\n    return a + b\n", "adds two numbers",
                          tags=["math", "good first issue"])
    payload, count_when_announced = got[0]
    assert count_when_announced == 1
    assert set(payload) == {"code_id", "summary", "language", "tags", "ts", "code"}
    assert payload["code_id"] == code_id
    assert payload["summary"] == "adds two numbers"
    assert payload["language"] == "python"
    assert payload["tags"] == ["math", "good first issue"]
    assert payload["code"].startswith("def add")
    assert json.loads(json.dumps(payload)) == payload
    snippet = code_db.get(code_id)
    assert snippet.tags == ["math", "good first issue"]
    assert snippet.ts == payload["ts"]


def test_code_search_and_latest(code_db):
    first = code_db.add("import csv\nrows = list(csv.reader(f))", "read a CSV file")
    second = code_db.add("SELECT * FROM users WHERE name = ?", "parameterised query", language="sql")
    assert [s.id for s in code_db.search("csv")] == [first]
    assert [s.id for s in code_db.search("parameterised")] == [second]
    assert [s.id for s in code_db.latest()] == [second, first]
    for hostile in ['"', "AND", "NEAR(a b)", "*", "users WHERE (", "", "🦊"]:
        assert isinstance(code_db.search(hostile), list)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"code": ""}, "code"),
        ({"code": "   "}, "code"),
        ({"code": None}, "code"),
        ({"code": "x = 1", "language": ""}, "language"),
        ({"code": "x = 1", "summary": 3}, "summary"),
        ({"code": "x = 1", "tags": [None]}, "tags"),
    ],
)
def test_bad_code_is_refused_and_nothing_written(code_db, bus, kwargs, field):
    got = []
    bus.subscribe("*", lambda t, p: got.append(p))
    with pytest.raises(ValueError, match=field):
        code_db.add(**kwargs)
    assert code_db.count() == 0
    assert got == []


def test_workflow_add_publishes_steps_and_pathway_style_actions(workflow_db, bus):
    got = []
    bus.subscribe("workflows:new", lambda t, p: got.append(p))
    wid = workflow_db.add("nightly", ["fetch", " parse ", "store"], "nightly import", tags=["etl"])
    payload = got[0]
    assert set(payload) == {"workflow_id", "name", "steps", "n_steps", "actions", "description", "tags", "ts"}
    assert payload["workflow_id"] == wid
    assert payload["steps"] == ["fetch", "parse", "store"]
    assert payload["actions"] == "fetch->parse->store"
    assert payload["tags"] == ["etl"]
    assert json.loads(json.dumps(payload)) == payload
    # The same spelling a logged pathway uses, so a plan can be scored before it runs.
    assert PathwayRecord("fetch->parse->store").actions == workflow_db.get(wid).actions


def test_workflow_steps_may_be_one_arrow_string(workflow_db):
    wid = workflow_db.add("w", "a->b->c")
    workflow = workflow_db.get(wid)
    assert workflow.steps == ["a", "b", "c"]
    assert [w.id for w in workflow_db.latest()] == [wid]


@pytest.mark.parametrize(
    "args, field",
    [
        (("", ["a"]), "name"),
        (("w", []), "steps"),
        (("w", ""), "steps"),
        (("w", "a->->b"), r"steps\[1\]"),
        (("w", ["a", 3]), r"steps\[1\]"),
        (("w", ["a"], 5), "description"),
        (("w", 42), "steps"),
    ],
)
def test_bad_workflow_is_refused_and_nothing_written(workflow_db, bus, args, field):
    got = []
    bus.subscribe("*", lambda t, p: got.append(p))
    with pytest.raises(ValueError, match=field):
        workflow_db.add(*args)
    assert workflow_db.count() == 0
    assert got == []


def test_stores_are_schema_versioned(code_db, workflow_db):
    assert code_db.schema_version() == 1
    assert workflow_db.schema_version() == 1
