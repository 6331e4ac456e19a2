"""The pathways as a sortable, filterable table: what the model learns from, and what it expects.

The "Predicted" column is the live model's probability that the next run of
each pathway succeeds, given its stored averages (``client.predict_many``, in
batches in the worker, again at most every :data:`PREDICT_INTERVAL_MS` while
the model learns). Double-clicking a row, Enter, or the Predict button sends
the pathway to the Predict form (``pathwayChosen``) to see why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from ..panels import Area, PanelDefaults
from ..task_runner import TaskRunner
from .table_models import RecordTableModel, read_only_table

logger = logging.getLogger(__name__)

#: Most pathways loaded into the table.
MAX_PATHWAYS = 20_000
#: Milliseconds to wait after a pathway:new before reloading (a burst reloads once).
RELOAD_DELAY_MS = 1000
#: Pathways predicted per call (so other work in the worker interleaves).
PREDICT_BATCH = 1000
#: Least time between two passes of predictions while the model learns, ms.
PREDICT_INTERVAL_MS = 15_000
PREDICTED_COLUMN = 3


def _num(fmt: str):
    return lambda value: format(value, fmt)


def plain(value: float) -> str:
    """A number without an exponent: ``1,310.2``, ``0.42``, ``12``."""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 or value == 0 else f"{value:.2e}"


def short_time(ts: float) -> str:
    """``11-24 14:05``: month, day and time of the last run."""
    return time.strftime("%m-%d %H:%M", time.localtime(ts)) if ts else ""


def _percent(value: Any) -> str:
    return "…" if value is None else f"{100 * value:.1f} %"


class PathwayTableModel(RecordTableModel):
    """Pathway rows plus the predicted probability of each (by pathway id)."""

    def __init__(self, columns, parent=None) -> None:
        super().__init__(columns, parent)
        self.predicted: dict[int, float] = {}

    def set_predictions(self, predictions: dict[int, float]) -> None:
        self.predicted.update(predictions)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, PREDICTED_COLUMN),
                                  self.index(self.rowCount() - 1, PREDICTED_COLUMN))


def _predicted(table_model: PathwayTableModel):
    return lambda p: table_model.predicted.get(p.id)


class PathwayTable(PanelDefaults, QWidget):
    """Every pathway with its aggregates and predicted success; click a header to sort."""

    title = "Pathways"
    area = Area.VIEWS
    #: The operator wants to see a prediction for this pathway (a ``Pathway``).
    pathwayChosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pathwayTable")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._loading = False
        self._again = False
        self._predicting = False
        self._stale = False  # the pathways or the model changed since the last predictions
        self._last_pass = -math.inf  # time.monotonic() at the end of the last pass
        self.model = PathwayTableModel((), self)
        self.model.set_columns(self._columns())
        self.proxy, self.view = read_only_table(self.model, "pathwayTableView", self)
        self.proxy.setFilterKeyColumn(1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._build_top()
        self._size_columns()
        self.view.doubleClicked.connect(lambda _index: self.choose_current())
        enter = QShortcut(QKeySequence(Qt.Key.Key_Return), self.view)
        enter.setContext(Qt.ShortcutContext.WidgetShortcut)
        enter.activated.connect(self.choose_current)
        self._reload_timer = self._timer("pathwayReloadTimer", RELOAD_DELAY_MS, self.refresh)
        self._predict_timer = self._timer("pathwayPredictTimer", PREDICT_INTERVAL_MS, self.predict_all)
        self._predict_timer.setTimerType(Qt.TimerType.CoarseTimer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._top)
        layout.addWidget(self.view, 1)
        self._show_count()

    def _columns(self) -> tuple:
        return (
            ("ID", lambda p: p.id, str, True),
            ("Actions", lambda p: p.actions, str, False),
            ("Runs", lambda p: p.frequency, _num(","), True),
            ("Predicted", _predicted(self.model), _percent, True),
            ("Succeeded", lambda p: p.success_rate, _num(".1%"), True),
            ("Avg ROI", lambda p: p.avg_roi, plain, True),
            ("Avg time (s)", lambda p: p.avg_exec_time, plain, True),
            ("Myelination", lambda p: p.myelination_score, plain, True),
            ("Last run", lambda p: p.last_activation, short_time, False),
        )

    def _build_top(self) -> None:
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("pathwayFilterEdit")
        self.filter_edit.setPlaceholderText("Filter actions")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.predict_button = QToolButton(self)
        self.predict_button.setObjectName("predictPathwayButton")
        self.predict_button.setText("Predict…")
        self.predict_button.setToolTip("Show the selected pathway's prediction and why (or double-click a row)")
        self.predict_button.clicked.connect(self.choose_current)
        self.refresh_button = QToolButton(self)
        self.refresh_button.setObjectName("refreshPathwaysButton")
        self.refresh_button.setText("Refresh")
        self.refresh_button.setToolTip("Reload the pathways and their predictions")
        self.refresh_button.clicked.connect(self.refresh)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("pathwayTableCount")
        self._top = QHBoxLayout()
        self._top.setContentsMargins(0, 0, 0, 0)
        self._top.addWidget(self.filter_edit, 1)
        self._top.addWidget(self.count_label)
        self._top.addWidget(self.predict_button)
        self._top.addWidget(self.refresh_button)

    def _size_columns(self) -> None:
        self.view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the actions take what is left
        header.setMinimumSectionSize(self.fontMetrics().horizontalAdvance("0") * 4)
        digit = self.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate((4, 0, 7, 9, 9, 7, 9, 10, 12)):
            if chars:
                header.resizeSection(column, digit * chars)
        header.setStretchLastSection(False)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)

    def _timer(self, name: str, interval: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setObjectName(name)
        timer.setSingleShot(True)
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        return timer

    # -- the panel ----------------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Load from ``client`` (``None``: keep the rows shown, stop reloading)."""
        self._client, self._runner = client, runner
        self.refresh_button.setEnabled(client is not None)
        if client is None:
            self._reload_timer.stop()
            self._predict_timer.stop()
        else:
            self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Reload in the worker; a reload asked for while one runs happens after it."""
        if self._client is None or self._runner is None or self._runner.closed:
            return
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._runner.submit(self._client.pathways, MAX_PATHWAYS, on_done=self._loaded, on_error=self._failed)

    def _loaded(self, pathways: list) -> None:
        self._loading = False
        self.model.set_records(pathways)
        self._show_count()
        self._stale = True
        self._predict_soon()
        if self._again:
            self._again = False
            self._reload_timer.start()

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.count_label.setText(f"could not load: {exc}")

    def _show_count(self) -> None:
        n = self.model.rowCount()
        self.count_label.setText(f"{n:,} pathways" + (" (first shown)" if n >= MAX_PATHWAYS else ""))

    # -- predictions --------------------------------------------------------------------
    def _predict_soon(self) -> None:
        """Predict again once :data:`PREDICT_INTERVAL_MS` has passed since the last pass."""
        if self._predicting or self._predict_timer.isActive() or self._client is None:
            return
        wait = PREDICT_INTERVAL_MS - 1000 * (time.monotonic() - self._last_pass)
        self._predict_timer.setInterval(int(min(max(wait, 0), PREDICT_INTERVAL_MS)))
        self._predict_timer.start()

    def is_predicting(self) -> bool:
        return self._predicting

    @Slot()
    def predict_all(self) -> None:
        """Predict every pathway shown (in batches in the worker); at most one pass at a time."""
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed or self._predicting or not self.model.rowCount():
            return
        pathways = [self.model.record(r) for r in range(self.model.rowCount())]
        self._predicting, self._stale = True, False
        self._predict_batch(client, runner, pathways, 0)

    def _pass_ended(self) -> None:
        self._predicting = False
        self._last_pass = time.monotonic()
        if self._stale:
            self._predict_soon()

    def _predict_batch(self, client: MenaceClient, runner: TaskRunner, pathways: list, start: int) -> None:
        batch = pathways[start : start + PREDICT_BATCH]
        if not batch or runner.closed or client is not self._client:
            self._pass_ended()
            return
        queries = [{"freq": float(p.frequency), "exec_time": max(float(p.avg_exec_time), 0.0),
                    "roi": float(p.avg_roi), "myelination": float(p.myelination_score), "actions": p.actions}
                   for p in batch]

        def done(predictions: list) -> None:
            self.model.set_predictions({p.id: r.probability for p, r in zip(batch, predictions, strict=True)})
            self._predict_batch(client, runner, pathways, start + PREDICT_BATCH)

        def failed(exc: BaseException) -> None:
            self._predicting = False
            self._last_pass = time.monotonic()
            logger.warning("could not predict the pathways: %s", exc)
            self.count_label.setText(f"{self.model.rowCount():,} pathways (predictions failed: {exc})")

        runner.submit(client.predict_many, queries, on_done=done, on_error=failed)

    # -- choosing a pathway ---------------------------------------------------------------
    def selected_pathway(self) -> Any:
        index = self.view.currentIndex()
        if not index.isValid():
            return None
        return self.model.record(self.proxy.mapToSource(index).row())

    @Slot()
    def choose_current(self) -> None:
        """Send the selected pathway to the Predict form (``pathwayChosen``)."""
        pathway = self.selected_pathway()
        if pathway is not None:
            self.pathwayChosen.emit(pathway)

    @Slot(list)
    def handle_events(self, batch: Iterable[Event]) -> None:
        if self._client is None:
            return
        if not self._reload_timer.isActive() and any(e.topic == events.PATHWAY_NEW for e in batch):
            self._reload_timer.start()
        if any(e.topic == events.LEARNING_TRAINED for e in batch):
            self._stale = True  # the model learned: its predictions moved
            self._predict_soon()

