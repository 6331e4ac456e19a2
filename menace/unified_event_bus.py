"""UnifiedEventBus: in-process publish/subscribe with an optional durable journal.

Callbacks run in the publisher's thread, in subscription order, as
``callback(topic, payload)``. Subscribing to ``"*"`` receives every topic.

Every published event gets an id: its row id in the journal (``events.db``)
when the bus keeps one, else a number counted in this process. ``publish``
returns it; :meth:`UnifiedEventBus.subscribe_events` delivers whole
:class:`~menace.events.Event` records (id, time, topic, payload), and
:meth:`UnifiedEventBus.events_since` reads the journal after an id, so a
monitor that missed events (it started late, or lost its connection) gets
exactly the rest: ids grow in the order events were journaled.
A callback that raises is logged and counted and never stops the others;
``collect_errors=True`` keeps the exceptions in :attr:`errors` and
``raise_errors=True`` re-raises the first one to the publisher after every
subscriber has run (both are meant for tests).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .events import ALL, CheckedPayload, Event
from .storage import SQLiteStore, truncate_wal
from .validation import check_number, check_text

logger = logging.getLogger(__name__)

Callback = Callable[[str, dict], Any]
EventCallback = Callable[[Event], Any]


@dataclass(frozen=True)
class DeliveryError:
    """One subscriber failure, as kept with ``collect_errors=True``."""

    topic: str
    callback: Callback
    error: BaseException


_ENCODER = json.JSONEncoder(allow_nan=False)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _encode(payload: dict) -> str:
    """A checked payload as JSON text: orjson (about 8x faster than json on a run's
    payload, most of a journaled publish), json for what orjson does not take (an
    integer beyond 64 bits)."""
    try:
        return orjson.dumps(payload, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _ENCODER.encode(payload)
_JSON_SCALARS = (str, int, bool, type(None))
_MAX_DEPTH = 100
_isfinite = math.isfinite
#: A payload key :meth:`UnifiedEventBus.forget` may match on.
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _check_json(value: Any, topic: str, depth: int = 0) -> None:
    """Raise ``ValueError`` unless ``json.dumps(value, allow_nan=False)`` would succeed."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"payload for {topic!r} is not JSON-serialisable: nested too deeply")
    if isinstance(value, dict):
        _check_mapping(value, topic, depth)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, topic, depth + 1)
        return
    if isinstance(value, float):
        if not _isfinite(value):
            raise ValueError(f"payload for {topic!r} is not JSON-serialisable: {value!r}")
        return
    if isinstance(value, _JSON_SCALARS):  # str / int subclasses (enums) too
        return
    raise ValueError(
        f"payload for {topic!r} is not JSON-serialisable: {type(value).__name__} {value!r:.60}"
    )


def _check_mapping(value: dict, topic: str, depth: int) -> None:
    for key, item in value.items():
        if not (type(key) is str or _json_key(key)):
            raise ValueError(
                f"payload for {topic!r} is not JSON-serialisable: key {key!r} "
                f"of type {type(key).__name__}"
            )
        kind = type(item)
        # Scalars inline: one call per container, not per value.
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not _isfinite(item):
                raise ValueError(f"payload for {topic!r} is not JSON-serialisable: {key!r} is {item!r}")
            continue
        _check_json(item, topic, depth + 1)


def _check_batch(topic: Any, payloads: list) -> None:
    check_text("topic", topic, allow_empty=False, max_len=200)
    if topic == ALL:
        raise ValueError("topic '*' is for subscribing; publish to a concrete topic")
    for i, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise ValueError(f"payloads[{i}] must be a dict, got {type(payload).__name__}")


def _json_key(key: Any) -> bool:
    if isinstance(key, float):
        return _isfinite(key)
    return isinstance(key, _JSON_SCALARS)


class EventJournal(SQLiteStore):
    """The durable journal: every published event, in publish order."""

    MIGRATIONS = (
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL
        );
        CREATE INDEX events_ts ON events(ts);
        """,
    )

    def append(self, ts: float, topic: str, payload_json: str) -> int:
        """Journal one event; returns its id."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO events(ts, topic, payload) VALUES (?, ?, ?)", (ts, topic, payload_json)
            )
            return int(cursor.lastrowid)

    def append_many(self, ts: float, topic: str, payloads_json: list[str]) -> list[int]:
        """Journal several events in one transaction; returns their ids, in order."""
        with self._write() as conn:
            ids = []
            for payload_json in payloads_json:
                cursor = conn.execute(
                    "INSERT INTO events(ts, topic, payload) VALUES (?, ?, ?)", (ts, topic, payload_json)
                )
                ids.append(int(cursor.lastrowid))
            return ids

    def after(self, event_id: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` journaled events with an id above ``event_id``, oldest first."""
        rows = self._read(
            "SELECT id, ts, topic, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (event_id, limit),
        )
        return [Event(row["id"], row["ts"], row["topic"], json.loads(row["payload"])) for row in rows]

    def newest_id(self) -> int:
        """The id of the newest journaled event (0 when empty)."""
        return int(self._read("SELECT coalesce(max(id), 0) FROM events")[0][0])

    def since(self, since: float) -> list[tuple[str, dict]]:
        """The events with ``ts >= since``, oldest first (all in memory: for short spans)."""
        return list(self.iter_since(since))

    def iter_since(self, since: float, page: int = 1000) -> Iterator[tuple[str, dict]]:
        """The events with ``ts >= since`` journaled so far, oldest first, read ``page`` at a time.

        Events journaled while iterating are not included, so a subscriber that
        publishes during a replay cannot make it endless.
        """
        for event in self.iter_events(since, page):
            yield event.topic, event.payload

    def iter_events(self, since: float = 0.0, page: int = 1000) -> Iterator[Event]:
        """:meth:`iter_since` with each event's id and time."""
        (newest,) = self._read("SELECT coalesce(max(id), 0) FROM events")[0]
        last = 0
        while True:
            rows = self._read(
                "SELECT id, ts, topic, payload FROM events WHERE id > ? AND id <= ? AND ts >= ?"
                " ORDER BY id LIMIT ?",
                (last, newest, since, page),
            )
            for row in rows:
                yield Event(row["id"], row["ts"], row["topic"], json.loads(row["payload"]))
            if len(rows) < page:
                return
            last = rows[-1]["id"]

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM events")[0][0]

    #: Forgotten events are overwritten with zeros in the file, not only unlinked.
    SECURE_DELETE = True

    def forget(self, topic: str, field: str, ids: list[int]) -> int:
        """Delete the events of ``topic`` whose payload's ``field`` is one of ``ids``.

        Returns how many were deleted. The WAL is truncated afterwards, so the
        payloads are gone from ``events.db`` and ``events.db-wal`` alike.
        """
        deleted = 0
        with self._write() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                deleted += self._delete_events(conn, topic, field, chunk)
        if deleted:
            with self._lock:
                truncate_wal(self._conn, self.path)
        return deleted

    @staticmethod
    def _delete_events(conn, topic: str, field: str, ids: list[int]) -> int:
        marks = ",".join("?" * len(ids))
        try:
            return conn.execute(
                f"DELETE FROM events WHERE topic=? AND json_extract(payload, ?) IN ({marks})",
                (topic, f"$.{field}", *ids),
            ).rowcount
        except sqlite3.OperationalError as exc:
            if "json_extract" not in str(exc):
                raise
        # An SQLite built without JSON functions: read the topic's payloads here.
        wanted = set(ids)
        doomed = [
            (row[0],)
            for row in conn.execute("SELECT id, payload FROM events WHERE topic=?", (topic,))
            if json.loads(row[1]).get(field) in wanted
        ]
        conn.executemany("DELETE FROM events WHERE id=?", doomed)
        return len(doomed)


class UnifiedEventBus:
    """Thread-safe topic bus.

    Args:
        persist_path: SQLite file for the durable journal, or ``None`` for none.
        journal: a journal object instead of ``persist_path`` (anything with
            :class:`EventJournal`'s methods, e.g. ``menace.postgres.PgEventJournal``).
        collect_errors: keep subscriber exceptions in :attr:`errors`.
        raise_errors: re-raise the first subscriber exception to the publisher.
    """

    def __init__(
        self,
        persist_path: str | os.PathLike[str] | None = None,
        *,
        journal: Any = None,
        collect_errors: bool = False,
        raise_errors: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._checked_topics: set[str] = set()
        self._subscribers: tuple[tuple[str, Callback], ...] = ()
        self._event_subscribers: tuple[EventCallback, ...] = ()
        self._ids = itertools.count(1)  # event ids when there is no journal
        self.collect_errors = collect_errors
        self.raise_errors = raise_errors
        self.errors: list[DeliveryError] = []
        #: Events published, per topic.
        self.published: Counter[str] = Counter()
        #: Subscriber failures, per topic.
        self.failed: Counter[str] = Counter()
        if journal is not None and persist_path is not None:
            raise ValueError("give persist_path or journal, not both")
        if journal is None and persist_path is not None:
            journal = EventJournal(persist_path)
        self._journal = journal

    # -- subscriptions -----------------------------------------------------
    def subscribe(self, topic: str, callback: Callback) -> None:
        """Call ``callback(topic, payload)`` for each event on ``topic`` (``"*"``: all)."""
        check_text("topic", topic, allow_empty=False, max_len=200)
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._subscribers = self._subscribers + ((topic, callback),)

    def unsubscribe(self, topic: str, callback: Callback) -> None:
        """Remove one subscription; unknown pairs are ignored."""
        with self._lock:
            subs = list(self._subscribers)
            for i, (t, cb) in enumerate(subs):
                if t == topic and cb == callback:
                    del subs[i]
                    break
            self._subscribers = tuple(subs)

    def subscribe_events(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` with every event as an :class:`~menace.events.Event`.

        Like ``subscribe("*", ...)``, but the callback also gets the event's id
        and time, which a monitor needs to resume with :meth:`events_since`.
        """
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._event_subscribers = self._event_subscribers + (callback,)

    def unsubscribe_events(self, callback: EventCallback) -> None:
        """Remove a :meth:`subscribe_events` callback; an unknown one is ignored."""
        with self._lock:
            subs = list(self._event_subscribers)
            if callback in subs:
                subs.remove(callback)
            self._event_subscribers = tuple(subs)

    def subscriber_count(self, topic: str | None = None) -> int:
        subs = self._subscribers
        if topic is None:
            return len(subs) + len(self._event_subscribers)
        return sum(1 for t, _ in subs if t == topic)

    # -- publishing --------------------------------------------------------
    def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Deliver ``payload`` to every subscriber of ``topic`` and of ``"*"``; returns the event id.

        Raises ``ValueError`` if the topic is empty or ``"*"``, or the payload is
        not a JSON-serialisable dict; nothing is delivered or journaled then.
        """
        if type(topic) is not str or topic not in self._checked_topics:
            check_text("topic", topic, allow_empty=False, max_len=200)
            if topic == ALL:
                raise ValueError("topic '*' is for subscribing; publish to a concrete topic")
            if type(topic) is str:  # a str subclass could compare equal yet differ
                self._checked_topics.add(topic)
        if not isinstance(payload, dict):
            raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
        if type(payload) is not CheckedPayload:
            # One check whatever the configuration: a type walk refuses exactly what
            # json.dumps(allow_nan=False) would, at a third of its cost.
            _check_json(payload, topic)
        if self._journal is not None:
            ts = time.time()
            event_id = self._journal.append(ts, topic, _encode(payload))
        else:
            ts, event_id = 0.0, next(self._ids)
        self._deliver(topic, payload)
        if self._event_subscribers:
            self._deliver_event(Event(event_id, ts or time.time(), topic, payload))
        return event_id

    def publish_many(self, topic: str, payloads: list[dict[str, Any]]) -> list[int]:
        """Publish several events of one topic, journaled in one transaction; their ids.

        Every payload is checked first: one bad payload refuses them all
        (``ValueError``), and nothing is journaled or delivered then.
        """
        payloads = list(payloads)
        if not payloads:
            return []
        _check_batch(topic, payloads)
        for payload in payloads:
            if type(payload) is not CheckedPayload:
                _check_json(payload, topic)
        ts = time.time()
        if self._journal is not None:
            ids = self._journal.append_many(ts, topic, [_encode(p) for p in payloads])
        else:
            ids = [next(self._ids) for _ in payloads]
        for event_id, payload in zip(ids, payloads, strict=True):
            self._deliver(topic, payload)
            if self._event_subscribers:
                self._deliver_event(Event(event_id, ts, topic, payload))
        return ids

    def _deliver_event(self, event: Event) -> None:
        for callback in self._event_subscribers:
            try:
                callback(event)
            except Exception as exc:  # as in _deliver: never break the publisher
                with self._count_lock:
                    self.failed[event.topic] += 1
                logger.exception("subscriber %r failed on %s", callback, event.topic)
                if self.collect_errors:
                    self.errors.append(DeliveryError(event.topic, callback, exc))

    def _deliver(self, topic: str, payload: dict) -> None:
        with self._count_lock:
            self.published[topic] += 1
        first_error: BaseException | None = None
        for sub_topic, callback in self._subscribers:
            if sub_topic != topic and sub_topic != ALL:
                continue
            try:
                callback(topic, payload)
            except Exception as exc:  # a subscriber must never break the publisher
                with self._count_lock:
                    self.failed[topic] += 1
                logger.exception("subscriber %r failed on %s", callback, topic)
                if self.collect_errors:
                    self.errors.append(DeliveryError(topic, callback, exc))
                if first_error is None:
                    first_error = exc
        if first_error is not None and self.raise_errors:
            raise first_error

    # -- journal -----------------------------------------------------------
    @property
    def persist_path(self) -> str | None:
        return self._journal.path if self._journal is not None else None

    def replay(self, since: float = 0.0) -> int:
        """Deliver journaled events with ``ts >= since`` again, without re-journaling.

        Returns the number of events delivered (0 without a journal).
        """
        since = check_number("since", since)
        if self._journal is None:
            return 0
        delivered = 0
        for event in self._journal.iter_events(since):  # paged: not all in memory
            self._deliver(event.topic, event.payload)
            if self._event_subscribers:
                self._deliver_event(event)
            delivered += 1
        return delivered

    def events_since(self, event_id: int = 0, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` journaled events after ``event_id``, oldest first ([] without a journal)."""
        if isinstance(event_id, bool) or not isinstance(event_id, int) or event_id < 0:
            raise ValueError(f"event_id must be an integer >= 0, got {event_id!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        if self._journal is None:
            return []
        return self._journal.after(event_id, limit)

    def newest_event_id(self) -> int:
        """The id of the newest journaled event (0 without a journal)."""
        return self._journal.newest_id() if self._journal is not None else 0

    def forget(self, topic: str, field: str, ids: Iterable[int]) -> int:
        """Delete the journaled events of ``topic`` whose payload's ``field`` is in ``ids``.

        This is how a store takes back what it announced when it deletes data: for
        instance ``forget("memory:new", "memory_id", [3, 4])`` after deleting memory
        entries 3 and 4, so that neither the journal file nor a later :meth:`replay`
        holds their text. Returns how many events were deleted (0 without a journal).
        Raises ``ValueError`` for a topic, field or id that is not valid.
        """
        check_text("topic", topic, allow_empty=False, max_len=200)
        if not isinstance(field, str) or not _FIELD.fullmatch(field):
            raise ValueError(f"field must be a payload key like 'memory_id', got {field!r}")
        id_list = list(ids)
        for value in id_list:
            if type(value) is not int:
                raise ValueError(f"ids must be integers, got {type(value).__name__} {value!r:.60}")
        if self._journal is None or not id_list:
            return 0
        return self._journal.forget(topic, field, id_list)

    def journal_size(self) -> int:
        """Number of events in the journal (0 without one)."""
        return self._journal.count() if self._journal is not None else 0

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
