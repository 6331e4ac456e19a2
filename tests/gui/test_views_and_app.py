"""Data views, chart export, the start-up events and the entry point."""

from __future__ import annotations

import csv
import faulthandler
import time

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QImage

from menace import events
from menace_gui.widgets.table_models import SORT_ROLE


def test_service_started_event_is_in_the_log(qtbot, shared_window):
    # Published inside start(), before the bridge could listen: caught up with events_since.
    log = shared_window.panel("eventLog")
    topics = [log.model.row_at(i).topic for i in range(log.model.rowCount())]
    assert topics.count(events.SERVICE_STARTED) == 1  # caught up once, never also live
    assert "running" in shared_window.status.state_label.text()


def test_pathway_table_sorts_by_number_and_follows_new_runs(qtbot, shared_window):
    table = shared_window.panel("pathwayTable")
    qtbot.waitUntil(lambda: table.model.rowCount() == shared_window.source.stack.pathway_db.count_pathways())
    table.view.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # frequency
    freqs = [table.proxy.index(r, 2).data(SORT_ROLE) for r in range(table.proxy.rowCount())]
    assert freqs == sorted(freqs, reverse=True)
    count = table.model.rowCount()
    from menace.neuroplasticity import PathwayRecord

    shared_window.source.stack.pathway_db.log(PathwayRecord(actions="brand->new->pathway", roi=1.0))
    qtbot.waitUntil(lambda: table.model.rowCount() == count + 1, timeout=5000)
    table.filter_edit.setText("BRAND->NEW")
    assert table.proxy.rowCount() == 1


def test_memory_view_searches(qtbot, shared_window):
    view = shared_window.panel("memoryView")
    shared_window.source.stack.gpt_memory.log_interaction("where is the zebra report?", "in the archive", ["reports"])
    view.search_edit.setText("zebra")
    qtbot.waitUntil(lambda: view.model.rowCount() == 1 and "zebra" in view.model.record(0).data, timeout=5000)
    assert "zebra report? → in the archive" in view.proxy.index(0, 5).data()
    view.view.setCurrentIndex(view.proxy.index(0, 0))
    assert "in the archive" in view.detail.toPlainText()
    view.search_edit.setText('"unbalanced AND (')  # any text is searched as text
    qtbot.waitUntil(lambda: view.model.rowCount() == 0 and "matches" in view.count_label.text(), timeout=5000)
    view.search_edit.clear()


def test_chart_exports_png_and_csv(qtbot, shared_window, tmp_path):
    panel = shared_window.panel("scoresPanel")
    data = panel.curve.data
    now = time.time()
    data.add_evaluation({"ts": now - 60, "cv_score": 0.7, "holdout_score": 0.65, "model": "logreg",
                         "holdout_auc": 0.71, "n_examples": 40})
    assert not data.add_evaluation({"ts": now - 60, "cv_score": 0.7, "holdout_score": 0.65})  # no duplicates
    panel.export_png(str(tmp_path / "scores.png"))
    image = QImage(str(tmp_path / "scores.png"))
    assert image.width() == 1600 and image.height() > 100
    assert "Saved the learning curve" in panel.message.text()
    panel.export_csv(str(tmp_path / "scores.csv"))
    qtbot.waitUntil(lambda: "rows of the learning curve" in panel.message.text(), timeout=10_000)
    with open(tmp_path / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    evaluation = next(r for r in rows if r["series"] == "evaluation" and r["cv_score"] == "0.7")
    assert evaluation["model"] == "logreg" and evaluation["holdout_auc"] == "0.71"
    assert evaluation["n_examples"] == "40" and evaluation["time"][:4].isdigit() and "T" in evaluation["time"]
    assert b"\r\n" not in (tmp_path / "scores.csv").read_bytes()


#: How long main() may take to show a running stack; past it the test ends the app's loop itself.
APP_DEADLINE_MS = 120_000


def test_app_main_opens_window_and_remembers_data_dir(qtbot, qapp, tmp_path, monkeypatch):
    # main() runs its own app.exec(). pytest-timeout's signal would be raised inside a Qt
    # callback there, where PySide prints it and carries on, and the loop would never end:
    # so this test ends the loop itself at its own deadline and says what it saw.
    from PySide6.QtWidgets import QApplication

    from menace_gui import app as gui_app
    from menace_gui.main_window import MainWindow

    monkeypatch.delenv("MENACE_DATA_DIR", raising=False)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    data_dir = tmp_path / "opsdata"
    seen = {}

    def main_windows() -> list[MainWindow]:
        return [w for w in QApplication.topLevelWidgets()
                if isinstance(w, MainWindow) and w.source is not None and w.source.location == str(data_dir)]

    def close_when_running():
        if seen:
            return
        QTimer.singleShot(50, close_when_running)  # re-armed first: nothing below can end the polling
        windows = [w for w in main_windows() if w.isVisible() and w.client is not None]
        if windows:
            seen["title"] = windows[0].windowTitle()
            windows[0].close()

    def give_up():
        seen["gave_up"] = [(w.windowTitle(), w.source.state, w.source.detail, w.is_closing()) for w in main_windows()]
        with open(tmp_path / "stacks.txt", "w") as fh:  # where every thread was, for the failure message
            faulthandler.dump_traceback(fh, all_threads=True)
        QApplication.instance().exit(99)

    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(give_up)
    deadline.start(APP_DEADLINE_MS)
    QTimer.singleShot(50, close_when_running)
    try:
        code = gui_app.main(["--data-dir", str(data_dir), "--metrics-port", "0", "--max-log-rows", "500"])
    finally:
        deadline.stop()
    assert "gave_up" not in seen, (
        f"main() did not show a running stack and close within the deadline: {seen}\n"
        + (tmp_path / "stacks.txt").read_text()
    )
    assert code == 0
    assert str(data_dir) in seen["title"]
    assert (data_dir / "pathways.db").exists()
    settings = QSettings()
    assert settings.value(gui_app.LAST_DATA_DIR_KEY, "", type=str) == str(data_dir)
    assert settings.value(gui_app.MAX_ROWS_KEY, 0, type=int) == 500
    # Nothing main() left behind ends the event loops that run after it.
    fired = []
    QTimer.singleShot(10, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=2000)
