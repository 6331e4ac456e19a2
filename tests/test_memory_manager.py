"""MenaceMemoryManager: versions, tags, full-text search with any text, vectors, events.

On both backends (``backend``); the file's schema version is SQLite's own.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_backends import BACKENDS, open_test_backend

from menace.menace_memory_manager import MenaceMemoryManager
from menace.storage import SchemaError


@pytest.fixture
def mm(backend, bus):
    store = backend.memory(event_bus=bus)
    yield store
    store.close()


def test_versions_per_key_start_at_one_and_count_up(mm):
    assert [mm.store("plan", f"v{i}") for i in range(3)] == [1, 2, 3]
    assert mm.store("other", "x") == 1
    assert [(e.version, e.data) for e in mm.query("plan")] == [(3, "v2"), (2, "v1"), (1, "v0")]
    assert [e.version for e in mm.query("plan", limit=2)] == [3, 2]
    assert mm.query("missing") == []
    assert mm.count() == 4


def test_deleted_versions_are_never_reused(mm):
    mm.store("k", "one")
    mm.store("k", "two")
    newest = mm.query("k", limit=1)[0]
    assert mm.delete([newest.id]) == 1
    assert mm.store("k", "three") == 3
    assert [e.version for e in mm.query("k")] == [3, 1]


def test_structured_data_is_stored_as_json_and_tags_keep_their_spaces(mm):
    mm.store("cfg", {"threshold": 0.5, "steps": ["a", "b"]}, tags=["needs review", "cfg", "cfg"])
    entry = mm.query("cfg")[0]
    assert json.loads(entry.data) == {"threshold": 0.5, "steps": ["a", "b"]}
    assert entry.tags == ["needs review", "cfg"]
    assert [e.key for e in mm.search_by_tag("needs review")] == ["cfg"]
    assert mm.search_by_tag("needs") == []


def test_search_by_tag_returns_newest_first_over_any_of_the_tags(mm):
    mm.store("a", "1", tags=["x"])
    mm.store("b", "2", tags=["y"])
    mm.store("c", "3", tags=["x", "y"])
    mm.store("d", "4", tags=["z"])
    assert [e.key for e in mm.search_by_tag(["x", "y"])] == ["c", "b", "a"]
    assert [e.key for e in mm.search_by_tag("x", limit=1)] == ["c"]
    assert mm.search_by_tag([]) == []


@pytest.mark.parametrize(
    "args, field",
    [
        (("", "data"), "key"),
        (("   ", "data"), "key"),
        ((None, "data"), "key"),
        ((5, "data"), "key"),
        (("k", {"bad": {1, 2}}), "data"),
        (("k", float("nan")), "data"),
        (("k", "nul\x00byte"), "data"),
        (("k", "x", [1]), "tags"),
        (("k", "x", ["ok", ""]), "tags"),
        (("k", "x", 7), "tags"),
        (("k", "x", ["a\x00"]), "tags"),
    ],
)
def test_bad_store_input_is_refused_naming_the_field_and_nothing_written(mm, bus, args, field):
    events = []
    bus.subscribe("*", lambda t, p: events.append(p))
    mm.store("existing", "kept")
    with pytest.raises(ValueError, match=field):
        mm.store(*args)
    assert mm.count() == 1
    assert len(events) == 1
    assert mm.store("k", "after") == 1  # no version was used up by the refused store


def test_memory_new_payload_shape(mm, bus):
    got = []
    bus.subscribe("memory:new", lambda t, p: got.append(p))
    version = mm.store("notes", "remember the milk", tags=["todo", "home life"])
    mm.store("notes", "y" * 5000)
    payload = got[0]
    assert set(payload) == {"memory_id", "key", "version", "tags", "ts", "data"}
    assert payload["key"] == "notes"
    assert payload["version"] == version == 1
    assert payload["tags"] == ["todo", "home life"]
    assert payload["data"] == "remember the milk"
    assert payload["memory_id"] == mm.query("notes")[1].id
    assert payload["ts"] == mm.query("notes")[1].ts
    assert json.loads(json.dumps(payload)) == payload
    assert len(got[1]["data"]) == 4000  # clipped in the event, whole in the store
    assert mm.query("notes", limit=1)[0].data == "y" * 5000


def test_full_text_search_finds_entries_containing_every_word(mm):
    mm.store("a", "the quick brown fox")
    mm.store("b", "the lazy dog")
    mm.store("c", 'she said "hello (world)" AND left')
    mm.store("d", "café au lait")
    assert [e.key for e in mm.search("quick fox")] == ["a"]
    assert [e.key for e in mm.search("THE")] in (["a", "b"], ["b", "a"])
    assert [e.key for e in mm.search('"hello')] == ["c"]
    assert [e.key for e in mm.search("(world) AND")] == ["c"]
    assert [e.key for e in mm.search("cafe")] == ["d"]
    assert mm.search("fox dog") == []


HOSTILE = [
    '"',
    '""',
    "'",
    'unbalanced "quote',
    "AND",
    "OR",
    "NOT",
    "a AND",
    "OR b",
    "NEAR(a b, 2)",
    "NEAR",
    "*",
    "fox*",
    "^start",
    "(",
    ")",
    "((a OR b)",
    "a:b",
    "data:quick",
    "{a b}",
    "-x",
    "+",
    "a - b",
    "\\",
    "%_",
    "DROP TABLE memory;--",
    "🦊 🐶",
    "日本語のテキスト",
    "ǅemal",
    "مرحبا",
    "e\u0301",
    "\u200b",
    "   ",
    "",
    "_",
    "x" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_search_with_hostile_text_never_raises(mm, text):
    mm.store("k", "a b fox quick 🦊 日本語のテキスト data")
    result = mm.search(text)
    assert isinstance(result, list)
    assert all(e.key == "k" for e in result)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_property_search_never_raises_and_finds_a_stored_word(backend, text):
    with backend.memory(embedder="hashing") as mm:
        mm.delete(e.id for e in mm.latest(1000))
        if "\x00" in text:
            with pytest.raises(ValueError, match="data"):
                mm.store("k", text)
            with pytest.raises(ValueError, match="text"):
                mm.search(text)
            assert mm.count() == 0
            return
        mm.store("k", f"marker {text}")
        assert isinstance(mm.search(text), list)
        assert [e.key for e in mm.search(f"marker {text}")] == ["k"]


def test_vector_query_ranks_similar_text_first(mm):
    mm.store("fruit", "apples and pears from the orchard")
    mm.store("code", "refactor the sqlite connection pool")
    mm.store("weather", "heavy rain expected tomorrow")
    results = mm.query_vector("sqlite connection refactoring", limit=2)
    assert [entry.key for entry, _ in results][0] == "code"
    assert len(results) == 2
    assert results[0][1] > results[1][1]
    with pytest.raises(ValueError, match="text"):
        mm.query_vector("   ")


def test_active_embedder_is_visible_and_logged(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="menace.menace_memory_manager"):
        mm = MenaceMemoryManager(tmp_path / "mem.db")
    assert mm.embedder.name == "hashing-256"  # conftest sets MENACE_EMBEDDER=hashing
    assert "embedder hashing-256" in caplog.text
    mm.close()
    with pytest.raises(ValueError, match="embedder"):
        MenaceMemoryManager(tmp_path / "mem2.db", embedder="word2vec")
    assert not (tmp_path / "mem2.db").exists()


def test_schema_version_and_newer_schema_refused(tmp_path):
    path = tmp_path / "mem.db"
    with MenaceMemoryManager(path) as mm:
        mm.store("k", "v")
        assert mm.schema_version() == 1
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=2")
    with pytest.raises(SchemaError, match="newer"):
        MenaceMemoryManager(path)


def test_entries_survive_reopening_and_versions_continue(backend):
    with backend.memory() as mm:
        mm.store("k", "one", tags=["t t"])
    with backend.memory() as mm:
        assert mm.store("k", "two") == 2
        assert mm.query("k")[1].tags == ["t t"]
        assert [e.key for e in mm.search("one")] == ["k"]


def test_latest_lists_entries_newest_first_with_a_literal_key_prefix(mm):
    mm.store("gpt:a", "1")
    mm.store("gptXa", "2")
    mm.store("gpt%", "3")
    mm.store("gpt:b", "4")
    assert [e.key for e in mm.latest(key_prefix="gpt:")] == ["gpt:b", "gpt:a"]
    assert [e.key for e in mm.latest(key_prefix="gpt%")] == ["gpt%"]
    assert [e.key for e in mm.latest(limit=2)] == ["gpt:b", "gpt%"]
    with pytest.raises(ValueError, match="limit"):
        mm.latest(limit=0)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_mm(request, tmp_path_factory):
    store_backend = open_test_backend(request.param, tmp_path_factory.mktemp("prop"), request)
    store = store_backend.memory(embedder="hashing")
    yield store
    store.close()
    store_backend.close()


@settings(max_examples=100, deadline=None)
@given(
    key=st.one_of(st.text(max_size=20), st.none(), st.integers()),
    tags=st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=4)),
)
def test_property_store_keeps_what_it_accepts_and_writes_nothing_otherwise(shared_mm, key, tags):
    before = shared_mm.count()
    try:
        version = shared_mm.store(key, "payload", tags)
    except ValueError as exc:
        assert any(name in str(exc) for name in ("key", "tags"))
        assert shared_mm.count() == before
        return
    assert shared_mm.count() == before + 1
    newest = shared_mm.query(key, limit=1)[0]
    assert newest.version == version and newest.key == key.strip()
    expected_tags = list(dict.fromkeys(t.strip() for t in tags or []))
    assert newest.tags == expected_tags
