"""The main window on a fake client: no stack, no SQLite, no bus behind it.

Everything the window shows and does goes through the MenaceClient protocol,
so an in-memory fake (``FakeClient`` in conftest) is enough to drive it all.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit, QToolButton

from menace import events
from menace.client import MenaceClient
from menace.errors import FieldError
from menace_gui.widgets.event_log import EventLogWidget
from menace_gui.widgets.forms import GptInteractionForm, PathwayForm
from menace_gui.widgets.job_controls import JobControls
from menace_gui.widgets.memory_view import MemoryView
from menace_gui.widgets.pathway_table import PathwayTable
from menace_gui.widgets.predict_form import PredictForm
from menace_gui.widgets.scores_panel import ScoresPanel


def topics_in(window) -> list[str]:
    model = window.findChild(EventLogWidget).model
    return [model.row_at(i).topic for i in range(model.rowCount())]


def fill(form, **values) -> None:
    for name, value in values.items():
        editor = form.editor(name)
        if isinstance(editor, QPlainTextEdit):
            editor.setPlainText(value)
        elif isinstance(editor, QLineEdit):
            editor.setText(value)
        else:
            editor.setCurrentIndex(editor.findData(value))


def test_events_appear_in_the_log_once_start_up_included(qtbot, fake_window, fake_client):
    assert isinstance(fake_client, MenaceClient)
    qtbot.waitUntil(lambda: events.SERVICE_STARTED in topics_in(fake_window))
    fake_client.publish("test:hello", {"n": 1})
    qtbot.waitUntil(lambda: "test:hello" in topics_in(fake_window))
    assert topics_in(fake_window) == [events.SERVICE_STARTED, "test:hello"]
    assert "running" in fake_window.findChild(QLabel, "serviceStateLabel").text()
    assert fake_window.windowTitle().endswith("fake://menace")


def test_reattaching_resumes_after_the_last_event_without_duplicates(qtbot, fake_window, fake_client):
    fake_client.publish("test:before", {})
    qtbot.waitUntil(lambda: "test:before" in topics_in(fake_window))
    fake_window.detach_client()
    assert fake_client.callbacks == []
    fake_client.publish("test:missed", {"n": 1})
    fake_client.publish("test:missed", {"n": 2})
    fake_window.attach_client(fake_client)
    fake_client.publish("test:after", {})
    qtbot.waitUntil(lambda: "test:after" in topics_in(fake_window))
    assert topics_in(fake_window) == [events.SERVICE_STARTED, "test:before", "test:missed", "test:missed", "test:after"]


def test_history_and_an_evaluation_event_draw_chart_points(qtbot, fake_window, fake_client):
    data = fake_window.findChild(ScoresPanel).curve.data
    qtbot.waitUntil(lambda: len(data.evaluations) == 2 and len(data) == 10)
    fake_client.publish(events.LEARNING_EVALUATED, {
        "engine": "pathways", "model": "fake", "cv_score": 0.81, "holdout_score": 0.79, "n_examples": 10,
        "duration_s": 0.1, "trigger": "manual", "job_id": None,
    })
    qtbot.waitUntil(lambda: len(data.evaluations) == 3)
    last = data.evaluations[-1]
    assert (last["cv_score"], last["holdout_score"], last["trigger"]) == (0.81, 0.79, "manual")
    assert "CV 0.810" in fake_window.findChild(QLabel, "lastScoresLabel").text()


def test_status_bar_shows_the_clients_model_counts_and_metrics(qtbot, fake_window):
    model = fake_window.findChild(QLabel, "modelLabel")
    qtbot.waitUntil(lambda: model.text().startswith("model: fake-model"))
    qtbot.waitUntil(lambda: fake_window.findChild(QLabel, "pathwayCountStatus").text() == "pathways: 3")
    assert fake_window.findChild(QLabel, "memoryCountStatus").text() == "memory: 2"
    assert fake_window.findChild(QLabel, "runCountStatus").text() == "runs: 130"
    assert model.text() == "model: fake-model (trained)"
    assert "127.0.0.1:9/metrics" in fake_window.findChild(QLabel, "metricsUrlLabel").text()


def test_each_form_submits_through_the_client(qtbot, fake_window, fake_client):
    pathway = fake_window.findChild(PathwayForm)
    fill(pathway, actions="fake->run", exec_time="2.5", outcome="FAILURE", roi="0.3")
    with qtbot.waitSignal(pathway.succeeded, timeout=5000):
        qtbot.mouseClick(pathway.submit_button, Qt.MouseButton.LeftButton)
    assert fake_client.runs == [{"actions": "fake->run", "inputs": "", "outputs": "", "exec_time": 2.5,
                                 "resources": "", "outcome": "FAILURE", "roi": 0.3}]
    assert pathway.status.text() == "Logged a run of pathway #7."

    gpt = fake_window.findChild(GptInteractionForm)
    fill(gpt, prompt="why?", response="because", tags="a, b")
    with qtbot.waitSignal(gpt.succeeded, timeout=5000):
        gpt.submit()
    assert fake_client.interactions == [("why?", "because", ["a", "b"])]
    assert "#41" in gpt.status.text()

    predict = fake_window.findChild(PredictForm)
    fill(predict, frequency="3", exec_time="1", roi="2", myelination="0.5", actions="fake->run")
    with qtbot.waitSignal(predict.succeeded, timeout=5000):
        predict.submit()
    assert fake_client.predictions == [(3.0, 1.0, 2.0, 0.5, "fake->run")]
    assert predict.result_label.text() == "Probability of success: 75.0 %"
    assert predict.why.rowCount() == 2 and predict.why_view.isVisibleTo(predict)
    assert predict.status.text() == "Predicted by the fake-model model."


def test_an_input_the_client_refuses_is_shown_under_its_field_and_nothing_is_written(qtbot, fake_window, fake_client):
    form = fake_window.findChild(PathwayForm)
    fill(form, actions="fake->run", exec_time="1", roi="5")
    fake_client.refuse = FieldError("roi", "roi must be below 1 for this store, got 5.0")
    with qtbot.waitSignal(form.failed, timeout=5000):
        form.submit()
    assert form.error_text("roi") == "Must be below 1 for this store, got 5.0"
    assert form.error_text("actions") == ""
    assert "Nothing was saved" in form.status.text()
    assert fake_client.runs == []
    assert events.PATHWAY_NEW not in topics_in(fake_window)

    predict = fake_window.findChild(PredictForm)
    fill(predict, frequency="3", exec_time="1", roi="2", myelination="0.5", actions="x")
    fake_client.refuse = FieldError("freq", "freq must be an integer here, got 3.0")
    with qtbot.waitSignal(predict.failed, timeout=5000):
        predict.submit()
    assert predict.error_text("frequency") == "Must be an integer here, got 3.0"


def test_jobs_run_and_cancel_through_the_client(qtbot, fake_window, fake_client):
    controls = fake_window.findChild(JobControls)
    retrain = fake_window.findChild(QToolButton, "retrainButton")
    with qtbot.waitSignal(controls.jobQueued, timeout=5000) as queued:
        qtbot.mouseClick(retrain, Qt.MouseButton.LeftButton)
        assert not retrain.isEnabled()
    assert queued.args == ["train", 1] and fake_client.submitted == [("train", {})]
    fake_client.publish(events.LEARNING_PROGRESS, {"job_id": 1, "kind": "train", "engine": "pathways",
                                                   "fraction": 0.5, "message": "half"})
    qtbot.waitUntil(lambda: controls.jobs.job(1) is not None and controls.jobs.job(1).fraction == 0.5)
    assert controls.jobs.job(1).state == "running"
    with qtbot.waitSignal(controls.jobFinished, timeout=5000):
        fake_client.publish(events.LEARNING_TRAINED, {"job_id": 1, "engine": "pathways", "model": "fake",
                                                      "mode": "full", "examples": 12, "duration_s": 0.5})
    assert controls.is_idle() and retrain.isEnabled()
    assert "trained fake on 12 runs" in controls.results["train"]

    with qtbot.waitSignal(controls.jobFinished, timeout=5000) as finished:
        assert controls.request("auto_train")
        controls.cancel_all()  # before the id is back: cancelled once it is
    assert fake_client.cancelled == [2]
    assert finished.args[:3] == ["auto_train", 2, events.LEARNING_CANCELLED]
    assert controls.is_idle()


def test_tables_load_from_the_client(qtbot, fake_window, fake_client):
    table = fake_window.findChild(PathwayTable)
    qtbot.waitUntil(lambda: table.model.rowCount() == 3)
    assert {table.model.record(r).actions for r in range(3)} == {"fake1->step", "fake2->step", "fake3->step"}
    memory = fake_window.findChild(MemoryView)
    qtbot.waitUntil(lambda: memory.model.rowCount() == 2)
    memory.search_edit.setText("zebra")
    qtbot.waitUntil(lambda: memory.model.rowCount() == 1)
    assert memory.model.record(0).data == "zebra crossing"


def test_closing_the_window_closes_the_client(qtbot, fake_window, fake_client):
    fake_window.close()
    assert fake_client.closed and fake_window.client is None
