"""Training activity, honestly: what the live model knows next to what is stored.

The line is the number of runs the live model has learned: an incremental
update raises it by the runs it learned; a full fit (a retrain, an
auto-train, a drift retrain) sets it to the runs the new model was fitted on
and is drawn apart, as a triangle. A dashed line is the runs stored. So a
retrain on 431 runs after 430 incremental ones reads 431, not 861; a model
loaded at start-up is shown as trained with what it had learned. The client's
own figures (``status().model_examples``, ``counts().runs``) correct the line
every few seconds, so it cannot drift from the truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from .. import theme
from .axes import CountAxis, TimeAxis
from .curve_data import finite

#: Points kept on the plot (a running view, not an archive).
MAX_POINTS = 5000
#: Seconds the plot shows at least.
MIN_SPAN = 120.0
FULL_MODES = ("full", "auto")


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


class TrainingActivity(QWidget):
    """Runs the live model learned over time, full fits apart, beside the runs stored."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingActivity")
        self.model: str | None = None
        self.trained = False
        self.loaded = False  # trained when the session started (a saved model was loaded)
        self.known: int | None = None  # runs the live model has learned
        self.stored: int | None = None  # runs in the store
        self.incremental = 0  # runs learned incrementally since the last full fit (this session)
        self.updates = 0  # incremental updates since the last full fit
        self.last_fit: dict[str, Any] | None = None
        self._ts: list[float] = []
        self._known: list[float] = []
        self._fits: list[tuple[float, float]] = []
        self.plot = pg.PlotWidget(axisItems={"bottom": TimeAxis("bottom"), "left": CountAxis("left")})
        self.plot.setObjectName("trainingActivityPlot")
        item = self.plot.getPlotItem()
        item.setLabel("left", "runs")
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setMouseEnabled(x=True, y=False)
        item.getViewBox().sigXRangeChanged.connect(
            lambda _vb, r: item.getAxis("bottom").show_span(float(r[0]), float(r[1])))
        self.known_curve = item.plot([], [], stepMode=None)
        self.known_curve.setDownsampling(auto=True, method="peak")
        self.known_curve.setClipToView(True)
        self.fit_points = item.plot([], [], pen=None, symbol="t1", symbolSize=11)
        self.stored_line = pg.InfiniteLine(angle=0, movable=False)
        self.stored_line.setVisible(False)
        item.addItem(self.stored_line)
        self.plot.setMinimumHeight(self.fontMetrics().height() * 7)
        self.legend = QLabel(self)
        self.legend.setObjectName("activityLegend")
        self.legend.setWordWrap(True)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary = QLabel("Waiting for the service…", self)
        self.summary.setObjectName("lastTrainingLabel")
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary)
        self.apply_palette(self.palette())

    # -- data in ---------------------------------------------------------------------
    def set_truth(self, model: str, trained: bool, model_examples: int, runs_stored: int | None) -> None:
        """The client's own figures: the live model, what it learned, the runs stored."""
        first = self.known is None
        self.model, self.trained = model or self.model, bool(trained)
        if first:
            self.loaded = self.trained and not self._ts
        if self.trained and model_examples != self.known:
            self.known = int(model_examples)
            self._point(time.time())
        elif self.known is None:
            self.known = int(model_examples)
        if runs_stored is not None:
            self.stored = int(runs_stored)
        self._redraw()

    def add_trained(self, payloads: Iterable[Mapping[str, Any]]) -> None:
        """``learning:trained`` payloads, oldest first (one redraw for all)."""
        changed = False
        for payload in payloads:
            ts = finite(payload.get("ts")) or time.time()
            examples = payload.get("examples")
            examples = int(examples) if isinstance(examples, int | float) and examples > 0 else 0
            self.model = str(payload.get("model") or self.model or "")
            self.trained = True
            if payload.get("mode") in FULL_MODES:
                self.known, self.incremental, self.updates = examples, 0, 0
                self.last_fit = {"ts": ts, "examples": examples, "mode": payload.get("mode"),
                                 "reason": payload.get("reason"), "model": self.model}
                self._fits.append((ts, examples))
            else:
                self.known = (self.known or 0) + examples
                self.incremental += examples
                self.updates += 1
            self._point(ts)
            changed = True
        if changed:
            self._redraw()

    def _point(self, ts: float) -> None:
        if self._ts and ts < self._ts[-1]:
            ts = self._ts[-1]  # a correction read a moment before an event: keep time order
        self._ts.append(ts)
        self._known.append(float(self.known or 0))
        if len(self._ts) > MAX_POINTS:
            del self._ts[:-MAX_POINTS], self._known[:-MAX_POINTS]
            self._fits = [f for f in self._fits if f[0] >= self._ts[0]]

    # -- drawing -----------------------------------------------------------------------
    def _redraw(self) -> None:
        self.known_curve.setData(self._ts, self._known, symbol="o" if len(self._ts) < 30 else None, symbolSize=4)
        self.fit_points.setData([t for t, _ in self._fits], [n for _, n in self._fits])
        if self.stored is not None:
            self.stored_line.setPos(self.stored)
            self.stored_line.setVisible(True)
        item = self.plot.getPlotItem()
        now = time.time()
        first = self._ts[0] if self._ts else now
        last = max(self._ts[-1] if self._ts else now, now)
        if last - first < MIN_SPAN:
            item.setXRange(last - MIN_SPAN, last + 10, padding=0)
        else:
            item.setXRange(first, last + 10, padding=0.02)
        top = max([*self._known, float(self.stored or 0), 1.0])
        item.setYRange(0, top * 1.12, padding=0)
        self.summary.setText(self.describe())

    def describe(self) -> str:
        """The line under the plot (also the test's view of what the operator reads)."""
        stored = f"{self.stored:,} runs stored" if self.stored is not None else "runs stored: –"
        if not self.trained:
            return (f"No model trained yet · {stored}. The model learns each run as it is logged "
                    "(once both outcomes are seen), or press Retrain.")
        model = self.model or "the model"
        knows = f"{model} has learned {self.known or 0:,} runs"
        if self.stored is not None:
            knows = f"{model} has learned {self.known or 0:,} of {self.stored:,} stored runs"
        if self.last_fit is None and not self.updates:
            return f"{knows} · trained (loaded at start-up); no training yet this session"
        details = []
        if self.last_fit is not None:
            fit = self.last_fit
            why = "drift retrain" if fit.get("reason") == "drift" else {"auto": "auto-train"}.get(fit["mode"], "retrain")
            details.append(f"{why} on {fit['examples']:,} runs at {_clock(fit['ts'])}")
        if self.updates:
            learned = f"{self.incremental:,} runs learned incrementally in {self.updates:,} updates"
            details.append(f"then {learned}" if self.last_fit is not None else f"{learned} this session")
        return f"{knows} — {', '.join(details)}"

    def apply_palette(self, palette: QPalette) -> None:
        background, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.plot.setBackground(background)
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(text))
            item.getAxis(name).setTextPen(pg.mkPen(text))
        incremental, full, stored = (theme.color(n, palette) for n in ("incremental", "full", "stored"))
        self.known_curve.setPen(pg.mkPen(incremental, width=2))
        self.known_curve.setSymbolBrush(incremental)
        self.known_curve.setSymbolPen(None)
        self.fit_points.setSymbolBrush(full)
        self.fit_points.setSymbolPen(pg.mkPen(background))
        self.stored_line.setPen(pg.mkPen(stored, width=1.2, style=Qt.PenStyle.DashLine))
        self.legend.setText(
            f'<b>Training activity</b> &nbsp; <span style="color:{incremental.name()}">━━</span> runs the live '
            f'model has learned (incremental updates raise it) &nbsp; <span style="color:{full.name()}">▲</span> '
            f'full fit (sets it to the runs fitted) &nbsp; <span style="color:{stored.name()}">╌╌</span> runs stored'
        )

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette(self.palette())
        super().changeEvent(event)

