"""The two backends the store tests run on (see the ``backend`` fixture in conftest.py)."""

from __future__ import annotations

import pytest


class SchemaFactory:
    """New empty schemas in the session's test database, one URL each (the cluster goes at the end)."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.made: list[str] = []

    def new(self) -> str:
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.cluster.url("menace_test"), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        self.made.append(name)
        return self.cluster.url("menace_test", schema=name)



BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def open_test_backend(kind: str, folder, request):
    from menace.backends import DataDirBackend

    if kind == "sqlite":
        return DataDirBackend(folder)
    from menace.postgres.backend import PostgresBackend

    return PostgresBackend(request.getfixturevalue("pg_schemas").new(), folder)


