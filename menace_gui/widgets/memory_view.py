"""The memory entries, newest first, with full-text search."""

from __future__ import annotations

import json
from collections.abc import Iterable

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from ..panels import Area, PanelDefaults, restore_splitter, save_splitter
from ..task_runner import TaskRunner
from .table_models import RecordTableModel, format_time, read_only_table

#: Entries listed (newest, or best matches of a search).
MAX_ENTRIES = 500
SEARCH_DELAY_MS = 300
RELOAD_DELAY_MS = 1000

def preview(data: str) -> str:
    """One line of an entry: 'prompt → response' for a GPT interaction, else the text."""
    if data.startswith("{") and '"prompt"' in data[:200]:
        try:
            item = json.loads(data)
            text = f"{item['prompt']} → {item['response']}"
        except (ValueError, KeyError, TypeError):
            text = data
    else:
        text = data
    return text[:200].replace("\n", " ")


MEMORY_COLUMNS = (
    ("ID", lambda e: e.id, str, True),
    ("Key", lambda e: e.key, str, False),
    ("Version", lambda e: e.version, str, True),
    ("Tags", lambda e: ", ".join(e.tags), str, False),
    ("Stored", lambda e: e.ts, format_time, False),
    ("Data", lambda e: e.data, preview, False),
)


class MemoryView(PanelDefaults, QWidget):
    """Search box, table of entries and the full text of the selected one."""

    title = "Memory"
    area = Area.VIEWS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("memoryView")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._generation = 0
        self.model = RecordTableModel(MEMORY_COLUMNS, self)
        self.proxy, self.view = read_only_table(self.model, "memoryTableView", self)

        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("memorySearchEdit")
        self.search_edit.setPlaceholderText("Search memory (every word must match)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(lambda _: self._search_timer.start())
        self.count_label = QLabel(self)
        self.count_label.setObjectName("memoryCountLabel")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.count_label)

        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.view.horizontalHeader()
        digit = self.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate((6, 22, 8, 18, 20)):
            header.resizeSection(column, digit * chars)
        header.setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(self._show_entry)

        self.detail = QPlainTextEdit(self)
        self.detail.setObjectName("memoryDetail")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select an entry to read it in full")
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("memorySplitter")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)

        self._search_timer = QTimer(self)
        self._search_timer.setObjectName("memorySearchTimer")
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self._reload_timer = QTimer(self)
        self._reload_timer.setObjectName("memoryReloadTimer")
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Search through ``client`` (``None``: keep the entries shown, stop searching)."""
        self._client, self._runner = client, runner
        self.search_edit.setEnabled(client is not None)
        if client is None:
            self._reload_timer.stop()
            self._search_timer.stop()
        else:
            self.refresh()

    def save_state(self, settings: QSettings) -> None:
        save_splitter(settings, self.splitter)

    def restore_state(self, settings: QSettings) -> None:
        restore_splitter(settings, self.splitter)

    @Slot()
    def refresh(self) -> None:
        """Search (or list the newest) in the worker; only the latest answer is shown."""
        if self._client is None or self._runner is None or self._runner.closed:
            return
        self._generation += 1
        generation, text = self._generation, self.search_edit.text().strip()
        self._runner.submit(
            self._client.memory, text, MAX_ENTRIES,
            on_done=lambda entries: self._loaded(generation, text, entries),
            on_error=lambda exc: self.count_label.setText(f"search failed: {exc}"),
        )

    def _loaded(self, generation: int, text: str, entries: list) -> None:
        if generation != self._generation:
            return  # a newer search is on its way
        self.model.set_records(entries)
        what = f"{len(entries):,} matches" if text else f"newest {len(entries):,}"
        self.count_label.setText(what)

    @Slot(list)
    def handle_events(self, batch: Iterable[Event]) -> None:
        if self._client is not None and not self._reload_timer.isActive():
            if any(e.topic == events.MEMORY_NEW for e in batch):
                self._reload_timer.start()

    def _show_entry(self, current, _previous) -> None:
        if not current.isValid():
            return
        entry = self.model.record(self.proxy.mapToSource(current).row())
        self.detail.setPlainText(
            f"{entry.key} v{entry.version}  [{', '.join(entry.tags)}]  {format_time(entry.ts)}\n\n{entry.data}"
        )
