"""PostgresBackend: every store of a learning stack in one PostgreSQL database.

The counterpart of :class:`menace.backends.DataDirBackend`: the service asks
its backend for the stores, the lease, the engine's storage and its state,
and gets the PostgreSQL versions here, all sharing one connection pool.
"""

from __future__ import annotations

from typing import Any

from ..database_url import check_database_url
from .database import Database


class PostgresBackend:
    """The stores of ``database_url`` (one pool); model files' neighbours stay in ``data_dir``.

    ``data_dir`` keeps what is per host: the API token, the test-then-train
    curve (``prequential.jsonl``).
    """

    kind = "postgres"

    def __init__(self, database_url: str, data_dir: Any = None) -> None:
        self.db = Database(check_database_url(database_url))
        self.location = self.db.location
        self.data_dir = data_dir
        self._state: Any = None

    # -- the stores --------------------------------------------------------------------------
    def lease(self) -> Any:
        from .lease import PgLease

        return PgLease(self.db)

    def open_bus(self, journal: bool = True, **kwargs: Any) -> Any:
        from ..unified_event_bus import UnifiedEventBus
        from .journal import PgEventJournal

        return UnifiedEventBus(journal=PgEventJournal(self.db) if journal else None, **kwargs)

    def pathway_db(self, event_bus: Any = None, **kwargs: Any) -> Any:
        from .pathway_db import PgPathwayDB

        return PgPathwayDB(self.db, event_bus=event_bus, **kwargs)

    def memory(self, event_bus: Any = None, **kwargs: Any) -> Any:
        from .memory import PgMemoryManager

        return PgMemoryManager(self.db, event_bus=event_bus, **kwargs)

    def code_db(self, event_bus: Any = None) -> Any:
        from .documents import PgCodeDB

        return PgCodeDB(self.db, event_bus=event_bus)

    def workflow_db(self, event_bus: Any = None) -> Any:
        from .documents import PgWorkflowDB

        return PgWorkflowDB(self.db, event_bus=event_bus)

    def journal(self) -> Any:
        from .journal import PgEventJournal

        return PgEventJournal(self.db)

    # -- the learner's own things ------------------------------------------------------------
    def engine_storage(self, name: str, lease: Any = None) -> dict[str, Any]:
        """``LearningEngine`` arguments: models and evaluations in the database (saved under ``lease``)."""
        from .learner_state import PgEvaluationHistory, PgModelStore

        fence = lease if callable(getattr(lease, "fenced", None)) else None
        return {
            "history": PgEvaluationHistory(name, self.db),
            "model_store": PgModelStore(name, self.db, fence=fence),
        }

    def _service_state(self) -> Any:
        if self._state is None:
            from .learner_state import PgServiceState

            self._state = PgServiceState(self.db)
        return self._state

    def read_state(self) -> dict[str, Any]:
        return self._service_state().read()

    def write_state(self, state: dict[str, Any]) -> None:
        self._service_state().write(state)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresBackend {self.location}>"
