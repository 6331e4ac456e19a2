"""The pathways as a sortable, filterable table: what the model learns from."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, QTimer, Slot
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
from .table_models import RecordTableModel, format_time, read_only_table

#: Most pathways loaded into the table.
MAX_PATHWAYS = 20_000
#: Milliseconds to wait after a pathway:new before reloading (a burst reloads once).
RELOAD_DELAY_MS = 1000


def _num(fmt: str):
    return lambda value: format(value, fmt)


PATHWAY_COLUMNS = (
    ("ID", lambda p: p.id, str, True),
    ("Actions", lambda p: p.actions, str, False),
    ("Frequency", lambda p: p.frequency, _num(","), True),
    ("Success rate", lambda p: p.success_rate, _num(".1%"), True),
    ("Avg ROI", lambda p: p.avg_roi, _num(".3g"), True),
    ("Avg exec time (s)", lambda p: p.avg_exec_time, _num(".3g"), True),
    ("Myelination", lambda p: p.myelination_score, _num(".3g"), True),
    ("Last run", lambda p: p.last_activation, format_time, False),
)


class PathwayTable(PanelDefaults, QWidget):
    """Every pathway with its aggregates; click a header to sort."""

    title = "Pathways"
    area = Area.VIEWS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pathwayTable")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._loading = False
        self._again = False
        self.model = RecordTableModel(PATHWAY_COLUMNS, self)
        self.proxy, self.view = read_only_table(self.model, "pathwayTableView", self)
        self.proxy.setFilterKeyColumn(1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("pathwayFilterEdit")
        self.filter_edit.setPlaceholderText("Filter actions")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.refresh_button = QToolButton(self)
        self.refresh_button.setObjectName("refreshPathwaysButton")
        self.refresh_button.setText("Refresh")
        self.refresh_button.setToolTip("Reload the pathways from the database")
        self.refresh_button.clicked.connect(self.refresh)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("pathwayTableCount")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.refresh_button)

        self.view.sortByColumn(6, Qt.SortOrder.DescendingOrder)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        digit = self.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate((6, 34, 10, 12, 10, 16, 12, 20)):
            header.resizeSection(column, digit * chars)
        header.setStretchLastSection(True)

        self._reload_timer = QTimer(self)
        self._reload_timer.setObjectName("pathwayReloadTimer")
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self._show_count()

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Load from ``client`` (``None``: keep the rows shown, stop reloading)."""
        self._client, self._runner = client, runner
        self.refresh_button.setEnabled(client is not None)
        if client is None:
            self._reload_timer.stop()
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
        if self._again:
            self._again = False
            self._reload_timer.start()

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.count_label.setText(f"could not load: {exc}")

    def _show_count(self) -> None:
        n = self.model.rowCount()
        self.count_label.setText(f"{n:,} pathways" + (" (first shown)" if n >= MAX_PATHWAYS else ""))

    @Slot(list)
    def handle_events(self, batch: Iterable[Event]) -> None:
        if self._client is not None and not self._reload_timer.isActive():
            if any(e.topic == events.PATHWAY_NEW for e in batch):
                self._reload_timer.start()
