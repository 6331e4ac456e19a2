"""PgStore: what every PostgreSQL store shares (its migrations, reads, close, ``with``)."""

from __future__ import annotations

from typing import Any

from .database import Database, Owned


class PgStore:
    """A store's tables in a database: migrated on open (``STORE``'s ``MIGRATIONS``).

    ``database`` is a ``postgresql://`` URL (the store opens, and closes, a pool
    of its own) or a shared :class:`~menace.postgres.database.Database`.
    """

    STORE = ""
    MIGRATIONS: tuple[str, ...] = ()

    def __init__(self, database: Database | str, event_bus: Any | None = None) -> None:
        self._hold = Owned(database)
        self._db = self._hold.db
        self.path = self._db.location
        try:
            self._db.migrate(self.STORE, self.MIGRATIONS)
        except BaseException:
            self._hold.close()
            raise
        self.event_bus = event_bus

    def _read(self, sql: str, params: Any = ()) -> list[tuple]:
        with self._db.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _insert(self, sql: str, params: Any) -> int:
        """Run an ``INSERT ... RETURNING id``; the id."""
        with self._db.connection() as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def schema_version(self) -> int:
        return self._db.schema_version(self.STORE)

    def close(self) -> None:
        self._hold.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"
