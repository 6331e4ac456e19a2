"""Shared test set-up: Qt offscreen, the fast embedder, real SQLite files in tmp_path."""

from __future__ import annotations

import os

# Before any Qt or Menace import: no display here, and the hashing embedder keeps
# the default run fast (tests of the MiniLM embedder ask for it by name).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MENACE_EMBEDDER", "hashing")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
from store_backends import BACKENDS, SchemaFactory, open_test_backend  # noqa: E402

from menace.unified_event_bus import UnifiedEventBus  # noqa: E402


@pytest.fixture
def bus(tmp_path):
    """A real bus with a journal, re-raising nothing (as in production)."""
    event_bus = UnifiedEventBus(tmp_path / "events.db")
    yield event_bus
    event_bus.close()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data directory, also set as MENACE_DATA_DIR for the code under test."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("MENACE_DATA_DIR", str(path))
    return path


# -- two backends: SQLite files in a data directory, and a throwaway PostgreSQL -----------------
#
# Store-level tests take the ``backend`` fixture and run once per backend: SQLite in
# tmp_path, and PostgreSQL in a schema of its own in one throwaway cluster per test
# session (started from the installed server binaries; without them, or without
# psycopg, the PostgreSQL half skips and says how to get them).


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL server for the whole test session, in a temporary folder."""
    from menace.postgres.cluster import HOW_TO_GET, ClusterError, ThrowawayCluster, find_bindir

    if find_bindir() is None:
        pytest.skip(f"PostgreSQL tests: {HOW_TO_GET}")
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests: psycopg is not installed (pip install -e '.[postgres]')")
    try:
        cluster = ThrowawayCluster().start()
    except ClusterError as exc:
        pytest.skip(f"PostgreSQL tests: could not start a throwaway server: {exc}")
    try:
        cluster.create_database("menace_test")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_schemas(pg_cluster):
    return SchemaFactory(pg_cluster)


@pytest.fixture
def pg_url(pg_schemas):
    """The URL of an empty schema of the throwaway PostgreSQL (its own search_path)."""
    return pg_schemas.new()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """Where the stores under test live: ``backend.pathway_db(...)``, ``.memory(...)``, ``.open_bus()``...
    (each call opens another connection to the same store, as another process would)."""
    store_backend = open_test_backend(request.param, tmp_path / "data", request)
    yield store_backend
    store_backend.close()


@pytest.fixture
def settings_for(backend, data_dir):
    """``Settings(**overrides)`` on the test's data directory and, on PostgreSQL, its database."""
    from menace.config import Settings

    def make(**overrides):
        if backend.kind == "postgres":
            overrides.setdefault("database_url", backend.db.url)
        return Settings(data_dir=data_dir, **overrides)

    return make
