"""Fixtures for the desktop monitor: the real window on the real stack, offscreen.

``window.source.stack`` is the stack behind the window's client: tests use it
to seed data and check what was stored, as a producer script would.
"""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from gui_support import FakeClient, seed_pathways, start_window  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from menace_gui.client_source import FixedClientSource  # noqa: E402
from menace_gui.main_window import MainWindow  # noqa: E402

__all__ = ["FakeClient", "seed_pathways", "start_window"]


@pytest.fixture
def open_window(qtbot, tmp_path):
    """``open_window()``: the real window on a fresh stack in ``tmp_path``."""
    return lambda **window_kw: start_window(qtbot, tmp_path / "data", tmp_path / "gui.ini", **window_kw)


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory, request):
    """One running window per module: starting the stack costs a second or so."""
    from pytestqt.qtbot import QtBot

    base = tmp_path_factory.mktemp("gui")
    bot = QtBot(request)
    window = start_window(bot, base / "data", base / "gui.ini", keep=True)
    seed_pathways(window.source.stack)
    yield window
    window.close()
    assert not window.source.isRunning()


@pytest.fixture
def fake_client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def fake_window(qtbot, tmp_path, fake_client):
    """The real main window on a FakeClient (handed over by a FixedClientSource)."""
    source = FixedClientSource(fake_client, "fake://menace")
    window = MainWindow(source, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.client is fake_client, timeout=5000)
    window.finish_building()
    return window
