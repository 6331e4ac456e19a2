"""Starting and stopping: no display, the first paint, Ctrl+Q right after start, the Settings dialog."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gui_support import FakeClient
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel

from menace.config import Settings
from menace_gui import gui_settings
from menace_gui.app import NO_DISPLAY_EXIT, display_problem
from menace_gui.client_source import FixedClientSource
from menace_gui.main_window import MainWindow
from menace_gui.service_thread import ServiceThread

ROOT = Path(__file__).resolve().parents[2]


def env_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


# -- 15. no display: one clear line and a non-zero exit, never Qt's abort ------------------------------
def test_15_menace_gui_without_a_display_says_how_to_run_it_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "menace_gui", "--data-dir", str(tmp_path / "data")],
                          env=env_without_display(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == NO_DISPLAY_EXIT != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no display" in lines[0] and "xvfb-run" in lines[0] and "QT_QPA_PLATFORM=offscreen" in lines[0]
    assert "xcb" not in proc.stderr.lower().replace("xvfb", "")  # no libxcb-cursor0 hint, no abort
    assert not (tmp_path / "data").exists()  # nothing was started


@pytest.mark.parametrize(("environ", "platform", "problem"), [
    ({}, "linux", True),
    ({"DISPLAY": ":0"}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "w"}, "linux", False),
    ({}, "win32", False),
    ({}, "darwin", False),
])
def test_15_when_there_is_a_display(environ, platform, problem):
    assert (display_problem(environ, platform) is not None) is problem


# -- the first paint does not wait for the charts or the service -------------------------------------
FIRST_PAINT = r"""
import sys
from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
from menace_gui.main_window import MainWindow
window = MainWindow(None, QSettings(sys.argv[1], QSettings.Format.IniFormat))
print("before paint:", "pyqtgraph" in sys.modules, "menace.self_learning_service" in sys.modules)
window.firstPainted.connect(lambda: print("at paint:", "pyqtgraph" in sys.modules, flush=True))
window.show()
def check():
    if window.panel("scoresPanel").is_built():
        app.quit()
    else:
        QTimer.singleShot(50, check)
QTimer.singleShot(50, check)
QTimer.singleShot(30000, app.quit)
app.exec()
print("after:", "pyqtgraph" in sys.modules, window.panel("scoresPanel").is_built())
"""


def test_the_window_paints_before_the_charts_are_built(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FIRST_PAINT, str(tmp_path / "gui.ini")],
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["before paint: False False", "at paint: False", "after: True True"]


# -- 14. Ctrl+Q right after start: "stopping…", never a frozen window ----------------------------------
def test_14_ctrl_q_right_after_start_says_stopping_and_keeps_painting(qtbot, tmp_path):
    before = {t.ident for t in threading.enumerate()}
    service = ServiceThread(Settings(data_dir=tmp_path / "data", metrics_port=0))
    window = MainWindow(service, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        responsive_close=True)
    window.show()
    gaps, last = [], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    with qtbot.waitSignal(window.closed, timeout=60_000):
        window.findChild(QAction, "quitAction").trigger()  # what Ctrl+Q does
        assert window.is_closing() and "Stopping the self-learning service" in window.banner.text()
        assert window.status.state_label.text() == "● stopping…"
        assert not window.main_splitter.isEnabled()  # nothing new can be asked for meanwhile
    timer.stop()
    assert not service.isRunning() and not window.isVisible()
    assert gaps and max(gaps) < 0.5, f"the window froze for {max(gaps):.2f} s"
    leftover = [t.name for t in threading.enumerate()
                if t.ident not in before and t.is_alive() and type(t).__name__ != "_DummyThread"]
    assert leftover == []


def test_a_responsive_close_of_a_fake_client_closes_it_too(qtbot, tmp_path):
    client = FakeClient()
    window = MainWindow(FixedClientSource(client), QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        responsive_close=True)
    window.show()
    qtbot.waitUntil(lambda: window.client is client)
    with qtbot.waitSignal(window.closed, timeout=10_000):
        window.close()
    assert client.closed and not window.isVisible()


# -- 10. the Settings dialog, read back in another process --------------------------------------------
READ_BACK = r"""
import sys
from PySide6.QtCore import QSettings
from menace_gui import gui_settings
s = QSettings(sys.argv[1], QSettings.Format.IniFormat)
p = gui_settings.read_preferences(s)
print(repr((p.model, p.eval_every_examples, p.eval_every_seconds, p.eval_max_examples, p.prequential_window,
            p.drift_policy, gui_settings.read_theme(s))))
print(repr(sorted(gui_settings.service_overrides(s, None, {"MENACE_EVAL_INTERVAL": "60"}).items())))
"""


def test_10_settings_are_kept_typed_and_apply_at_the_next_start(qtbot, tmp_path):
    ini = str(tmp_path / "gui.ini")
    window = MainWindow(None, QSettings(ini, QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    dialog = window.settings_dialog()
    qtbot.addWidget(dialog)
    assert "next start" in dialog.findChild(QLabel, "settingsApplyNote").text()
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("rf"))
    dialog.eval_every.setValue(250)
    dialog.eval_interval.setValue(90)
    dialog.eval_max.setValue(5000)
    dialog.prequential.setValue(321)
    dialog.drift_combo.setCurrentIndex(dialog.drift_combo.findData("none"))
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    assert QApplication.palette().color(QApplication.palette().ColorRole.Window).lightness() < 128  # previewed
    dialog.accept()
    window.apply_theme("system")
    out = subprocess.run([sys.executable, "-c", READ_BACK, ini], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout.splitlines()
    assert out[0] == repr(("rf", 250, 90, 5000, 321, "none", "dark"))
    # The environment's MENACE_EVAL_INTERVAL wins over the stored interval; the rest apply.
    assert out[1] == repr(sorted({"model": "rf", "eval_every": 250, "eval_max_examples": 5000,
                                  "prequential_window": 321, "drift_policy": "none"}.items()))


def test_10_a_flag_beats_a_stored_setting_and_the_service_gets_the_rest(tmp_path, monkeypatch):
    from menace_gui.app import build_gui_parser

    for variable in ("MENACE_MODEL", "MENACE_EVAL_EVERY", "MENACE_PREQUENTIAL_WINDOW", "MENACE_DRIFT_POLICY",
                     "MENACE_EVAL_INTERVAL", "MENACE_EVAL_MAX_EXAMPLES"):
        monkeypatch.delenv(variable, raising=False)
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    gui_settings.write_preferences(settings, gui_settings.ServicePreferences(
        model="nn", eval_every_examples=300, prequential_window=77))
    args = build_gui_parser().parse_args(["--model", "rf", "--data-dir", str(tmp_path / "d")])
    overrides = gui_settings.service_overrides(settings, args)
    assert "model" not in overrides and overrides["eval_every"] == 300 and overrides["prequential_window"] == 77


def test_10_cancel_puts_the_previewed_theme_back(qtbot, tmp_path):
    window = MainWindow(None, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    dialog = window.settings_dialog()
    light = QApplication.palette().color(QApplication.palette().ColorRole.Window).lightness()
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    dialog.reject()
    assert QApplication.palette().color(QApplication.palette().ColorRole.Window).lightness() == light
    assert gui_settings.read_theme(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)) == "system"


def test_a_stop_asked_for_before_the_stack_starts_starts_nothing(qtbot, tmp_path):
    started = []

    def backend(settings, **_):
        service.request_stop()  # as a Ctrl+Q while the service's modules load
        return (lambda: started.append(True)), (lambda: None)

    service = ServiceThread(Settings(data_dir=tmp_path / "data", metrics_port=0), backend=backend)
    states = []
    service.stateChanged.connect(lambda state, detail: states.append(state))
    service.open()
    qtbot.waitUntil(service.is_stopped, timeout=10_000)
    qtbot.waitUntil(lambda: "stopped" in states, timeout=5000)
    assert started == [] and states == ["starting", "stopped"] and service.client is None


def test_a_bad_flag_is_refused_with_the_usage_after_the_window_showed(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "MENACE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "menace_gui", "--eval-every", "many"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "menace-gui: error: argument --eval-every: invalid int value: 'many'" in proc.stderr
    assert not (tmp_path / "data").exists()
