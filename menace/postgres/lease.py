"""PgLease: the learner lease of a database, a PostgreSQL advisory lock.

The lease is a session-level advisory lock (one key per schema) held on a
connection the lease opens for itself and keeps for as long as it is held.
PostgreSQL releases it when that session ends: a clean release, the process
exiting or being killed (the server sees the socket close at once), or its
host dying or being cut off (the server's TCP keepalives, set on the session
to 5 s idle + 3 probes 1 s apart, end the session in about 8 s). A
``--standby`` service polls for the lock every :data:`POLL_INTERVAL` seconds,
so it takes over within about a second of a kill and within about 10 s of a
host's loss.

The other side of fencing: a learner that lost its session (network cut)
must stop writing as the learner. :meth:`PgLease.check` says whether the lock
is still held (the service asks every second and stops when it is not), and
the model store writes the saved model *on the lease's own connection*
(:meth:`PgLease.fenced`), so a learner whose lease is gone cannot overwrite
the model of the one that took over.

Who holds the lease is kept in the ``learner`` table (pid, host, API URL,
start), as ``learner.json`` is for a data directory; a row still there when
the lease is taken means the last holder ended without releasing it
(:attr:`PgLease.previous`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..lease import LeaseHolder, TakenLease
from .database import LOCK_LEARNER, Database, Owned

logger = logging.getLogger(__name__)

#: Seconds between tries while waiting for the lease (``--standby``).
POLL_INTERVAL = 0.25
#: Server-side keepalives of the lease's session: a dead holder's lock is freed within about 8 s.
SESSION_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3"

_MIGRATIONS = (
    """
    CREATE TABLE learner (
        lease text PRIMARY KEY,
        holder jsonb NOT NULL
    );
    """,
)


class PgLease(TakenLease):
    """The lease on one database's stores (see the module doc); the :class:`~menace.lease.Lease` protocol."""

    STORE = "learner"
    poll_interval = POLL_INTERVAL  # a database lock is cheap to try: twice as often as a file's

    def __init__(self, database: Database | str) -> None:
        self._hold = Owned(database)
        self._db = self._hold.db
        self.location = self._db.location
        self._db.migrate(self.STORE, _MIGRATIONS)
        self._key = self._db.lock_id(LOCK_LEARNER)
        self._conn: Any = None
        self._details: dict[str, Any] = {}
        self.previous: LeaseHolder | None = None
        self._mutex = threading.RLock()

    @property
    def held(self) -> bool:
        return self._conn is not None

    def _try(self) -> bool:
        """Take the lock if it is free (caller holds ``_mutex``)."""
        if self._conn is not None:
            return True
        conn = self._db.connect(options=SESSION_KEEPALIVES)
        try:
            (got,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        row = conn.execute("SELECT holder FROM learner WHERE lease = 'learner'").fetchone()
        self.previous = LeaseHolder.from_json(row[0]) if row else None
        if self.previous is not None:
            logger.warning("the last learner on %s (%s) ended without releasing its lease",
                           self.location, self.previous.describe())
        self._details = {
            "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "api_url": None, "location": self.location,
        }
        self._write_holder()
        return True

    def _write_holder(self) -> None:
        self._conn.execute(
            "INSERT INTO learner(lease, holder) VALUES ('learner', %s::jsonb)"
            " ON CONFLICT (lease) DO UPDATE SET holder = excluded.holder",
            (json.dumps(self._details),),
        )

    def _take_while_waiting(self) -> bool:
        try:
            return self._take()
        except Exception as exc:  # the server is away: keep waiting for it too
            logger.warning("standby: cannot reach %s (%s); trying again", self.location, exc)
            return False

    def _holder_while_waiting(self) -> LeaseHolder | None:
        return self.holder_or_none()

    def holder(self) -> LeaseHolder | None:
        with self._mutex:
            if self._conn is not None:
                return LeaseHolder.from_json(self._details)
        return owner_of(self._db)

    def holder_or_none(self) -> LeaseHolder | None:
        try:
            return self.holder()
        except Exception:
            return None

    def check(self) -> bool:
        """Whether the lease is still held: its session is alive and holds the lock."""
        with self._mutex:
            if self._conn is None:
                return False
            try:
                (held,) = self._conn.execute(
                    "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                    " AND granted AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = %s",
                    (self._key,),
                ).fetchone()
            except Exception as exc:
                logger.error("lost the learner lease on %s: %s", self.location, exc)
                return False
            return bool(held)

    @contextmanager
    def fenced(self) -> Iterator[Any]:
        """The lease's connection, in a transaction, while the lease is held (else ``RuntimeError``)."""
        with self._mutex:
            if not self.check():
                raise RuntimeError(f"not holding the learner lease on {self.location}: not saving")
            with self._conn.transaction():
                yield self._conn

    def release(self) -> None:
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM learner WHERE lease = 'learner'")
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            except Exception as exc:  # the session is gone: so is the lock
                logger.warning("could not release the lease on %s cleanly: %s", self.location, exc)
            finally:
                conn.close()
        logger.info("released the learner lease on %s", self.location)

    def close(self) -> None:
        """Release the lease and give back the pool (when this lease made it)."""
        self.release()
        self._hold.close()

    def __enter__(self) -> PgLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PgLease {self.location} {'held' if self.held else 'free'}>"


def owner_of(database: Database) -> LeaseHolder | None:
    """The running learner that holds the database's lease, or ``None`` if nobody does."""
    key = database.lock_id(LOCK_LEARNER)
    with database.connection() as conn:
        (held,) = conn.execute(
            "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((classid::int8 << 32) | objid::int8) = %s",
            (key,),
        ).fetchone()
        if not held:
            return None
        row = conn.execute("SELECT holder FROM learner WHERE lease = 'learner'").fetchone()
    holder = LeaseHolder.from_json(row[0]) if row else None
    return holder if holder is not None else LeaseHolder(pid=0, host="", started=0.0, location=database.location)
