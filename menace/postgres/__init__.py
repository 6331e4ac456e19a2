"""Menace's stores on PostgreSQL: many hosts, one database, one learner with failover.

Install with ``pip install 'menace[postgres]'`` (psycopg 3 and its pool).
Importing this package is cheap; psycopg is imported when a store is opened.

Run the service on it with ``menace-service --database-url postgresql://...``
(or ``MENACE_DATABASE_URL``); log from any host with the store classes::

    from menace.postgres import PgPathwayDB
    from menace.neuroplasticity import PathwayRecord

    db = PgPathwayDB("postgresql://menace@db.example/menace")
    db.log(PathwayRecord("fetch->parse->store", exec_time=1.2, roi=0.4))

Several stores of one process share one pool through a
:class:`~menace.postgres.backend.PostgresBackend` or a
:class:`~menace.postgres.database.Database`. See ``docs/postgres.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Database": "menace.postgres.database",
    "PgPathwayDB": "menace.postgres.pathway_db",
    "PgMemoryManager": "menace.postgres.memory",
    "PgCodeDB": "menace.postgres.documents",
    "PgWorkflowDB": "menace.postgres.documents",
    "PgEventJournal": "menace.postgres.journal",
    "PgLease": "menace.postgres.lease",
    "PgModelStore": "menace.postgres.learner_state",
    "PgEvaluationHistory": "menace.postgres.learner_state",
    "PostgresBackend": "menace.postgres.backend",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'menace.postgres' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
