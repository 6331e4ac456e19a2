"""Fixtures for the desktop monitor: the real window on the real stack, offscreen."""

from __future__ import annotations

import random
import time

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QSettings  # noqa: E402

from menace.config import Settings  # noqa: E402
from menace.neuroplasticity import PathwayRecord  # noqa: E402
from menace_gui.main_window import MainWindow  # noqa: E402
from menace_gui.service_thread import RUNNING, ServiceThread  # noqa: E402

START_TIMEOUT_MS = 30_000


def open_window(qtbot, data_dir, ini_path, *, keep: bool = False, **window_kw) -> MainWindow:
    """Start the real stack (no metrics server) in a ServiceThread and show the window on it.

    Unless ``keep``, qtbot closes and deletes the window after the test, so a
    closed window never stays the application's active window.
    """
    service = ServiceThread(Settings(data_dir=data_dir, metrics_port=0))
    window = MainWindow(service, QSettings(str(ini_path), QSettings.Format.IniFormat), **window_kw)
    if not keep:
        qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.stack is not None and service.state == RUNNING, timeout=START_TIMEOUT_MS)
    return window


def seed_pathways(stack, n: int = 40, seed: int = 7) -> None:
    """Log ``n`` runs with both outcomes, as a producer script would."""
    rng = random.Random(seed)
    stack.pathway_db.log_many(
        PathwayRecord(
            actions=f"step{i % 5}->check->store",
            exec_time=rng.uniform(0.1, 3.0),
            roi=rng.uniform(-1, 3),
            outcome="SUCCESS" if rng.random() < 0.5 + 0.1 * (i % 5) - 0.2 else "FAILURE",
            ts=time.time() - (n - i),
        )
        for i in range(n)
    )


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory, request):
    """One running window per module: starting the stack costs a second or so."""
    from pytestqt.qtbot import QtBot

    base = tmp_path_factory.mktemp("gui")
    bot = QtBot(request)
    window = open_window(bot, base / "data", base / "gui.ini", keep=True)
    seed_pathways(window.stack)
    yield window
    window.close()
    assert not window.service.isRunning()
