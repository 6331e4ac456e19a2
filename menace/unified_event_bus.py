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
:meth:`UnifiedEventBus.subscribe_many` subscribes a callback that takes a
list: ``callback(topic, payloads)`` gets a :meth:`~UnifiedEventBus.publish_many`
batch in one call (and one event as a list of one), so a subscriber that
queues events pays its locking and counting once per batch. Each subscriber
sees the events of a batch in order; a batch is delivered subscriber by
subscriber, in subscription order.
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

from . import config
from .events import ALL, CheckedPayload, Event
from .storage import SQLiteStore, truncate_wal
from .validation import check_number, check_positive_int, check_text

logger = logging.getLogger(__name__)

Callback = Callable[[str, dict], Any]
EventCallback = Callable[[Event], Any]


class _Batched:
    """A :meth:`UnifiedEventBus.subscribe_many` callback: takes lists of payloads. Called
    with one payload (``publish``, ``replay``), it passes a list of one."""

    __slots__ = ("many",)

    def __init__(self, many: Callable[[str, list[dict]], Any]) -> None:
        self.many = many

    def __call__(self, topic: str, payload: dict) -> Any:
        return self.many(topic, [payload])

    def __eq__(self, other: object) -> bool:
        return self.many == (other.many if isinstance(other, _Batched) else other)

    def __hash__(self) -> int:
        return hash(self.many)

    def __repr__(self) -> str:
        return repr(self.many)


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


#: Largest payload the bus takes, in characters of text (keys and strings) plus 8 per other
#: value: an estimate of its JSON size made while checking it, the same with or without a
#: journal. A store's own payloads clip their texts (4,000 characters) and stay far below.
MAX_PAYLOAD_CHARS = 1_000_000
#: Integers a payload may hold: what JSON readers and the journal's encoder (64 bits) keep.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _not_json(topic: str, what: str) -> ValueError:
    return ValueError(f"payload for {topic!r} is not JSON-serialisable: {what}")


def _check_json(value: Any, topic: str, depth: int = 0) -> int:
    """Raise ``ValueError`` unless ``value`` is JSON Menace can journal and read back (finite
    numbers, integers within 64 bits, text keys); returns its size estimate (see
    :data:`MAX_PAYLOAD_CHARS`). The same check whether the bus keeps a journal or not."""
    if depth > _MAX_DEPTH:
        raise _not_json(topic, "nested too deeply")
    if isinstance(value, dict):
        return _check_mapping(value, topic, depth)
    if isinstance(value, (list, tuple)):
        return _check_list(value, topic, depth)
    if isinstance(value, float):
        if not _isfinite(value):
            raise _not_json(topic, f"{value!r}")
        return 8
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool) or value is None:
        return 8
    if isinstance(value, int):  # enums too
        if not _INT_MIN <= value <= _INT_MAX:
            raise _not_json(topic, f"an integer beyond 64 bits ({_digits(value)} digits)")
        return 8
    raise _not_json(topic, f"{type(value).__name__} {value!r:.60}")


def _check_list(value: list | tuple, topic: str, depth: int) -> int:
    size = 2
    for item in value:
        if type(item) is str:  # lists of texts (tags, steps) without a call per item
            size += len(item) + 2
        else:
            size += _check_json(item, topic, depth + 1)
    return size


def _digits(value: int) -> int:
    return int(abs(value).bit_length() * 0.30103) + 1


def _check_mapping(value: dict, topic: str, depth: int) -> int:
    size = 2
    for key, item in value.items():
        kind = type(key)
        if kind is str:
            size += len(key) + 3
        elif _json_key(key):
            size += 24
        else:
            raise _not_json(topic, f"key {key!r} of type {type(key).__name__}")
        kind = type(item)
        # Scalars inline: one call per container, not per value.
        if kind is str:
            size += len(item) + 2
        elif kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                raise _not_json(topic, f"{key!r} is an integer beyond 64 bits ({_digits(item)} digits)")
            size += 8
        elif kind is bool or item is None:
            size += 8
        elif kind is float:
            if not _isfinite(item):
                raise _not_json(topic, f"{key!r} is {item!r}")
            size += 8
        else:
            size += _check_json(item, topic, depth + 1)
    return size


def _check_payload(payload: dict, topic: str) -> None:
    """The one check of a payload, journaled or not (``ValueError``)."""
    if type(payload) is CheckedPayload:
        return  # built by a store from checked values, its texts clipped (events.pathway_new)
    size = _check_mapping(payload, topic, 0)
    if size > MAX_PAYLOAD_CHARS:
        raise ValueError(
            f"payload for {topic!r} is too large (about {size:,} characters, at most "
            f"{MAX_PAYLOAD_CHARS:,}); keep large texts in a store and publish their ids"
        )


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


@dataclass(frozen=True)
class JournalRetention:
    """How long the journal keeps events: the oldest go once they are older than
    ``max_age_s`` seconds or once the events take more than ``max_bytes`` (``None``: no such
    limit). Checked every ``check_every`` published events, deleting at most ``chunk`` events
    at a time so a publisher never waits long. The file stops growing near ``max_bytes``
    (freed pages are reused); ``VACUUM`` gives the space back to the disk."""

    max_age_s: float | None = config.DEFAULT_JOURNAL_MAX_AGE_DAYS * 86_400.0
    max_bytes: int | None = config.DEFAULT_JOURNAL_MAX_MB << 20
    check_every: int = 2000  # at 10,000 events/s: five checks a second, each able to delete 5,000
    chunk: int = 5000

    def __post_init__(self) -> None:
        if self.max_age_s is not None:
            check_number("max_age_s", self.max_age_s, minimum=0.0)
        if self.max_bytes is not None:
            check_positive_int("max_bytes", self.max_bytes, minimum=1)
        check_positive_int("check_every", self.check_every)
        check_positive_int("chunk", self.chunk)

    @classmethod
    def from_settings(cls, max_age_days: float, max_mb: float) -> JournalRetention:
        """Days and megabytes as the service's settings give them (0: no such limit)."""
        return cls(
            max_age_s=max_age_days * 86_400.0 if max_age_days else None,
            max_bytes=max(1, int(max_mb * (1 << 20))) if max_mb else None,
        )


#: Keep everything: no retention (for tests and tools that replay all history).
KEEP_ALL = JournalRetention(max_age_s=None, max_bytes=None)


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
        """Journal several events in one transaction; returns their ids, in order.

        One ``executemany``: the ids of one transaction are consecutive (it holds
        the write lock, and AUTOINCREMENT gives the next id above the largest).
        """
        with self._write() as conn:
            cursor = conn.executemany(
                "INSERT INTO events(ts, topic, payload) VALUES (?, ?, ?)",
                [(ts, topic, p) for p in payloads_json],
            )
            last = int(cursor.lastrowid) if cursor.lastrowid else int(
                conn.execute("SELECT max(id) FROM events").fetchone()[0]
            )
            return list(range(last - len(payloads_json) + 1, last + 1))

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

    def oldest_id(self) -> int:
        """The id of the oldest event still kept (0 when empty)."""
        return int(self._read("SELECT coalesce(min(id), 0) FROM events")[0][0])

    def used_bytes(self) -> int:
        """Bytes of the file holding data (pages in use; free pages are not counted)."""
        with self._lock:
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size

    def prune(self, retention: JournalRetention, now: float | None = None) -> int:
        """Delete up to ``retention.chunk`` of the oldest events beyond the retention; how many.

        Age is measured back from ``now``, by default the time of the newest event (so a
        clock that jumps, or a quiet month, never empties the journal at once).
        """
        if now is None:
            now = self._read("SELECT coalesce(max(ts), 0.0) FROM events")[0][0]
        deleted = 0
        if retention.max_age_s is not None:
            with self._write() as conn:
                deleted += conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY id LIMIT ?)",
                    (now - retention.max_age_s, retention.chunk),
                ).rowcount
        if retention.max_bytes is not None and deleted < retention.chunk:
            deleted += self._prune_size(retention.max_bytes, retention.chunk - deleted)
        if deleted:
            logger.debug("%s: retention deleted %d old events", self.path, deleted)
        return deleted

    def _prune_size(self, max_bytes: int, limit: int) -> int:
        used = self.used_bytes()
        if used <= max_bytes:
            return 0
        with self._write() as conn:
            (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
            # Down to 90% of the limit, so the next check does not prune again at once.
            excess = math.ceil(count * (1 - 0.9 * max_bytes / used))
            return conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)",
                (max(1, min(excess, limit)),),
            ).rowcount

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
        retention: JournalRetention | None = None,
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
        #: How long the journal keeps events (default: :class:`JournalRetention`'s).
        self.retention = retention if retention is not None else JournalRetention()
        if not isinstance(self.retention, JournalRetention):
            raise ValueError(f"retention must be a JournalRetention, got {retention!r:.60}")
        self._until_prune = 0  # prune at the first publish, then every retention.check_every

    # -- subscriptions -----------------------------------------------------
    def subscribe(self, topic: str, callback: Callback) -> None:
        """Call ``callback(topic, payload)`` for each event on ``topic`` (``"*"``: all)."""
        check_text("topic", topic, allow_empty=False, max_len=200)
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._subscribers = self._subscribers + ((topic, callback),)

    def subscribe_many(self, topic: str, callback: Callable[[str, list[dict]], Any]) -> None:
        """Call ``callback(topic, payloads)`` with the events on ``topic`` (``"*"``: all) as
        lists: a :meth:`publish_many` batch in one call, any other event as a list of one.
        :meth:`unsubscribe` with the same callback removes it."""
        check_text("topic", topic, allow_empty=False, max_len=200)
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._subscribers = self._subscribers + ((topic, _Batched(callback)),)

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
        if type(payload) is not CheckedPayload:  # a store's payload is checked (see _check_payload)
            if not isinstance(payload, dict):
                raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
            # One check whatever the configuration (a type walk at a third of json.dumps' cost).
            _check_payload(payload, topic)
        if self._journal is not None:
            ts = time.time()
            event_id = self._journal.append(ts, topic, _encode(payload))
            self._maybe_prune(1)
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
            _check_payload(payload, topic)
        ts = time.time()
        if self._journal is not None:
            ids = self._journal.append_many(ts, topic, [_encode(p) for p in payloads])
            self._maybe_prune(len(ids))
        else:
            ids = [next(self._ids) for _ in payloads]
        self._deliver_batch(topic, payloads)
        if self._event_subscribers:
            for event_id, payload in zip(ids, payloads, strict=True):
                self._deliver_event(Event(event_id, ts, topic, payload))
        return ids

    def _maybe_prune(self, published: int) -> None:
        """Apply the retention every ``check_every`` journaled events (a failure is logged)."""
        with self._count_lock:
            self._until_prune -= published
            if self._until_prune > 0:
                return
            self._until_prune = self.retention.check_every
        try:
            self._journal.prune(self.retention)
        except Exception:  # retention must never stop a publish
            logger.exception("%s: could not apply the journal's retention", self._journal.path)

    def prune_journal(self, now: float | None = None) -> int:
        """Apply the retention now, to the end; returns how many events were deleted."""
        if self._journal is None:
            return 0
        total = 0
        while True:
            deleted = self._journal.prune(self.retention, now)
            total += deleted
            if deleted < self.retention.chunk:
                return total

    def oldest_event_id(self) -> int:
        """The id of the oldest event the journal still keeps (0 without one or when empty):
        a monitor resuming from an older id missed the events retention deleted."""
        return self._journal.oldest_id() if self._journal is not None else 0

    def _deliver_event(self, event: Event) -> None:
        for callback in self._event_subscribers:
            try:
                callback(event)
            except Exception as exc:  # as in _deliver: never break the publisher
                self._subscriber_failed(event.topic, callback, exc)

    def _deliver_batch(self, topic: str, payloads: list[dict]) -> None:
        """:meth:`_deliver` of each payload, subscriber by subscriber: a batch subscriber
        gets them in one call."""
        with self._count_lock:
            self.published[topic] += len(payloads)
        first_error: BaseException | None = None
        for sub_topic, callback in self._subscribers:
            if sub_topic != topic and sub_topic != ALL:
                continue
            calls = [(callback.many, payloads)] if type(callback) is _Batched else [(callback, p) for p in payloads]
            for call, arg in calls:
                try:
                    call(topic, arg)
                except Exception as exc:  # a subscriber must never break the publisher
                    self._subscriber_failed(topic, callback, exc)
                    first_error = first_error or exc
        if first_error is not None and self.raise_errors:
            raise first_error

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
                self._subscriber_failed(topic, callback, exc)
                first_error = first_error or exc
        if first_error is not None and self.raise_errors:
            raise first_error

    def _subscriber_failed(self, topic: str, callback: Any, exc: Exception) -> None:
        """Count, log (with the traceback: call it in the ``except``) and keep a failure."""
        with self._count_lock:
            self.failed[topic] += 1
        logger.exception("subscriber %r failed on %s", callback, topic)
        if self.collect_errors:
            self.errors.append(DeliveryError(topic, callback, exc))

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
