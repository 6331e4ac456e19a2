"""PathwayDB: logged runs of action sequences, aggregated into pathways.

A *pathway* is one action sequence (its ``actions`` text, stripped). Every run
is kept in ``runs``; the pathway row holds the aggregate: frequency, running
averages of execution time and ROI, success rate (see :mod:`menace.labels`),
last activation and the myelination score::

    myelination = frequency * success_rate * avg_roi * 0.5 ** (age_days / half_life_days)

where ``age_days`` is the time since the pathway's last activation. The score
is computed with no decay when a run is logged; :meth:`PathwayDB.apply_decay`
re-applies the decay to scores that have gone stale.

Each run also stores the features known *before* it ran (``prior_frequency``
and ``prior_myelination``), so that a training example never contains its own
outcome.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

from . import events
from .errors import FieldError
from .labels import Outcome, label_of
from .protocols import BatchPublisher
from .run_ledger import RunLedger
from .storage import SQLiteStore, escape_like, write_transaction
from .validation import (
    MAX_ABS,
    MAX_SECONDS,
    MAX_TEXT,
    MAX_TS,
    check_id,
    check_number,
    check_positive_int,
    check_text,
)

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0
_isfinite = math.isfinite


#: The label of each outcome value (:func:`menace.labels.label_of`, looked up once).
_LABELS = {o.value: label_of(o) for o in Outcome}
#: Each outcome by its exact value ("SUCCESS"), as most callers spell it.
_OUTCOMES = {o.value: o for o in Outcome}
#: Longest action text of one run (characters).
MAX_ACTIONS = 100_000


@dataclass
class PathwayRecord:
    """One run of an action sequence.

    ``exec_time`` is in seconds (>= 0); ``roi`` is any finite number; ``ts`` is
    seconds since the epoch and defaults to the moment the record is made.
    Invalid fields raise ``ValueError`` naming the field.
    """

    actions: str
    inputs: str = ""
    outputs: str = ""
    exec_time: float = 0.0
    resources: str = ""
    outcome: Outcome = Outcome.SUCCESS
    roi: float = 0.0
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Fast path (every logged run passes here): plain ASCII texts, float numbers
        # within bounds and an outcome spelled as its value, checked inline; anything
        # else goes through the checks below, which name the field at fault.
        actions, inputs, outputs, resources = self.actions, self.inputs, self.outputs, self.resources
        exec_time, roi, ts = self.exec_time, self.roi, self.ts
        outcome = self.outcome
        if type(outcome) is not Outcome:
            outcome = _OUTCOMES.get(outcome) if type(outcome) is str else None
        if (
            outcome is not None
            and type(actions) is str and type(inputs) is str and type(outputs) is str
            and type(resources) is str
            and type(exec_time) is float and type(roi) is float and type(ts) is float
            and 0.0 <= exec_time <= MAX_SECONDS and -MAX_ABS <= roi <= MAX_ABS and 0.0 <= ts <= MAX_TS
            and len(actions) <= MAX_ACTIONS and len(inputs) + len(outputs) + len(resources) <= MAX_TEXT
            and (joined := actions + inputs + outputs + resources).isascii()  # one copy, two scans
            and "\x00" not in joined
        ):
            actions = actions.strip()
            if actions:
                self.actions, self.outcome = actions, outcome
                self._validated = self._values()
                return
        self._check()

    def _check(self) -> None:
        self.actions = check_text("actions", self.actions, allow_empty=False, max_len=MAX_ACTIONS).strip()
        self.inputs = check_text("inputs", self.inputs)
        self.outputs = check_text("outputs", self.outputs)
        self.resources = check_text("resources", self.resources)
        self.exec_time = check_number("exec_time", self.exec_time, minimum=0.0, maximum=MAX_SECONDS)
        self.roi = check_number("roi", self.roi, minimum=-MAX_ABS, maximum=MAX_ABS)
        self.outcome = Outcome.coerce(self.outcome)
        self.ts = check_number("ts", self.ts, minimum=0.0, maximum=MAX_TS)
        self._validated = self._values()

    def _values(self) -> tuple:
        # With the types: "SUCCESS" == Outcome.SUCCESS and True == 1.0, yet neither
        # assigned after construction is a checked value.
        exec_time, roi, outcome, ts = self.exec_time, self.roi, self.outcome, self.ts
        return (
            self.actions, self.inputs, self.outputs, self.resources, exec_time, roi, outcome, ts,
            type(exec_time), type(roi), type(outcome), type(ts),
        )

    def validate(self) -> None:
        """Check the fields again if any was changed since the last check (``ValueError``)."""
        # NaN != NaN, so a field set to NaN is always checked again.
        if getattr(self, "_validated", None) != self._values():
            self._check()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


class LoggedRun(NamedTuple):
    """Where a logged run was stored: its own id and its pathway's."""

    run_id: int
    pathway_id: int


@dataclass(frozen=True)
class Pathway:
    """The aggregate of every run of one action sequence."""

    id: int
    actions: str
    frequency: int
    successes: int
    success_rate: float
    avg_exec_time: float
    avg_roi: float
    last_activation: float
    myelination_score: float

    def stats(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency,
            "success_rate": self.success_rate,
            "avg_exec_time": self.avg_exec_time,
            "avg_roi": self.avg_roi,
            "myelination_score": self.myelination_score,
            "last_activation": self.last_activation,
        }


_PATHWAY_FIELDS = tuple(f.name for f in fields(Pathway))


def decay_factor(age_seconds: float, half_life_days: float) -> float:
    """0.5 ** (age in days / half-life); 1.0 for no age."""
    return 0.5 ** (max(age_seconds, 0.0) / (half_life_days * SECONDS_PER_DAY))


#: Runs logged after the last fold before :class:`PathwayDB` folds them into
#: the ``pathways`` rows (see the class docstring).
FOLD_EVERY = 8192
_MAX_ID = (1 << 63) - 1
#: Largest weight of one link (:meth:`PathwayDB.link`): far beyond any count of runs,
#: far below where sums of weights lose their precision or overflow.
MAX_LINK_WEIGHT = 1e15
#: Most pathways whose aggregates one PathwayDB keeps in memory.
CACHE_LIMIT = 100_000
#: Most runs of other connections one PathwayDB reads back before a log (see ``_catch_up``).
CATCH_UP_LIMIT = 4096

_RUN_COLUMNS = (
    "pathway_id, actions, inputs, outputs, exec_time, resources, outcome, roi, ts, label,"
    " prior_frequency, prior_myelination, previous_run_id, successes, avg_exec_time, avg_roi,"
    " last_activation, link_from"
)
_INSERT_RUN = f"INSERT INTO runs({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
# Rewrites a run's features, aggregate and link when another connection logged in between.
_FIX_RUN = (
    "UPDATE runs SET prior_frequency=?, prior_myelination=?, previous_run_id=?, successes=?,"
    " avg_exec_time=?, avg_roi=?, last_activation=?, link_from=? WHERE id=?"
)
# What a run's pathway:new payload needs, in run_events' order.
_RUN_EVENTS = (
    "SELECT id, pathway_id, ts, actions, inputs, outputs, exec_time, resources, outcome, roi, label,"
    " prior_frequency, prior_myelination, successes, avg_exec_time, avg_roi, last_activation"
    " FROM runs WHERE id > ? ORDER BY id LIMIT ?"
)
# A new pathway's row: the checkpoint before any of its runs was folded.
_INSERT_PATHWAY = (
    "INSERT INTO pathways(actions, frequency, successes, success_rate, avg_exec_time,"
    " avg_roi, last_activation, myelination_score) VALUES (?, 0, 0, 0.0, 0.0, 0.0, ?, 0.0)"
)
# Each run's aggregate after it, as a cache entry tail: the pathway's frequency,
# successes, averages, last activation and newest run id.
_RUN_AGGREGATE = "prior_frequency + 1, successes, avg_exec_time, avg_roi, last_activation, id"
_RUNS_AFTER = f"SELECT pathway_id, {_RUN_AGGREGATE}, ts FROM runs WHERE id > ? AND id < ? ORDER BY id"
_LOAD_PATHWAY = (
    "SELECT id, frequency, successes, avg_exec_time, avg_roi, last_activation, last_run_id"
    " FROM pathways WHERE {where}"
)
# A pathway's newest run that is not folded yet and older than a bound.
_LOAD_TAIL = (
    f"SELECT {_RUN_AGGREGATE} FROM runs WHERE id > (SELECT folded_through FROM fold_state)"
    " AND id < ? AND pathway_id = ? ORDER BY id DESC LIMIT 1"
)
_FOLD_PATHWAY = (
    "UPDATE pathways SET frequency=?, successes=?, success_rate=?, avg_exec_time=?, avg_roi=?,"
    " last_activation=?, myelination_score=?, last_run_id=? WHERE id=?"
)
_UPSERT_LINK = (
    "INSERT INTO links(from_id, to_id, weight) VALUES (?,?,?) "
    "ON CONFLICT(from_id, to_id) DO UPDATE SET weight = weight + excluded.weight"
)
# The links of the runs not folded yet, as (from_id, to_id, weight) rows. A
# run's ``link_from`` is the pathway of the run logged just before it, when the
# logging PathwayDB's ``link_window`` linked them. ``{where}`` narrows it.
_TAIL_LINKS = """
    SELECT link_from AS from_id, pathway_id AS to_id, count(*) AS weight FROM runs
    WHERE id > (SELECT folded_through FROM fold_state) AND link_from IS NOT NULL {where}
    GROUP BY link_from, pathway_id"""
# (to_id, weight) of the links leaving :from_id: the folded ones plus those since.
_LINKS_FROM = f"""
    WITH weights(to_id, weight) AS (
        SELECT to_id, CAST(sum(weight) AS REAL) FROM (
            SELECT to_id, weight FROM links WHERE from_id = :from_id
            UNION ALL SELECT to_id, weight FROM ({_TAIL_LINKS.format(where="AND link_from = :from_id")})
        ) GROUP BY to_id
    )"""
# A pathway as of now: its folded row ``p``, overlaid by ``r``, its newest run
# since the fold (if any), which carries the aggregate after it.
_STATS_COLUMNS = """p.id, p.actions,
    coalesce(r.prior_frequency + 1, p.frequency) AS frequency,
    coalesce(r.successes, p.successes) AS successes,
    coalesce(r.successes * 1.0 / (r.prior_frequency + 1), p.success_rate) AS success_rate,
    coalesce(r.avg_exec_time, p.avg_exec_time) AS avg_exec_time,
    coalesce(r.avg_roi, p.avg_roi) AS avg_roi,
    coalesce(r.last_activation, p.last_activation) AS last_activation,
    coalesce(r.successes * r.avg_roi, p.myelination_score) AS myelination_score,
    coalesce(r.id, p.last_run_id) AS last_run_id"""
# One pathway (``{where}`` picks it): its newest unfolded run is found by
# reading the unfolded runs backwards, which stops at the first of its own.
_ONE_PATHWAY = f"""
    SELECT {_STATS_COLUMNS} FROM pathways p
    LEFT JOIN runs r ON r.id = (
        SELECT id FROM runs WHERE id > (SELECT folded_through FROM fold_state)
        AND pathway_id = p.id ORDER BY id DESC LIMIT 1
    )
    WHERE {{where}}"""

# The runs of one pathway, newest first down the chain, stopping at since_id.
_PATHWAY_RUNS = (
    "WITH RECURSIVE chain(id) AS ("
    f" SELECT last_run_id FROM ({_ONE_PATHWAY.format(where='p.id = ?')}) WHERE last_run_id > ?"
    " UNION ALL"
    " SELECT r.previous_run_id FROM runs r JOIN chain c ON r.id = c.id WHERE r.previous_run_id > ?"
    " AND r.previous_run_id < r.id"  # a chain only goes back: a damaged file cannot loop it
    ") SELECT runs.* FROM chain JOIN runs ON runs.id = chain.id ORDER BY runs.id LIMIT ?"
)


def advance(entry: list, rec: PathwayRecord, label: int, half_life_s: float) -> tuple:
    """A run's columns from ``prior_frequency`` on, given its pathway's aggregate before it.

    ``entry`` is ``[pathway id, frequency, successes, avg_exec_time, avg_roi,
    last_activation, newest run id]``; the answer is ``(prior_frequency,
    prior_myelination, previous_run_id, successes, avg_exec_time, avg_roi,
    last_activation)``: the features known before the run, then the pathway's
    aggregate after it. The one rule every backend applies, so that they agree
    to the last bit. ``half_life_s`` is the half-life in seconds.
    """
    _, prior_freq, successes, avg_time, avg_roi, last, previous_run_id = entry
    ts = rec.ts
    if prior_freq:
        # Derived from the aggregates, so a score apply_decay already decayed
        # is not decayed a second time.
        age = ts - last
        prior_myel = successes * avg_roi * (0.5 ** (age / half_life_s) if age > 0 else 1.0)
        if ts > last:
            last = ts
    else:
        prior_myel, last = 0.0, ts
    freq = prior_freq + 1
    avg_time += (rec.exec_time - avg_time) / freq
    avg_roi += (rec.roi - avg_roi) / freq
    successes += label
    return prior_freq, prior_myel, previous_run_id, successes, avg_time, avg_roi, last


def checked_records(records: Iterable[PathwayRecord]) -> tuple[PathwayRecord, ...]:
    """``records`` as a tuple, each checked again (``FieldError`` naming ``records[i].field``)."""
    records = tuple(records)
    for i, record in enumerate(records):
        if not isinstance(record, PathwayRecord):
            raise FieldError(f"records[{i}]", f"records[{i}] must be a PathwayRecord, got {type(record).__name__}")
        try:
            record.validate()
        except FieldError as exc:
            raise FieldError(f"records[{i}].{exc.field}", f"records[{i}].{exc}") from None
    return records


class _Tail:
    """The runs since the last fold, while this connection logged all of them.

    ``touched`` are the pathways to fold and ``pairs`` the link counts.
    """

    __slots__ = ("start", "touched", "pairs")

    def __init__(self, start: int) -> None:
        self.start = start
        self.touched: set[int] = set()
        self.pairs: dict[tuple[int, int], int] = {}


#: What a store's ``_commit`` returns for each run it wrote: ``(record, pathway id, run id,
#: outcome value, label, after)``, ``after`` as :func:`advance` returns it. A plain tuple (one
#: per run, cheap); :func:`run_payload` makes the ``pathway:new`` payload of one only when a
#: bus will take it.
Written = tuple


def run_payload(written: Written) -> dict[str, Any]:
    """The ``pathway:new`` payload of a run a store just wrote (see :data:`Written`).

    Its numbers are checked already (a validated record, the store's ids, and the
    store's overflow check of the aggregate), so the payload need not check them again.
    """
    rec, pathway_id, run_id, outcome, label, after = written
    prior_freq, prior_myel, _, successes, avg_time, avg_roi, last = after
    freq = prior_freq + 1
    return events.pathway_new(
        pathway_id, run_id, rec.ts, rec.actions, rec.inputs, rec.outputs, rec.exec_time, rec.resources,
        outcome, rec.roi, label, prior_freq, prior_myel, numbers_checked=True,
        stats={
            "frequency": freq,
            "success_rate": successes / freq,
            "avg_exec_time": avg_time,
            "avg_roi": avg_roi,
            "myelination_score": successes * avg_roi,  # frequency * success_rate * avg_roi
            "last_activation": last,
        },
    )


class RunLogging:
    """What both pathway stores do alike around their own ``_commit(records)`` (one
    transaction; a :data:`Written` tuple per run): checking the records, logging one or
    many, and publishing each run's event after the commit (the payloads are made only
    when there is a bus to take them)."""

    event_bus: Any

    def _commit(self, records: tuple[PathwayRecord, ...]) -> list[Written]:
        raise NotImplementedError

    def log(self, record: PathwayRecord) -> int:
        """Commit one run, update its pathway, then publish ``pathway:new``.

        Returns the pathway id. Raises ``ValueError`` for an invalid record
        (nothing is written).
        """
        if not isinstance(record, PathwayRecord):
            raise ValueError(f"record must be a PathwayRecord, got {type(record).__name__}")
        record.validate()  # fields may have been changed after construction
        (written,) = self._commit((record,))
        if self.event_bus is not None:
            self.event_bus.publish(events.PATHWAY_NEW, run_payload(written))
        return written[1]

    def log_many(self, records: Iterable[PathwayRecord]) -> list[int]:
        """Commit many runs in one transaction; publish one event per run after it.

        Every record is validated first: one bad record refuses the whole batch.
        Returns the pathway id of each record, in order.
        """
        return [w[1] for w in self._log_all(records)]

    def log_runs(self, records: Iterable[PathwayRecord]) -> list[LoggedRun]:
        """:meth:`log_many`, returning each record's run id and pathway id."""
        return [LoggedRun(w[2], w[1]) for w in self._log_all(records)]

    def _log_all(self, records: Iterable[PathwayRecord]) -> list[Written]:
        written = self._commit(checked_records(records))
        bus = self.event_bus
        if bus is None or not written:
            return written
        payloads = [run_payload(w) for w in written]
        if len(payloads) > 1 and isinstance(bus, BatchPublisher):
            bus.publish_many(events.PATHWAY_NEW, payloads)  # a journaling bus: one commit, not one per run
        else:
            for payload in payloads:
                bus.publish(events.PATHWAY_NEW, payload)
        return written


class PathwayDB(RunLogging, SQLiteStore):
    """Store of pathways and their runs.

    Args:
        path: SQLite file (created with its folder if missing).
        half_life_days: time for an idle pathway's myelination to halve.
        event_bus: a :class:`~menace.unified_event_bus.UnifiedEventBus`; each
            committed run is published on ``pathway:new``.
        link_window: seconds; a run starting within this time of the previous
            run links the previous pathway to this one (see :meth:`next_pathway`).

    **How a log stays cheap.** SQLite's cost per commit is the pages it writes,
    so a :meth:`log` writes one row: the run. The run row carries its
    pathway's aggregate *after* it (frequency, successes, averages, last
    activation), which this object also keeps in memory for the pathways it
    logs; runs that other connections commit in between are read back and
    applied first, so the aggregate is exact with any number of writers. Every
    :data:`FOLD_EVERY` runs (and in :meth:`apply_decay`) the runs since the last
    fold are *folded*: each pathway row takes its newest run's aggregate and
    the links between consecutive runs are added to ``links``. Readers see the
    folded rows plus the runs since (the ``pathway_stats`` view), so every read
    is current, from any connection.
    """

    # Write cost is pages per commit, so the schema keeps them few: run ids need
    # no AUTOINCREMENT (runs are never deleted, so ids are never reused) and the
    # ever-changing myelination score has no index (top_pathways sorts the
    # pathways, one row per distinct action sequence).
    MIGRATIONS = (
        """
        CREATE TABLE pathways (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            actions TEXT NOT NULL UNIQUE,
            frequency INTEGER NOT NULL,
            successes INTEGER NOT NULL,
            success_rate REAL NOT NULL,
            avg_exec_time REAL NOT NULL,
            avg_roi REAL NOT NULL,
            last_activation REAL NOT NULL,
            myelination_score REAL NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            pathway_id INTEGER NOT NULL REFERENCES pathways(id),
            actions TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT NOT NULL,
            exec_time REAL NOT NULL,
            resources TEXT NOT NULL,
            outcome TEXT NOT NULL,
            roi REAL NOT NULL,
            ts REAL NOT NULL,
            label INTEGER NOT NULL,
            prior_frequency INTEGER NOT NULL,
            prior_myelination REAL NOT NULL
        );
        CREATE INDEX runs_pathway ON runs(pathway_id);
        CREATE TABLE links (
            from_id INTEGER NOT NULL REFERENCES pathways(id),
            to_id INTEGER NOT NULL REFERENCES pathways(id),
            weight REAL NOT NULL,
            PRIMARY KEY (from_id, to_id)
        );
        """,
        # v2: the runs of a pathway form a chain (pathways.last_run_id ->
        # runs.prev_run_id -> ...) instead of an index on runs(pathway_id): the
        # pathway row is rewritten by every log anyway, an index is one more
        # page per commit.
        """
        ALTER TABLE pathways ADD COLUMN last_run_id INTEGER;
        ALTER TABLE runs ADD COLUMN prev_run_id INTEGER;
        UPDATE runs SET prev_run_id = (
            SELECT max(r2.id) FROM runs r2 WHERE r2.pathway_id = runs.pathway_id AND r2.id < runs.id
        );
        UPDATE pathways SET last_run_id = (SELECT max(id) FROM runs WHERE runs.pathway_id = pathways.id);
        DROP INDEX IF EXISTS runs_pathway;
        DROP INDEX IF EXISTS pathways_myelination;
        """,
        # v3: a log writes only its run, which carries the pathway's aggregate
        # after it; pathway rows and links are folded from the runs every
        # FOLD_EVERY runs. ``fold_state`` says through which run, and
        # ``pathway_stats`` is the pathways as of now (folded rows plus newer runs).
        # A process of an older release that kept the file open through the
        # upgrade would write runs without these columns (and with a stale
        # aggregate): renaming prev_run_id makes its INSERT fail instead, at no
        # cost to this release's inserts (a trigger would cost ~5% of a log).
        # A fold may add thousands of links: ``links`` becomes one B-tree
        # (WITHOUT ROWID) with no foreign-key lookups (the fold takes pathway
        # ids from runs, and link() checks them itself), a third of the cost.
        """
        ALTER TABLE runs ADD COLUMN successes INTEGER;
        ALTER TABLE runs ADD COLUMN avg_exec_time REAL;
        ALTER TABLE runs ADD COLUMN avg_roi REAL;
        ALTER TABLE runs ADD COLUMN last_activation REAL;
        ALTER TABLE runs ADD COLUMN link_from INTEGER;
        ALTER TABLE runs RENAME COLUMN prev_run_id TO previous_run_id;
        CREATE TEMP TABLE v3_running AS
            SELECT id, sum(label) OVER p AS successes, avg(exec_time) OVER p AS avg_exec_time,
                avg(roi) OVER p AS avg_roi, max(ts) OVER p AS last_activation
            FROM runs WINDOW p AS (PARTITION BY pathway_id ORDER BY id ROWS UNBOUNDED PRECEDING);
        CREATE UNIQUE INDEX temp.v3_running_id ON v3_running(id);
        UPDATE runs SET (successes, avg_exec_time, avg_roi, last_activation) = (
            SELECT successes, avg_exec_time, avg_roi, last_activation FROM temp.v3_running t
            WHERE t.id = runs.id
        );
        DROP TABLE temp.v3_running;
        CREATE TABLE links_v3 (
            from_id INTEGER NOT NULL,
            to_id INTEGER NOT NULL,
            weight REAL NOT NULL,
            PRIMARY KEY (from_id, to_id)
        ) WITHOUT ROWID;
        INSERT INTO links_v3 SELECT from_id, to_id, weight FROM links;
        DROP TABLE links;
        ALTER TABLE links_v3 RENAME TO links;
        CREATE TABLE fold_state (folded_through INTEGER NOT NULL);
        INSERT INTO fold_state SELECT coalesce(max(id), 0) FROM runs;
        CREATE VIEW pathway_stats AS
        WITH latest(pathway_id, run_id) AS (
            SELECT pathway_id, max(id) FROM runs
            WHERE id > (SELECT folded_through FROM fold_state) GROUP BY pathway_id
        )
        SELECT """ + _STATS_COLUMNS + """
        FROM pathways p
        LEFT JOIN latest l ON l.pathway_id = p.id
        LEFT JOIN runs r ON r.id = l.run_id;
        """,
    )

    def __init__(
        self,
        path: str | os.PathLike[str] = "pathways.db",
        half_life_days: float = 30.0,
        event_bus: Any | None = None,
        *,
        link_window: float = 3600.0,
    ) -> None:
        self.half_life_days = check_number("half_life_days", half_life_days, minimum=1e-9)
        self.link_window = check_number("link_window", link_window, minimum=0.0)
        self._half_life_s = self.half_life_days * SECONDS_PER_DAY  # as decay_factor computes it
        self.event_bus = event_bus
        # The aggregates of the pathways this object logged, as of run ``_seen``:
        # [pathway id, frequency, successes, avg_exec_time, avg_roi,
        #  last_activation, newest run id], by action text and by pathway id.
        self._cache: dict[str, list] = {}
        self._by_id: dict[int, list] = {}
        self._seen: int | None = None  # None: not looked yet
        self._folded = 0  # runs through this id are folded (as last seen)
        self._tail: _Tail | None = None
        self._prev: tuple[int, float] | None = None  # (pathway id, ts) of run _seen
        # Runs this object wrote, noted before each commit (see logged_here).
        self._logged = RunLedger(what="runs logged by this PathwayDB")
        super().__init__(path)
        # Reused on every log (a new cursor per statement costs ~5% of a log).
        self._transaction = write_transaction(self._conn, self.path)
        self._insert_cursor = self._conn.cursor()
        # A run's pathway is one this object just read or inserted in the same transaction,
        # so the foreign-key lookup of every insert (runs.pathway_id -> pathways) checks
        # nothing this code can get wrong, at 0.5-1 us of a ~21 us log (measured on tmpfs);
        # as for links (schema v3), the code keeps the reference instead. Pathways are
        # never deleted.
        self._conn.execute("PRAGMA foreign_keys=OFF")

    # -- writing (log, log_many and log_runs: RunLogging) ---------------------
    def _commit(self, records: tuple[PathwayRecord, ...]) -> list[Written]:
        """Write valid records in one transaction (folding when due); what was written of each."""
        with self._lock:
            try:
                with self._transaction as conn:
                    if self._seen is None:
                        self._look(conn)
                    written = []
                    for record in records:  # a loop: a comprehension is one more call per log
                        written.append(self._insert(conn, record))
                    # Noted before the commit, so a watcher never sees one of these runs
                    # committed yet unknown as ours (a rolled-back id noted costs only a wait).
                    if written:
                        self._logged.add_range(written[0][2], written[-1][2])
                    if self._seen - self._folded >= FOLD_EVERY:
                        self._fold(conn, when_due=True)
            except BaseException:
                self._forget()  # the batch was rolled back: the cache may be ahead
                raise
        return written

    def _forget(self) -> None:
        """Drop what is cached; the next write reads the database again."""
        self._drop_cache()
        self._seen = None

    def _look(self, conn) -> None:
        """Learn the newest run and the fold point (first write, or after a rollback)."""
        self._seen, self._folded = conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM runs), folded_through FROM fold_state"
        ).fetchone()
        self._prev = self._run_at(conn, self._seen)
        self._tail = _Tail(self._seen) if self._seen == self._folded else None

    @staticmethod
    def _run_at(conn, run_id: int) -> tuple[int, float] | None:
        """``(pathway id, ts)`` of a run, or ``None``."""
        row = conn.execute("SELECT pathway_id, ts FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None

    def _link_from(self, pathway_id: int, ts: float) -> int | None:
        """The pathway of the run before (``_prev``) if a run of ``pathway_id`` at ``ts`` links to it."""
        prev = self._prev
        if prev is not None and prev[0] != pathway_id and 0 <= ts - prev[1] <= self.link_window:
            return prev[0]
        return None

    def _insert(self, conn, rec: PathwayRecord) -> Written:
        actions = rec.actions
        entry = self._cache.get(actions)
        if entry is None:
            entry = self._load(conn, rec)
        pathway_id = entry[0]
        outcome = rec.outcome._value_  # .value is a slower descriptor
        label = _LABELS[outcome]
        ts = rec.ts
        after = advance(entry, rec, label, self._half_life_s)
        link_from = self._link_from(pathway_id, ts)
        run_id = self._insert_cursor.execute(
            _INSERT_RUN,
            (
                pathway_id, actions, rec.inputs, rec.outputs, rec.exec_time, rec.resources,
                outcome, rec.roi, ts, label, *after, link_from,
            ),
        ).lastrowid
        if run_id != self._seen + 1:
            # Another connection logged runs since we last looked: apply them,
            # then correct this run's features, aggregate and link.
            if not self._catch_up(conn, below=run_id):
                row = conn.execute(_LOAD_PATHWAY.format(where="id = ?"), (pathway_id,)).fetchone()
                entry = self._entry(conn, row, actions, below=run_id)
            after = advance(entry, rec, label, self._half_life_s)
            link_from = self._link_from(pathway_id, ts)
            conn.execute(_FIX_RUN, (*after, link_from, run_id))
        self._seen = run_id
        self._prev = (pathway_id, ts)
        prior_freq, prior_myel, _, successes, avg_time, avg_roi, last = after
        # Checked once the aggregate is final (a stale cache could overflow where
        # the real one does not); raising rolls the whole transaction back.
        if not (_isfinite(avg_time) and _isfinite(avg_roi * successes) and _isfinite(prior_myel)):
            raise ValueError("roi or exec_time is too large: the pathway's averages overflow")
        freq = prior_freq + 1
        entry[1:] = (freq, successes, avg_time, avg_roi, last, run_id)
        tail = self._tail
        if tail is not None:  # note the fold's work: this pathway, and the link to it
            tail.touched.add(pathway_id)
            if link_from is not None:
                pair = (link_from, pathway_id)
                tail.pairs[pair] = tail.pairs.get(pair, 0) + 1
        return rec, pathway_id, run_id, outcome, label, after

    def _load(self, conn, rec: PathwayRecord) -> list:
        """The cache entry of ``rec``'s pathway as of now, inserting a new pathway."""
        if len(self._cache) >= CACHE_LIMIT:
            self._drop_cache()
        self._catch_up(conn)
        row = conn.execute(_LOAD_PATHWAY.format(where="actions = ?"), (rec.actions,)).fetchone()
        if row is None:
            pathway_id = conn.execute(_INSERT_PATHWAY, (rec.actions, rec.ts)).lastrowid
            return self._remember(rec.actions, [pathway_id, 0, 0, 0.0, 0.0, rec.ts, None])
        return self._entry(conn, row, rec.actions, below=_MAX_ID)

    def _entry(self, conn, row: Any, actions: str, below: int) -> list:
        """Cache the entry of a pathway row as of the runs before ``below``."""
        entry = list(row)
        newer = conn.execute(_LOAD_TAIL, (below, entry[0])).fetchone()
        if newer is not None:
            entry[1:] = newer
        return self._remember(actions, entry)

    def _remember(self, actions: str, entry: list) -> list:
        self._cache[actions] = entry
        self._by_id[entry[0]] = entry
        return entry

    def _drop_cache(self) -> None:
        """Forget the cached pathways (each is read again when next logged)."""
        self._cache.clear()
        self._by_id.clear()
        self._tail = None  # the fold's pathways were in the cache

    def _catch_up(self, conn, below: int | None = None) -> bool:
        """Bring the cache up to the runs before ``below`` (default: all runs).

        Applies the runs other connections committed after ``_seen`` to the
        cached pathways. When more than :data:`CATCH_UP_LIMIT` are new, reading
        them all would cost more than reading the few pathways logged next
        again: the cache is dropped instead and ``False`` returned.
        """
        if below is None:
            below = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0]
        if below - 1 == self._seen:
            return True
        self._tail = None  # runs this object did not log: the fold reads them
        if below - 1 - self._seen > CATCH_UP_LIMIT:
            self._drop_cache()
            self._seen = below - 1
            self._prev = self._run_at(conn, self._seen)
            return False
        by_id = self._by_id
        for pathway_id, freq, successes, avg_time, avg_roi, last, run_id, ts in conn.execute(
            _RUNS_AFTER, (self._seen, below)
        ):
            entry = by_id.get(pathway_id)
            if entry is not None:
                entry[1:] = (freq, successes, avg_time, avg_roi, last, run_id)
            self._prev = (pathway_id, ts)
        self._seen = below - 1
        return True

    def _fold(self, conn, *, when_due: bool = False) -> int:
        """Fold the runs since the last fold into the pathway rows and links.

        Runs inside the caller's write transaction; returns the runs folded.
        With ``when_due``, only if :data:`FOLD_EVERY` runs are unfolded (another
        connection may have folded since this one last looked).
        """
        if self._seen is None:
            self._look(conn)
        self._catch_up(conn)
        (folded,) = conn.execute("SELECT folded_through FROM fold_state").fetchone()
        count = self._seen - folded
        tail = self._tail
        if when_due and count < FOLD_EVERY:
            self._folded = folded
            if tail is not None and tail.start != folded:
                self._tail = None  # another connection folded: the next fold reads the runs
            return 0
        if count > 0:
            if tail is not None and tail.start == folded:
                # Every run since the fold was logged here: the aggregates are
                # in the cache and the links were counted as the runs were logged.
                by_id = self._by_id
                newest = [by_id[pathway_id] for pathway_id in tail.touched]
                links = [(a, b, float(n)) for (a, b), n in tail.pairs.items()]
            else:
                rows = conn.execute(
                    f"SELECT pathway_id, {_RUN_AGGREGATE} FROM runs WHERE id > ? ORDER BY id", (folded,)
                ).fetchall()
                newest = list({row[0]: list(row) for row in rows}.values())  # each pathway's newest run
                links = conn.execute(_TAIL_LINKS.format(where="")).fetchall()
            conn.executemany(
                _FOLD_PATHWAY,
                [
                    (freq, successes, successes / freq, avg_time, avg_roi, last, successes * avg_roi,
                     run_id, pathway_id)
                    for pathway_id, freq, successes, avg_time, avg_roi, last, run_id in newest
                ],
            )
            conn.executemany(_UPSERT_LINK, links)
            conn.execute("UPDATE fold_state SET folded_through = ?", (self._seen,))
        self._folded = self._seen  # _catch_up made _seen the newest run
        if tail is None or tail.start != folded or count > 0:
            self._tail = _Tail(self._seen)
        return count

    def link(self, from_id: int, to_id: int, weight: float = 1.0) -> None:
        """Strengthen the link ``from_id -> to_id`` by ``weight`` (0..:data:`MAX_LINK_WEIGHT`).

        A link's total weight stays at most :data:`MAX_LINK_WEIGHT`: a ``weight``
        that would take it beyond is a ``ValueError`` (nothing is written), so a
        weight can never overflow to infinity.
        """
        check_positive_int("from_id", from_id)
        check_positive_int("to_id", to_id)
        weight = check_number("weight", weight, minimum=0.0, maximum=MAX_LINK_WEIGHT)
        with self._write() as conn:
            for pid, name in ((from_id, "from_id"), (to_id, "to_id")):
                if conn.execute("SELECT 1 FROM pathways WHERE id=?", (pid,)).fetchone() is None:
                    raise FieldError(name, f"{name}: no pathway with id {pid}")
            row = conn.execute(
                f"{_LINKS_FROM} SELECT weight FROM weights WHERE to_id = :to_id",
                {"from_id": from_id, "to_id": to_id},
            ).fetchone()
            stored = row[0] if row is not None else 0.0  # folded weight plus the runs since
            if stored + weight > MAX_LINK_WEIGHT:
                raise FieldError(
                    "weight", f"weight: the link {from_id}->{to_id} would weigh {stored + weight:.6g}, "
                    f"more than {MAX_LINK_WEIGHT:.0e}"
                )
            conn.execute(_UPSERT_LINK, (from_id, to_id, weight))

    @contextmanager
    def _folding(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that folds; a rollback also drops what is cached."""
        with self._lock:
            try:
                with write_transaction(self._conn, self.path) as conn:
                    yield conn
            except BaseException:
                self._forget()
                raise

    def fold(self) -> int:
        """Fold the runs logged since the last fold into the pathway rows and links now.

        Reads never need this (they include unfolded runs); it is for tools
        that read the ``pathways`` table directly. Returns the runs folded.
        """
        with self._folding() as conn:
            return self._fold(conn)

    def apply_decay(self, now: float | None = None) -> int:
        """Recompute every myelination score with the decay up to ``now``.

        Returns the number of pathways updated. Scores are always derived from
        the stored aggregates, so applying decay twice does not decay twice.
        """
        now = time.time() if now is None else check_number("now", now, minimum=0.0)
        with self._folding() as conn:
            self._fold(conn)
            rows = conn.execute(
                "SELECT id, successes, avg_roi, last_activation FROM pathways"
            ).fetchall()
            for row in rows:
                score = (
                    row["successes"] * row["avg_roi"]  # frequency * success_rate * avg_roi
                    * decay_factor(now - row["last_activation"], self.half_life_days)
                )
                conn.execute("UPDATE pathways SET myelination_score=? WHERE id=?", (score, row["id"]))
        return len(rows)

    # -- reading -----------------------------------------------------------
    @staticmethod
    def _pathway(row) -> Pathway:
        return Pathway(**{k: row[k] for k in _PATHWAY_FIELDS})

    def get(self, pathway_id: int) -> Pathway | None:
        """The pathway with this id, or ``None``; ``ValueError`` for an id no store can hold."""
        check_id("pathway_id", pathway_id)
        rows = self._read(_ONE_PATHWAY.format(where="p.id = ?"), (pathway_id,))
        return self._pathway(rows[0]) if rows else None

    def find(self, actions: str) -> Pathway | None:
        """The pathway of exactly this action text, or ``None``."""
        actions = check_text("actions", actions).strip()
        rows = self._read(_ONE_PATHWAY.format(where="p.actions = ?"), (actions,))
        return self._pathway(rows[0]) if rows else None

    def top_pathways(self, limit: int = 10) -> list[Pathway]:
        """Pathways with the highest myelination score first."""
        check_positive_int("limit", limit)
        rows = self._read(
            "SELECT * FROM pathway_stats ORDER BY myelination_score DESC, id LIMIT ?", (limit,)
        )
        return [self._pathway(r) for r in rows]

    def pathways(self, limit: int | None = None, offset: int = 0) -> list[Pathway]:
        """All pathways by id (for tables and exports)."""
        limit = -1 if limit is None else check_positive_int("limit", limit, minimum=0)
        check_positive_int("offset", offset, minimum=0)
        rows = self._read(
            "SELECT * FROM pathway_stats ORDER BY id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [self._pathway(r) for r in rows]

    def similar_actions(self, text: str, limit: int = 10) -> list[Pathway]:
        """Pathways whose actions contain ``text`` literally (``%`` and ``_`` are not wildcards)."""
        text = check_text("text", text, max_len=10_000)
        check_positive_int("limit", limit)
        escaped = escape_like(text)
        rows = self._read(
            "SELECT * FROM pathway_stats WHERE actions LIKE ? ESCAPE '\\' "
            "ORDER BY myelination_score DESC, id LIMIT ?",
            (f"%{escaped}%", limit),
        )
        return [self._pathway(r) for r in rows]

    def next_pathway(self, pathway_id: int) -> Pathway | None:
        """The pathway most often run right after ``pathway_id``, or ``None``."""
        check_id("pathway_id", pathway_id)
        rows = self._read(
            _LINKS_FROM
            + _ONE_PATHWAY.format(where="p.id = (SELECT to_id FROM weights ORDER BY weight DESC, to_id LIMIT 1)"),
            {"from_id": pathway_id},
        )
        return self._pathway(rows[0]) if rows else None

    def links(self, pathway_id: int) -> list[tuple[int, float]]:
        """``(to_id, weight)`` for each link leaving ``pathway_id``, strongest first."""
        check_id("pathway_id", pathway_id)
        rows = self._read(
            f"{_LINKS_FROM} SELECT to_id, weight FROM weights ORDER BY weight DESC, to_id",
            {"from_id": pathway_id},
        )
        return [(r["to_id"], r["weight"]) for r in rows]

    def runs(self, pathway_id: int | None = None, *, since_id: int = 0, limit: int | None = None) -> list[dict]:
        """Runs in logged order with ``id > since_id``, as dicts (all columns).

        With ``pathway_id``, only that pathway's runs (its chain of runs is
        followed back from the newest, so the cost is its own runs, not all).
        """
        check_positive_int("since_id", since_id, minimum=0)
        limit = -1 if limit is None else check_positive_int("limit", limit, minimum=0)
        if pathway_id is not None:
            check_id("pathway_id", pathway_id)
            rows = self._read(_PATHWAY_RUNS, (pathway_id, since_id, since_id, limit))
        else:
            rows = self._read("SELECT * FROM runs WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [dict(r) for r in rows]

    def count_pathways(self) -> int:
        return self._read("SELECT COUNT(*) FROM pathways")[0][0]

    def run_events(self, since_id: int = 0, limit: int = 2000) -> list[dict[str, Any]]:
        """The ``pathway:new`` payloads of the runs after ``since_id``, oldest first, marked
        ``external`` (for announcing runs another process logged; see the run watcher).

        Each carries the pathway's statistics just after its run, as the run row stores them.
        """
        check_positive_int("since_id", since_id, minimum=0)
        check_positive_int("limit", limit)
        rows = self._read(_RUN_EVENTS, (since_id, limit))
        build = events.pathway_new
        payloads = []
        for (run_id, pathway_id, ts, actions, inputs, outputs, exec_time, resources, outcome, roi, label,
             prior_frequency, prior_myelination, successes, avg_exec_time, avg_roi, last) in rows:
            freq = prior_frequency + 1
            stats = {
                "frequency": freq, "success_rate": successes / freq, "avg_exec_time": avg_exec_time,
                "avg_roi": avg_roi, "myelination_score": successes * avg_roi, "last_activation": last,
            }
            payloads.append(build(
                pathway_id, run_id, ts, actions, inputs, outputs, exec_time, resources, outcome, roi, label,
                prior_frequency, prior_myelination, stats, external=True,
            ))
        return payloads

    def logged_here(self, run_id: int) -> bool:
        """Whether this object wrote run ``run_id`` (then it publishes ``pathway:new`` itself)."""
        return run_id in self._logged

    def logged_here_many(self, run_ids: list[int]) -> list[bool]:
        """:meth:`logged_here` of each id, in one look."""
        return [not missing for missing in self._logged.missing(run_ids)]

    def newest_run_id(self) -> int:
        """The id of the newest run (0 when there is none)."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM runs")[0][0])

    def count_runs(self) -> int:
        return self._read("SELECT COUNT(*) FROM runs")[0][0]
