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
