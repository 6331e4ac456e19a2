"""SQLite plumbing shared by every store.

One file per store, WAL mode, a busy timeout, parameterised SQL only, and a
schema version in ``PRAGMA user_version`` so a later release can migrate an
older file. Write transactions start with ``BEGIN IMMEDIATE``: a deferred
transaction that reads and then writes can fail at once with "database is
locked" when another process commits in between, and the busy timeout does not
help there; taking the write lock up front makes concurrent writers queue.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageError, UnsafePathError
from .files import prepare_database, private_dir
from .validation import expand_path

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
#: "NORMAL" survives any process crash (SIGKILL included); "FULL" also survives power loss.
SYNCHRONOUS = os.environ.get("MENACE_SQLITE_SYNCHRONOUS", "NORMAL").upper()
if SYNCHRONOUS not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
    raise ValueError(f"MENACE_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA, got {SYNCHRONOUS!r}")


def escape_like(text: str) -> str:
    """``text`` for a ``LIKE ... ESCAPE '\\'`` pattern: ``%`` and ``_`` match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


#: Upserts (3.24) and window functions (3.25) are used by the stores' SQL.
MIN_SQLITE = (3, 25, 0)


def fts_query(text: str) -> str:
    """Turn any user text into a safe FTS5 query: every word a quoted phrase, ANDed.

    Quotes, operators (AND, OR, NEAR, ``*``, ``:``) and brackets lose their
    meaning, so no text can raise an FTS syntax error. Words are split on
    whitespace only and the index's own tokenizer splits each phrase, so a
    query word is tokenized exactly as stored text is.
    """
    return " ".join('"' + chunk.replace('"', '""') + '"' for chunk in text.split())


class SchemaError(RuntimeError):
    """The database file was written by a newer, unknown schema version."""


#: What an SQLite error means, by its primary code, in words a user can act on.
_CAUSES = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the file or its directory is read-only",
    "SQLITE_NOTADB": "the file is not an SQLite database",
    "SQLITE_CORRUPT": "the database file is damaged",
    "SQLITE_CANTOPEN": "the file cannot be opened (a read-only or missing directory, or no permission)",
    "SQLITE_IOERR": "the disk reported an I/O error",
    "SQLITE_PERM": "permission denied",
    "SQLITE_TOOBIG": "a value is too large for SQLite",
}


def storage_error(path: str, exc: BaseException) -> StorageError | None:
    """``exc`` as a :class:`~menace.errors.StorageError` naming ``path`` and the cause, or
    ``None`` when it is not a file problem (a busy database, an SQL error, an error already
    translated)."""
    if isinstance(exc, StorageError) or not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    primary = "_".join(name.split("_")[:2])
    cause = _CAUSES.get(primary)
    if cause is None:
        text = str(exc)
        cause = next((c for code, c in _CAUSES.items() if _MESSAGES.get(code, "\0") in text), None)
    if cause is None:
        return None
    return StorageError(path, cause, str(exc))


#: SQLite's messages for the codes above, for errors raised without a code.
_MESSAGES = {
    "SQLITE_FULL": "disk is full",
    "SQLITE_READONLY": "readonly database",
    "SQLITE_NOTADB": "file is not a database",
    "SQLITE_CORRUPT": "malformed",
    "SQLITE_CANTOPEN": "unable to open database file",
    "SQLITE_IOERR": "disk I/O error",
}


@contextmanager
def naming_file(path: str) -> Iterator[None]:
    """Re-raise an SQLite file problem inside the block as a :class:`~menace.errors.StorageError`
    naming ``path`` and the cause (the original is chained)."""
    try:
        yield
    except sqlite3.Error as exc:
        translated = storage_error(path, exc)
        if translated is None:
            raise
        raise translated from exc


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open ``path`` (creating its folder) with Menace's settings.

    The connection is in autocommit mode; use :func:`write_transaction` for writes.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise RuntimeError(
            f"Menace needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python uses "
            f"SQLite {sqlite3.sqlite_version} (install a Python built with a newer SQLite)"
        )
    path = str(path)
    if path != ":memory:":
        path = str(expand_path("path", path))  # "~/menace/pathways.db" means the home folder
        folder = Path(path).resolve().parent
        if not folder.exists():
            private_dir(folder, tighten=False)
        try:
            prepare_database(path)  # 0600, no link followed, no other user's file
        except PermissionError as exc:
            if isinstance(exc, UnsafePathError):
                raise
            raise StorageError(path, "the file or its directory is read-only", str(exc)) from exc
        except OSError as exc:
            cause = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
            raise StorageError(path, cause, str(exc)) from exc
    with naming_file(path):
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
    return conn


def _retry(action, attempts: int = 50):
    """Run ``action``, retrying briefly on SQLITE_BUSY that the timeout did not absorb."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.05 * (attempt + 1), 0.5))
    return None


def write_transaction(conn: sqlite3.Connection, path: str = "database") -> WriteTransaction:
    """``with write_transaction(conn):`` ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception.

    A file problem (a full disk, a read-only file) is raised as a
    :class:`~menace.errors.StorageError` naming ``path`` and the cause.
    """
    return WriteTransaction(conn, path)


class WriteTransaction:
    """The context manager :func:`write_transaction` returns.

    A class, reusable, with its own cursor, because it is on every logged
    run's path: ``conn.execute`` makes a new cursor per call, which costs
    about a tenth of a commit.
    """

    __slots__ = ("conn", "path", "_cursor")

    def __init__(self, conn: sqlite3.Connection, path: str = "database") -> None:
        self.conn = conn
        self.path = path
        self._cursor = conn.cursor()

    def __enter__(self) -> sqlite3.Connection:
        execute = self._cursor.execute
        try:  # naming_file's rule, inline: a context manager here costs ~1 us a log
            try:
                execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                _retry(lambda: execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            translated = storage_error(self.path, exc)
            if translated is None:
                raise
            raise translated from exc
        return self.conn

    def __exit__(self, kind, exc, traceback) -> bool:
        conn, execute = self.conn, self._cursor.execute
        if kind is not None:
            if conn.in_transaction:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                execute("ROLLBACK")
            translated = storage_error(self.path, exc)
            if translated is not None:
                raise translated from exc
            return False
        try:
            execute("COMMIT")
        except sqlite3.OperationalError as first:
            # Only a busy database is worth another COMMIT: after any other failure SQLite
            # has rolled back, and a retry would only say "no transaction is active".
            translated = storage_error(self.path, first)
            if translated is None and _busy(first) and conn.in_transaction:
                try:
                    _retry(lambda: execute("COMMIT"))
                    return False
                except sqlite3.OperationalError as again:
                    first, translated = again, storage_error(self.path, again)
            if conn.in_transaction:
                execute("ROLLBACK")
            if translated is not None:
                raise translated from first
            raise
        return False


def _busy(exc: BaseException) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str], name: str) -> None:
    """Bring the schema up to ``len(migrations)``; each entry is one version's script."""
    target = len(migrations)
    with write_transaction(conn, name):
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > target:
            raise SchemaError(
                f"{name} has schema version {current}, newer than this Menace ({target}); "
                "upgrade Menace to open it"
            )
        for version in range(current, target):
            for statement in _split(migrations[version]):
                conn.execute(statement)
            logger.debug("%s: migrated schema to version %d", name, version + 1)
        if current != target:
            conn.execute(f"PRAGMA user_version={target}")


def _split(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner ';')."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def truncate_wal(conn: sqlite3.Connection, name: str) -> bool:
    """Checkpoint the WAL into the database file and truncate it to zero bytes.

    After a secure delete this is what makes deleted content leave the ``-wal`` file:
    its old frames would otherwise stay there until overwritten. Returns ``False``
    (and logs a warning) when a reader in another connection kept the checkpoint
    from completing; the next complete checkpoint finishes the job.
    """
    busy, _, _ = _retry(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    if busy:
        logger.warning("%s: another connection is reading; the WAL is truncated at a later checkpoint", name)
    return not busy


class SQLiteStore:
    """Base for a store: one connection, one lock, a schema, ``close()``."""

    MIGRATIONS: Sequence[str] = ()
    #: ``PRAGMA secure_delete`` on the store's connection: deleted rows and freed pages
    #: are overwritten with zeros, so what a store deletes cannot be read back from
    #: its file. Costs nothing on inserts; deletes write the zeroed pages.
    SECURE_DELETE = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path) if str(path) == ":memory:" else str(expand_path("path", path))
        self._lock = threading.RLock()
        self._conn = connect(self.path)
        try:
            with naming_file(self.path):
                if self.SECURE_DELETE:
                    self._conn.execute("PRAGMA secure_delete=ON")
                migrate(self._conn, self.MIGRATIONS, self.path)
        except BaseException:
            self._conn.close()
            raise
        self._writing = write_transaction(self._conn, self.path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._writing as conn:
            yield conn

    def _read(self, sql: str, params: Sequence | dict = ()) -> list[sqlite3.Row]:
        with self._lock, naming_file(self.path):
            return _retry(lambda: self._conn.execute(sql, params).fetchall())

    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    def close(self) -> None:
        """Close the connection; committed data is already on disk."""
        with self._lock:
            self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
