"""Scores over time (CV and holdout) and a small plot of training activity.

Both draw from events (``learning:evaluated``, ``learning:trained``) and, at
start, from the engine's stored evaluation history; they never reach into a
model. Exports use pyqtgraph's own exporters (PNG picture, CSV data).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import QPointF, Qt, Slot
from PySide6.QtGui import QAction, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

# Colour-blind-safe pair that reads on light and dark backgrounds alike.
CV_COLOR = "#1f77b4"
HOLDOUT_COLOR = "#ff7f0e"
ACTIVITY_COLOR = "#2ca02c"

#: Points kept on the activity plot (it is a running view, not an archive).
MAX_ACTIVITY_POINTS = 5000
#: Seconds the activity plot shows at least.
MIN_ACTIVITY_SPAN = 600.0


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def style_plot(widget: pg.PlotWidget, palette: QPalette) -> None:
    """Use the window palette for the plot background, axes and text."""
    background = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    widget.setBackground(background)
    item = widget.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
    item.titleLabel.setAttr("color", text.name())


class ScoreChart(QWidget):
    """CV and holdout score per evaluation, with legend, hover values and export."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scoreChart")
        self._ts: list[float] = []
        self._cv: list[float] = []
        self._holdout: list[float] = []
        self._keys: set[tuple] = set()
        self.last_export_dir = ""

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setObjectName("scorePlot")
        item = self.plot.getPlotItem()
        item.setTitle("Model scores")
        item.setLabel("left", "score (0..1)")
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setYRange(0.0, 1.0, padding=0.05)
        item.setLimits(yMin=-0.05, yMax=1.05)
        item.setMouseEnabled(x=True, y=False)
        self.legend = item.addLegend(offset=(10, 10))
        # Evaluations are sparse, so symbols cost nothing here and show each point.
        self.cv_curve = item.plot(
            [], [], name="CV score", pen=pg.mkPen(CV_COLOR, width=2),
            symbol="o", symbolSize=7, symbolBrush=CV_COLOR, symbolPen=None,
        )
        self.holdout_curve = item.plot(
            [], [], name="Holdout score", pen=pg.mkPen(HOLDOUT_COLOR, width=2, style=Qt.PenStyle.DashLine),
            symbol="s", symbolSize=7, symbolBrush=HOLDOUT_COLOR, symbolPen=None,
        )
        self.hover_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128), width=1))
        self.hover_line.setVisible(False)
        item.addItem(self.hover_line, ignoreBounds=True)
        self.hover_label = pg.TextItem(anchor=(0, 1))
        self.hover_label.setVisible(False)
        item.addItem(self.hover_label, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )
        self.empty_label = pg.TextItem("No evaluations yet: press Evaluate (Ctrl+E)", anchor=(0.5, 0.5))
        item.addItem(self.empty_label, ignoreBounds=True)

        buttons = self._build_export_row()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(buttons)
        self.apply_palette(self.palette())
        self._redraw()

    # -- data ----------------------------------------------------------------

    def _build_export_row(self) -> QHBoxLayout:
        """The export actions and the summary line under the chart."""
        self.export_png_action = QAction("Export chart as &PNG…", self)
        self.export_png_action.setObjectName("exportPngAction")
        self.export_png_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.export_png_action.triggered.connect(self._ask_export_png)
        self.export_csv_action = QAction("Export scores as &CSV…", self)
        self.export_csv_action.setObjectName("exportCsvAction")
        self.export_csv_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.export_csv_action.triggered.connect(self._ask_export_csv)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.summary_label = QLabel("", self)
        self.summary_label.setObjectName("scoreSummaryLabel")
        buttons.addWidget(self.summary_label, 1)
        for name, action in (("exportPngButton", self.export_png_action), ("exportCsvButton", self.export_csv_action)):
            button = QToolButton(self)
            button.setObjectName(name)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)
        return buttons

    def point_count(self) -> int:
        return len(self._ts)

    def points(self) -> list[tuple[float, float, float]]:
        """``(ts, cv_score, holdout_score)`` in time order."""
        return list(zip(self._ts, self._cv, self._holdout, strict=True))

    def set_history(self, history: Iterable[Mapping[str, Any]]) -> int:
        """Add stored evaluations (dicts with ``ts``, ``cv_score``, ``holdout_score``); returns how many."""
        added = sum(self._add(entry) for entry in history)
        if added:
            self._redraw()
        return added

    def add_evaluation(self, payload: Mapping[str, Any]) -> bool:
        """Add one ``learning:evaluated`` payload; ``False`` if invalid or already shown."""
        added = self._add(payload)
        if added:
            self._redraw()
        return added

    def clear(self) -> None:
        self._ts, self._cv, self._holdout = [], [], []
        self._keys.clear()
        self._redraw()

    def _add(self, entry: Mapping[str, Any]) -> bool:
        ts = _finite(entry.get("ts"))
        cv = _finite(entry.get("cv_score"))
        holdout = _finite(entry.get("holdout_score"))
        if ts is None or cv is None or holdout is None:
            return False
        key = (round(ts, 6), round(cv, 9), round(holdout, 9))
        if key in self._keys:  # the same evaluation from history and from the live event
            return False
        self._keys.add(key)
        if self._ts and ts < self._ts[-1]:
            i = bisect.bisect(self._ts, ts)
            self._ts.insert(i, ts)
            self._cv.insert(i, cv)
            self._holdout.insert(i, holdout)
        else:
            self._ts.append(ts)
            self._cv.append(cv)
            self._holdout.append(holdout)
        return True

    def _redraw(self) -> None:
        self.cv_curve.setData(self._ts, self._cv)
        self.holdout_curve.setData(self._ts, self._holdout)
        self.empty_label.setVisible(not self._ts)
        if not self._ts:
            now = time.time()
            self.plot.getPlotItem().setXRange(now - 3600, now, padding=0)
            self.empty_label.setPos(now - 1800, 0.5)
            self.summary_label.setText("")
        else:
            if len(self._ts) == 1:
                self.plot.getPlotItem().setXRange(self._ts[0] - 300, self._ts[0] + 300, padding=0)
            else:
                self.plot.getPlotItem().enableAutoRange(axis="x")
            self.summary_label.setText(
                f"{len(self._ts)} evaluations · last: CV {self._cv[-1]:.3f}, holdout {self._holdout[-1]:.3f}"
            )

    # -- hover ---------------------------------------------------------------
    def hover_text_at(self, ts: float, tolerance: float | None = None) -> str | None:
        """The hover text for the evaluation nearest ``ts`` (within ``tolerance`` s), or ``None``."""
        if not self._ts:
            return None
        i = min(range(len(self._ts)), key=lambda k: abs(self._ts[k] - ts))
        if tolerance is not None and abs(self._ts[i] - ts) > tolerance:
            return None
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._ts[i]))
        return f"{when}\nCV {self._cv[i]:.3f}\nholdout {self._holdout[i]:.3f}"

    def _on_mouse_moved(self, args: tuple) -> None:
        pos: QPointF = args[0]
        item = self.plot.getPlotItem()
        if not self._ts or not item.sceneBoundingRect().contains(pos):
            self.hover_line.setVisible(False)
            self.hover_label.setVisible(False)
            return
        point = item.vb.mapSceneToView(pos)
        (x0, x1), _ = item.vb.viewRange()
        text = self.hover_text_at(point.x(), tolerance=0.03 * (x1 - x0))
        if text is None:
            self.hover_line.setVisible(False)
            self.hover_label.setVisible(False)
            return
        i = min(range(len(self._ts)), key=lambda k: abs(self._ts[k] - point.x()))
        self.hover_line.setPos(self._ts[i])
        self.hover_label.setText(text, color=self.palette().color(QPalette.ColorRole.Text))
        # Keep the label inside the plot: flip it left of the line in the right half.
        self.hover_label.setAnchor((1, 1) if self._ts[i] > (x0 + x1) / 2 else (0, 1))
        self.hover_label.setPos(self._ts[i], max(self._cv[i], self._holdout[i]))
        self.hover_line.setVisible(True)
        self.hover_label.setVisible(True)

    # -- export --------------------------------------------------------------
    def export_png(self, path: str, width: int = 1200) -> None:
        """Save the chart as a PNG picture ``width`` pixels wide."""
        exporter = pg.exporters.ImageExporter(self.plot.getPlotItem())
        exporter.parameters()["width"] = int(width)
        exporter.export(str(path))

    def export_csv(self, path: str) -> None:
        """Save the plotted data (time in epoch seconds, score) as CSV."""
        exporter = pg.exporters.CSVExporter(self.plot.getPlotItem())
        exporter.export(str(path))

    @Slot()
    def _ask_export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", self.last_export_dir, "PNG image (*.png)")
        if path:
            self.export_png(path if path.lower().endswith(".png") else path + ".png")

    @Slot()
    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export scores", self.last_export_dir, "CSV (*.csv)")
        if path:
            self.export_csv(path if path.lower().endswith(".csv") else path + ".csv")

    def apply_palette(self, palette: QPalette) -> None:
        style_plot(self.plot, palette)
        text = palette.color(QPalette.ColorRole.Text)
        self.empty_label.setColor(text)
        self.legend.setLabelTextColor(text)
        self.legend.setBrush(pg.mkBrush(QColor(palette.color(QPalette.ColorRole.Base))))

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange:
            self.apply_palette(self.palette())
        super().changeEvent(event)


class TrainingActivity(QWidget):
    """Examples learned over time (cumulative), from ``learning:trained`` events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingActivity")
        self.total_examples = 0
        self.trainings = 0
        self._ts: list[float] = []
        self._total: list[float] = []
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setObjectName("trainingActivityPlot")
        item = self.plot.getPlotItem()
        item.setTitle("Training activity")
        item.setLabel("left", "examples")
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setMouseEnabled(x=True, y=False)
        self.curve = item.plot([], [], pen=pg.mkPen(ACTIVITY_COLOR, width=2), stepMode=None)
        # Many partial updates: downsample and clip so a long day stays cheap to draw.
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self.plot.setMinimumHeight(self.fontMetrics().height() * 7)
        self.last_label = QLabel("No training yet", self)
        self.last_label.setObjectName("lastTrainingLabel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.last_label)
        style_plot(self.plot, self.palette())

    def add_trained(self, payloads: Iterable[Mapping[str, Any]]) -> None:
        """Add ``learning:trained`` payloads (one redraw for all)."""
        last = None
        for payload in payloads:
            ts = _finite(payload.get("ts")) or time.time()
            examples = payload.get("examples")
            examples = int(examples) if isinstance(examples, int | float) and examples > 0 else 0
            self.total_examples += examples
            self.trainings += 1
            self._ts.append(ts)
            self._total.append(self.total_examples)
            last = payload
        if last is None:
            return
        if len(self._ts) > MAX_ACTIVITY_POINTS:
            del self._ts[: -MAX_ACTIVITY_POINTS]
            del self._total[: -MAX_ACTIVITY_POINTS]
        self.curve.setData(self._ts, self._total)
        # Show at least ten minutes, so a burst reads as times of day, not fractions of seconds.
        if self._ts[-1] - self._ts[0] < MIN_ACTIVITY_SPAN:
            self.plot.getPlotItem().setXRange(self._ts[-1] - MIN_ACTIVITY_SPAN, self._ts[-1] + 30, padding=0)
        else:
            self.plot.getPlotItem().enableAutoRange(axis="x")
        duration = _finite(last.get("duration_s")) or 0.0
        self.last_label.setText(
            f"Last training: {last.get('mode', '?')} ({last.get('model', '?')}), "
            f"{last.get('examples', 0)} examples in {duration:.3f} s · "
            f"{self.total_examples:,} examples in {self.trainings:,} updates this session"
        )

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange:
            style_plot(self.plot, self.palette())
        super().changeEvent(event)
