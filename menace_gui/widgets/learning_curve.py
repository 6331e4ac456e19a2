"""The learning curve: is the model learning, and is it better than guessing?

One chart, TensorBoard-like: the live model's test-then-train accuracy
(smoothed, the raw points faint behind), the accuracy of always guessing the
majority class on the same runs, and the CV and holdout accuracy of every
evaluation as points on the same axes (CV with its fold spread as an error
bar). Vertical lines mark a model switch, a drift and a full retrain. The x
axis shows time or the runs learned; the y axis fits what is shown, with
padding, and zooms with the mouse (the Fit button goes back to everything).

The legend is a line of text above the plot, so it never covers data; the
hover readout is a label under the plot, never inside it, so it is neither
clipped nor exported. The data lives in a
:class:`~menace_gui.widgets.curve_data.LearningCurveData`; redraws are
coalesced (at most one per :data:`REDRAW_INTERVAL_MS`), and the dense series
are downsampled ("peak") and clipped to the view, so a million points redraw
in milliseconds.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import theme
from .axes import CountAxis, TimeAxis
from .curve_data import (
    DRIFT,
    MODEL,
    RETRAIN,
    LearningCurveData,
    Marker,
    decimate,
    fit_values,
    follow_range,
)

X_TIME, X_EXAMPLES = "time", "examples"
#: Least time between two redraws while points stream in, ms: the coordinator publishes its
#: test-then-train figures at most twice a second, so a faster redraw would show nothing new.
#: Not a multiple of the event bridge's 50 ms drain: the redraw timer starts in a drain, and
#: 500 ms later it fired together with the next drain, the two stalls adding up under a storm;
#: at 475 it falls midway between two drains.
REDRAW_INTERVAL_MS = 475
#: Seconds the time axis shows at least (a burst of seconds reads as times of day), and runs on the other.
MIN_TIME_SPAN = 20.0
MIN_RUNS_SPAN = 10.0
#: Below this many points the curve also draws a symbol at each (one point is visible).
SPARSE_POINTS = 60
#: Marker lines get a text label only while there are at most this many labelled ones.
MAX_MARKER_LABELS = 12
Y_TITLE = "accuracy"
TITLE = "Learning curve: test-then-train accuracy of the live model against guessing"

#: (series, legend text, line style) for the legend above the plot, in two lines.
LEGEND = (
    ("accuracy", "accuracy, smoothed (raw faint)", "━━"),
    ("baseline", "guessing the majority class", "╌╌"),
    ("cv", "CV ± fold spread", "●"),
    ("holdout", "holdout", "■"),
    ("model", "model switch", "│"),
    ("drift", "drift", "┆"),
    ("retrain", "full retrain", "┊"),
)
LEGEND_BREAK = 4  # entries on the first line
#: The short label a marker line carries (its full text is in the readout and the CSV).
MARKER_LABELS = {DRIFT: "drift", MODEL: "{text}"}
_MARKER_STYLE = {MODEL: Qt.PenStyle.SolidLine, DRIFT: Qt.PenStyle.DashLine, RETRAIN: Qt.PenStyle.DotLine}


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


class _LeaveWatcher(QObject):
    """Calls ``left()`` when the pointer leaves the watched widget."""

    def __init__(self, left, parent: QObject) -> None:
        super().__init__(parent)
        self._left = left

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Leave:
            self._left()
        return False


class LearningCurve(QWidget):
    """The chart and its controls (x axis, smoothing, raw points, fit) over ``data``.

    ``redrawn`` is emitted after each redraw (tests and the benchmark wait on it).
    """

    redrawn = Signal()

    def __init__(self, data: LearningCurveData | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("learningCurve")
        self.data = data if data is not None else LearningCurveData()
        self.x_mode = X_TIME
        self._marker_lines: list[pg.InfiniteLine] = []
        self._markers_drawn: tuple = ()
        self._dirty = False
        self._decimated_for: tuple[float, float] | None = None
        #: The view follows the data (True until the operator zooms or pans; Fit sets it again).
        self.following = True
        #: Draw only the view's points, a couple per pixel column (off: hand pyqtgraph everything).
        self.decimation = True
        self._build_controls()
        self._build_plot()
        self.readout = QLabel(self)
        self.readout.setObjectName("curveReadout")
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._controls)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setObjectName("curveRedrawTimer")
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        self._view_timer = QTimer(self)
        self._view_timer.setObjectName("curveViewTimer")
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(30)
        self._view_timer.timeout.connect(self.redraw)
        self.apply_palette(self.palette())
        self.redraw()

    # -- construction --------------------------------------------------------------
    def _build_controls(self) -> None:
        self.x_combo = QComboBox(self)
        self.x_combo.setObjectName("curveXAxisCombo")
        self.x_combo.addItem("x: time", X_TIME)
        self.x_combo.addItem("x: runs learned", X_EXAMPLES)
        self.x_combo.setToolTip("Draw the curve over time or over the runs the models learned")
        self.x_combo.currentIndexChanged.connect(lambda _: self.set_x_mode(self.x_combo.currentData()))
        self.raw_check = QCheckBox("Raw", self)
        self.raw_check.setObjectName("curveRawCheck")
        self.raw_check.setChecked(True)
        self.raw_check.setToolTip("Show the raw test-then-train points faintly behind the smoothed line")
        self.raw_check.toggled.connect(lambda on: self.raw_curve.setVisible(on))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing_slider.setObjectName("curveSmoothingSlider")
        self.smoothing_slider.setRange(0, 95)
        self.smoothing_slider.setSingleStep(5)
        self.smoothing_slider.setValue(round(self.data.smoothing * 100))
        self.smoothing_slider.setMaximumWidth(self.fontMetrics().horizontalAdvance("0") * 14)
        self.smoothing_slider.valueChanged.connect(self._smoothing_changed)
        self.smoothing_label = QLabel(self)
        self.smoothing_label.setObjectName("curveSmoothingLabel")
        self._show_smoothing()
        self.fit_button = QToolButton(self)
        self.fit_button.setObjectName("curveFitButton")
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Zoom out to show all the data again (the wheel zooms, dragging pans)")
        self.fit_button.clicked.connect(self.fit)
        self._controls = QHBoxLayout()
        self._controls.setContentsMargins(0, 0, 0, 0)
        for widget in (self.x_combo, self.smoothing_label, self.smoothing_slider, self.raw_check):
            self._controls.addWidget(widget)
        self._controls.addStretch(1)
        self._controls.addWidget(self.fit_button)

    def _build_plot(self) -> None:
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setObjectName("learningCurvePlot")
        self.graphics.setMinimumHeight(self.fontMetrics().height() * 14)
        self.title_item = self.graphics.addLabel(TITLE, row=0, col=0, size="10pt")
        self.legend_item = self.graphics.addLabel("", row=1, col=0, size="9pt")
        for label in (self.title_item, self.legend_item):  # text that rarely changes: painted from a pixmap
            label.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.plot = self.graphics.addPlot(row=2, col=0, axisItems={"bottom": TimeAxis("bottom")})
        self.plot.setLabel("left", Y_TITLE)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # 0.9, not 900 (x0.001)
        self.plot.showGrid(x=False, y=True, alpha=0.2)  # accuracies are read across; times from the ticks
        # Grid lines at the labelled ticks only: translucent lines at every minor tick cost most
        # of a frame (37 ms against 13 ms for 20,000 points on this machine). y keeps one level
        # more (0.1 apart), so accuracies read to a tenth.
        self.plot.getAxis("left").setStyle(maxTickLevel=1)
        self.plot.getAxis("bottom").setStyle(maxTickLevel=0)
        vb = self.plot.getViewBox()
        vb.setLimits(yMin=-0.05, yMax=1.05, minYRange=0.03, minXRange=MIN_TIME_SPAN)
        # The chart keeps its own range (see _follow): pyqtgraph's auto-range moved both axes,
        # and so redrew them, at every new point.
        vb.disableAutoRange()
        vb.sigXRangeChanged.connect(self._x_range_changed)
        vb.sigRangeChangedManually.connect(self._zoomed_by_hand)
        self.raw_curve = self.plot.plot([], [])
        self.smooth_curve = self.plot.plot([], [])
        self.baseline_curve = self.plot.plot([], [])
        for curve in (self.raw_curve, self.smooth_curve, self.baseline_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.cv_bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0)
        self.plot.addItem(self.cv_bars, ignoreBounds=True)  # it has no data bounds: it would stretch the view
        self.cv_points = self.plot.plot([], [], pen=None, symbol="o", symbolSize=8)
        self.holdout_points = self.plot.plot([], [], pen=None, symbol="s", symbolSize=8)
        self.hover_line = pg.InfiniteLine(angle=90, movable=False)
        self.hover_line.setVisible(False)
        self.plot.addItem(self.hover_line, ignoreBounds=True)
        self.empty_text = pg.TextItem("", anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text, ignoreBounds=True)
        self._mouse = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._hover)
        self.graphics.installEventFilter(_LeaveWatcher(self.clear_hover, self))

    # -- data in -----------------------------------------------------------------------
    def request_redraw(self) -> None:
        """Redraw soon (coalesced: at most one redraw per :data:`REDRAW_INTERVAL_MS`)."""
        self._dirty = True
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def set_x_mode(self, mode: str) -> None:
        """Draw over time (``"time"``) or over the runs learned (``"examples"``)."""
        mode = X_EXAMPLES if mode == X_EXAMPLES else X_TIME
        if mode == self.x_mode:
            return
        self.x_mode = mode
        self.x_combo.setCurrentIndex(self.x_combo.findData(mode))
        axis = TimeAxis("bottom") if mode == X_TIME else CountAxis("bottom")
        self.plot.setAxisItems({"bottom": axis})
        axis.setStyle(maxTickLevel=0)
        self.plot.getViewBox().setLimits(minXRange=MIN_TIME_SPAN if mode == X_TIME else MIN_RUNS_SPAN)
        if mode == X_EXAMPLES:
            self.plot.setLabel("bottom", "runs learned (tested before learning, all models so far)")
        self.apply_palette(self.palette())
        self._markers_drawn = ()
        self.fit()

    @Slot(int)
    def _smoothing_changed(self, value: int) -> None:
        self.data.set_smoothing(value / 100)
        self._show_smoothing()
        self.request_redraw()

    def _show_smoothing(self) -> None:
        self.smoothing_label.setText(f"smoothing {self.smoothing_slider.value() / 100:.2f}")

    @Slot()
    def fit(self) -> None:
        """Show all the data again (after zooming), y fitted to it with padding, and follow it."""
        self.following = True
        self.draw(refit=True)

    @Slot(object)
    def _zoomed_by_hand(self, *_args) -> None:
        self.following = False
    # -- drawing -----------------------------------------------------------------------
    def x_of_points(self) -> np.ndarray:
        return self.data.column("ts" if self.x_mode == X_TIME else "examples")

    def x_of_times(self, ts: np.ndarray) -> np.ndarray:
        return ts if self.x_mode == X_TIME else self.data.examples_at(ts)

    @Slot()
    def redraw(self) -> None:
        """Put the data on the plot now (skipped while hidden: a show redraws)."""
        self._dirty = False
        if not self.isVisible() and len(self.data) > SPARSE_POINTS:
            self._dirty = True
            return
        self.draw()

    def draw(self, refit: bool = False) -> None:
        """Put the data on the plot, shown or not (:meth:`redraw` waits while hidden).

        While :attr:`following`, the view then fits the data (``refit``: exactly, now).
        """
        data = self.data
        x = self.x_of_points()
        sparse = len(x) <= SPARSE_POINTS
        vb = self.plot.getViewBox()
        # Only what the view shows, a low and a high per two pixel columns: a million points draw as ~1,100.
        x0, x1 = (-math.inf, math.inf) if self.following or not self.decimation else vb.viewRange()[0]
        xs, (accuracy, smoothed, baseline) = decimate(
            x, [data.column("accuracy"), data.column("smoothed"), data.column("baseline")], x0, x1,
            max(int(vb.width()) // 2, 100) if self.decimation else len(x))
        self.raw_curve.setData(xs, accuracy, skipFiniteCheck=True)
        self.smooth_curve.setData(xs, smoothed, skipFiniteCheck=True, symbol="o" if sparse else None, symbolSize=5)
        self.baseline_curve.setData(xs, baseline, connect="finite" if np.isnan(baseline).any() else "all")
        evaluations = self._draw_evaluations()
        if self.following:
            self._follow(xs, [accuracy, smoothed, baseline, *evaluations], refit)
        self._decimated_for = tuple(vb.viewRange()[0]) if not self.following else (x0, x1)
        self._draw_markers()
        self._show_empty_text()
        self.redrawn.emit()

    def _follow(self, xs: np.ndarray, values: list[np.ndarray], refit: bool) -> None:
        """Fit the view to the data, moving an axis only when the data leaves it (or on ``refit``)."""
        vb = self.plot.getViewBox()
        current_x, current_y = vb.viewRange()
        far = (math.inf, -math.inf) if refit else current_x
        ex = self.x_of_times(self.data.evaluation_times())
        xs_all = np.concatenate([xs[:1], xs[-1:], ex]) if len(xs) or len(ex) else xs
        if not len(xs_all):
            new_x = self._empty_range() if refit or self.data.is_empty() else None
        else:
            least = MIN_TIME_SPAN if self.x_mode == X_TIME else MIN_RUNS_SPAN
            new_x = follow_range(float(xs_all.min()), float(xs_all.max()), far, least)
        finite = [v[np.isfinite(v)] for v in values if len(v)]
        finite = [v for v in finite if len(v)]
        new_y = None
        if finite:
            lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
            new_y = fit_values(lo, hi, (math.inf, -math.inf) if refit else current_y)
        if new_x is not None or new_y is not None:
            vb.setRange(xRange=new_x or current_x, yRange=new_y or current_y, padding=0)

    def _empty_range(self) -> tuple[float, float]:
        if self.x_mode == X_TIME:
            now = time.time()
            return now - 3600, now
        return 0.0, 100.0

    def _draw_evaluations(self) -> list[np.ndarray]:
        """Draw the evaluations; returns their values (for the y range)."""
        data = self.data
        ex = self.x_of_times(data.evaluation_times())
        cv, std = data.evaluation_values("cv_score"), data.evaluation_values("cv_std")
        holdout = data.evaluation_values("holdout_score")
        self.cv_points.setData(ex, cv)
        self.holdout_points.setData(ex, holdout)
        known = np.isfinite(std)
        self.cv_bars.setData(x=ex[known], y=cv[known], height=2 * std[known])
        return [cv, holdout, cv[known] + std[known], cv[known] - std[known]]

    def _draw_markers(self) -> None:
        markers = self.data.all_markers()
        # Over time a line stays put; over runs learned it moves as the points it sits between come in.
        key = (self.x_mode, len(markers), self._palette_key(), len(self.data) if self.x_mode == X_EXAMPLES else 0)
        if key == self._markers_drawn:
            return
        self._markers_drawn = key
        for line in self._marker_lines:
            self.plot.removeItem(line)
        self._marker_lines = []
        positions = self.x_of_times(np.fromiter((m.ts for m in markers), dtype=np.float64, count=len(markers)))
        labelled = [m for m in markers if m.kind != RETRAIN]
        for marker, x in zip(markers, positions, strict=True):
            label = None
            if marker.kind != RETRAIN and len(labelled) <= MAX_MARKER_LABELS:
                label = MARKER_LABELS[marker.kind].format(text=marker.text)
            self._marker_lines.append(self._marker_line(marker, float(x), label))

    def _marker_line(self, marker: Marker, x: float, label: str | None) -> pg.InfiniteLine:
        pen = pg.mkPen(theme.color(marker.kind, self.palette()), width=1.5, style=_MARKER_STYLE[marker.kind])
        options: dict[str, Any] = {}
        if label:
            options = {"label": label, "labelOpts": {
                "position": 0.9 if marker.kind == DRIFT else 0.8, "color": theme.color(marker.kind, self.palette()),
                "movable": False, "anchors": [(0, 0.5), (0, 0.5)]}}
        line = pg.InfiniteLine(pos=x, angle=90, movable=False, pen=pen, **options)
        line.setToolTip(f"{_when(marker.ts)}: {marker.text}")
        self.plot.addItem(line, ignoreBounds=True)
        return line

    def _palette_key(self) -> str:
        return self.palette().color(QPalette.ColorRole.Base).name()

    def _show_empty_text(self) -> None:
        empty = self.data.is_empty()
        self.empty_text.setVisible(empty)
        if not empty:
            return
        if self.data.history_loaded:
            text = ("No learning yet: the curve starts as soon as the model learns runs\n"
                    "(each run is predicted before it is learned) and evaluations appear as points.")
        else:
            text = "Loading the learning history…"
        self.empty_text.setText(text)
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        self.empty_text.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    @Slot(object, object)
    def _x_range_changed(self, _vb, x_range) -> None:
        axis = self.plot.getAxis("bottom")
        if isinstance(axis, TimeAxis):
            axis.show_span(float(x_range[0]), float(x_range[1]))
        if len(self.data) > SPARSE_POINTS and not self.following and tuple(x_range) != self._decimated_for:
            self._view_timer.start()  # zoomed or panned: draw the points of the new view

    # -- hover -----------------------------------------------------------------------------
    def hover_text_at(self, x: float, tolerance: float | None = None) -> str:
        """What the readout says for position ``x`` on the current x axis ('' if nothing near)."""
        xs = self.x_of_points()
        parts = []
        if len(xs):
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            if i > 0 and abs(xs[i - 1] - x) < abs(xs[i] - x):
                i -= 1
            if tolerance is None or abs(xs[i] - x) <= tolerance:
                parts.append(self._point_text(i))
        evaluation = self._evaluation_near(x, tolerance)
        if evaluation is not None:
            parts.append(self._evaluation_text(evaluation))
        return "\n".join(parts)

    def _point_text(self, i: int) -> str:
        d = self.data
        baseline, log_loss = d.column("baseline")[i], d.column("log_loss")[i]
        text = (f"{_when(d.column('ts')[i])} · {d.model_at(i) or 'model'} · {d.column('examples')[i]:,.0f} runs "
                f"learned · accuracy {d.column('accuracy')[i]:.3f} (smoothed {d.column('smoothed')[i]:.3f})")
        if np.isfinite(baseline):
            text += f" · guessing {baseline:.3f}"
        if np.isfinite(log_loss):
            text += f" · log-loss {log_loss:.3f}"
        return text

    def _evaluation_near(self, x: float, tolerance: float | None) -> dict | None:
        evaluations = self.data.evaluations
        if not evaluations:
            return None
        xs = self.x_of_times(self.data.evaluation_times())
        i = int(np.argmin(np.abs(xs - x)))
        return evaluations[i] if tolerance is None or abs(xs[i] - x) <= tolerance else None

    @staticmethod
    def _evaluation_text(e: dict) -> str:
        text = f"evaluation {_when(e['ts'])} · {e.get('model', '?')} · CV {e['cv_score']:.3f}"
        if isinstance(e.get("cv_std"), int | float):
            text += f" ± {e['cv_std']:.3f}"
        text += f" · holdout {e['holdout_score']:.3f}"
        if isinstance(e.get("holdout_auc"), int | float):
            text += f" · AUC {e['holdout_auc']:.3f}"
        if isinstance(e.get("n_examples"), int):
            text += f" · {e['n_examples']:,} runs"
        return text

    def _hover(self, args: tuple) -> None:
        pos: QPointF = args[0]
        vb = self.plot.getViewBox()
        if self.data.is_empty() or not vb.sceneBoundingRect().contains(pos):
            self.clear_hover()
            return
        point = vb.mapSceneToView(pos)
        (x0, x1), _ = vb.viewRange()
        text = self.hover_text_at(point.x(), tolerance=0.02 * (x1 - x0))
        if not text:
            self.clear_hover()
            return
        self.hover_line.setPos(point.x())
        self.hover_line.setVisible(True)
        self.readout.setText(text)

    def clear_hover(self) -> None:
        """Hide the hover line and readout (the pointer left the chart)."""
        self.hover_line.setVisible(False)
        self.readout.setText(self.summary())

    def summary(self) -> str:
        """A line on the newest figures, shown while the pointer is off the chart."""
        d = self.data
        parts = []
        if len(d):
            parts.append(f"now: accuracy {d.column('accuracy')[-1]:.3f} against guessing "
                         f"{d.column('baseline')[-1]:.3f} over the last runs learned "
                         f"({d.model_at(len(d) - 1) or 'model'}, {len(d):,} points)")
        if d.evaluations:
            e = d.evaluations[-1]
            parts.append(f"last evaluation: CV {e['cv_score']:.3f}, holdout {e['holdout_score']:.3f}")
        return " · ".join(parts)

    # -- export ------------------------------------------------------------------------------
    def export_png(self, path: str, width: int = 1600) -> None:
        """Save the whole chart (title, legend, every point; no hover line) as a PNG ``width`` px wide."""
        vb = self.plot.getViewBox()
        x_range, y_range = vb.viewRange()
        following = self.following
        hover = self.hover_line.isVisible()
        self.hover_line.setVisible(False)
        self.following = True
        self.draw(refit=True)  # every point (decimated for the whole range), shown or not
        try:
            exporter = pg.exporters.ImageExporter(self.graphics.ci)
            exporter.parameters()["width"] = int(width)
            exporter.parameters()["background"] = self.palette().color(QPalette.ColorRole.Base)
            if not exporter.export(str(path)) and not _nonempty(path):
                raise OSError(f"could not write {path}")
        finally:
            self.following = following
            if not following:
                vb.setRange(xRange=x_range, yRange=y_range, padding=0)
            self.hover_line.setVisible(hover)
            self.draw()

    # -- looks -------------------------------------------------------------------------------
    def apply_palette(self, palette: QPalette) -> None:
        """Colours for ``palette``: background, axes, text and every series."""
        background, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.graphics.setBackground(background)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        self.title_item.setText(TITLE, color=text.name())
        self.empty_text.setColor(text)
        c = {name: theme.color(name, palette) for name, _, _ in LEGEND}
        # Faint by blending with the background, not by alpha: a translucent line costs more to draw.
        faint = _blend(c["accuracy"], background, 0.3)
        self.raw_curve.setPen(pg.mkPen(faint, width=1))
        self.smooth_curve.setPen(pg.mkPen(c["accuracy"], width=2.2))
        self.smooth_curve.setSymbolBrush(c["accuracy"])
        self.smooth_curve.setSymbolPen(None)
        self.baseline_curve.setPen(pg.mkPen(c["baseline"], width=1.5, style=Qt.PenStyle.DashLine))
        self.cv_points.setSymbolBrush(c["cv"])
        self.cv_points.setSymbolPen(pg.mkPen(background, width=1))
        self.cv_bars.setData(pen=pg.mkPen(c["cv"], width=1.5))
        self.holdout_points.setSymbolBrush(c["holdout"])
        self.holdout_points.setSymbolPen(pg.mkPen(background, width=1))
        self.hover_line.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid), width=1))
        entries = [f'<span style="color:{c[name].name()}">{symbol}</span> '
                   f'<span style="color:{text.name()}">{html.escape(label)}</span>' for name, label, symbol in LEGEND]
        self.legend_item.setText(" &nbsp; ".join(entries[:LEGEND_BREAK]) + "<br>"
                                 + " &nbsp; ".join(entries[LEGEND_BREAK:]))
        self._markers_drawn = ()

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette(self.palette())
            self.redraw()
        super().changeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._dirty:
            self.redraw()


def _blend(colour: QColor, background: QColor, share: float) -> QColor:
    """``share`` of ``colour`` over ``background``, as an opaque colour."""
    return QColor.fromRgbF(*(share * a + (1 - share) * b for a, b in zip(
        colour.getRgbF()[:3], background.getRgbF()[:3], strict=True)))


def _nonempty(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    return p.exists() and p.stat().st_size > 0
