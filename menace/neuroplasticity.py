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
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from . import events
from .labels import label_of
from .storage import SQLiteStore, escape_like, write_transaction
from .validation import check_number, check_positive_int, check_text

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0


class Outcome(StrEnum):
    """How a run ended."""

    SUCCESS = "SUCCESS"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILURE = "FAILURE"

    @classmethod
    def coerce(cls, value: Any) -> Outcome:
        """Accept the enum, or its name or value in any case (``"success"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_").replace(" ", "_")
            if key in cls.__members__:
                return cls[key]
        valid = ", ".join(m.value for m in cls)
        raise ValueError(f"outcome must be one of {valid}, got {value!r}")


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
        self.actions = check_text("actions", self.actions, allow_empty=False, max_len=100_000).strip()
        self.inputs = check_text("inputs", self.inputs)
        self.outputs = check_text("outputs", self.outputs)
        self.resources = check_text("resources", self.resources)
        self.exec_time = check_number("exec_time", self.exec_time, minimum=0.0)
        self.roi = check_number("roi", self.roi)
        self.outcome = Outcome.coerce(self.outcome)
        self.ts = check_number("ts", self.ts, minimum=0.0)
        self._validated = self._values()

    def _values(self) -> tuple:
        return (
            self.actions, self.inputs, self.outputs, self.resources, self.exec_time, self.roi,
            self.outcome, self.ts,
        )

    def validate(self) -> None:
        """Check the fields again if any was changed since the last check (``ValueError``)."""
        # NaN != NaN, so a field set to NaN is always checked again.
        if getattr(self, "_validated", None) != self._values():
            self.__post_init__()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


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


_SELECT_PATHWAY = (
    "SELECT id, frequency, successes, avg_exec_time, avg_roi, last_activation, last_run_id"
    " FROM pathways WHERE actions = ?"
)
_INSERT_PATHWAY = (
    "INSERT INTO pathways(actions, frequency, successes, success_rate, avg_exec_time,"
    " avg_roi, last_activation, myelination_score) VALUES (?,?,?,?,?,?,?,?)"
)
_UPDATE_PATHWAY = (
    "UPDATE pathways SET frequency=?, successes=?, success_rate=?, avg_exec_time=?,"
    " avg_roi=?, last_activation=?, myelination_score=?, last_run_id=? WHERE id=?"
)
_SET_LAST_RUN = "UPDATE pathways SET last_run_id=? WHERE id=?"
_INSERT_RUN = (
    "INSERT INTO runs(pathway_id, actions, inputs, outputs, exec_time, resources, outcome,"
    " roi, ts, label, prior_frequency, prior_myelination, prev_run_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# The runs of one pathway, newest first down the chain, stopping at since_id.
_PATHWAY_RUNS = (
    "WITH RECURSIVE chain(id) AS ("
    " SELECT last_run_id FROM pathways WHERE id = ? AND last_run_id > ?"
    " UNION ALL"
    " SELECT r.prev_run_id FROM runs r JOIN chain c ON r.id = c.id WHERE r.prev_run_id > ?"
    ") SELECT runs.* FROM chain JOIN runs ON runs.id = chain.id ORDER BY runs.id LIMIT ?"
)
_SELECT_PREVIOUS_RUN = "SELECT id, pathway_id, ts FROM runs WHERE id < ? ORDER BY id DESC LIMIT 1"


class PathwayDB(SQLiteStore):
    """Store of pathways and their runs.

    Args:
        path: SQLite file (created with its folder if missing).
        half_life_days: time for an idle pathway's myelination to halve.
        event_bus: a :class:`~menace.unified_event_bus.UnifiedEventBus`; each
            committed run is published on ``pathway:new``.
        link_window: seconds; a run starting within this time of the previous
            run links the previous pathway to this one (see :meth:`next_pathway`).
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
        self.event_bus = event_bus
        #: (run id, pathway id, ts) of the last run this connection wrote.
        self._last_run: tuple[int, int, float] | None = None
        super().__init__(path)

    # -- writing -----------------------------------------------------------
    def log(self, record: PathwayRecord) -> int:
        """Commit one run, update its pathway, then publish ``pathway:new``.

        Returns the pathway id. Raises ``ValueError`` for an invalid record
        (nothing is written).
        """
        return self.log_many([record])[0]

    def log_many(self, records: Iterable[PathwayRecord]) -> list[int]:
        """Commit many runs in one transaction; publish one event per run after it.

        Every record is validated first: one bad record refuses the whole batch.
        Returns the pathway id of each record, in order.
        """
        records = list(records)
        for i, record in enumerate(records):
            if not isinstance(record, PathwayRecord):
                raise ValueError(f"records[{i}] must be a PathwayRecord, got {type(record).__name__}")
            record.validate()  # fields may have been changed after construction
        payloads: list[dict[str, Any]] = []
        with self._lock:
            last_run = self._last_run
            try:
                with write_transaction(self._conn) as conn:
                    for record in records:
                        payloads.append(self._insert(conn, record))
            except BaseException:
                self._last_run = last_run  # the batch was rolled back
                raise
        if self.event_bus is not None:
            publish = self.event_bus.publish
            for payload in payloads:
                publish(events.PATHWAY_NEW, payload)
        return [p["pathway_id"] for p in payloads]

    def _insert(self, conn, rec: PathwayRecord) -> dict[str, Any]:
        row = conn.execute(_SELECT_PATHWAY, (rec.actions,)).fetchone()
        label = label_of(rec.outcome)
        ts = rec.ts
        if row is None:
            prior_freq, prior_myel = 0, 0.0
            freq, successes = 1, label
            avg_time, avg_roi = rec.exec_time, rec.roi
            last = ts
            prev_run_id = None
        else:
            (
                pathway_id, prior_freq, prior_successes, prior_time, prior_roi, prior_last,
                prev_run_id,
            ) = row
            # Derived from the aggregates, so a score apply_decay already decayed
            # is not decayed a second time.
            prior_myel = prior_successes * prior_roi * decay_factor(
                ts - prior_last, self.half_life_days
            )
            freq = prior_freq + 1
            successes = prior_successes + label
            avg_time = prior_time + (rec.exec_time - prior_time) / freq
            avg_roi = prior_roi + (rec.roi - prior_roi) / freq
            last = ts if ts > prior_last else prior_last
        rate = successes / freq
        myel = successes * avg_roi  # frequency * success_rate * avg_roi, undecayed
        if not (math.isfinite(myel) and math.isfinite(avg_time) and math.isfinite(prior_myel)):
            raise ValueError("roi or exec_time is too large: the pathway's averages overflow")
        if row is None:
            pathway_id = conn.execute(
                _INSERT_PATHWAY, (rec.actions, freq, successes, rate, avg_time, avg_roi, last, myel)
            ).lastrowid
        outcome = rec.outcome.value
        run_id = conn.execute(
            _INSERT_RUN,
            (
                pathway_id, rec.actions, rec.inputs, rec.outputs, rec.exec_time, rec.resources,
                outcome, rec.roi, ts, label, prior_freq, prior_myel, prev_run_id,
            ),
        ).lastrowid
        if row is None:
            conn.execute(_SET_LAST_RUN, (run_id, pathway_id))
        else:
            conn.execute(
                _UPDATE_PATHWAY,
                (freq, successes, rate, avg_time, avg_roi, last, myel, run_id, pathway_id),
            )
        # The run logged just before this one: usually our own last insert; if
        # another connection wrote in between, ask the database.
        previous = self._last_run
        if previous is None or previous[0] != run_id - 1:
            previous = conn.execute(_SELECT_PREVIOUS_RUN, (run_id,)).fetchone()
        if (
            previous is not None
            and previous[1] != pathway_id
            and 0 <= ts - previous[2] <= self.link_window
        ):
            self._link(conn, previous[1], pathway_id, 1.0)
        self._last_run = (run_id, pathway_id, ts)
        limit = events.PAYLOAD_TEXT_LIMIT
        clip = events.clip
        return {
            "pathway_id": pathway_id,
            "run_id": run_id,
            "ts": ts,
            "actions": rec.actions if len(rec.actions) <= limit else clip(rec.actions),
            "inputs": rec.inputs if len(rec.inputs) <= limit else clip(rec.inputs),
            "outputs": rec.outputs if len(rec.outputs) <= limit else clip(rec.outputs),
            "exec_time": rec.exec_time,
            "resources": rec.resources if len(rec.resources) <= limit else clip(rec.resources),
            "outcome": outcome,
            "roi": rec.roi,
            "label": label,
            "prior_frequency": prior_freq,
            "prior_myelination": prior_myel,
            "stats": {
                "frequency": freq,
                "success_rate": rate,
                "avg_exec_time": avg_time,
                "avg_roi": avg_roi,
                "myelination_score": myel,
                "last_activation": last,
            },
        }

    @staticmethod
    def _link(conn, from_id: int, to_id: int, weight: float) -> None:
        conn.execute(
            "INSERT INTO links(from_id, to_id, weight) VALUES (?,?,?) "
            "ON CONFLICT(from_id, to_id) DO UPDATE SET weight = weight + excluded.weight",
            (from_id, to_id, weight),
        )

    def link(self, from_id: int, to_id: int, weight: float = 1.0) -> None:
        """Strengthen the link ``from_id -> to_id`` by ``weight``."""
        check_positive_int("from_id", from_id)
        check_positive_int("to_id", to_id)
        weight = check_number("weight", weight, minimum=0.0)
        with self._write() as conn:
            for pid, name in ((from_id, "from_id"), (to_id, "to_id")):
                if conn.execute("SELECT 1 FROM pathways WHERE id=?", (pid,)).fetchone() is None:
                    raise ValueError(f"{name}: no pathway with id {pid}")
            self._link(conn, from_id, to_id, weight)

    def apply_decay(self, now: float | None = None) -> int:
        """Recompute every myelination score with the decay up to ``now``.

        Returns the number of pathways updated. Scores are always derived from
        the stored aggregates, so applying decay twice does not decay twice.
        """
        now = time.time() if now is None else check_number("now", now, minimum=0.0)
        with self._write() as conn:
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
        rows = self._read("SELECT * FROM pathways WHERE id=?", (pathway_id,))
        return self._pathway(rows[0]) if rows else None

    def find(self, actions: str) -> Pathway | None:
        """The pathway of exactly this action text, or ``None``."""
        actions = check_text("actions", actions).strip()
        rows = self._read("SELECT * FROM pathways WHERE actions=?", (actions,))
        return self._pathway(rows[0]) if rows else None

    def top_pathways(self, limit: int = 10) -> list[Pathway]:
        """Pathways with the highest myelination score first."""
        check_positive_int("limit", limit)
        rows = self._read(
            "SELECT * FROM pathways ORDER BY myelination_score DESC, id LIMIT ?", (limit,)
        )
        return [self._pathway(r) for r in rows]

    def pathways(self, limit: int | None = None, offset: int = 0) -> list[Pathway]:
        """All pathways by id (for tables and exports)."""
        rows = self._read(
            "SELECT * FROM pathways ORDER BY id LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
        )
        return [self._pathway(r) for r in rows]

    def similar_actions(self, text: str, limit: int = 10) -> list[Pathway]:
        """Pathways whose actions contain ``text`` literally (``%`` and ``_`` are not wildcards)."""
        text = check_text("text", text, max_len=10_000)
        check_positive_int("limit", limit)
        escaped = escape_like(text)
        rows = self._read(
            "SELECT * FROM pathways WHERE actions LIKE ? ESCAPE '\\' "
            "ORDER BY myelination_score DESC, id LIMIT ?",
            (f"%{escaped}%", limit),
        )
        return [self._pathway(r) for r in rows]

    def next_pathway(self, pathway_id: int) -> Pathway | None:
        """The pathway most often run right after ``pathway_id``, or ``None``."""
        rows = self._read(
            "SELECT p.* FROM links l JOIN pathways p ON p.id = l.to_id "
            "WHERE l.from_id=? ORDER BY l.weight DESC, p.id LIMIT 1",
            (pathway_id,),
        )
        return self._pathway(rows[0]) if rows else None

    def links(self, pathway_id: int) -> list[tuple[int, float]]:
        """``(to_id, weight)`` for each link leaving ``pathway_id``, strongest first."""
        rows = self._read(
            "SELECT to_id, weight FROM links WHERE from_id=? ORDER BY weight DESC", (pathway_id,)
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
            rows = self._read(_PATHWAY_RUNS, (pathway_id, since_id, since_id, limit))
        else:
            rows = self._read("SELECT * FROM runs WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [dict(r) for r in rows]

    def count_pathways(self) -> int:
        return self._read("SELECT COUNT(*) FROM pathways")[0][0]

    def count_runs(self) -> int:
        return self._read("SELECT COUNT(*) FROM runs")[0][0]
