"""The real window on the real stack, driven like an operator would (offscreen)."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QPushButton, QWidget

from menace import events
from menace.events import Event
from menace_gui.widgets.event_log import EventLogModel


def rows_of(window, topic: str) -> list[dict]:
    model = window.panel("eventLog").model
    return [model.row_at(i).payload for i in range(model.rowCount()) if model.row_at(i).topic == topic]


def fill(form, **values) -> None:
    for name, value in values.items():
        editor = form.editor(name)
        if isinstance(editor, QPlainTextEdit):
            editor.setPlainText(value)
        elif isinstance(editor, QLineEdit):
            editor.setText(value)
        else:
            editor.setCurrentIndex(editor.findData(value))


def test_log_pathway_through_form_shows_its_event(qtbot, shared_window):
    window = shared_window
    form = window.panel("pathwayForm")
    fill(form, actions="gui->form->pathway", inputs="in", outputs="out", exec_time="1.25",
         resources="cpu", outcome="PARTIAL_SUCCESS", roi="0.8")
    with qtbot.waitSignal(form.succeeded, timeout=5000) as result:
        qtbot.mouseClick(form.submit_button, Qt.MouseButton.LeftButton)
    pathway_id = result.args[0].pathway_id
    qtbot.waitUntil(lambda: any(p["actions"] == "gui->form->pathway" for p in rows_of(window, events.PATHWAY_NEW)))
    payload = [p for p in rows_of(window, events.PATHWAY_NEW) if p["actions"] == "gui->form->pathway"][-1]
    assert payload["pathway_id"] == pathway_id
    assert payload["outcome"] == "PARTIAL_SUCCESS" and payload["exec_time"] == 1.25
    assert window.source.stack.pathway_db.find("gui->form->pathway").frequency == 1
    assert "pathway #" in form.status.text()


def test_gpt_interaction_through_form_shows_memory_event(qtbot, shared_window):
    window = shared_window
    form = window.panel("gptForm")
    fill(form, prompt="How to speed up the nightly job?", response="Cache the embeddings.", tags="improvement, perf")
    with qtbot.waitSignal(form.succeeded, timeout=5000):
        form.submit()
    qtbot.waitUntil(lambda: any(p["key"] == "gpt:improvement" for p in rows_of(window, events.MEMORY_NEW)))
    payload = [p for p in rows_of(window, events.MEMORY_NEW) if p["key"] == "gpt:improvement"][-1]
    assert set(payload["tags"]) >= {"gpt", "improvement", "perf"}
    found = window.source.stack.gpt_memory.search("embeddings")
    assert found and found[0].response == "Cache the embeddings."


def test_invalid_input_shows_errors_and_writes_nothing(qtbot, shared_window):
    window = shared_window
    stack = window.source.stack
    db = stack.pathway_db
    runs_before, last_event = db.count_runs(), stack.bus.newest_event_id()
    form = window.panel("pathwayForm")
    fill(form, actions="   ", exec_time="-2", roi="lots", outcome="SUCCESS")
    with qtbot.waitSignal(form.failed, timeout=2000):
        qtbot.mouseClick(form.submit_button, Qt.MouseButton.LeftButton)
    assert "empty" in form.error_text("actions")
    assert ">= 0" in form.error_text("exec_time")
    assert "number" in form.error_text("roi")
    assert window.findChild(QWidget, "pathwayExec_timeError").isVisible()
    assert "Nothing was saved" in form.status.text()
    # Fixing a field clears its message as you type.
    form.editor("exec_time").setText("2")
    assert form.error_text("exec_time") == ""

    gpt = window.panel("gptForm")
    fill(gpt, prompt="", response="orphan answer", tags="bad tag")
    assert not gpt.submit()
    assert "empty" in gpt.error_text("prompt") and "space" in gpt.error_text("tags")

    assert db.count_runs() == runs_before
    announced = [e.topic for e in stack.bus.events_since(last_event) if e.topic in events.INPUT_TOPICS]
    assert announced == []  # nothing stored, so nothing announced (learning's own news may go on)
    assert not window.panel("pathwayForm").is_busy()


def test_prediction_shows_probability(qtbot, shared_window):
    window = shared_window
    controls = window.panel("jobControls")
    if controls.request("train"):
        qtbot.waitUntil(controls.is_idle, timeout=20_000)
    form = window.panel("predictForm")
    fill(form, frequency="4", exec_time="1.5", roi="1.2", myelination="2.0", actions="step1->check->store")
    with qtbot.waitSignal(form.succeeded, timeout=10_000) as result:
        form.submit()
    probability = result.args[0].probability
    assert 0.0 <= probability <= 1.0
    assert form.result_label.text() == f"Probability of success: {100 * probability:.1f} %"
    # Changing an input withdraws the stale answer.
    form.editor("roi").setText("1.3")
    assert "predict again" in form.result_label.text()


def test_retrain_then_evaluate_adds_a_chart_point(qtbot, shared_window):
    window = shared_window
    controls = window.panel("jobControls")
    retrain, evaluate = window.findChild(QWidget, "retrainButton"), window.findChild(QWidget, "evaluateButton")
    data = window.panel("scoresPanel").curve.data
    points = len(data.evaluations)
    qtbot.mouseClick(retrain, Qt.MouseButton.LeftButton)
    assert not retrain.isEnabled()  # disabled while its job is queued or running
    qtbot.waitUntil(controls.is_idle, timeout=20_000)
    assert "trained" in controls.results["train"]
    assert retrain.isEnabled()
    with qtbot.waitSignal(controls.jobFinished, timeout=20_000) as finished:
        qtbot.mouseClick(evaluate, Qt.MouseButton.LeftButton)
    assert finished.args[2] == events.LEARNING_EVALUATED
    qtbot.waitUntil(lambda: len(data.evaluations) == points + 1)
    last = data.evaluations[-1]
    assert 0 <= last["cv_score"] <= 1 and 0 <= last["holdout_score"] <= 1 and last["trigger"] == "manual"
    assert "CV" in window.panel("scoresPanel").curve.hover_text_at(last["ts"])
    assert "last scores: CV" in window.status.scores_label.text()


def test_auto_train_can_be_cancelled_or_finishes(qtbot, shared_window):
    window = shared_window
    controls = window.panel("jobControls")
    queued, finished = [], []
    controls.jobQueued.connect(lambda kind, job_id: queued.append(job_id))
    controls.jobFinished.connect(lambda kind, job_id, topic, payload: finished.append((job_id, topic)))
    assert controls.request("auto_train") and controls.is_running("auto_train")
    assert controls.cancel_action.isEnabled()
    controls.cancel_all()  # before its id is back: cancelled as soon as it is
    qtbot.waitUntil(lambda: bool(finished), timeout=30_000)
    assert [job_id for job_id, _ in finished] == queued
    assert finished[0][1] in (events.LEARNING_CANCELLED, events.LEARNING_TRAINED)
    assert controls.actions["auto_train"].isEnabled()


def test_pause_keeps_events(qtbot, shared_window):
    window = shared_window
    log = window.panel("eventLog")
    bus = window.source.stack.bus
    log.set_paused(True)
    shown, seen = log.shown, log.seen
    for i in range(25):
        bus.publish("test:paused", {"i": i, "ts": time.time()})
    qtbot.waitUntil(lambda: log.seen == seen + 25)
    assert log.shown == shown and log.held == 25
    assert "held while paused" in log.count_label.text()
    log.set_paused(False)
    assert log.held == 0
    assert [p["i"] for p in rows_of(window, "test:paused")] == list(range(25))
    numbers = [log.model.row_at(i).number for i in range(log.model.rowCount())]
    assert numbers == sorted(numbers) and numbers[-1] == log.seen


def test_topic_and_text_filter_and_payload_detail(qtbot, shared_window):
    window = shared_window
    log = window.panel("eventLog")
    window.source.stack.bus.publish("test:filter", {"needle": "haystack-42", "ts": time.time()})
    qtbot.waitUntil(lambda: bool(rows_of(window, "test:filter")))
    log.topic_filter.setCurrentIndex(log.topic_filter.findData("test:filter"))
    assert log.proxy.rowCount() == 1
    log.text_filter.setText("HAYSTACK-42")
    assert log.proxy.rowCount() == 1
    log.view.setCurrentIndex(log.proxy.index(0, 0))
    assert '"needle": "haystack-42"' in log.detail.toPlainText()
    log.text_filter.clear()
    log.topic_filter.setCurrentIndex(0)
    assert log.view.model().rowCount() == log.model.rowCount()  # every row again
    selected = log.view.currentIndex()  # and the event picked while filtering stays picked
    assert selected.isValid() and log.model.row_at(selected.row()).payload.get("needle") == "haystack-42"
    log.text_filter.setText("no such text anywhere")
    assert log.proxy.rowCount() == 0 and log.view.model().rowCount() == 0
    log.text_filter.clear()
    assert log.view.model().rowCount() == log.model.rowCount()


def test_flood_of_20000_events_keeps_window_responsive_and_count_exact(qtbot, shared_window):
    window = shared_window
    log, bus = window.panel("eventLog"), window.source.stack.bus
    seen = log.seen
    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        lateness.append(now - last[0] - 0.010)
        last[0] = now

    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)

    def flood():
        for i in range(20_000):
            bus.publish("test:flood", {"i": i, "ts": time.time()})

    publisher = threading.Thread(target=flood, name="test-flood")
    publisher.start()
    qtbot.waitUntil(lambda: not publisher.is_alive(), timeout=60_000)
    publisher.join()
    qtbot.waitUntil(lambda: log.seen == seen + 20_000, timeout=5000)
    timer.stop()
    assert log.seen == seen + 20_000
    assert log.shown <= log.max_rows
    assert rows_of(window, "test:flood")[-1]["i"] == 19_999
    assert lateness and max(lateness) < 0.5, f"GUI stalled {max(lateness):.3f} s"
    assert f"{log.seen:,} seen" in log.count_label.text()


def test_every_interactive_widget_has_an_object_name(shared_window):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSlider,
        QAbstractSpinBox,
        QComboBox,
        QHeaderView,
        QScrollBar,
    )

    def ours(widget) -> bool:
        # Parts Qt builds inside a widget (a combo's popup list, a table's header) are not ours.
        parent = widget.parent()
        while parent is not None and parent is not shared_window and parent.objectName() != "settingsDialog":
            if isinstance(parent, QComboBox | QLineEdit | QAbstractItemView) or type(parent).__name__.startswith("QComboBox"):
                return False
            parent = parent.parent()
        return not isinstance(widget, QHeaderView | QScrollBar)

    unnamed = [
        f"{type(w).__name__} in {type(w.parent()).__name__}"
        for kind in (QAbstractButton, QLineEdit, QPlainTextEdit, QComboBox, QAbstractItemView, QAbstractSlider,
                     QAbstractSpinBox)
        for root in (shared_window, shared_window.settings_dialog())
        for w in root.findChildren(kind)
        if not w.objectName() and ours(w)
    ]
    assert unnamed == []


def test_ten_thousand_void_qt_calls_do_not_crash(shared_window):
    # PySide6 6.12.0 on Python 3.11 aborts ("deallocating None") after ~1000 such calls.
    label = shared_window.status.model_label
    button = shared_window.findChild(QPushButton, "pathwaySubmitButton")
    for i in range(10_000):
        label.setText(f"model: {i}")
        button.setToolTip(str(i))
    assert label.text() == "model: 9999"


def test_event_log_model_passes_qtmodeltester(qtmodeltester):
    model = EventLogModel(max_rows=50)
    qtmodeltester.check(model)
    for start in range(0, 140, 35):  # fills, then evicts the oldest rows
        model.append_events([Event(i + 1, time.time(), "test:model", {"i": i}) for i in range(start, start + 35)])
    qtmodeltester.check(model)
    assert model.rowCount() == 50 and model.row_at(49).payload == {"i": 139}
    assert model.row_at(0).number == 91


def test_close_stops_the_stack_and_leaves_no_threads(open_window, capfd):
    before = {t.ident for t in threading.enumerate()}
    window = open_window()
    window.panel("jobControls").request("evaluate")  # closing while a job is queued must still be clean
    window.close()
    assert not window.source.isRunning()
    assert window.source.state == "stopped"
    leftover = [t.name for t in threading.enumerate()
                if t.ident not in before and t.is_alive() and type(t).__name__ != "_DummyThread"]  # Qt's own threads seen from Python
    assert leftover == []
    assert "QThread: Destroyed while thread is still running" not in capfd.readouterr().err


def test_crash_of_the_stack_is_shown(qtbot, open_window):
    window = open_window()
    window.source.stack.coordinator.stop()  # behind the window's back: learning has stopped
    qtbot.waitUntil(lambda: "crashed" in window.banner.text(), timeout=5000)
    assert window.banner.isVisible() and window.source.state == "crashed"
    assert "crashed" in window.status.state_label.text()
    assert not window.panel("pathwayForm").submit_button.isEnabled()
    assert not window.panel("jobControls").actions["train"].isEnabled()
    window.close()
    assert not window.source.isRunning()


READ_BACK = """
import sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from menace_gui.main_window import MainWindow
app = QApplication([])
window = MainWindow(None, QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
app.processEvents()
print(window.view_tabs.currentIndex(), window.size().width(), window.main_splitter.sizes()[0],
      window.panel("eventLog").follow_check.isChecked())
window.close()
"""


def test_geometry_splitters_and_tabs_persist_across_processes(qtbot, tmp_path):
    # INI values come back as strings in a new process unless read with type=...;
    # a same-process read would hide that, so the read-back runs in a fresh interpreter.
    import subprocess
    import sys

    from PySide6.QtCore import QSettings

    from menace_gui.main_window import MainWindow

    ini = tmp_path / "gui.ini"
    window = MainWindow(None, QSettings(str(ini), QSettings.Format.IniFormat))
    window.resize(700, 500)
    window.show()
    qtbot.waitExposed(window)
    window.main_splitter.setSizes([300, 400])
    window.view_tabs.setCurrentIndex(2)
    window.panel("eventLog").follow_check.setChecked(False)
    width, left = window.width(), window.main_splitter.sizes()[0]
    window.close()
    out = subprocess.run(
        [sys.executable, "-c", READ_BACK, str(ini)], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["2", str(width), str(left), "False"]


def test_main_actions_have_distinct_shortcuts_and_work_from_the_keyboard(qtbot, shared_window):
    from PySide6.QtGui import QAction

    window = shared_window
    keys = [a.shortcut().toString() for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys)), sorted(keys)
    assert {"Ctrl+R", "Ctrl+E", "Ctrl+Shift+A", "Ctrl+P", "Ctrl+L", "Ctrl+F", "Ctrl+Q"} <= set(keys)
    from PySide6.QtWidgets import QApplication

    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    log = window.panel("eventLog")
    log.view.setFocus()
    qtbot.keyClick(log.view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert log.is_paused()
    qtbot.keyClick(log.view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert not log.is_paused()
    with qtbot.waitSignal(window.panel("jobControls").jobFinished, timeout=20_000) as finished:
        qtbot.keyClick(log.view, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert finished.args[0] == "evaluate"


def test_a_stack_that_fails_to_start_is_shown(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from menace.config import Settings
    from menace_gui.main_window import MainWindow
    from menace_gui.service_thread import ServiceThread

    def broken_backend(settings, **_):
        def start():
            raise ValueError("metrics port 8001 is already in use")

        return start, lambda: None

    service = ServiceThread(Settings(data_dir=tmp_path / "data", metrics_port=0), backend=broken_backend)
    window = MainWindow(service, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    # The thread's state changes first; the window hears of it through a queued signal.
    qtbot.waitUntil(lambda: "8001 is already in use" in window.banner.text(), timeout=5000)
    assert window.banner.isVisible() and service.state == "crashed"
    assert not window.panel("jobControls").actions["evaluate"].isEnabled()
    window.close()
    assert not service.isRunning()
