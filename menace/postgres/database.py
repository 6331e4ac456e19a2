"""One PostgreSQL database as the stores of a process share it: URL, pool, schema, migrations.

Every Menace store on PostgreSQL lives in the tables of one schema (the first
schema of the connection's ``search_path``; ``public`` unless the URL says
``options=-csearch_path=NAME``), so one database can hold several Menace
installations side by side. :class:`Database` opens a
:class:`psycopg_pool.ConnectionPool` on the URL (autocommit connections:
a store opens a transaction where it writes), finds the schema and derives
the keys of the advisory locks and the ``NOTIFY`` channels from it, and runs
each store's migrations (:meth:`Database.migrate`).

Migrations are versioned per store in the table ``menace_schema`` (store
name, version), as SQLite keeps ``PRAGMA user_version`` per file: on start a
store applies the scripts after its recorded version in one transaction,
under an advisory lock so that processes starting together do not race, and
refuses a schema newer than it knows (:class:`~menace.storage.SchemaError`).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..database_url import check_database_url, redact
from ..errors import FieldError
from ..storage import SchemaError

logger = logging.getLogger(__name__)

#: Seconds to wait for a connection (from the pool, or a new one) before giving up.
CONNECT_TIMEOUT = 30.0
#: Connections per pool: the API's threads, the watcher and the worker share them.
POOL_MAX = 10
#: Client-side TCP keepalives, so a dead server or network is noticed in seconds.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}

#: Fixed advisory locks (single-bigint keys): ``schema key << 8 | one of these``.
LOCK_MIGRATIONS = 1
LOCK_LEARNER = 2
LOCK_JOURNAL = 3



def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - checked here, used by Database
    except ImportError:
        raise FieldError(
            "database_url", "database_url needs psycopg 3 and psycopg-pool: pip install 'menace[postgres]'"
        ) from None
    return psycopg


class Database:
    """A PostgreSQL database (``url``) with a connection pool (see the module doc).

    Args:
        url: ``postgresql://user:password@host:port/dbname?...``.
        min_size, max_size: connections the pool keeps open and may open.
        timeout: seconds to wait for the server when connecting.

    Raises ``ConnectionError`` naming the (password-less) URL when the server
    cannot be reached, and ``FieldError`` for a URL that is not one.
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = POOL_MAX,
                 timeout: float = CONNECT_TIMEOUT) -> None:
        self.url = check_database_url(url)
        self.location = redact(url)
        psycopg = _psycopg()
        from psycopg_pool import ConnectionPool

        self._timeout = timeout
        self._kwargs = {"autocommit": True, "connect_timeout": max(2, int(timeout)),
                        "application_name": "menace", **KEEPALIVES}
        try:  # one connection first: a refused or unknown server is an error at once, not after `timeout`
            with psycopg.connect(self.url, **self._kwargs) as conn:
                schema, version = conn.execute(
                    "SELECT current_schema(), current_setting('server_version_num')::int"
                ).fetchone()
        except psycopg.Error as exc:
            raise ConnectionError(f"cannot connect to PostgreSQL at {self.location}: {_one_line(exc)}") from None
        if schema is None:
            raise FieldError("database_url", f"{self.location}: the search_path names no schema that exists")
        if version < 130000:
            raise RuntimeError(f"Menace needs PostgreSQL 13 or newer; {self.location} runs {version}")
        self.pool = ConnectionPool(
            self.url, min_size=min_size, max_size=max_size, kwargs=self._kwargs, open=False,
            timeout=timeout, name="menace", check=None, configure=configure,
        )
        try:
            self.pool.open(wait=True, timeout=timeout)
        except Exception as exc:
            self.pool.close()
            raise ConnectionError(f"cannot connect to PostgreSQL at {self.location}: {_one_line(exc)}") from None
        self.schema: str = schema
        #: Advisory lock namespace of this schema (a signed 32-bit number).
        self.key = _int32(zlib.crc32(schema.encode("utf-8")))
        self._closed = False
        self._psycopg = psycopg
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled autocommit connection for the ``with`` block.

        Whoever opens a transaction on it ends it (``conn.transaction()`` does);
        one left open is rolled back by the pool when the block ends, with a
        warning. (The pool's own ``connection()`` ends it too, committing on
        success, at twice the cost: 14 against 6.5 us per use on this machine.)
        """
        pool = self.pool
        conn = pool.getconn()
        try:
            yield conn
        finally:
            pool.putconn(conn)

    def connect(self, **kwargs: Any) -> Any:
        """A new connection of its own (not pooled): for ``LISTEN`` and for the lease.

        ``options`` are added to the URL's own (its ``search_path``, say).
        """
        if "options" in kwargs:
            from psycopg.conninfo import conninfo_to_dict

            own = conninfo_to_dict(self.url).get("options")
            if own:
                kwargs["options"] = f"{own} {kwargs['options']}"
        conn = self._psycopg.connect(self.url, **{**self._kwargs, **kwargs})
        configure(conn)
        return conn

    # -- names and keys ------------------------------------------------------------------------
    def lock_id(self, which: int) -> int:
        """The single-bigint key of one of the fixed advisory locks (``LOCK_*``) of this schema."""
        return (self.key << 8) | which

    def channel(self, topic: str) -> str:
        """The ``NOTIFY`` channel of ``topic`` in this schema (at most 63 bytes)."""
        name = f"menace_{topic}_{self.key & 0xFFFFFFFF:08x}"
        return name[:63]

    # -- schema --------------------------------------------------------------------------------
    def migrate(self, store: str, migrations: Sequence[str]) -> int:
        """Bring ``store``'s tables up to version ``len(migrations)``; returns that version."""
        target = len(migrations)
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_id(LOCK_MIGRATIONS),))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS menace_schema (store text PRIMARY KEY, version integer NOT NULL)"
            )
            row = conn.execute("SELECT version FROM menace_schema WHERE store = %s", (store,)).fetchone()
            current = row[0] if row else 0
            if current > target:
                raise SchemaError(
                    f"{store} in {self.location} has schema version {current}, newer than this Menace "
                    f"({target}); upgrade Menace to open it"
                )
            for version in range(current, target):
                conn.execute(migrations[version])
                logger.debug("%s: migrated %s to version %d", self.location, store, version + 1)
            if current != target:
                conn.execute(
                    "INSERT INTO menace_schema(store, version) VALUES (%s, %s) "
                    "ON CONFLICT (store) DO UPDATE SET version = excluded.version",
                    (store, target),
                )
        return target

    def schema_version(self, store: str) -> int:
        with self.connection() as conn:
            row = conn.execute("SELECT version FROM menace_schema WHERE store = %s", (store,)).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        """Close the pool (idempotent); connections in use are closed when given back."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.pool.close()

    def __repr__(self) -> str:
        return f"<Database {self.location} schema {self.schema}>"


def configure(conn: Any) -> None:
    """Set up a new connection for the stores' statements.

    Python ints are sent as ``bigint`` (else psycopg picks ``smallint``,
    ``integer`` or ``bigint`` by value, and one statement is prepared again for
    each mix of sizes), and prepared statements keep one generic plan: the
    stores' statements are key lookups and range scans, whose plans do not
    depend on the values, and planning a log's statements anew each time cost
    more than executing them (0.9 ms against 0.25 ms).

    Sequential scans are off for these connections (``enable_seqscan``; a table
    no index serves is still scanned). A generic plan is made once, on a
    statement's first prepared run, from the tables' sizes then: on a new
    database, with a few hundred runs, reading them all looked cheaper than
    the primary key, and that plan stayed while the table grew (a batch's
    pathway update read every run: 3 ms at 10,000 runs, growing) until
    autovacuum's next ``ANALYZE``. JIT compilation is off too: the stores'
    statements are short, and a scan that only a sequential scan can serve
    (the one-row tables, say) is costed so high with sequential scans off that
    PostgreSQL compiled it first (17-86 ms for a 0.1 ms statement). Floats sent
    as text (the simple query protocol's results) are sent exact
    (``extra_float_digits``; a server set to 0 would round them to 15 digits).
    """
    from psycopg.types.numeric import Int8Dumper

    from . import arrays

    conn.adapters.register_dumper(int, Int8Dumper)
    arrays.register(conn.adapters)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET jit = off")
    conn.execute("SET extra_float_digits = 3")  # floats read as text are exact (see copy_query)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


class Owned:
    """A store's hold on a :class:`Database`: its own (made from a URL, closed with the
    store) or one shared by the stores of a backend (closed by the backend)."""

    def __init__(self, database: Database | str) -> None:
        if isinstance(database, Database):
            self.db, self.owned = database, False
        else:
            self.db, self.owned = Database(check_database_url(database, "database")), True

    def close(self) -> None:
        if self.owned:
            self.db.close()
