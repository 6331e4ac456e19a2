"""UnifiedEventBus: delivery order, failing subscribers, payload checks, the journal.

Journaled buses run on both backends (``backend``: events.db, or the PostgreSQL ``events`` table).
"""

from __future__ import annotations

import copy
import json
import math
import threading

import pytest

from menace.events import CheckedPayload
from menace.unified_event_bus import UnifiedEventBus


@pytest.fixture
def bus(backend):
    """A journaled bus on the backend under test."""
    event_bus = backend.open_bus()
    yield event_bus
    event_bus.close()


def test_subscribers_run_in_subscription_order_and_star_gets_every_topic(bus):
    calls = []
    bus.subscribe("pathway:new", lambda t, p: calls.append(("first", t, p["n"])))
    bus.subscribe("*", lambda t, p: calls.append(("star", t, p["n"])))
    bus.subscribe("pathway:new", lambda t, p: calls.append(("second", t, p["n"])))
    bus.subscribe("memory:new", lambda t, p: calls.append(("memory", t, p["n"])))

    bus.publish("pathway:new", {"n": 1})
    bus.publish("code:new", {"n": 2})

    assert calls == [
        ("first", "pathway:new", 1),
        ("star", "pathway:new", 1),
        ("second", "pathway:new", 1),
        ("star", "code:new", 2),
    ]
    assert bus.published == {"pathway:new": 1, "code:new": 1}


def test_a_batch_subscriber_gets_a_published_batch_in_one_call_and_others_each_event(bus):
    calls = []
    bus.subscribe("pathway:new", lambda t, p: calls.append(("each", p["n"])))

    def batch(topic, payloads):
        calls.append(("batch", topic, [p["n"] for p in payloads]))

    bus.subscribe_many("*", batch)
    ids = bus.publish_many("pathway:new", [{"n": 1}, {"n": 2}, {"n": 3}])
    bus.publish("code:new", {"n": 4})  # one event: a list of one
    assert calls == [
        ("each", 1), ("each", 2), ("each", 3),
        ("batch", "pathway:new", [1, 2, 3]),
        ("batch", "code:new", [4]),
    ]
    assert ids == sorted(ids) and bus.published == {"pathway:new": 3, "code:new": 1}
    assert [e.payload["n"] for e in bus.events_since(0)] == [1, 2, 3, 4]  # journaled one by one
    bus.unsubscribe("*", batch)
    bus.publish_many("pathway:new", [{"n": 5}])
    assert calls[-1] == ("each", 5) and bus.subscriber_count("*") == 0


def test_a_failing_batch_subscriber_is_counted_and_stops_no_one():
    bus = UnifiedEventBus(collect_errors=True)
    got = []

    def broken(topic, payloads):
        raise RuntimeError("boom")

    bus.subscribe_many("pathway:new", broken)
    bus.subscribe("pathway:new", lambda t, p: got.append(p["n"]))
    bus.publish_many("pathway:new", [{"n": 1}, {"n": 2}])
    assert got == [1, 2]
    assert bus.failed["pathway:new"] == 1 and str(bus.errors[0].error) == "boom"
    with pytest.raises(ValueError, match="callable"):
        bus.subscribe_many("pathway:new", "not a function")


def test_unsubscribe_stops_delivery_to_that_callback_only(bus):
    got_a, got_b = [], []

    def a(topic, payload):
        got_a.append(payload["n"])

    def b(topic, payload):
        got_b.append(payload["n"])

    bus.subscribe("x:y", a)
    bus.subscribe("x:y", b)
    bus.publish("x:y", {"n": 1})
    bus.unsubscribe("x:y", a)
    bus.unsubscribe("x:y", a)  # unknown pair: ignored
    bus.publish("x:y", {"n": 2})
    assert got_a == [1]
    assert got_b == [1, 2]
    assert bus.subscriber_count("x:y") == 1


def test_raising_subscriber_does_not_stop_the_next_one(bus, caplog):
    got = []

    def broken(topic, payload):
        raise RuntimeError("subscriber bug")

    bus.subscribe("pathway:new", broken)
    bus.subscribe("pathway:new", lambda t, p: got.append(p["n"]))
    bus.subscribe("*", lambda t, p: got.append(("star", p["n"])))

    bus.publish("pathway:new", {"n": 1})  # does not raise to the publisher
    bus.publish("pathway:new", {"n": 2})

    assert got == [1, ("star", 1), 2, ("star", 2)]
    assert bus.failed["pathway:new"] == 2
    assert "subscriber bug" in caplog.text
    assert bus.errors == []  # not collected unless asked


def test_collect_errors_keeps_each_failure():
    bus = UnifiedEventBus(collect_errors=True)
    seen = []

    def broken(topic, payload):
        raise KeyError(payload["n"])

    bus.subscribe("a:b", broken)
    bus.subscribe("a:b", lambda t, p: seen.append(p["n"]))
    bus.publish("a:b", {"n": 7})
    bus.publish("a:b", {"n": 8})

    assert seen == [7, 8]
    assert [(e.topic, e.callback, type(e.error)) for e in bus.errors] == [
        ("a:b", broken, KeyError),
        ("a:b", broken, KeyError),
    ]
    assert bus.errors[1].error.args == (8,)


def test_raise_errors_reraises_the_first_error_after_every_subscriber_ran():
    bus = UnifiedEventBus(raise_errors=True)
    seen = []

    def first(topic, payload):
        raise ValueError("first failure")

    def second(topic, payload):
        raise RuntimeError("second failure")

    bus.subscribe("a:b", first)
    bus.subscribe("a:b", second)
    bus.subscribe("a:b", lambda t, p: seen.append(p))
    with pytest.raises(ValueError, match="first failure"):
        bus.publish("a:b", {"n": 1})
    assert seen == [{"n": 1}]
    assert bus.failed["a:b"] == 2


@pytest.mark.parametrize(
    "payload, fragment",
    [
        (["not", "a", "dict"], "payload must be a dict"),
        ("text", "payload must be a dict"),
        (None, "payload must be a dict"),
        ({"when": {1, 2}}, "not JSON-serialisable"),
        ({"obj": object()}, "not JSON-serialisable"),
        ({"x": math.nan}, "not JSON-serialisable"),
        ({"nested": {"deep": [1, math.inf]}}, "not JSON-serialisable"),
        ({("tuple", "key"): 1}, "not JSON-serialisable"),
        ({"b": b"bytes"}, "not JSON-serialisable"),
    ],
)
@pytest.mark.parametrize("journal", [False, True])
def test_publish_refuses_payloads_that_are_not_json_dicts(backend, payload, fragment, journal):
    bus = backend.open_bus(journal)
    got = []
    bus.subscribe("*", lambda t, p: got.append(p))
    with pytest.raises(ValueError, match=fragment):
        bus.publish("a:b", payload)
    assert got == []
    assert bus.journal_size() == 0
    assert bus.published["a:b"] == 0
    bus.close()


def test_publish_refuses_a_circular_payload(bus):
    payload: dict = {"a": 1}
    payload["self"] = payload
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        bus.publish("a:b", payload)
    assert bus.journal_size() == 0
    bus_without_journal = UnifiedEventBus()
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        bus_without_journal.publish("a:b", payload)


@pytest.mark.parametrize("topic", ["", "   ", "*", None, 3, ["a:b"], "a\x00b"])
def test_publish_refuses_bad_topics(bus, topic):
    with pytest.raises(ValueError, match="topic"):
        bus.publish(topic, {"n": 1})
    assert bus.journal_size() == 0


def test_subscribe_refuses_a_non_callable(bus):
    with pytest.raises(ValueError, match="callback"):
        bus.subscribe("a:b", "not callable")
    assert bus.subscriber_count() == 0


def test_journal_keeps_every_event_and_replay_does_not_write_them_again(backend):
    bus = backend.open_bus()
    bus.publish("pathway:new", {"n": 1})
    bus.publish("memory:new", {"n": 2, "tags": ["a b", "ü"]})
    assert bus.journal_size() == 2

    replayed = []
    bus.subscribe("*", lambda t, p: replayed.append((t, p)))
    assert bus.replay() == 2
    assert bus.replay() == 2
    assert replayed == [
        ("pathway:new", {"n": 1}),
        ("memory:new", {"n": 2, "tags": ["a b", "ü"]}),
    ] * 2
    assert bus.journal_size() == 2  # replay never re-journals
    bus.close()

    # A later process (a new bus on the same file) replays what was journaled.
    again = backend.open_bus()
    seen = []
    again.subscribe("memory:new", lambda t, p: seen.append(p["n"]))
    assert again.replay() == 2
    assert seen == [2]
    assert again.journal_size() == 2
    again.close()


def test_replay_since_skips_older_events(backend, monkeypatch):
    import menace.unified_event_bus as ueb

    clock = iter([100.0, 200.0, 300.0])
    monkeypatch.setattr(ueb.time, "time", lambda: next(clock))
    bus = backend.open_bus()
    for n in range(3):
        bus.publish("a:b", {"n": n})
    seen = []
    bus.subscribe("a:b", lambda t, p: seen.append(p["n"]))
    assert bus.replay(since=200.0) == 2
    assert seen == [1, 2]
    with pytest.raises(ValueError, match="since"):
        bus.replay(since=math.nan)
    bus.close()


def test_replay_without_journal_delivers_nothing():
    bus = UnifiedEventBus()
    seen = []
    bus.subscribe("*", lambda t, p: seen.append(p))
    bus.publish("a:b", {"n": 1})
    assert bus.replay() == 0
    assert seen == [{"n": 1}]


def test_publishing_from_many_threads_delivers_every_event_once(bus):
    seen = []
    lock = threading.Lock()

    def record(topic, payload):
        with lock:
            seen.append((payload["thread"], payload["i"]))

    bus.subscribe("a:b", record)
    threads = [
        threading.Thread(
            target=lambda k=k: [bus.publish("a:b", {"thread": k, "i": i}) for i in range(200)],
            name=f"publisher-{k}",
        )
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [(k, i) for k in range(4) for i in range(200)]
    assert bus.published["a:b"] == 800
    assert bus.journal_size() == 800


def test_a_subscriber_may_subscribe_or_publish_while_being_called(bus):
    seen = []

    def chain(topic, payload):
        seen.append((topic, payload["n"]))
        if topic == "a:b":
            bus.subscribe("a:b", lambda t, p: seen.append(("late", p["n"])))
            bus.publish("c:d", {"n": payload["n"] + 1})

    bus.subscribe("*", chain)
    bus.publish("a:b", {"n": 1})
    # The late subscriber joins from the next event on.
    assert seen == [("a:b", 1), ("c:d", 2)]
    bus.publish("a:b", {"n": 5})
    assert ("late", 5) in seen


def test_a_stores_checked_payload_is_delivered_and_journaled_like_any_dict(backend):
    bus = backend.open_bus()
    got = []
    bus.subscribe("*", lambda t, p: got.append(p))
    bus.publish("a:b", CheckedPayload({"n": 1, "stats": {"rate": 0.5}, "text": "t"}))
    assert bus.replay() == 1
    assert got == [{"n": 1, "stats": {"rate": 0.5}, "text": "t"}] * 2
    assert json.loads(json.dumps(got[0])) == got[1]
    # A copy is a plain dict (whoever copies may change it): checked again.
    changed = copy.deepcopy(CheckedPayload({"n": 1}))
    changed["x"] = math.nan
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        UnifiedEventBus().publish("a:b", changed)
    for journaled in (bus, UnifiedEventBus()):  # one check whatever the configuration
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            journaled.publish("a:b", {"x": math.nan})
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            journaled.publish("a:b", {"x": object()})
    assert bus.journal_size() == 1
    bus.close()


def test_replay_reads_a_long_journal_in_pages_in_order_and_is_not_extended_by_its_subscribers(backend):
    bus = backend.open_bus()
    for i in range(2500):  # more than two pages
        bus.publish("a:b", {"i": i})
    got = []

    def echo(topic, payload):
        got.append(payload["i"])
        if topic == "a:b":
            bus.publish("echo:a", {"i": -1})  # journaled during the replay, not replayed by it

    bus.subscribe("*", echo)
    assert bus.replay() == 2500
    assert [i for i in got if i >= 0] == list(range(2500))
    assert bus.journal_size() == 5000
    bus.close()


def test_event_ids_let_a_late_monitor_read_exactly_what_it_missed(backend):
    bus = backend.open_bus()
    seen = []
    first = bus.publish("pathway:new", {"n": 1})
    bus.subscribe_events(seen.append)
    second = bus.publish("memory:new", {"n": 2})
    third = bus.publish("code:new", {"n": 3})
    assert first < second < third
    assert [(e.id, e.topic, e.payload["n"]) for e in seen] == [(second, "memory:new", 2), (third, "code:new", 3)]
    assert seen[0].ts > 0
    # a monitor that last saw the first event gets the other two, no more, no less
    missed = bus.events_since(first)
    assert [(e.id, e.payload["n"]) for e in missed] == [(second, 2), (third, 3)]
    assert bus.events_since(third) == []
    assert [e.id for e in bus.events_since(0, limit=2)] == [first, second]
    assert bus.newest_event_id() == third
    with pytest.raises(ValueError, match="event_id"):
        bus.events_since(-1)
    bus.unsubscribe_events(seen.append)
    bus.publish("code:new", {"n": 4})
    assert len(seen) == 2
    bus.close()


def test_event_ids_without_a_journal_still_grow():
    bus = UnifiedEventBus()
    seen = []
    bus.subscribe_events(seen.append)
    ids = [bus.publish("x:y", {"n": i}) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [e.id for e in seen] == ids
    assert bus.events_since(0) == []


def test_replay_reaches_event_subscribers_with_the_journal_ids(backend):
    bus = backend.open_bus()
    ids = [bus.publish("x:y", {"n": i}) for i in range(3)]
    seen = []
    bus.subscribe_events(seen.append)
    assert bus.replay() == 3
    assert [e.id for e in seen] == ids
    bus.close()
