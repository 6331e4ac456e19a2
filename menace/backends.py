"""Where a learning stack's stores live: SQLite files in a data directory, or PostgreSQL.

The service (and a test) asks a backend for its stores, the learner lease,
the engine's storage and the service state, so the rest of the stack never
knows which one it runs on:

* :class:`DataDirBackend` (the default): one SQLite file per store in the
  data directory (``pathways.db``, ``mem.db``, ...), models and evaluations
  as files beside them, the lease a ``flock`` on ``learner.lock``.
* :class:`menace.postgres.backend.PostgresBackend` (``--database-url`` /
  ``MENACE_DATABASE_URL``): every store, the saved models, the evaluations,
  the service state and the lease in one PostgreSQL database, shared by
  services and writers on any number of hosts.

:func:`open_backend` picks one from :class:`~menace.config.Settings`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from . import config
from .files import atomic_write, read_private

logger = logging.getLogger(__name__)


def read_state_file(path: Path) -> dict[str, Any]:
    """A small JSON state file as a dict, or ``{}`` (missing; unreadable: logged)."""
    try:
        data = json.loads(read_private(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def write_state_file(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a private temporary file with a random name;
    a reader sees the old file or the new one)."""
    atomic_write(path, json.dumps(state).encode())


class DataDirBackend:
    """The stores of a data directory (see the module doc)."""

    kind = "sqlite"

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.location = str(self.data_dir)

    def path(self, name: str) -> Path:
        return self.data_dir / name

    def lease(self) -> Any:
        from .lease import FileLease

        return FileLease(self.data_dir)

    def open_bus(self, journal: bool = True, **kwargs: Any) -> Any:
        from .unified_event_bus import UnifiedEventBus

        return UnifiedEventBus(self.path(config.EVENTS_DB) if journal else None, **kwargs)

    def pathway_db(self, event_bus: Any = None, **kwargs: Any) -> Any:
        from .neuroplasticity import PathwayDB

        return PathwayDB(self.path(config.PATHWAYS_DB), event_bus=event_bus, **kwargs)

    def memory(self, event_bus: Any = None, **kwargs: Any) -> Any:
        from .menace_memory_manager import MenaceMemoryManager

        return MenaceMemoryManager(self.path(config.MEMORY_DB), event_bus=event_bus, **kwargs)

    def code_db(self, event_bus: Any = None) -> Any:
        from .code_db import CodeDB

        return CodeDB(self.path(config.CODE_DB), event_bus=event_bus)

    def workflow_db(self, event_bus: Any = None) -> Any:
        from .workflow_db import WorkflowDB

        return WorkflowDB(self.path(config.WORKFLOWS_DB), event_bus=event_bus)

    def journal(self) -> Any:
        from .unified_event_bus import EventJournal

        return EventJournal(self.path(config.EVENTS_DB))

    def engine_storage(self, name: str, lease: Any = None) -> dict[str, Any]:
        """``LearningEngine`` arguments: the evaluation history and the model folder, as files."""
        return {"persist_path": self.path(config.EVALUATIONS_FILE), "model_dir": self.path(config.MODELS_DIR)}

    def read_state(self) -> dict[str, Any]:
        """The service's state (where its watcher resumes), from ``service_state.json``."""
        return read_state_file(self.path(config.SERVICE_STATE_FILE))

    def write_state(self, state: dict[str, Any]) -> None:
        write_state_file(self.path(config.SERVICE_STATE_FILE), state)

    def close(self) -> None:
        """Nothing to close: each store closes its own file."""

    def __repr__(self) -> str:
        return f"<DataDirBackend {self.location}>"


def open_backend(settings: config.Settings) -> Any:
    """The backend ``settings`` name: PostgreSQL with a ``database_url``, else the data directory.

    Raises ``ConnectionError`` when the database cannot be reached, and
    ``RuntimeError`` when psycopg is not installed (``pip install 'menace[postgres]'``).
    """
    if getattr(settings, "database_url", None):
        from .postgres.backend import PostgresBackend

        return PostgresBackend(settings.database_url, settings.data_dir)
    return DataDirBackend(settings.data_dir)
