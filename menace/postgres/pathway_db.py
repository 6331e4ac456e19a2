"""PgPathwayDB: :class:`~menace.neuroplasticity.PathwayDB` on PostgreSQL, for many writers on many hosts.

The same public methods, payloads and numbers as the SQLite store (the same
:func:`~menace.neuroplasticity.advance` computes every aggregate and the
``prior_*`` features), with what a server shared by many writers needs:

**Writers serialize per pathway, not globally.** Every writer of a pathway
locks its row (``FOR UPDATE``, or by updating it) before it computes a run
from the row's aggregate, and draws the run's id from the ``runs_id_seq``
sequence while it holds the lock; so runs of one pathway get ids in commit
order, each run's ``prior_*`` features and the aggregate after it are exact,
and runs of different pathways commit in parallel. A log of a pathway this
store object logged last needs no read: it remembers the aggregate, and one
statement (one round trip, one commit) rewrites the pathway row only if its
newest run is still the remembered one (checked again after any lock wait),
draws the id, and inserts the run; otherwise (another writer logged the
pathway since, or it is new here) the log reads under the lock first, in one
round trip with ``BEGIN``: for pathways new to this object, transaction-scoped
advisory locks on a hash of each action text, taken in sorted order and
before any row lock (two logs never deadlock), and their insert where missing
(so a new pathway is inserted once); then the rows ``FOR UPDATE`` in id order
and the run ids; the write then goes with ``COMMIT``. A batch sends its runs
with ``COPY`` in between. Runs of pathways this object all knows (a bot's
batches after its first, a run whose remembered aggregate went stale) are
one string of statements, two round trips
(:mod:`~menace.postgres.copy_query`): the locks and reads, the runs' ``COPY``,
the pathways' update and ``COMMIT``; while the server locks, the client works
out the runs' rows from the aggregates it remembers (:mod:`~menace.postgres.run_rows`).
Pathway rows are current after every commit.

**Links are folded from the runs.** A run's row names the pathway it
follows (``link_from``: the pathway of the newest run committed before it,
within ``link_window``; with concurrent writers, "the run just before" is
whichever committed last). Logs write nothing else for links: upserting a
batch's ~100 link rows cost it a fifth of its time. Every
:data:`FOLD_EVERY` runs, a writer's notifier thread
adds the links of the runs up to a settled id (see below) to
``folded_links``, per pair of pathways in short transactions (one folder at a
time, under ``link_fold``'s row lock), and moves its fold point after the
last; :meth:`PgPathwayDB.links` reads the folded weights plus the runs since
the fold point (less those a fold under way wrote already), in one snapshot,
so every read is current and counts each run once, as on SQLite.
:meth:`PgPathwayDB.fold` folds now.

**Readers of new runs see only settled ids.** Sequence values are not
committed in order: a run with id 10 can commit after run 11, and a reader
that took "every id above the last one seen" would skip it for good. So the
learning side (:meth:`run_events`, the bulk :meth:`runs`, :meth:`newest_run_id`)
reads runs only up to the *settled* id: the highest id below which no
transaction can still commit a run. A writer takes its transaction id
(``pg_current_xact_id()``) before it allocates run ids; a reader notes the
sequence's last value S, then takes a transaction id R of its own; once the
snapshot's ``xmin`` is past R, every transaction that could hold an id up to S
has ended (committed or rolled back), so S is settled. A commit delayed for
seconds holds the settled id below its runs for those seconds, and its runs
are delivered, in id order, when it commits (``tests/test_postgres.py``
delays one writer's commit to prove it). With ids settled, "every run up to N
was handed out" stays true, which the learner's ledger, the service's resume
point and full training all rely on, on both backends alike.

**New runs wake the watcher.** After each commit the store sends
``pg_notify`` on the schema's ``runs`` channel, from a thread of its own
(``menace-pg-notify``, one connection; the commits within
:data:`NOTIFY_INTERVAL` after a wake-up share the next one): not inside the
log's transaction, because PostgreSQL serializes
the commits of notifying transactions, WAL flush included, which cut four
writers' durable logs to a third of one writer's rate here.
:meth:`wait_for_runs` waits on a ``LISTEN`` connection of its own, so a run
logged on any host reaches the learner in milliseconds without polling.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import threading
import time
import weakref
import zlib
from collections import deque
from functools import partial
from typing import Any

from .. import events
from ..errors import FieldError
from ..labels import Outcome, label_of
from ..neuroplasticity import (
    MAX_LINK_WEIGHT,
    Pathway,
    PathwayRecord,
    RunLogging,
    Written,
    advance,
    decay_factor,
)
from ..run_ledger import RunLedger
from ..storage import escape_like
from ..validation import check_id, check_number, check_positive_int, check_text
from . import run_rows
from .arrays import bytea_array, float8_array, int4_array, int8_array
from .database import Database, Owned

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0
_LABELS = {o.value: label_of(o) for o in Outcome}
_isfinite = math.isfinite
#: Longest a reader of new runs waits for in-flight writers to end before it answers with what is settled.
SETTLE_WAIT = 0.05
#: Most candidate watermarks kept while writers are in flight.
_PENDING_LIMIT = 256
#: Seconds between two wake-ups one store sends: the commits in between share the second one
#: (a commit after a quiet spell is announced at once). At 5 ms, a writer logging 250 runs/s sent
#: a wake-up (a server transaction) per two runs, at 20 ms one per six; four such writers took 85%
#: of a core against 74%, and the freshness p99 was 221-314 ms against 154-224 ms
#: (bench/postgres.py --only freshness).
NOTIFY_INTERVAL = 0.02
#: Most pathways whose newest aggregate one store object remembers.
CACHE_LIMIT = 100_000
#: Runs between two folds of the links (see PgPathwayDB._fold_links): four times SQLite's
#: :data:`~menace.neuroplasticity.FOLD_EVERY`. A fold writes a row per pair of pathways its runs
#: link, so a longer one writes fewer per run (the benchmark's 50 pathways: 2,450 pairs for
#: 8,192 runs, 2,500 for 32,768; one fold of 32,768 runs took 70 ms, each of four of 8,192
#: 45-57 ms); a read of links counts the runs since the fold (32,768 of them: 14 ms).
FOLD_EVERY = 32_768
#: Most links (pairs of pathways) one transaction of a links' fold writes.
FOLD_CHUNK = 512
#: Most runs one fold covers (a longer backlog takes several): bounds the pairs a folder holds.
FOLD_RANGE = 4 * FOLD_EVERY
_NEVER = 1 << 63  # no run id reaches it: while a fold is asked for, no other is

_PATHWAY_COLUMNS = "id, actions, frequency, successes, success_rate, avg_exec_time, avg_roi, last_activation, myelination_score"
_RUN_COLUMNS = (
    "id, pathway_id, actions, inputs, outputs, exec_time, resources, outcome, roi, ts, label,"
    " prior_frequency, prior_myelination, previous_run_id, successes, avg_exec_time, avg_roi,"
    " last_activation, link_from"
)
# A log's first statements (one round trip with BEGIN). Pathways this object has not
# logged may be new: transaction-scoped advisory locks on their keys (sorted, so two
# logs never deadlock), taken before any row lock, make their insert-where-missing
# safe. Then the pathways' rows, locked in id order (every writer waits here for
# another writer of the same pathway), then the newest run and the run ids, drawn
# only after the transaction has its id (see _Settled; the ids' WHERE takes it).
_LOCK_ONE = "SELECT pg_current_xact_id(), pg_advisory_xact_lock(%s::int4, %s::int4)"
_LOCK_MANY = "SELECT pg_current_xact_id(), pg_advisory_xact_lock(%s::int4, k) FROM unnest(%b::int4[]) AS k"
_STATE = "SELECT actions, id, frequency, successes, avg_exec_time, avg_roi, last_activation, last_run_id FROM pathways"
# The rows are locked too, in id order (as apply_decay locks them): a log from a remembered
# aggregate locks its one row the same way, so either waits for the other.
_STATE_ONE = _STATE + " WHERE actions_key = %s FOR UPDATE"
_STATE_MANY = _STATE + " WHERE actions_key = ANY(%b) ORDER BY id FOR UPDATE"
_IDS_AND_NEWEST = """
    SELECT (SELECT array_agg(nextval('runs_id_seq')) FROM generate_series(1, %s)
            WHERE (SELECT pg_current_xact_id()) IS NOT NULL),
        r.pathway_id, r.ts
    FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT pathway_id, ts FROM runs ORDER BY id DESC LIMIT 1) AS r ON true"""
# One run's writes in one statement: the run (its link is in its row) and its pathway's new aggregate.
_WRITE_ONE = f"""
    WITH run AS (INSERT INTO runs({_RUN_COLUMNS}) VALUES ({", ".join(["%s"] * 19)}))
    UPDATE pathways SET frequency = %s, successes = %s, success_rate = %s, avg_exec_time = %s,
        avg_roi = %s, last_activation = %s, myelination_score = %s, last_run_id = %s
    WHERE id = %s"""
# One run of a pathway this object logged last, from its remembered aggregate, in one
# statement and one commit (autocommit). The pathway row is rewritten first, only if it
# still holds these actions (an emptied table's ids are given again) and its newest run
# is still the one remembered: the UPDATE locks the row, and after waiting
# for a concurrent writer it checks that condition again on the row as that writer left
# it, so a stale aggregate is never written; nothing comes back then, and the caller
# reads and tries again. The run's id is drawn by the UPDATE once its condition held,
# and the condition first takes the transaction's id (drawn run ids must come after it:
# see _Settled). The link is found here too (the newest run committed before this one,
# within the window), and kept in the run's row (see PgPathwayDB._fold_links).
_WRITE_REMEMBERED = f"""
    WITH pathway AS (
        UPDATE pathways SET frequency = %(frequency)s, successes = %(successes)s,
            success_rate = %(success_rate)s, avg_exec_time = %(avg_exec_time)s, avg_roi = %(avg_roi)s,
            last_activation = %(last)s, myelination_score = %(myelination)s,
            last_run_id = nextval('runs_id_seq')
        WHERE id = %(pathway)s AND actions_key = %(key)s AND pg_current_xact_id() IS NOT NULL
            AND last_run_id IS NOT DISTINCT FROM %(previous)s
        RETURNING last_run_id AS id
    ),
    run AS (
        INSERT INTO runs({_RUN_COLUMNS})
        SELECT p.id, %(pathway)s, %(actions)s, %(inputs)s, %(outputs)s, %(exec_time)s,
            %(resources)s, %(outcome)s, %(roi)s, %(ts)s, %(label)s, %(prior_frequency)s, %(prior_myelination)s,
            %(previous)s, %(successes)s, %(avg_exec_time)s, %(avg_roi)s, %(last)s,
            CASE WHEN n.pathway_id <> %(pathway)s AND %(ts)s - n.ts BETWEEN 0 AND %(window)s THEN n.pathway_id END
        FROM pathway AS p
        LEFT JOIN LATERAL (SELECT pathway_id, ts FROM runs ORDER BY id DESC LIMIT 1) AS n ON true
        RETURNING id
    )
    SELECT id FROM run"""
# A new pathway, inserted under its lock only if missing (no other writer can insert it meanwhile).
_INSERT_NEW = """
    INSERT INTO pathways(actions, actions_key, frequency, successes, success_rate, avg_exec_time,
        avg_roi, last_activation, myelination_score)
    SELECT a, k, 0, 0, 0.0, 0.0, 0.0, t, 0.0 FROM unnest(%s::text[], %b::bytea[], %b::float8[]) AS n(a, k, t)
    WHERE NOT EXISTS (SELECT FROM pathways p WHERE p.actions_key = n.k)"""
# A batch's pathways take their aggregates from their newest runs it just copied (the
# aggregate after a run is in its row).
_SET_FROM_RUN = """
    UPDATE pathways p SET frequency = r.prior_frequency + 1, successes = r.successes,
        success_rate = r.successes::float8 / (r.prior_frequency + 1), avg_exec_time = r.avg_exec_time,
        avg_roi = r.avg_roi, last_activation = r.last_activation,
        myelination_score = r.successes * r.avg_roi, last_run_id = r.id"""
_UPDATE_PATHWAYS = _SET_FROM_RUN + " FROM runs r WHERE r.id = ANY(%b::int8[]) AND p.id = r.pathway_id"
# Runs whose pathways this object all knows (a bot's batches after its first; a run whose
# remembered aggregate went stale) are one simple query of two round trips (see copy_query):
# BEGIN, the pathways locked and read by id, the run ids drawn; the runs by COPY; the
# aggregates; COMMIT. Half the client's work of the pipelines (0.34 against 0.64 ms for one
# run). Its statements are prepared once per connection: planned anew each time, they cost
# more than the round trips saved.


def _prepared(kind: str, params: str, statement: str) -> tuple[str, str]:
    """A prepared statement's name and its ``PREPARE``: the name ends with a hash of the
    statement, so a session never runs another release's statement of the same name."""
    name = f"menace_pathways_{kind}_{zlib.crc32((params + statement).encode()):08x}"
    return name, f"PREPARE {name}{params} AS {statement}"


_KNOWN_STATE, _PREPARE_STATE = _prepared("state", "(int8[])", _STATE + " WHERE id = ANY($1) ORDER BY id FOR UPDATE")
# $2: the positions in the batch of each pathway's last run, which holds its aggregate
# (known to the client when it sends the query; their ids only to the server): the ids of
# those runs go to the update in a transaction-local setting.
_KNOWN_IDS, _PREPARE_IDS = _prepared("ids", "(int8, int4[])", """
    SELECT i.ids, set_config('menace.last_run_ids', ARRAY(SELECT i.ids[k] FROM unnest($2) AS k)::text, true),
        r.pathway_id, r.ts
    FROM (SELECT array_agg(nextval('runs_id_seq')) AS ids FROM generate_series(1, $1)
          WHERE (SELECT pg_current_xact_id()) IS NOT NULL) AS i
    LEFT JOIN LATERAL (SELECT pathway_id, ts FROM runs ORDER BY id DESC LIMIT 1) AS r ON true""")
_KNOWN_UPDATE, _PREPARE_UPDATE = _prepared("update", "", _SET_FROM_RUN + """
    FROM runs r WHERE r.id = ANY(current_setting('menace.last_run_ids')::int8[]) AND p.id = r.pathway_id""")
_PREPARE_KNOWN = {_KNOWN_STATE: _PREPARE_STATE, _KNOWN_IDS: _PREPARE_IDS, _KNOWN_UPDATE: _PREPARE_UPDATE}
_LOG_KNOWN = (
    f"BEGIN; EXECUTE {_KNOWN_STATE}('{{{{{{ids}}}}}}'); EXECUTE {_KNOWN_IDS}({{count}}, '{{{{{{last}}}}}}');"
    f" {run_rows.COPY}; EXECUTE {_KNOWN_UPDATE}; COMMIT"
)
# Links: a run's row names the pathway it links from (link_from). Logs write nothing else
# for it: upserting ~100 link rows cost a batch of 100 runs a fifth of its time. Every
# FOLD_EVERY runs a writer folds the runs' links up to a settled id into folded_links (see
# PgPathwayDB._fold_links); readers add the runs after the fold point. link_fold holds the
# fold point (folded_through), and while a fold is under way, its end (folding_through) and
# the last pair it wrote (applied_from, applied_to): the runs up to the end whose pair comes
# no later are in folded_links already.
_FOLD_STATE = "SELECT folded_through, folding_through, applied_from, applied_to FROM link_fold"
# The links of a fold's runs per pair, in the order a fold writes them, as three arrays (one
# row, loaded at once: a row per pair cost the folding thread 3 ms of the GIL per 8,192 runs;
# an ORDER BY in each array_agg cost the server 5 ms more), and the runs folded.
_FOLD_PAIRS = """
    SELECT array_agg(f) FILTER (WHERE f IS NOT NULL), array_agg(t) FILTER (WHERE f IS NOT NULL),
        array_agg(n) FILTER (WHERE f IS NOT NULL), sum(n)
    FROM (SELECT link_from, pathway_id, count(*)::float8 FROM runs WHERE id > %s AND id <= %s
          GROUP BY link_from, pathway_id ORDER BY link_from, pathway_id) AS p(f, t, n)"""
_FOLD_BEGUN = "UPDATE link_fold SET folding_through = %s, applied_from = -1, applied_to = -1"
_FOLD_WRITTEN = "UPDATE link_fold SET applied_from = %s, applied_to = %s"
_FOLD_DONE = (
    "UPDATE link_fold SET folded_through = folding_through, checked_through = folding_through,"
    " applied_from = -1, applied_to = -1"
)
# The links leaving a pathway as of now: folded weights plus the runs since the fold (less
# those a fold under way wrote already), in one snapshot. The bounds of the runs' id range
# are subqueries, so the plan is a range scan of runs' primary key (just the runs since the
# fold), whatever the values.
_LINKS_FROM = """
    SELECT to_id, sum(weight) AS weight FROM (
        SELECT to_id, weight FROM folded_links WHERE from_id = %(from)s
        UNION ALL
        SELECT pathway_id, count(*)::float8 FROM runs
        WHERE id > (SELECT folded_through FROM link_fold)
            AND id <= (SELECT last_value FROM runs_id_seq) AND link_from = %(from)s
            AND (id > (SELECT folding_through FROM link_fold)
                 OR (link_from, pathway_id) > (SELECT applied_from, applied_to FROM link_fold))
        GROUP BY pathway_id
    ) AS w GROUP BY to_id"""
_UPSERT_LINKS = """
    INSERT INTO folded_links(from_id, to_id, weight) SELECT * FROM unnest(%b::int8[], %b::int8[], %b::float8[])
    ON CONFLICT (from_id, to_id) DO UPDATE SET weight = folded_links.weight + excluded.weight"""
_RUN_EVENTS = (
    "SELECT id, pathway_id, ts, actions, inputs, outputs, exec_time, resources, outcome, roi, label,"
    " prior_frequency, prior_myelination, successes, avg_exec_time, avg_roi, last_activation"
    " FROM runs WHERE id > %s AND id <= %s ORDER BY id LIMIT %s"
)
_PATHWAY_RUNS = f"""
    WITH RECURSIVE chain(id) AS (
        SELECT last_run_id FROM pathways WHERE id = %s AND last_run_id > %s
        UNION ALL
        SELECT r.previous_run_id FROM runs r JOIN chain c ON r.id = c.id
        WHERE r.previous_run_id > %s AND r.previous_run_id < r.id
    ) SELECT {_RUN_COLUMNS} FROM runs WHERE id IN (SELECT id FROM chain) ORDER BY id LIMIT %s"""


def action_key(actions: str) -> bytes:
    """The unique key of a pathway: SHA-256 of its action text (text of any length fits an index)."""
    return hashlib.sha256(actions.encode("utf-8")).digest()


def _lock_key(key: bytes) -> int:
    return int.from_bytes(key[:4], "big", signed=True)


class _Notifier:
    """Sends the ``runs`` wake-up after commits, from its own thread (see the module doc),
    and does the store's ``chore`` there when asked (the links' fold: a log never waits for it).

    :meth:`poke` returns at once. A poke after a quiet spell is answered at
    once; pokes that arrive while a wake-up is sent, or within
    :data:`NOTIFY_INTERVAL` after it, are answered by one more wake-up at the
    end of that interval. :meth:`want_chore` (after a poke) returns at once
    too. The thread and its connection start with the first poke and end
    with :meth:`close` (a chore not begun by then is left to the next writer).
    """

    THREAD_NAME = "menace-pg-notify"

    def __init__(self, db: Database, channel: str, chore: Any = None) -> None:
        self._db = db
        self._channel = channel
        self._chore = chore
        self._chore_owed = False
        self._wanted = threading.Event()
        self._closing = False
        self._owed = False  # a commit since the last wake-up was sent
        self._pause = threading.Event()  # set on close: no pause between wake-ups then
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def poke(self) -> None:
        if self._thread is None:
            with self._start:
                if self._thread is None and not self._closing:
                    self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
                    self._thread.start()
        self._owed = True
        self._wanted.set()

    def want_chore(self) -> None:
        self._chore_owed = True
        self._wanted.set()

    def _run(self) -> None:
        conn = None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._owed and (conn is not None or not self._closing):  # no new connection to close
                self._owed = False  # a poke after this is seen by the next turn
                try:
                    if conn is None:
                        conn = self._db.connect()
                    conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
                except Exception as exc:  # the watcher still looks every WAKE_TIMEOUT: log, reconnect next time
                    logger.warning("pathways: could not send the wake-up (%s)", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
                # Commits in the next NOTIFY_INTERVAL share one wake-up: one per commit cost a
                # busy writer a third of its rate (a transaction on the server, the GIL here).
                self._pause.wait(NOTIFY_INTERVAL)
            if self._chore_owed and not self._closing:
                self._chore_owed = False
                self._chore()
            if self._closing:
                break
        if conn is not None:
            conn.close()

    def close(self, timeout: float = 2.0) -> None:
        """Send the wake-up still owed, stop the thread and close its connection; idempotent."""
        with self._start:
            self._closing = True
            thread = self._thread
        self._pause.set()
        self._wanted.set()
        if thread is not None:
            thread.join(timeout)


class _Settled:
    """The highest run id below which no run can still be committed (see the module doc).

    Thread-safe; one per store object.
    """

    def __init__(self) -> None:
        self.through = 0
        self._pending: deque[tuple[int, int]] = deque()  # (reader xid R, sequence value S), S ascending
        self._lock = threading.Lock()

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def check(self, conn: Any, wait: float = SETTLE_WAIT) -> int:
        """Note the newest allocated id, wait up to ``wait`` s for it to settle; the settled id."""
        with self._lock:
            (allocated,) = conn.execute(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM runs_id_seq"
            ).fetchone()
            newest_noted = self._pending[-1][1] if self._pending else self.through
            if allocated > newest_noted:
                # After reading S: every writer that took an id <= S took its xid before, so before R.
                (reader,) = conn.execute("SELECT pg_current_xact_id()::text::int8").fetchone()
                self._pending.append((reader, allocated))
                if len(self._pending) > _PENDING_LIMIT:
                    del self._pending[-2]  # fewer marks only settle later
            deadline = time.monotonic() + wait
            pause = 0.0005
            while self._pending:
                (xmin,) = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8").fetchone()
                while self._pending and self._pending[0][0] < xmin:
                    self.through = max(self.through, self._pending.popleft()[1])
                if not self._pending or time.monotonic() >= deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
            return self.through


class PgPathwayDB(RunLogging):
    """Store of pathways and their runs in a PostgreSQL database (see the module doc).

    Args:
        database: a ``postgresql://`` URL (the store opens and closes its own
            pool) or a shared :class:`~menace.postgres.database.Database`.
        half_life_days, event_bus, link_window: as for
            :class:`~menace.neuroplasticity.PathwayDB`.
    """

    STORE = "pathways"
    MIGRATIONS = (
        """
        CREATE TABLE pathways (
            id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            actions text NOT NULL,
            actions_key bytea NOT NULL UNIQUE,
            frequency bigint NOT NULL,
            successes bigint NOT NULL,
            success_rate float8 NOT NULL,
            avg_exec_time float8 NOT NULL,
            avg_roi float8 NOT NULL,
            last_activation float8 NOT NULL,
            myelination_score float8 NOT NULL,
            last_run_id bigint
        );
        CREATE SEQUENCE runs_id_seq;
        CREATE TABLE runs (
            id bigint PRIMARY KEY,
            pathway_id bigint NOT NULL,
            actions text NOT NULL,
            inputs text NOT NULL,
            outputs text NOT NULL,
            exec_time float8 NOT NULL,
            resources text NOT NULL,
            outcome text NOT NULL,
            roi float8 NOT NULL,
            ts float8 NOT NULL,
            label integer NOT NULL,
            prior_frequency bigint NOT NULL,
            prior_myelination float8 NOT NULL,
            previous_run_id bigint,
            successes bigint NOT NULL,
            avg_exec_time float8 NOT NULL,
            avg_roi float8 NOT NULL,
            last_activation float8 NOT NULL,
            link_from bigint
        );
        ALTER SEQUENCE runs_id_seq OWNED BY runs.id;
        CREATE TABLE links (
            from_id bigint NOT NULL,
            to_id bigint NOT NULL,
            weight float8 NOT NULL,
            PRIMARY KEY (from_id, to_id)
        );
        """,
        # v2: logs no longer upsert links; the links are folded from the runs (see
        # PgPathwayDB._fold_links). Every run so far is counted in the links already. The table is
        # renamed so that a writer of the older release still running fails instead of
        # counting its runs' links twice (its link upsert names ``links``).
        """
        ALTER TABLE links RENAME TO folded_links;
        ALTER TABLE folded_links RENAME CONSTRAINT links_pkey TO folded_links_pkey;
        CREATE TABLE link_fold (folded_through bigint NOT NULL);
        INSERT INTO link_fold SELECT coalesce(max(id), 0) FROM runs;
        """,
        # v3: a fold writes its links in transactions of at most FOLD_CHUNK pairs, the fold
        # point moving after the last (see _fold_links). The fold point moves only with
        # checked_through: a writer of an older release (which moves folded_through alone, in
        # 512-run steps) fails its fold instead of counting the links of one under way twice.
        """
        ALTER TABLE link_fold ADD COLUMN folding_through bigint, ADD COLUMN checked_through bigint,
            ADD COLUMN applied_from bigint NOT NULL DEFAULT -1, ADD COLUMN applied_to bigint NOT NULL DEFAULT -1;
        UPDATE link_fold SET folding_through = folded_through, checked_through = folded_through;
        ALTER TABLE link_fold ALTER COLUMN folding_through SET NOT NULL, ALTER COLUMN checked_through SET NOT NULL,
            ADD CONSTRAINT link_fold_moved_whole CHECK (checked_through = folded_through);
        """,
    )

    def __init__(
        self,
        database: Database | str,
        half_life_days: float = 30.0,
        event_bus: Any | None = None,
        *,
        link_window: float = 3600.0,
    ) -> None:
        self.half_life_days = check_number("half_life_days", half_life_days, minimum=1e-9)
        self.link_window = check_number("link_window", link_window, minimum=0.0)
        self._half_life_s = self.half_life_days * SECONDS_PER_DAY
        self.event_bus = event_bus
        self._hold = Owned(database)
        self._db = self._hold.db
        #: Where the store lives: the database URL without its password.
        self.path = self._db.location
        self._logged = RunLedger(what="runs logged by this PathwayDB")
        # The aggregate after the newest run this object logged of each pathway, as
        # [pathway id, frequency, successes, avg_exec_time, avg_roi, last_activation, run id]:
        # a log of the same pathway needs no read while it is still the newest.
        self._remembered: dict[str, list] = {}
        self._keys: dict[str, tuple[bytes, int]] = {}  # actions -> (action_key, lock key)
        self._inflight = 0  # logs whose run id is not known yet
        self._tries = self._hits = self._skipped = 0  # logs from a remembered aggregate; current; not tried
        self._inflight_lock = threading.Lock()
        self._one_query = True  # runs of known pathways as one query (see _LOG_KNOWN), while it works
        self._settled = _Settled()
        self._channel = self._db.channel("runs")
        self._notifier = _Notifier(self._db, self._channel, self._fold_when_due)
        self._listener: Any = None
        self._listen_lock = threading.Lock()
        self._closed = False
        try:
            self._db.migrate(self.STORE, self.MIGRATIONS)
            with self._db.connection() as conn:
                (folded,) = conn.execute("SELECT folded_through FROM link_fold").fetchone()
        except BaseException:
            self._hold.close()
            raise
        self._next_fold = folded + FOLD_EVERY  # the run id after which this object looks at folding
        self._fold_after = 0  # the newest run when a fold was asked for

    # -- writing (log, log_many and log_runs: RunLogging) ---------------------
    def _commit(self, records: tuple[PathwayRecord, ...]) -> list[Written]:
        """Write valid records in one transaction; what was written of each (in order).

        One round trip for a run of a pathway remembered current; else two when
        this object knows every pathway (one query, see ``_LOG_KNOWN``); else
        two (begin and the reads; one statement of writes and the commit), and
        a batch sends its runs with ``COPY`` between the two (two more).
        """
        if not records:
            return []
        written = None
        if len(records) == 1 and self._worth_trying():
            entry = self._remembered.get(records[0].actions)
            if entry is not None:
                one = self._log_remembered(records[0], entry)
                self._count_try(one is not None)
                if one is not None:
                    written = [one]
        if written is None:
            written = self._log_locked(records)
        self._notifier.poke()
        newest = written[-1][2]
        if newest >= self._next_fold:  # the notifier's thread looks (a log never waits for a fold)
            self._fold_after, self._next_fold = newest, _NEVER
            self._notifier.want_chore()
        return written

    def _log_locked(self, records: tuple[PathwayRecord, ...]) -> list[Written]:
        """Log ``records`` reading their pathways under their locks first (see the module doc)."""
        keys = self._keys_of(records)
        if self._one_query and all(a in self._remembered for a in keys):
            written = self._log_known(records, keys)
            if written is not None:
                return written
        with self._db.connection() as conn:
            try:
                try:
                    cache, run_ids, prev = self._read_state(conn, records, keys)
                except _Forgotten as gone:  # log them as new ones: under their locks, inserted
                    _roll_back(conn)
                    for actions in gone.pathways:
                        self._remembered.pop(actions, None)
                    cache, run_ids, prev = self._read_state(conn, records, keys)
                if len(records) == 1:
                    rows, written = self._runs(records, cache, run_ids, prev)
                else:
                    plan = self._plan(records, cache)
                    data, written = self._packed(plan, _heads(plan, conn.info.encoding), run_ids, prev)
                    _settle(cache, run_ids)
                # Noted before the commit, so a watcher never sees one of these runs
                # committed yet unknown as ours (a rolled-back id noted costs only a wait).
                self._logged.add_range(run_ids[0], run_ids[-1])
                if len(records) == 1:
                    self._write_one(conn, rows[0], cache[records[0].actions])
                else:
                    self._write_many(conn, data, [cache[a][6] for a in keys])
            except BaseException:
                _roll_back(conn)
                raise
        self._remember({a: cache[a] for a in keys})
        return written

    def _log_known(self, records: tuple[PathwayRecord, ...], keys: dict) -> list[Written] | None:
        """Log runs whose pathways this object all remembers in one query (see _LOG_KNOWN);
        ``None`` (nothing written) when some are gone from the tables, or its statements do
        not stay prepared: log them the long way then."""
        from psycopg import errors  # here: importing the store does not import psycopg

        from .copy_query import copy_in_query

        # The aggregates this log goes by: other threads sharing the store may remember newer
        # ones meanwhile; the server's rows are checked against these.
        base = {a: self._remembered.get(a) for a in keys}
        if None in base.values():
            return None
        by_id = {base[a][0]: a for a in keys}
        last = {record.actions: position for position, record in enumerate(records, 1)}
        query = _LOG_KNOWN.format(ids=",".join(map(str, sorted(by_id))), count=len(records),
                                  last=",".join(map(str, last.values()))).encode()
        for attempt in (1, 2):
            with self._db.connection() as conn:
                made: list = []
                try:
                    if conn not in _PREPARED:
                        _prepare_known(conn)
                        _PREPARED.add(conn)
                    guess: dict = {}
                    make = partial(self._known_runs, conn, records, base, by_id, guess, made)
                    copy_in_query(conn, query, make, meanwhile=partial(self._guess, conn, records, base, guess))
                except _Forgotten as gone:
                    _roll_back(conn)
                    for actions in gone.pathways:
                        self._remembered.pop(actions, None)
                    return None
                except errors.InvalidSqlStatementName:
                    # Deallocated (psycopg does, after a rollback on the connection): prepare
                    # again, once; still missing (a pooler between), these runs go the long way.
                    _PREPARED.discard(conn)
                    _roll_back(conn)
                    if attempt == 2:
                        self._one_query = False
                        logger.warning("pathways: prepared statements do not last on %s (a pooler in"
                                       " transaction mode?): runs are logged the long way", self.path)
                        return None
                    continue
                except BaseException:
                    _roll_back(conn)
                    raise
            cache, written = made
            self._remember({a: cache[a] for a in keys})
            return written
        return None

    def _guess(self, conn: Any, records: tuple, base: dict, guess: dict) -> None:
        """While the server locks the pathways and draws the ids: the runs' rows up to their
        ids, from the remembered aggregates (right unless another writer logged one since)."""
        cache = {a: list(entry) for a, entry in base.items()}
        try:
            plan = self._plan(records, cache)
        except ValueError:  # an overflow: said, or not, by the aggregates the server sends
            return
        guess.update(cache=cache, plan=plan, heads=_heads(plan, conn.info.encoding))

    def _known_runs(self, conn: Any, records: tuple, base: dict, by_id: dict[int, str], guess: dict,
                    made: list, results: list) -> bytes:
        """The COPY data of a _LOG_KNOWN batch, from its statements' results (pathways, run ids)."""
        states, ids = results[-2:]  # after BEGIN
        cache, current = _known_states(states, by_id, base, conn.info.encoding)
        if len(cache) < len(by_id):
            raise _Forgotten([a for a in by_id.values() if a not in cache])
        if current and guess:
            cache, plan, heads = guess["cache"], guess["plan"], guess["heads"]
        else:  # another writer logged some of these pathways since: from their rows as sent
            plan = self._plan(records, cache)
            heads = _heads(plan, conn.info.encoding)
        run_ids = [int(i) for i in ids.get_value(0, 0)[1:-1].split(b",")]
        prev_pathway = ids.get_value(0, 2)
        prev = None if prev_pathway is None else (int(prev_pathway), float(ids.get_value(0, 3)))
        data, written = self._packed(plan, heads, run_ids, prev)
        _settle(cache, run_ids)
        self._logged.add_range(run_ids[0], run_ids[-1])  # before the commit, as in _log_locked
        made[:] = (cache, written)
        return data

    def _packed(self, plan: list[tuple], heads: list[bytes], run_ids: list[int], prev: Any) -> tuple:
        """The planned runs as ``run_rows.COPY`` takes them, and what was written of each.

        Given the drawn ids, before the rows are sent: what :meth:`_resolved` does for one
        run, inline (a batch's known runs wait for this alone once the server answered:
        100 against 244 us for 100 runs).
        """
        window = self.link_window
        ids = run_rows.ids
        last_pathway, last_ts = prev if prev is not None else (None, 0.0)
        parts = [run_rows.SIGNATURE]
        add = parts.append
        written: list[Written] = []
        keep = written.append
        for head, (rec, pathway_id, outcome, label, after), run_id in zip(heads, plan, run_ids, strict=True):
            previous = after[2]
            if previous is not None and previous < 0:  # ~position in this batch
                previous = run_ids[~previous]
                after = (after[0], after[1], previous, after[3], after[4], after[5], after[6])
            ts = rec.ts
            link_from = (last_pathway if last_pathway is not None and last_pathway != pathway_id
                         and 0.0 <= ts - last_ts <= window else None)
            last_pathway, last_ts = pathway_id, ts
            add(head)
            add(ids(run_id, previous, link_from))
            keep((rec, pathway_id, run_id, outcome, label, after))
        add(run_rows.TRAILER)
        return b"".join(parts), written

    def _keys_of(self, records: tuple[PathwayRecord, ...]) -> dict[str, tuple[bytes, int]]:
        """The key and the lock key of each pathway of ``records``, in order of first use."""
        known = self._keys
        keys: dict[str, tuple[bytes, int]] = {}
        for record in records:
            actions = record.actions
            if actions not in keys:
                found = known.get(actions)
                if found is None:
                    if len(known) >= CACHE_LIMIT:
                        known.clear()
                    key = action_key(actions)
                    found = known[actions] = (key, _lock_key(key))
                keys[actions] = found
        return keys

    def _worth_trying(self) -> bool:
        """Whether to log from a remembered aggregate first.

        Where other writers log the same pathways all the time (several bots on
        one set of workflows), a remembered aggregate is mostly stale and trying
        it first only adds a round trip: below one hit in two, logs read first,
        and one log in 64 tries again.
        """
        if self._hits * 2 >= self._tries:
            return True
        self._skipped += 1
        return self._skipped % 64 == 0

    def _count_try(self, hit: bool) -> None:
        """Keep count of remembered aggregates that were still current (halved every 64 tries)."""
        self._tries += 1
        self._hits += hit
        if self._tries >= 64:
            self._tries, self._hits = self._tries // 2, self._hits // 2

    def _remember(self, entries: dict[str, list]) -> None:
        if len(self._remembered) + len(entries) > CACHE_LIMIT:
            self._remembered.clear()
        self._remembered.update(entries)

    def _log_remembered(self, rec: PathwayRecord, remembered: list) -> Written | None:
        """Log ``rec`` from its pathway's remembered aggregate in one round trip; what was written, or
        ``None`` when another writer logged the pathway since (nothing was written then)."""
        entry = list(remembered)
        pathway_id = entry[0]
        outcome = rec.outcome._value_
        label = _LABELS[outcome]
        after = advance(entry, rec, label, self._half_life_s)
        prior_freq, prior_myel, previous_run_id, successes, avg_time, avg_roi, last = after
        _check_finite(after)
        freq = prior_freq + 1
        params = {
            "pathway": pathway_id, "key": self._keys_of((rec,))[rec.actions][0], "actions": rec.actions,
            "inputs": rec.inputs, "outputs": rec.outputs,
            "exec_time": rec.exec_time, "resources": rec.resources, "outcome": outcome, "roi": rec.roi,
            "ts": rec.ts, "label": label, "prior_frequency": prior_freq, "prior_myelination": prior_myel,
            "previous": previous_run_id, "successes": successes, "avg_exec_time": avg_time, "avg_roi": avg_roi,
            "last": last, "window": self.link_window, "frequency": freq, "success_rate": successes / freq,
            "myelination": successes * avg_roi,
        }
        with self._inflight_lock:
            self._inflight += 1  # the run's id is known only once committed: see logged_here
        try:
            with self._db.connection() as conn:
                written = conn.execute(_WRITE_REMEMBERED, params).fetchone()
            if written is not None:
                self._logged.add(written[0])
        finally:
            with self._inflight_lock:
                self._inflight -= 1
        if written is None:
            self._remembered.pop(rec.actions, None)
            return None
        run_id = written[0]
        entry[1:] = (freq, successes, avg_time, avg_roi, last, run_id)
        self._remembered[rec.actions] = entry
        return rec, pathway_id, run_id, outcome, label, after

    def _read_state(self, conn: Any, records: tuple, keys: dict[str, bytes]) -> tuple[dict, list[int], Any]:
        """Begin, lock the pathways (inserting the new ones), then read their aggregates, the
        newest run and ``len(records)`` run ids: one round trip (the transaction stays open)."""
        # Pathways this object has not logged may be new: inserted where missing, under their locks.
        unknown = [a for a in keys if a not in self._remembered]
        with conn.pipeline():  # its end sends one Sync: every result below comes back at once
            conn.execute("BEGIN")
            if unknown:
                locks = sorted({keys[a][1] for a in unknown})
                if len(locks) == 1:
                    conn.execute(_LOCK_ONE, (self._db.key, locks[0]))
                else:
                    conn.execute(_LOCK_MANY, (self._db.key, int4_array(locks)))
                first = _first_ts(records, unknown)
                conn.execute(_INSERT_NEW, (unknown, bytea_array([keys[a][0] for a in unknown]), first))
            if len(keys) == 1:
                states = conn.execute(_STATE_ONE, (next(iter(keys.values()))[0],))
            else:
                states = conn.execute(_STATE_MANY, (bytea_array([key for key, _ in keys.values()]),))
            ids = conn.execute(_IDS_AND_NEWEST, (len(records),))
        cache = {row[0]: list(row[1:]) for row in states.fetchall()}
        run_ids, prev_pathway, prev_ts = ids.fetchone()
        missing = [a for a in keys if a not in cache]
        if missing:  # remembered, yet not there (the tables were emptied behind this object)
            raise _Forgotten(missing)
        return cache, run_ids, (prev_pathway, prev_ts) if prev_pathway is not None else None

    def _write_one(self, conn: Any, row: tuple, entry: list) -> None:
        """One run and its pathway's aggregate in one statement, and the commit: one round trip."""
        pathway_id, freq, successes, avg_time, avg_roi, last, run_id = entry
        with conn.pipeline():
            conn.execute(_WRITE_ONE, (
                *row,
                freq, successes, successes / freq, avg_time, avg_roi, last, successes * avg_roi, run_id,
                pathway_id,
            ))
            conn.execute("COMMIT")

    def _write_many(self, conn: Any, data: bytes, last_run_ids: list[int]) -> None:
        """Many runs by ``COPY`` (``data``, see :meth:`_packed`), then their pathways' aggregates
        (from each one's newest run just copied) and the commit in one round trip."""
        with conn.cursor() as cur, cur.copy(run_rows.COPY) as copy:
            copy.write(data)
        with conn.pipeline():
            conn.execute(_UPDATE_PATHWAYS, (int8_array(sorted(last_run_ids)),))
            conn.execute("COMMIT")

    def _runs(self, records: tuple, cache: dict, run_ids: list[int], prev: Any) -> tuple:
        """The runs' rows (as columns, for ``_WRITE_ONE``) and what was written of each."""
        rows: list[tuple] = []
        written: list[Written] = []
        for rec, pathway_id, run_id, outcome, label, after, link_from in self._resolved(
                self._plan(records, cache), run_ids, prev):
            rows.append((
                run_id, pathway_id, rec.actions, rec.inputs, rec.outputs, rec.exec_time, rec.resources,
                outcome, rec.roi, rec.ts, label, *after, link_from,
            ))
            written.append((rec, pathway_id, run_id, outcome, label, after))
        _settle(cache, run_ids)
        return rows, written

    def _plan(self, records: tuple, cache: dict) -> list[tuple]:
        """Each run's pathway, outcome, label and the aggregate after it (``after``), from the
        aggregates in ``cache`` (moved on run by run). Run ids are not known yet: a previous
        run of the same pathway in the batch is named by ``~position`` (see :meth:`_resolved`)."""
        half_life_s = self._half_life_s
        plan = []
        for position, rec in enumerate(records):
            entry = cache[rec.actions]
            outcome = rec.outcome._value_
            label = _LABELS[outcome]
            after = advance(entry, rec, label, half_life_s)
            _check_finite(after)
            entry[1:] = (after[0] + 1, after[3], after[4], after[5], after[6], ~position)
            plan.append((rec, entry[0], outcome, label, after))
        return plan

    def _resolved(self, plan: list[tuple], run_ids: list[int], prev: Any) -> Any:
        """The planned runs with their ids: ``(rec, pathway_id, run_id, outcome, label, after,
        link_from)`` each; ``prev`` is the newest run before them, as ``(pathway_id, ts)``."""
        window = self.link_window
        for (rec, pathway_id, outcome, label, after), run_id in zip(plan, run_ids, strict=True):
            previous = after[2]
            if previous is not None and previous < 0:  # ~position in this batch
                after = (after[0], after[1], run_ids[~previous], *after[3:])
            ts = rec.ts
            link_from = None
            if prev is not None and prev[0] != pathway_id and 0 <= ts - prev[1] <= window:
                link_from = prev[0]
            prev = (pathway_id, ts)
            yield rec, pathway_id, run_id, outcome, label, after, link_from

    def fold(self) -> int:
        """Fold the links of the settled runs since the last fold into ``folded_links`` now.

        Reads never need this (they add the runs since the fold); pathway rows are
        current after every commit anyway. It is for tools that read the
        ``folded_links`` table directly. Waits for a fold another writer is making.
        Returns the runs folded.
        """
        with self._db.connection() as conn:
            return self._fold_links(conn, self._settled.check(conn), skip_locked=False)

    def _fold_when_due(self) -> None:
        """On the notifier's thread, after a commit whose newest run passed ``_next_fold``: fold
        the links when :data:`FOLD_EVERY` runs are unfolded (unless another writer is folding
        them now), and set when to look again.

        Folds only through the id this object last noted as settled (noted now for the next
        time, without waiting), so a fold never waits for other writers' transactions.
        """
        newest = self._fold_after
        try:
            with self._db.connection() as conn:
                through = self._settled.check(conn, wait=0.0)
                folded = self._fold_links(conn, through, skip_locked=True)
        except Exception as exc:  # the runs are committed: a fold can wait for the next look
            logger.warning("pathways: could not fold the links (%s); trying again later", exc)
            self._next_fold = newest + FOLD_EVERY // 32
            return
        if folded is not None and newest - folded < FOLD_EVERY:
            self._next_fold = folded + FOLD_EVERY
        else:  # another writer is folding, or too little is settled yet: look again soon
            self._next_fold = newest + FOLD_EVERY // 32

    def _fold_links(self, conn: Any, through: int, *, skip_locked: bool) -> Any:
        """Fold the links of runs up to ``through`` (a settled id); with ``skip_locked``, the
        fold point afterwards (``None`` when another writer is folding), else the runs folded.

        A fold reads the links of its runs (up to :data:`FOLD_RANGE` of them) per pair
        first, with no transaction open, then writes at most :data:`FOLD_CHUNK` pairs per
        transaction, each under ``link_fold``'s row lock, noting the last pair written (the
        fold point moves with the last). Readers count each run once at every commit (see
        ``_LINKS_FROM``); a fold cut short is finished by the next folder, of any store.
        Short transactions matter: a reader of new runs waits for every transaction older
        than its look to end (see _Settled), and one fold of 8,192 runs in one transaction held
        new runs back from the learner for its whole length. Written per pair of the whole
        fold, not per 512 runs, a fold writes a third of the rows where runs link many ways.
        """
        lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
        count = 0
        pairs: _FoldPairs | None = None
        while True:
            (folded, folding, *_) = conn.execute(_FOLD_STATE).fetchone()
            if folding <= folded:  # none under way: this one ends at most FOLD_RANGE runs on
                if through <= folded:
                    return folded if skip_locked else count
                folding = min(through, folded + FOLD_RANGE)
            if pairs is None or pairs.span != (folded, folding):  # read with no transaction open
                pairs = _FoldPairs((folded, folding), *conn.execute(_FOLD_PAIRS, (folded, folding), binary=True).fetchone())
            with conn.transaction():
                row = conn.execute(f"{_FOLD_STATE} {lock}").fetchone()
                if row is None:
                    return None if skip_locked else count
                now_folded, now_folding, *applied = row
                if now_folding <= now_folded and now_folded == folded:
                    conn.execute(_FOLD_BEGUN, (folding,))
                    now_folding, applied = folding, [-1, -1]
                if (now_folded, now_folding) != pairs.span:  # another folder moved on meanwhile: look again
                    continue
                start = bisect.bisect_right(pairs.keys, tuple(applied))
                end = min(start + FOLD_CHUNK, len(pairs.keys))
                if start < end:
                    conn.execute(_UPSERT_LINKS, pairs.columns(start, end))
                if end == len(pairs.keys):
                    conn.execute(_FOLD_DONE)
                    count += pairs.runs
                else:
                    conn.execute(_FOLD_WRITTEN, pairs.keys[end - 1])

    def link(self, from_id: int, to_id: int, weight: float = 1.0) -> None:
        """Strengthen the link ``from_id -> to_id`` by ``weight`` (0..:data:`MAX_LINK_WEIGHT`).

        As :meth:`menace.neuroplasticity.PathwayDB.link`: a total beyond
        :data:`MAX_LINK_WEIGHT` is a ``ValueError`` and nothing is written.
        """
        check_id("from_id", from_id)
        check_id("to_id", to_id)
        weight = check_number("weight", weight, minimum=0.0, maximum=MAX_LINK_WEIGHT)
        with self._db.connection() as conn, conn.transaction():
            found = {row[0] for row in conn.execute(
                "SELECT id FROM pathways WHERE id = ANY(%s)", ([from_id, to_id],)
            )}
            for pid, name in ((from_id, "from_id"), (to_id, "to_id")):
                if pid not in found:
                    raise FieldError(name, f"{name}: no pathway with id {pid}")
            conn.execute(  # locked: another link() or a fold of this link waits for the check
                "SELECT FROM folded_links WHERE from_id = %s AND to_id = %s FOR UPDATE", (from_id, to_id)
            )
            row = conn.execute(
                f"SELECT weight FROM ({_LINKS_FROM}) AS w WHERE to_id = %(to)s", {"from": from_id, "to": to_id}
            ).fetchone()
            stored = row[0] if row is not None else 0.0  # folded weight plus the runs since
            if stored + weight > MAX_LINK_WEIGHT:
                raise FieldError(
                    "weight", f"weight: the link {from_id}->{to_id} would weigh {stored + weight:.6g}, "
                    f"more than {MAX_LINK_WEIGHT:.0e}"
                )
            conn.execute(_UPSERT_LINKS, ([from_id], [to_id], [weight]))

    def apply_decay(self, now: float | None = None) -> int:
        """Recompute every myelination score with the decay up to ``now``; the pathways updated."""
        now = time.time() if now is None else check_number("now", now, minimum=0.0)
        with self._db.connection() as conn, conn.transaction():
            # Locked in id order, as writers lock the rows they rewrite: no deadlock.
            rows = conn.execute(
                "SELECT id, successes, avg_roi, last_activation FROM pathways ORDER BY id FOR UPDATE"
            ).fetchall()
            updates = [
                (pid, successes * avg_roi * decay_factor(now - last, self.half_life_days))
                for pid, successes, avg_roi, last in rows
            ]
            if updates:
                conn.execute(
                    "UPDATE pathways p SET myelination_score = u.score"
                    " FROM unnest(%s::int8[], %s::float8[]) AS u(id, score) WHERE p.id = u.id",
                    _columns(updates),
                )
        return len(rows)

    # -- reading -----------------------------------------------------------
    def _read(self, sql: str, params: Any = ()) -> list[tuple]:
        with self._db.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _pathways(self, where: str, params: Any = ()) -> list[Pathway]:
        return [Pathway(*row) for row in self._read(f"SELECT {_PATHWAY_COLUMNS} FROM pathways {where}", params)]

    def get(self, pathway_id: int) -> Pathway | None:
        check_id("pathway_id", pathway_id)
        found = self._pathways("WHERE id = %s", (pathway_id,))
        return found[0] if found else None

    def find(self, actions: str) -> Pathway | None:
        """The pathway of exactly this action text, or ``None``."""
        actions = check_text("actions", actions).strip()
        found = self._pathways("WHERE actions_key = %s", (action_key(actions),))
        return found[0] if found else None

    def top_pathways(self, limit: int = 10) -> list[Pathway]:
        """Pathways with the highest myelination score first."""
        check_positive_int("limit", limit)
        return self._pathways("ORDER BY myelination_score DESC, id LIMIT %s", (limit,))

    def pathways(self, limit: int | None = None, offset: int = 0) -> list[Pathway]:
        """All pathways by id (for tables and exports)."""
        if limit is not None:
            check_positive_int("limit", limit, minimum=0)
        check_positive_int("offset", offset, minimum=0)
        return self._pathways("ORDER BY id LIMIT %s OFFSET %s", (limit, offset))

    def similar_actions(self, text: str, limit: int = 10) -> list[Pathway]:
        """Pathways whose actions contain ``text`` literally (``%`` and ``_`` are not wildcards)."""
        text = check_text("text", text, max_len=10_000)
        check_positive_int("limit", limit)
        return self._pathways(
            "WHERE actions LIKE %s ESCAPE '\\' ORDER BY myelination_score DESC, id LIMIT %s",
            (f"%{escape_like(text)}%", limit),
        )

    def links(self, pathway_id: int) -> list[tuple[int, float]]:
        """``(to_id, weight)`` for each link leaving ``pathway_id``, strongest first."""
        check_id("pathway_id", pathway_id)
        return [(to_id, weight) for to_id, weight in self._read(
            _LINKS_FROM + " ORDER BY weight DESC, to_id", {"from": pathway_id}
        )]

    def next_pathway(self, pathway_id: int) -> Pathway | None:
        """The pathway most often run right after ``pathway_id``, or ``None``."""
        links = self.links(pathway_id)
        return self.get(links[0][0]) if links else None

    def settled_run_id(self, wait: float = SETTLE_WAIT) -> int:
        """The highest run id below which every run is committed for good (none can still appear)."""
        with self._db.connection() as conn:
            return self._settled.check(conn, wait)

    def known_settled_run_id(self) -> int:
        """The settled run id as this object last read it, without asking the server (0 before).

        Cheap: no run id up to it can still appear, so a learner may check the
        runs the watcher handed it against this before it asks
        :meth:`newest_run_id`, which waits for writers in flight.
        """
        return self._settled.through

    def runs(self, pathway_id: int | None = None, *, since_id: int = 0, limit: int | None = None) -> list[dict]:
        """Runs in logged order with ``id > since_id``, as dicts (all columns).

        Without ``pathway_id``: only settled runs (see the module doc), so a
        reader that goes on from the last id it got misses none. With
        ``pathway_id``: that pathway's runs, following its chain of runs back.
        """
        check_positive_int("since_id", since_id, minimum=0)
        if limit is not None:
            check_positive_int("limit", limit, minimum=0)
        names = _RUN_COLUMNS.replace(" ", "").split(",")
        with self._db.connection() as conn:
            if pathway_id is not None:
                if isinstance(pathway_id, bool) or not isinstance(pathway_id, int) or not 0 < pathway_id < 2**63:
                    return []
                rows = conn.execute(_PATHWAY_RUNS, (pathway_id, since_id, since_id, limit)).fetchall()
            else:
                through = self._settled.check(conn)
                rows = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE id > %s AND id <= %s ORDER BY id LIMIT %s",
                    (since_id, through, limit),
                ).fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]

    def run_events(self, since_id: int = 0, limit: int = 2000) -> list[dict[str, Any]]:
        """The ``pathway:new`` payloads of the settled runs after ``since_id``, oldest first, marked ``external``."""
        check_positive_int("since_id", since_id, minimum=0)
        check_positive_int("limit", limit)
        with self._db.connection() as conn:
            through = self._settled.check(conn)
            if through <= since_id:
                return []
            rows = conn.execute(_RUN_EVENTS, (since_id, through, limit)).fetchall()
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

    def first_run_outside(self, through: int, ranges: list[list[int]]) -> int | None:
        """The smallest settled run id above ``through`` and in none of ``ranges``, or ``None``.

        Where a learner that learned ``1..through`` and ``ranges`` resumes
        (ids a rolled-back transaction took never exist, so they are no gap).
        """
        bounds, low = [], through
        for first, last in ranges:
            if last <= low:
                continue
            if first > low + 1:
                bounds.append((low, first))
            low = max(low, last)
        with self._db.connection() as conn:
            settled = self._settled.check(conn)
            bounds.append((low, settled + 1))
            (found,) = conn.execute(
                "SELECT min(f) FROM unnest(%s::int8[], %s::int8[]) AS g(a, b),"
                " LATERAL (SELECT min(id) AS f FROM runs WHERE id > g.a AND id < g.b) AS s",
                _columns(bounds),
            ).fetchone()
        return found

    def logged_here(self, run_id: int) -> bool:
        """Whether this object wrote run ``run_id`` (then it publishes ``pathway:new`` itself).

        While a log whose id is not known yet is in flight, any run newer than
        the ones this object noted may be it: the watcher waits for it to come.
        """
        return run_id in self._logged or (self._inflight > 0 and run_id > self._logged.newest())

    def logged_here_many(self, run_ids: list[int]) -> list[bool]:
        """:meth:`logged_here` of each id, in one look."""
        newest = self._logged.newest() if self._inflight > 0 else None
        return [
            not missing or (newest is not None and run_id > newest)
            for run_id, missing in zip(run_ids, self._logged.missing(run_ids), strict=True)
        ]

    def newest_run_id(self) -> int:
        """The id of the newest settled run (0 when there is none)."""
        with self._db.connection() as conn:
            through = self._settled.check(conn)
            (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM runs WHERE id <= %s", (through,)).fetchone()
        return int(newest)

    def count_runs(self) -> int:
        return int(self._read("SELECT count(*) FROM runs")[0][0])

    def count_pathways(self) -> int:
        return int(self._read("SELECT count(*) FROM pathways")[0][0])

    def schema_version(self) -> int:
        return self._db.schema_version(self.STORE)

    # -- waking the watcher ------------------------------------------------
    def wait_for_runs(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for runs committed anywhere; whether something may be new.

        Returns at once after a ``NOTIFY`` of a logged run, and after a short
        pause while committed runs wait for older transactions to end.
        """
        if self._settled.pending:
            time.sleep(min(timeout, 0.005))
            return True
        with self._listen_lock:
            try:
                conn = self._listen()
                woke = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
                if woke:  # drain the rest: one look reads them all
                    for _ in conn.notifies(timeout=0.0001):
                        pass
                return woke
            except Exception as exc:  # a lost connection: reconnect on the next call, look now
                if self._closed:
                    return False
                logger.warning("pathways: LISTEN connection lost (%s); reconnecting", exc)
                self._drop_listener()
                time.sleep(min(timeout, 0.5))
                return True

    def _listen(self) -> Any:
        if self._listener is None:
            from psycopg import sql

            conn = self._db.connect()
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._listener = conn
        return self._listener

    def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def wake(self) -> None:
        """Wake :meth:`wait_for_runs` in every process watching this database (e.g. to stop)."""
        with self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (self._channel,))

    def close(self) -> None:
        """Give back the pool (when this store made it) and the ``LISTEN`` connection."""
        if self._closed:
            return
        self._closed = True
        self._notifier.close()
        self._drop_listener()
        self._hold.close()

    def __enter__(self) -> PgPathwayDB:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PgPathwayDB {self.path}>"


def _check_finite(after: tuple) -> None:
    """Raise (rolling the transaction back) when a run's aggregate overflowed."""
    _, prior_myel, _, successes, avg_time, avg_roi, _ = after
    if not (_isfinite(avg_time) and _isfinite(avg_roi * successes) and _isfinite(prior_myel)):
        raise _overflow()


class _FoldPairs:
    """The links of a fold's runs (ids after ``span[0]`` through ``span[1]``), per pair
    ``(from_id, to_id)`` in the order a fold writes them (``keys``), and how many runs."""

    def __init__(self, span: tuple[int, int], froms: list | None, tos: list | None, weights: list | None,
                 runs: float | None) -> None:
        self.span = span
        self._froms, self._tos, self._weights = froms or [], tos or [], weights or []
        self.keys = list(zip(self._froms, self._tos, strict=True))
        if self.keys != sorted(self.keys):  # aggregated from a sorted subquery: in order, but not promised
            ordered = sorted(zip(self._froms, self._tos, self._weights, strict=True))
            self._froms, self._tos, self._weights = ([row[k] for row in ordered] for k in range(3))
            self.keys = list(zip(self._froms, self._tos, strict=True))
        self.runs = int(runs or 0)

    def columns(self, start: int, end: int) -> tuple:
        """The pairs ``keys[start:end]`` as ``_UPSERT_LINKS`` takes them."""
        return (int8_array(self._froms[start:end]), int8_array(self._tos[start:end]),
                float8_array(self._weights[start:end]))


class _Forgotten(Exception):
    """Pathways this object remembered are not in the database (its tables were emptied)."""

    def __init__(self, pathways: list[str]) -> None:
        super().__init__(pathways)
        self.pathways = pathways


def _overflow() -> ValueError:
    return ValueError("roi or exec_time is too large: the pathway's averages overflow")


def _first_ts(records: tuple[PathwayRecord, ...], pathways: list[str]) -> list[float]:
    """The ``ts`` of the first run of each of ``pathways`` in ``records``."""
    first: dict[str, float] = {}
    for record in records:
        first.setdefault(record.actions, record.ts)
    return [first[a] for a in pathways]


#: Connections with the statements of _LOG_KNOWN prepared (a closed one drops out).
_PREPARED: weakref.WeakSet = weakref.WeakSet()


def _prepare_known(conn: Any) -> None:
    """Prepare _LOG_KNOWN's statements on ``conn``: those it lacks (a failed log may leave some)."""
    names = list(_PREPARE_KNOWN)
    have = {name for (name,) in conn.execute(
        "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", (names,))}
    for name in names:
        if name not in have:
            conn.execute(_PREPARE_KNOWN[name])


def _known_states(result: Any, by_id: dict[int, str], remembered: dict[str, list],
                  encoding: str) -> tuple[dict, bool]:
    """The locked pathways' aggregates (text results), by actions, as :meth:`_read_state`'s,
    and whether every one is still the remembered one (its newest run is): those are copied,
    not parsed. A row whose id now names another pathway (the tables were emptied) is left out."""
    cache: dict[str, list] = {}
    current = True
    value = result.get_value
    for row in range(result.ntuples):
        pathway_id = int(value(row, 1))
        actions = by_id.get(pathway_id)
        if actions is None or value(row, 0) != actions.encode(encoding):
            continue
        last_run_id = value(row, 7)
        entry = remembered[actions]
        if last_run_id is not None and entry[6] is not None and int(last_run_id) == entry[6]:
            cache[actions] = list(entry)
            continue
        current = False
        cache[actions] = [
            pathway_id, int(value(row, 2)), int(value(row, 3)), float(value(row, 4)), float(value(row, 5)),
            float(value(row, 6)), None if last_run_id is None else int(last_run_id),
        ]
    return cache, current


def _heads(plan: list[tuple], encoding: str) -> list[bytes]:
    """The planned runs' rows up to their ids (see run_rows)."""
    head = run_rows.head
    return [
        head(pathway_id, rec.actions, rec.inputs, rec.outputs, rec.exec_time, rec.resources, outcome, rec.roi,
             rec.ts, label, after, encoding)
        for rec, pathway_id, outcome, label, after in plan
    ]


def _settle(cache: dict[str, list], run_ids: list[int]) -> None:
    """Name each pathway's newest run by its id (see PgPathwayDB._plan)."""
    for entry in cache.values():
        if entry[6] is not None and entry[6] < 0:
            entry[6] = run_ids[~entry[6]]


def _roll_back(conn: Any) -> None:
    """End the transaction a failed log left open (the pool would too, with a warning)."""
    try:
        if not conn.closed:
            conn.rollback()
    except Exception as exc:  # the pool discards a broken connection; the first error is the one raised
        logger.debug("pathways: rollback after a failed log failed too (%s)", exc)


def _columns(rows: list[tuple]) -> list[list]:
    """Rows as one list per column (the arrays ``unnest`` takes)."""
    if not rows:
        return []
    return [list(column) for column in zip(*rows, strict=True)]


__all__ = ["FieldError", "PgPathwayDB", "action_key"]
