"""Issue 13, item by item: the monitor shows learning, on the real stack and on the fake client.

Each test runs twice (``monitor`` is parametrised): once on the real window over
a real stack (learning events come from the real bus, as the coordinator
would publish them) and once on the same window over the in-memory FakeClient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401
import pytest
from gui_support import FakeClient, seed_pathways, start_window
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from menace import events
from menace_gui import theme
from menace_gui.client_source import FixedClientSource
from menace_gui.main_window import MainWindow
from menace_gui.widgets.axes import tick_label
from menace_gui.widgets.curve_data import DRIFT, MODEL, RETRAIN
from menace_gui.widgets.job_list import FAILED


@dataclass
class Monitor:
    """The window under test and how to play the learner behind it."""

    kind: str
    window: MainWindow
    client: Any
    stack: Any = None

    def publish(self, topic: str, payload: dict) -> None:
        payload = {"engine": "pathways", "ts": time.time(), **payload}
        if self.stack is not None:
            self.stack.bus.publish(topic, payload)
        else:
            self.client.publish(topic, payload)

    @property
    def scores(self):
        return self.window.panel("scoresPanel")

    @property
    def curve(self):
        return self.scores.curve


@pytest.fixture(scope="module", params=["real", "fake"])
def monitor(request, qapp, tmp_path_factory):
    from pytestqt.qtbot import QtBot

    base = tmp_path_factory.mktemp(request.param)
    bot = QtBot(request)
    if request.param == "real":
        window = start_window(bot, base / "data", base / "gui.ini", keep=True)
        seed_pathways(window.source.stack, n=60)
        m = Monitor("real", window, window.client, window.source.stack)
    else:
        client = FakeClient()
        window = MainWindow(FixedClientSource(client, "fake://menace"),
                            QSettings(str(base / "gui.ini"), QSettings.Format.IniFormat))
        window.show()
        bot.waitUntil(lambda: window.client is client, timeout=5000)
        window.finish_building()
        m = Monitor("fake", window, client)
    bot.waitUntil(lambda: m.curve.data.history_loaded, timeout=10_000)
    yield m
    window.close()


def prequential(accuracy: float, n_total: int, model: str = "logreg", baseline: float = 0.6, **extra) -> dict:
    return {"model": model, "accuracy": accuracy, "baseline": baseline, "log_loss": 0.4, "brier": 0.1,
            "n_window": 200, "n_total": n_total, **extra}


def publish_points(monitor: Monitor, qtbot, accuracies, model: str = "logreg", start_total: int = 0) -> None:
    before = len(monitor.curve.data)
    for i, accuracy in enumerate(accuracies):
        monitor.publish(events.LEARNING_PREQUENTIAL, prequential(accuracy, start_total + 50 * (i + 1), model))
        time.sleep(0.002)  # distinct times
    qtbot.waitUntil(lambda: len(monitor.curve.data) >= before + len(accuracies), timeout=5000)


# -- 1. whether the model is learning, without pressing Evaluate -------------------------------------
def test_1_the_learning_curve_follows_every_test_then_train_update(qtbot, monitor):
    curve = monitor.curve
    assert monitor.window.view_tabs.currentWidget() is monitor.scores  # the first thing on the Scores tab
    publish_points(monitor, qtbot, [0.70, 0.74, 0.79, 0.83])
    data = curve.data
    mine = [i for i, a in enumerate(data.column("accuracy")) if a in (0.70, 0.74, 0.79, 0.83)][-4:]
    # (on the real stack the coordinator's own points may come in between)
    assert [data.column("accuracy")[i] for i in mine] == [0.70, 0.74, 0.79, 0.83]
    assert data.column("smoothed")[mine[-1]] < 0.83  # smoothed lags the raw points it is drawn over
    assert np.all(data.column("baseline")[mine] == 0.6)
    with qtbot.waitSignal(curve.redrawn, timeout=2000):
        curve.request_redraw()
    assert len(curve.raw_curve.xData) == len(data) and curve.raw_check.isChecked()
    assert "against guessing 0.600" in curve.summary()


# -- 2. the y axis fits, zooms and names its metric; baseline, AUC, spread, model switches -----------
def test_2_y_fits_the_data_with_padding_zooms_and_fits_again(qtbot):
    from menace_gui.widgets.learning_curve import LearningCurve

    curve = LearningCurve()
    qtbot.addWidget(curve)
    curve.resize(800, 500)
    curve.show()
    curve.data.history_loaded = True
    curve.smoothing_slider.setValue(0)
    t0 = time.time()
    curve.data.add_points([prequential(a, 50 * (i + 1), baseline=0.9, ts=t0 + 10 * i)
                           for i, a in enumerate([0.916, 0.908, 0.942, 0.925, 0.931])])
    curve.redraw()
    QApplication.processEvents()
    vb = curve.plot.getViewBox()
    _, (y0, y1) = vb.viewRange()
    assert 0.85 < y0 < 0.9 and 0.942 < y1 < 0.98  # 0.916 -> 0.908 -> 0.942 spans the height, not 1-3 px
    vb.scaleBy((0.5, 0.5))
    vb.sigRangeChangedManually.emit([True, True])  # what the mouse wheel sends after zooming
    assert not curve.following
    curve.data.add_points([prequential(0.5, 400, baseline=0.9, ts=t0 + 60)])
    curve.redraw()
    assert vb.viewRange()[1][0] > 0.6  # zoomed by hand: new data does not move the view
    curve.fit()
    QApplication.processEvents()
    assert curve.following
    (x0, x1), (y0, y1) = vb.viewRange()
    assert x0 <= t0 and x1 >= t0 + 60 and y0 < 0.5 < 0.942 < y1
    assert "accuracy" in curve.plot.getAxis("left").labelText
    assert not curve.plot.getAxis("left").autoSIPrefix  # 0.9 reads 0.9, not 900 (x0.001)


def test_2_auc_fold_spread_and_model_switches_are_shown(qtbot, monitor):
    curve = monitor.curve
    monitor.publish(events.LEARNING_EVALUATED, {
        "model": "logreg", "cv_score": 0.812, "holdout_score": 0.8, "holdout_auc": 0.873, "cv_std": 0.021,
        "n_examples": 3000, "duration_s": 0.5, "trigger": "examples", "job_id": None})
    qtbot.waitUntil(lambda: any(e["cv_score"] == 0.812 for e in curve.data.evaluations), timeout=5000)
    entry = next(e for e in curve.data.evaluations if e["cv_score"] == 0.812)
    assert "AUC 0.873" in curve.hover_text_at(entry["ts"]) and "± 0.021" in curve.hover_text_at(entry["ts"])
    curve.redraw()
    assert len(curve.cv_bars.opts["x"]) >= 1  # the fold spread as an error bar
    publish_points(monitor, qtbot, [0.6, 0.65], model="rf")
    publish_points(monitor, qtbot, [0.7], model="logreg", start_total=10_000)
    kinds = [(m.kind, m.text) for m in curve.data.all_markers()]
    assert (MODEL, "logreg → rf") in kinds and (MODEL, "rf → logreg") in kinds


def test_2_x_switches_between_time_and_runs_learned(qtbot, monitor):
    from menace_gui.widgets.axes import CountAxis, TimeAxis

    curve = monitor.curve
    publish_points(monitor, qtbot, [0.81, 0.82])
    count = len(curve.data.evaluations)
    monitor.publish(events.LEARNING_EVALUATED, {
        "model": "logreg", "cv_score": 0.77, "holdout_score": 0.75, "n_examples": 300, "duration_s": 0.2,
        "trigger": "manual", "job_id": None})
    qtbot.waitUntil(lambda: len(curve.data.evaluations) > count, timeout=5000)
    curve.x_combo.setCurrentIndex(curve.x_combo.findData("examples"))
    try:
        assert curve.x_mode == "examples" and isinstance(curve.plot.getAxis("bottom"), CountAxis)
        assert "runs learned" in curve.plot.getAxis("bottom").labelText
        assert list(curve.raw_curve.xData) == list(curve.data.column("examples"))
        examples = curve.data.column("examples")
        assert np.all(np.diff(examples) >= 0)  # runs learned only grow, across model switches too
        entry = next(e for e in curve.data.evaluations if e["cv_score"] == 0.77)
        assert curve.x_of_times(np.array([entry["ts"]]))[0] == pytest.approx(curve.data.examples_at([entry["ts"]])[0])
    finally:
        curve.x_combo.setCurrentIndex(curve.x_combo.findData("time"))
    assert isinstance(curve.plot.getAxis("bottom"), TimeAxis)
    assert list(curve.raw_curve.xData) == list(curve.data.column("ts"))


# -- 3. the legend never covers data; text reads in both palettes ------------------------------------
def test_3_the_legend_sits_above_the_plot_in_the_palettes_text_colour(monitor):
    curve = monitor.curve
    legend = curve.legend_item.sceneBoundingRect()
    plot_area = curve.plot.getViewBox().sceneBoundingRect()
    assert legend.bottom() <= plot_area.top() and not legend.intersects(plot_area)
    text = curve.palette().color(QPalette.ColorRole.Text).name()
    assert text in curve.legend_item.text and curve.title_item.opts["color"] == text


# -- 4. readable times at any span; one point draws -----------------------------------------------
def test_4_time_ticks_read_as_times_of_day_and_the_axis_names_the_date():
    ts = time.mktime((2026, 11, 24, 14, 5, 10, 0, 0, -1))
    assert tick_label(ts, 1.0) == "14:05:10"
    assert tick_label(ts, 60.0) == "14:05"
    assert tick_label(ts, 86_400.0) == "Tue 24 Nov"
    assert tick_label(time.mktime((2026, 11, 25, 0, 0, 0, 0, 0, -1)), 3600.0) == "25 Nov"


def test_4_one_point_draws_and_a_short_span_reads_as_times(qtbot, monitor):
    from menace_gui.widgets.learning_curve import MIN_TIME_SPAN, LearningCurve

    curve = LearningCurve()
    qtbot.addWidget(curve)
    curve.show()
    curve.data.history_loaded = True
    curve.data.add_points([prequential(0.8, 10, ts=time.time())])
    curve.redraw()
    assert curve.smooth_curve.opts["symbol"] == "o"  # a lone point is a visible dot
    QApplication.processEvents()
    (x0, x1), _ = curve.plot.getViewBox().viewRange()
    assert x1 - x0 >= MIN_TIME_SPAN * 0.99
    assert "time (local), 20" in curve.plot.getAxis("bottom").labelText


# -- 5. honest activity ----------------------------------------------------------------------------
def test_5_a_full_retrain_sets_the_count_and_is_drawn_apart(qtbot, monitor):
    activity = monitor.scores.activity
    monitor.publish(events.LEARNING_TRAINED, {"model": "logreg", "mode": "partial", "examples": 430,
                                              "duration_s": 0.1, "job_id": None, "run_ids": [1]})
    monitor.publish(events.LEARNING_TRAINED, {"model": "logreg", "mode": "full", "examples": 431,
                                              "duration_s": 0.4, "job_id": None})
    qtbot.waitUntil(lambda: activity.last_fit is not None and activity.last_fit["examples"] == 431, timeout=5000)
    assert activity.known == 431  # not 430 + 431
    assert len(activity.fit_points.xData) >= 1
    assert "retrain on 431 runs" in activity.describe()
    assert any(m.kind == RETRAIN for m in monitor.curve.data.all_markers())
    monitor.scores.read_truth()
    truth = monitor.client.status().model_examples
    stored = monitor.client.counts().runs
    qtbot.waitUntil(lambda: activity.known == truth and activity.stored == stored, timeout=10_000)
    assert f"of {stored:,} stored runs" in activity.describe()


def test_5_a_model_loaded_at_start_is_shown_trained(qtbot, tmp_path):
    from menace_gui.widgets.training_activity import TrainingActivity

    activity = TrainingActivity()
    qtbot.addWidget(activity)
    activity.set_truth("logreg", True, 3141, 3141)
    assert "has learned 3,141 of 3,141 stored runs" in activity.describe()
    assert "trained (loaded at start-up)" in activity.describe() and "No model" not in activity.describe()


# -- 6. the hover readout: outside the plot, gone when the pointer leaves, not in the PNG -------------
def test_6_hover_readout_lives_outside_the_plot_and_leaves_no_trace(qtbot, monitor, tmp_path):
    curve = monitor.curve
    publish_points(monitor, qtbot, [0.95, 0.97])
    assert curve.readout.parent() is curve and curve.readout not in curve.graphics.scene().items()
    ts = float(curve.data.column("ts")[list(curve.data.column("accuracy")).index(0.97)])
    assert "accuracy 0.970" in curve.hover_text_at(ts)
    curve.hover_line.setPos(ts)
    curve.hover_line.setVisible(True)
    curve.export_png(str(tmp_path / "with.png"), width=800)
    assert curve.hover_line.isVisible()  # restored after the export
    curve.clear_hover()
    assert not curve.hover_line.isVisible() and "now: accuracy" in curve.readout.text()
    curve.export_png(str(tmp_path / "without.png"), width=800)
    assert QImage(str(tmp_path / "with.png")) == QImage(str(tmp_path / "without.png"))


# -- 7. a failed job is red and readable ------------------------------------------------------------
def test_7_a_failed_job_is_red_and_says_what_went_wrong_without_the_class_name(qtbot, monitor):
    controls = monitor.window.panel("jobControls")
    job_id = 9_000 + (1 if monitor.kind == "real" else 2)
    monitor.publish(events.LEARNING_PROGRESS, {"job_id": job_id, "kind": "train", "fraction": 0.4,
                                               "message": "fold 2 of 5"})
    message = "training did not run: not enough labelled runs with both outcomes yet (3 successes, 0 failures)"
    monitor.publish(events.LEARNING_ERROR, {"error": f"ValueError: {message}", "source": "train",
                                            "job_id": job_id})
    qtbot.waitUntil(lambda: controls.jobs.job(job_id) is not None and controls.jobs.job(job_id).state == FAILED,
                    timeout=5000)
    row = controls.jobs.job(job_id)
    assert row.error == message[:1].upper() + message[1:] and "ValueError" not in row.outcome()
    index = next(controls.jobs.index(r, 3) for r in range(controls.jobs.rowCount())
                 if controls.jobs.row_of(r).id == job_id)
    assert controls.jobs.data(index, 9).name() == theme.color("error", controls.palette()).name()  # ForegroundRole
    controls.view.setCurrentIndex(index)
    assert message[1:] in controls.status.text() and controls.status.wordWrap()
    assert controls.status.palette().color(QPalette.ColorRole.WindowText) == theme.color("error", controls.palette())


# -- 8. predictions an operator can use --------------------------------------------------------------
def test_8_picking_a_pathway_fills_the_form_and_explains_the_prediction(qtbot, monitor):
    table, form = monitor.window.panel("pathwayTable"), monitor.window.panel("predictForm")
    if monitor.kind == "real" and not monitor.client.status().trained:
        controls = monitor.window.panel("jobControls")
        with qtbot.waitSignal(controls.jobFinished, timeout=30_000):
            controls.request("train")
    table.refresh()
    qtbot.waitUntil(lambda: table.model.rowCount() > 0 and not table.is_predicting()
                    and len(table.model.predicted) >= table.model.rowCount(), timeout=20_000)
    predicted = table.proxy.index(0, 3).data()
    assert predicted.endswith(" %") and 0 <= float(predicted[:-2]) <= 100
    assert "e+" not in table.proxy.index(0, 7).data()  # myelination reads 1,310, not 1.31e+03
    table.view.setCurrentIndex(table.proxy.index(0, 0))
    pathway = table.selected_pathway()
    with qtbot.waitSignal(form.succeeded, timeout=20_000):
        table.choose_current()
    assert form.editor("actions").text() == pathway.actions
    assert float(form.editor("frequency").text()) == pathway.frequency
    assert float(form.editor("roi").text()) == pytest.approx(pathway.avg_roi, abs=1e-3)
    assert form.result_label.wordWrap() and form.result_label.text().startswith("Probability of success: ")
    assert form.why.rowCount() >= 2 and form.method_label.text().startswith("Why: ")
    assert form.window().findChild(type(form.why_view), "predictionWhyView").isVisibleTo(form)


def test_8_a_typed_action_text_is_looked_up_and_a_new_one_starts_from_zero(qtbot, monitor):
    form = monitor.window.panel("predictForm")
    known = monitor.client.pathways(1)[0]
    for name in ("frequency", "exec_time", "roi", "myelination", "actions"):
        form.editor(name).clear()
    form.editor("actions").setText(known.actions)
    qtbot.waitUntil(lambda: form.pathway is not None and form.pathway.id == known.id, timeout=5000)
    assert float(form.editor("frequency").text()) == known.frequency
    assert f"#{known.id}" in form.lookup_label.text()
    form.editor("actions").setText("brand->new->steps")
    qtbot.waitUntil(lambda: "new pathway" in form.lookup_label.text(), timeout=5000)
    assert form.editor("frequency").text() == "0" and form.editor("myelination").text() == "0"
    form.editor("exec_time").setText("-1")
    assert not form.submit()
    assert form.status.text() == "Not predicted: fix the field marked above."


# -- 9. auto-train's comparison ----------------------------------------------------------------------
def test_9_an_auto_trains_candidates_show_which_won_and_why(qtbot, monitor):
    panel = monitor.window.panel("evaluationsPanel")
    entry = {"engine": "pathways", "model": "rf", "ts": time.time(), "cv_score": 0.84, "cv_std": 0.02,
             "cv_scores": [0.82, 0.86], "holdout_score": 0.83, "holdout_auc": 0.9, "n_examples": 400,
             "source": "auto_train", "candidates": {
                 "logreg": {"cv_score": 0.80, "cv_std": 0.01, "holdout_score": 0.79, "holdout_auc": 0.85},
                 "rf": {"cv_score": 0.84, "cv_std": 0.02, "holdout_score": 0.83, "holdout_auc": 0.9},
                 "nn": {"skipped": "time budget spent"}}}
    panel.add_evaluations([entry])
    row = next(r for r in range(panel.proxy.rowCount())
               if panel.proxy.index(r, 4).data() == "0.840" and panel.proxy.index(r, 1).data() == "rf")
    panel.view.setCurrentIndex(panel.proxy.index(row, 0))
    assert panel.candidate_view.isVisibleTo(panel)
    verdicts = {panel.candidates.row(i)["model"]: panel.candidates.row(i)["verdict"]
                for i in range(panel.candidates.rowCount())}
    assert verdicts["rf"].startswith("chosen: highest mean CV accuracy")
    assert verdicts["logreg"] == "CV 0.040 below the chosen one"
    assert verdicts["nn"] == "not scored: time budget spent"
    assert panel.candidates.row(0)["model"] == "rf"
    assert "auto-train" in panel.detail.toPlainText() and "folds: 0.8200  0.8600" in panel.detail.toPlainText()


def test_9_the_evaluations_table_sorts_and_shows_each_column(monitor):
    panel = monitor.window.panel("evaluationsPanel")
    headers = [panel.model.headerData(c, Qt.Orientation.Horizontal) for c in range(panel.model.columnCount())]
    assert headers == ["Time", "Model", "Trigger", "Runs", "CV", "± folds", "Holdout", "AUC", "Guessing"]
    panel.view.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # CV
    values = [panel.proxy.index(r, 4).data() for r in range(panel.proxy.rowCount())]
    assert values == sorted(values)


# -- 10. settings, and colours that read in both palettes -------------------------------------------
def contrast(a, b) -> float:
    def luminance(c):
        channels = [x / 255 for x in (c.red(), c.green(), c.blue())]
        linear = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("palette", [theme.light_palette(), theme.dark_palette()], ids=["light", "dark"])
def test_10_every_colour_reads_on_its_background(palette):
    for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Window):
        background = palette.color(role)
        for name in ("accuracy", "cv", "holdout", "drift", "model", "error", "ok", "link", "baseline", "full",
                     "up", "down"):
            assert contrast(theme.color(name, palette), background) >= 3.0, (name, role)
        for text_role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.Link):
            assert contrast(palette.color(text_role), background) >= 4.5, text_role


def test_10_switching_to_dark_recolours_the_status_dot_the_link_and_the_charts(qtbot, monitor):
    window = monitor.window
    try:
        window.apply_theme(theme.DARK)
        QApplication.processEvents()
        label = window.status.state_label
        background = window.status.palette().color(QPalette.ColorRole.Window)
        assert contrast(label.palette().color(QPalette.ColorRole.WindowText), background) >= 4.5
        link = window.status.metrics_label.palette().color(QPalette.ColorRole.Link)
        assert contrast(link, background) >= 4.5
        assert monitor.curve.graphics.backgroundBrush().color() == window.palette().color(QPalette.ColorRole.Base)
    finally:
        window.apply_theme(theme.SYSTEM)


# -- 11. 1024x700 and wider -------------------------------------------------------------------------
def test_11_the_window_fits_1024x700_and_the_tables_fit_their_width(qtbot, monitor):
    window = monitor.window
    size = window.minimumSizeHint()
    assert size.width() <= 1024 and size.height() <= 700, size
    window.resize(1024, 700)
    QApplication.processEvents()
    log = window.panel("eventLog")
    assert log.text_filter.width() >= 150
    assert log.view.columnWidth(3) >= 100 or log.view.horizontalHeader().stretchLastSection()
    window.resize(1280, 820)
    window.view_tabs.setCurrentWidget(window.panel("pathwayTable"))
    QApplication.processEvents()
    table = window.panel("pathwayTable").view
    assert table.horizontalHeader().length() <= table.viewport().width() + 1  # no sideways scrolling
    window.view_tabs.setCurrentIndex(0)


# -- 12. export -------------------------------------------------------------------------------------
def test_12_export_offers_a_dated_name_in_a_sensible_folder_and_confirms(qtbot, monitor, tmp_path):
    from menace_gui import export

    folder = export.export_folder("")
    assert folder and "menace-learning-curve-" in export.default_path(folder, "learning-curve", "csv")
    assert export.default_path("/x", "evaluations", "csv", now=time.mktime((2026, 11, 24, 14, 5, 0, 0, 0, -1))) \
        == "/x/menace-evaluations-2026-11-24-1405.csv"
    panel = monitor.window.panel("evaluationsPanel")
    rows = panel.export_csv(str(tmp_path / "evaluations.csv"))
    assert rows == panel.model.rowCount() and "Saved" in panel.message.text()
    text = (tmp_path / "evaluations.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert {"time", "model", "n_examples", "holdout_auc", "cv_std"} <= set(header) and "\r" not in text
    assert export.export_folder() == str(tmp_path)  # remembered for the next export


def test_12_the_png_is_the_whole_chart_whatever_the_zoom(qtbot, monitor, tmp_path):
    curve = monitor.curve
    vb = curve.plot.getViewBox()
    ts = curve.data.column("ts")
    vb.setXRange(ts[-2] - 10, ts[-1], padding=0)
    vb.sigRangeChangedManually.emit([True, True])
    zoomed = vb.viewRange()
    seen = []
    original = pg.exporters.ImageExporter.export
    pg.exporters.ImageExporter.export = lambda self, *a, **k: (seen.append(vb.viewRange()), original(self, *a, **k))[1]
    try:
        curve.export_png(str(tmp_path / "whole.png"))
    finally:
        pg.exporters.ImageExporter.export = original
    assert seen and seen[0][0][0] <= ts[0] and seen[0][0][1] >= ts[-1]  # drawn over all the data
    assert vb.viewRange()[0] == pytest.approx(zoomed[0]) and not curve.following  # and the view is as it was
    curve.fit()


# -- 13. never "press Evaluate" while evaluations exist ---------------------------------------------
def test_13_the_empty_chart_says_loading_until_the_history_is_read(qtbot):
    from menace_gui.widgets.learning_curve import LearningCurve

    curve = LearningCurve()
    qtbot.addWidget(curve)
    curve.redraw()
    assert curve.empty_text.isVisible() and "Loading" in curve.empty_text.textItem.toPlainText()
    assert "press Evaluate" not in curve.empty_text.textItem.toPlainText()
    curve.data.history_loaded = True
    curve.data.add_evaluation({"ts": time.time(), "cv_score": 0.9, "holdout_score": 0.88})
    curve.redraw()
    assert not curve.empty_text.isVisible()


def test_13_stored_evaluations_are_on_the_chart_once_bound(monitor):
    stored = monitor.client.evaluation_history()
    keys = {(round(e["ts"], 3), round(e["cv_score"], 9)) for e in monitor.curve.data.evaluations}
    assert all((round(e["ts"], 3), round(e["cv_score"], 9)) in keys for e in stored)


# -- 14. status bar shows runs (the Ctrl+Q test is in test_start_and_close.py) ------------------------
def test_14_the_status_bar_counts_runs_too(qtbot, monitor):
    monitor.window.status.refresh()
    runs = monitor.client.counts().runs
    label = monitor.window.findChild(QLabel, "runCountStatus")
    qtbot.waitUntil(lambda: label.text() == f"runs: {runs:,}", timeout=5000)


# -- drift, retrain and recovery on the curve -------------------------------------------------------
def test_drift_and_its_retrain_are_marked(qtbot, monitor):
    monitor.publish(events.LEARNING_DRIFT, {"model": "logreg", "n_examples": 2112, "error_before": 0.104,
                                            "error_after": 0.281, "runs_after": 128, "action": "retrain"})
    monitor.publish(events.LEARNING_TRAINED, {"model": "logreg", "mode": "full", "examples": 200,
                                              "duration_s": 0.2, "job_id": None, "reason": "drift"})
    qtbot.waitUntil(lambda: any(m.kind == DRIFT for m in monitor.curve.data.all_markers()), timeout=5000)
    texts = [m.text for m in monitor.curve.data.all_markers()]
    assert "drift: error 0.10 → 0.28 (retraining)" in texts and "drift retrain: logreg on 200 runs" in texts
    monitor.curve.redraw()
    lines = [i for i in monitor.curve.plot.items if isinstance(i, pg.InfiniteLine) and i is not monitor.curve.hover_line]
    assert len(lines) == len(monitor.curve.data.all_markers())


def test_a_million_points_draw_as_a_couple_per_pixel_without_losing_a_spike():
    from menace_gui.widgets.curve_data import decimate

    x = np.arange(1_000_000, dtype=float)
    y = np.full(1_000_000, 0.8)
    y[123_457] = 0.1  # one bad moment among a million
    xs, (ys,) = decimate(x, [y], -np.inf, np.inf, 1000)
    assert len(xs) <= 2001 and ys.min() == 0.1 and xs[0] == 0 and xs[-1] == 999_999
    xs, (ys,) = decimate(x, [y], 500_000, 500_100, 1000)  # zoomed in: the points themselves
    assert list(xs) == list(np.arange(499_999, 500_102, dtype=float)) and np.all(ys == 0.8)


def test_a_growing_curve_moves_its_axes_rarely():
    from menace_gui.widgets.curve_data import fit_values, follow_range

    shown = follow_range(0.0, 100.0, (0.0, 0.0), 20.0)
    assert shown == (-2.0, 110.0)  # room to grow on the right
    assert follow_range(0.0, 105.0, shown, 20.0) is None  # still inside: the axis stays put
    assert follow_range(0.0, 111.0, shown, 20.0)[1] > 111.0  # outside: it moves once, with new room
    assert follow_range(50.0, 51.0, (0.0, 1000.0), 20.0) == pytest.approx((40.1, 62.5))  # far too wide: refit
    assert fit_values(0.90, 0.94, (0.0, 1.0)) == pytest.approx((0.89, 0.95))
    assert fit_values(0.90, 0.94, (0.89, 0.95)) is None
