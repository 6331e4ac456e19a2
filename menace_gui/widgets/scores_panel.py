"""The Scores tab: the learning curve first, the training activity under it.

The charts (pyqtgraph) are built after the window's first paint
(:meth:`ScoresPanel.finish_building`), so opening the monitor does not wait
for them; whatever arrives before (events, the stored history) waits in a
list and is drawn once they exist. The curve starts from the client's
``prequential_history()`` and ``evaluation_history()`` and then follows
``learning:prequential``, ``learning:evaluated``, ``learning:drift`` and
``learning:trained``; the activity also reads the client's own figures
(``status()``, ``counts()``) every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QSplitter, QVBoxLayout, QWidget

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from .. import export
from ..panels import Area, PanelDefaults, restore_splitter, save_splitter
from ..task_runner import TaskRunner
from .forms import MessageLabel

logger = logging.getLogger(__name__)

#: Milliseconds between reads of the client's own figures (model, runs learned, runs stored).
TRUTH_INTERVAL_MS = 5000
EXPORT_DIR_KEY = "export/last_dir"


class ScoresPanel(PanelDefaults, QWidget):
    """The learning curve over the training activity (see the module doc)."""

    title = "Scores"
    area = Area.VIEWS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scoresPanel")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._pending: list[tuple[Callable[..., Any], tuple]] = []
        self._reading_truth = False
        self.curve = None  # a LearningCurve, once built
        self.activity = None  # a TrainingActivity, once built
        self.splitter: QSplitter | None = None
        self._saved_splitter: QSettings | None = None  # restored once the splitter exists
        self._build_actions()
        self.placeholder = QLabel("Loading the charts…", self)
        self.placeholder.setObjectName("scoresPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = MessageLabel("scoresMessage", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder, 1)
        layout.addWidget(self.message)
        self._truth_timer = QTimer(self)
        self._truth_timer.setObjectName("activityTruthTimer")
        self._truth_timer.setInterval(TRUTH_INTERVAL_MS)
        self._truth_timer.timeout.connect(self.read_truth)

    def _build_actions(self) -> None:
        self.export_png_action = QAction("Export learning curve as &PNG…", self)
        self.export_png_action.setObjectName("exportPngAction")
        self.export_png_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.export_png_action.triggered.connect(self.ask_export_png)
        self.export_csv_action = QAction("Export learning curve as &CSV…", self)
        self.export_csv_action.setObjectName("exportCsvAction")
        self.export_csv_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.export_csv_action.triggered.connect(self.ask_export_csv)

    # -- building after the first paint -------------------------------------------------
    def is_built(self) -> bool:
        return self.curve is not None

    def finish_building(self) -> None:
        """Build the charts (imports pyqtgraph) and draw what waited for them."""
        if self.curve is not None:
            return
        from .learning_curve import LearningCurve
        from .training_activity import TrainingActivity

        self.curve = LearningCurve(parent=self)
        self.activity = TrainingActivity(self)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("chartSplitter")
        self.splitter.addWidget(self.curve)
        self.splitter.addWidget(self.activity)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([420, 170])
        layout = self.layout()
        layout.replaceWidget(self.placeholder, self.splitter)
        self.placeholder.hide()
        self.placeholder.deleteLater()
        if self._saved_splitter is not None:
            restore_splitter(self._saved_splitter, self.splitter)
        pending, self._pending = self._pending, []
        for fn, args in pending:
            fn(*args)
        self.curve.redraw()

    def _later(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` now if the charts exist, else once they do."""
        if self.curve is None:
            self._pending.append((fn, args))
        else:
            fn(*args)

    # -- the panel ----------------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Read the stored curve and evaluations (in the worker); ``None`` keeps what is drawn."""
        self._client, self._runner = client, runner
        if client is None or runner is None or runner.closed:
            self._truth_timer.stop()
            return
        runner.submit(lambda: (client.prequential_history(), client.evaluation_history()),
                      on_done=lambda h: self._later(self._history_read, *h),
                      on_error=lambda exc: self._later(self._history_failed, exc))
        self.read_truth()
        self._truth_timer.start()

    def _history_read(self, points: list[dict], evaluations: list[dict]) -> None:
        self.curve.data.set_history(points)
        for entry in evaluations:
            self.curve.data.add_evaluation(entry)
        self.curve.request_redraw()

    def _history_failed(self, exc: BaseException) -> None:
        logger.warning("no learning history: %s", exc)
        self.curve.data.history_loaded = True
        self.curve.request_redraw()

    @Slot()
    def read_truth(self) -> None:
        """Read the client's model, runs learned and runs stored (in the worker, one read at a time)."""
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed or self._reading_truth:
            return
        self._reading_truth = True
        runner.submit(lambda: (client.status(), client.counts()),
                      on_done=lambda r: (self._truth_done(), self._later(self._truth_read, *r)),
                      on_error=lambda exc: (self._truth_done(), logger.warning("no status: %s", exc)))

    def _truth_done(self) -> None:
        self._reading_truth = False

    def _truth_read(self, status: Any, counts: Any) -> None:
        self.activity.set_truth(status.model, status.trained, status.model_examples, counts.runs)

    def handle_events(self, batch: Sequence[Event]) -> None:
        if any(e.topic in _TOPICS for e in batch):
            self._later(self._draw_events, batch)

    def _draw_events(self, batch: Sequence[Event]) -> None:
        data = self.curve.data
        points, trained = [], []
        for event in batch:
            topic, payload = event.topic, event.payload
            if topic == events.LEARNING_PREQUENTIAL:
                points.append(payload)
            elif topic == events.LEARNING_EVALUATED:
                data.add_evaluation(payload)
            elif topic == events.LEARNING_DRIFT:
                data.add_marker(event.ts, "drift", _drift_text(payload))
            elif topic == events.LEARNING_TRAINED:
                trained.append(payload)
                if payload.get("mode") in ("full", "auto"):
                    data.add_marker(float(payload.get("ts") or event.ts), "retrain", _retrain_text(payload))
        if points:
            data.add_points(points)
        if trained:
            self.activity.add_trained(trained)
            if any(p.get("mode") == "auto" for p in trained):
                self._read_evaluations()  # an auto-train's scores are stored, not announced
        self.curve.request_redraw()

    def _read_evaluations(self) -> None:
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed:
            return
        runner.submit(client.evaluation_history, on_done=lambda h: self._later(self._evaluations_read, h),
                      on_error=lambda exc: logger.warning("no evaluation history: %s", exc))

    def _evaluations_read(self, evaluations: list[dict]) -> None:
        if any([self.curve.data.add_evaluation(entry) for entry in evaluations]):
            self.curve.request_redraw()

    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&File": [self.export_png_action, self.export_csv_action]}

    def save_state(self, settings: QSettings) -> None:
        if self.splitter is not None:
            save_splitter(settings, self.splitter)
        settings.setValue(EXPORT_DIR_KEY, export.last_folder())
        if self.curve is not None:
            settings.setValue("curve/x_mode", self.curve.x_mode)
            settings.setValue("curve/smoothing", self.curve.smoothing_slider.value())

    def restore_state(self, settings: QSettings) -> None:
        export.remember_folder(settings.value(EXPORT_DIR_KEY, "", type=str))
        x_mode = settings.value("curve/x_mode", "time", type=str)
        smoothing = settings.value("curve/smoothing", -1, type=int)
        self._saved_splitter = settings
        self._later(self._restore_curve, x_mode, smoothing)

    def _restore_curve(self, x_mode: str, smoothing: int) -> None:
        self.curve.set_x_mode(x_mode)
        if 0 <= smoothing <= 95:
            self.curve.smoothing_slider.setValue(smoothing)

    # -- export ------------------------------------------------------------------------
    def _ask_path(self, caption: str, what: str, suffix: str, kind: str) -> str:
        suggested = export.default_path(export.export_folder(), what, suffix)
        path, _ = QFileDialog.getSaveFileName(self, caption, suggested, f"{kind} (*.{suffix})")
        return export.with_suffix(path, suffix) if path else ""

    @Slot()
    def ask_export_png(self) -> None:
        if self.curve is None:
            return
        path = self._ask_path("Export the learning curve", "learning-curve", "png", "PNG image")
        if path:
            self.export_png(path)

    @Slot()
    def ask_export_csv(self) -> None:
        if self.curve is None:
            return
        path = self._ask_path("Export the learning curve", "learning-curve", "csv", "CSV")
        if path:
            self.export_csv(path)

    def export_png(self, path: str) -> None:
        """Save the whole chart to ``path`` and say so."""
        try:
            self.curve.export_png(path)
        except OSError as exc:
            self.message.show_message(f"Could not save the picture: {exc}")
            return
        self._exported(path, "Saved the learning curve as a picture")

    def export_csv(self, path: str) -> None:
        """Write the curve's points, evaluations and markers to ``path`` (in the worker) and say so."""
        data = self.curve.data
        points = {name: data.column(name).copy() for name in
                  ("ts", "examples", "accuracy", "smoothed", "baseline", "log_loss")}
        models = _models_fast(data)
        evaluations = [dict(e) for e in data.evaluations]
        markers = data.all_markers()

        def write() -> int:
            return export.write_curve_csv(path, export.curve_rows(points, models, evaluations, markers))

        runner = self._runner
        if runner is None or runner.closed:
            self._csv_written(path, write())
        else:
            runner.submit(write, on_done=lambda n: self._csv_written(path, n),
                          on_error=lambda exc: self.message.show_message(f"Could not save the CSV file: {exc}"))

    def _csv_written(self, path: str, rows: int) -> None:
        self._exported(path, f"Saved {rows:,} rows of the learning curve")

    def _exported(self, path: str, what: str) -> None:
        export.remember_folder(path)
        self.message.show_message(f"{what} to {path}", "ok")


_TOPICS = frozenset({events.LEARNING_PREQUENTIAL, events.LEARNING_EVALUATED, events.LEARNING_DRIFT,
                     events.LEARNING_TRAINED})


def _drift_text(payload: dict) -> str:
    try:
        return (f"drift: error {float(payload['error_before']):.2f} → {float(payload['error_after']):.2f}"
                f"{' (retraining)' if payload.get('action') == 'retrain' else ''}")
    except (KeyError, TypeError, ValueError):
        return "drift"


def _retrain_text(payload: dict) -> str:
    mode = payload.get("mode")
    why = "drift retrain" if payload.get("reason") == "drift" else ("auto-train" if mode == "auto" else "retrain")
    return f"{why}: {payload.get('model', '?')} on {payload.get('examples', '?')} runs"


def _models_fast(data: Any) -> list[str]:
    """The model of every point, from the runs of points (no per-point search)."""
    out: list[str] = []
    bounds = [*(start for start, _ in data.models[1:]), len(data)]
    for (start, model), end in zip(data.models, bounds, strict=True):
        out.extend([model] * (end - start))
    return out
