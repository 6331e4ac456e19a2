"""GPTMemory: logging, readable context, search, summaries, redaction, retention.

On both backends' memory stores (``backend``); what reaches the SQLite file is SQLite's own test.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import gpt_memory
from menace.gpt_memory import GPTMemory, RetentionPolicy, redact
from menace.menace_memory_manager import MenaceMemoryManager

DAY = 86_400.0


@pytest.fixture
def mm(backend, bus):
    store = backend.memory(event_bus=bus)
    yield store
    store.close()


@pytest.fixture
def gpt(mm):
    return GPTMemory(mm)


def test_top_level_module_is_the_same_class():
    assert gpt_memory.GPTMemory is GPTMemory
    assert gpt_memory.RetentionPolicy is RetentionPolicy


def test_log_interaction_stores_under_tagged_keys_and_publishes_memory_new(gpt, mm, bus):
    got = []
    bus.subscribe("memory:new", lambda t, p: got.append(p))
    assert gpt.log_interaction("idea?", "try a new helper", tags=["improvement", "bots"]) == 1
    assert gpt.log_interaction("again?", "yes", tags=["improvement"]) == 2
    assert gpt.log_interaction("untagged?", "fine") == 1
    assert [p["key"] for p in got] == ["gpt:improvement", "gpt:improvement", "gpt:untagged"]
    assert got[0]["tags"] == ["gpt", "improvement", "bots"]
    assert got[0]["version"] == 1
    entry = mm.query("gpt:improvement")[1]
    assert json.loads(entry.data) == {"prompt": "idea?", "response": "try a new helper"}
    assert [e.key for e in mm.search_by_tag("bots")] == ["gpt:improvement"]


def test_fetch_context_is_readable_text_newest_first(gpt):
    gpt.log_interaction("first question", "first answer", tags=["improvement"])
    gpt.log_interaction("unrelated", "other", tags=["weather"])
    gpt.log_interaction("second question", "second answer", tags=["improvement"])
    context = gpt.fetch_context(["improvement"])
    assert context == (
        "Prompt: second question\nResponse: second answer\n\n"
        "Prompt: first question\nResponse: first answer"
    )
    assert "{" not in context and "unrelated" not in context
    assert gpt.fetch_context("improvement", limit=1) == (
        "Prompt: second question\nResponse: second answer"
    )
    assert gpt.fetch_context(["nothing-here"]) == ""


def test_fetch_context_is_not_crowded_out_by_other_entries_with_the_tag(gpt, mm):
    gpt.log_interaction("the real question", "the real answer", tags=["improvement"])
    for i in range(40):
        mm.store(f"note{i}", f"a note {i}", tags=["improvement"])
    assert "the real question" in gpt.fetch_context(["improvement"])
    assert [i.prompt for i in gpt.interactions("improvement")] == ["the real question"]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda g: g.log_interaction("", "r"), "prompt"),
        (lambda g: g.log_interaction("   ", "r"), "prompt"),
        (lambda g: g.log_interaction(None, "r"), "prompt"),
        (lambda g: g.log_interaction("p", 5), "response"),
        (lambda g: g.log_interaction("p", "r", tags=[3]), "tags"),
        (lambda g: g.log_interaction("p", "r", tags=[""]), "tags"),
        (lambda g: g.fetch_context([]), "tags"),
        (lambda g: g.fetch_context(["a"], limit=0), "limit"),
        (lambda g: g.search(42), "text"),
        (lambda g: g.summarize(""), "tag"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_written(gpt, mm, call, field):
    with pytest.raises(ValueError, match=field):
        call(gpt)
    assert mm.count() == 0


def test_manager_must_be_a_memory_manager():
    with pytest.raises(ValueError, match="manager"):
        GPTMemory("mem.db")


SECRETS = [
    ("my key is sk-abcdefghijklmnopqrstuvwx1234", "sk-abcdefghijklmnopqrstuvwx1234"),
    ("anthropic sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV", "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV"),
    ("token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"),
    ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
    ("Authorization: Bearer abc.DEF-123_xyz~tok", "abc.DEF-123_xyz~tok"),
    ("password=hunter2!", "hunter2!"),
    ('{"api_key": "k3y-V4lue"}', "k3y-V4lue"),
    ("PASSWD: s3cr3t", "s3cr3t"),
    ("access_token = 'ya29.a0Af'", "ya29.a0Af"),
    ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
]


@pytest.mark.parametrize("text, secret", SECRETS)
def test_redact_replaces_secret_values(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned


def test_redact_leaves_ordinary_text_alone():
    text = "Use the password field on the login form; the token budget is 4k."
    assert redact(text) == text


def test_secrets_never_reach_the_file_the_event_or_the_embedding_cache(tmp_path, bus):
    events = []
    bus.subscribe("*", lambda t, p: events.append(json.dumps(p)))
    path = tmp_path / "mem.db"
    mm = MenaceMemoryManager(path, event_bus=bus)
    gpt = GPTMemory(mm)
    for text, _ in SECRETS:
        gpt.log_interaction(f"please use {text}", f"ok, stored {text}", tags=["secrets"])
    mm.query_vector("stored key", limit=3)  # embeds the stored rows
    context = gpt.fetch_context(["secrets"], limit=50)
    mm.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("mem.db*"))
    for _, secret in SECRETS:
        assert secret.encode() not in raw
        assert all(secret not in e for e in events)
        assert secret not in context
    assert context.count("[REDACTED]") >= 2 * len(SECRETS)


def test_redaction_can_be_turned_off(mm):
    gpt = GPTMemory(mm, redact_secrets=False)
    gpt.log_interaction("password=hunter2", "ok", tags=["raw"])
    assert "hunter2" in gpt.fetch_context(["raw"])


def test_search_finds_interactions_by_their_words_only(gpt, mm):
    gpt.log_interaction("How do I parse CSV?", "Use the csv module", tags=["python"])
    gpt.log_interaction("Best pizza?", "Margherita", tags=["food"])
    mm.store("note", "parse csv by hand", tags=["python"])  # not an interaction
    assert [i.prompt for i in gpt.search("csv parse")] == ["How do I parse CSV?"]
    assert [i.response for i in gpt.search("margherita")] == ["Margherita"]
    # Words that only occur in the stored key, tags or JSON field names do not match.
    assert gpt.search("prompt") == []
    assert gpt.search("response") == []
    assert gpt.search("gpt") == []
    assert gpt.search("python") == []
    for hostile in ['"', "AND OR", "NEAR(a b)", "csv*", "(", "🦊", ""]:
        assert isinstance(gpt.search(hostile), list)


def test_summary_is_stored_beside_the_raw_interactions(gpt, mm):
    for i in range(6):
        gpt.log_interaction(
            f"Question {i} about deployment scripts?",
            f"Answer {i}: the deployment scripts need a retry step.",
            tags=["ops"],
        )
    before = mm.count()
    summary = gpt.summarize("ops", keep_recent=2, sentences=2)
    assert summary
    assert "deployment" in summary
    assert mm.count() == before + 1  # raw rows kept, summary added
    assert mm.query("gpt-summary:ops")[0].data == summary
    assert len(gpt.interactions("ops", limit=100)) == 6
    assert gpt.fetch_context(["ops"], limit=2).endswith(f"Summary of earlier [ops]: {summary}")
    assert gpt.summarize("ops", keep_recent=10) == ""  # nothing older than the newest 10


def test_nothing_is_deleted_without_a_retention_rule(gpt, mm):
    for i in range(5):
        gpt.log_interaction(f"q{i}", f"a{i}", tags=["t"])
    assert gpt.apply_retention(now=time.time() + 3650 * DAY) == 0
    assert mm.count() == 5


def test_retention_keeps_the_newest_per_key(mm):
    gpt = GPTMemory(mm, retention=RetentionPolicy(max_per_tag=2))
    for i in range(4):
        gpt.log_interaction(f"q{i}", f"a{i}", tags=["t"])
    gpt.log_interaction("other", "kept", tags=["u"])
    mm.store("unrelated", "never touched by GPT retention")
    assert gpt.apply_retention() == 2
    assert [i.prompt for i in gpt.interactions("t")] == ["q3", "q2"]
    assert [i.prompt for i in gpt.interactions("u")] == ["other"]
    assert mm.query("unrelated")
    # Versions are never reused after deletion.
    assert gpt.log_interaction("q4", "a4", tags=["t"]) == 5


def test_retention_by_age_deletes_only_old_interactions(mm):
    gpt = GPTMemory(mm, retention=RetentionPolicy(max_age_days=30))
    gpt.log_interaction("old", "a", tags=["t"])
    gpt.log_interaction("new", "b", tags=["t"])
    old_ts = mm.query("gpt:t")[1].ts
    assert gpt.apply_retention(now=old_ts + 29 * DAY) == 0
    new_ts = mm.query("gpt:t")[0].ts
    # Only "old" is older than 30 days at this moment.
    now = old_ts + 30 * DAY + (new_ts - old_ts) / 2
    if new_ts == old_ts:
        pytest.skip("both rows share one timestamp on this clock")
    assert gpt.apply_retention(now=now) == 1
    assert [i.prompt for i in gpt.interactions("t")] == ["new"]


def test_retention_on_log_when_asked(mm):
    gpt = GPTMemory(mm, retention=RetentionPolicy(max_per_tag=1), apply_on_log=True)
    for i in range(3):
        gpt.log_interaction(f"q{i}", f"a{i}", tags=["t"])
    assert mm.count() == 1
    assert [i.prompt for i in gpt.interactions("t")] == ["q2"]


@pytest.mark.parametrize(
    "kwargs, field",
    [({"max_age_days": -1}, "max_age_days"), ({"max_per_tag": 0}, "max_per_tag"),
     ({"max_age_days": float("nan")}, "max_age_days")],
)
def test_bad_retention_policy_is_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        RetentionPolicy(**kwargs)


DOC = Path(__file__).resolve().parents[1] / "docs" / "gpt_memory.md"


def doc_examples() -> list[tuple[str, str | None]]:
    """Each python block of docs/gpt_memory.md with the text block right after it, if any."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), flags=re.S)
    examples = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = following[1] if following and following[0] == "text" else None
        examples.append((body, expected))
    return examples


@pytest.mark.parametrize("code, expected", doc_examples())
def test_docs_examples_run_as_written(tmp_path, monkeypatch, capsys, code, expected):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    printed = capsys.readouterr().out
    if expected is not None:
        assert printed == expected
