"""The live event log: every bus event as a row, filterable, pausable, bounded.

``EventLogModel`` keeps at most ``max_rows`` rows (the oldest go first) and is
fed one batch at a time: one row removal and one row insertion per batch, so
the view relayouts once. ``EventFilterProxy`` filters by topic and by text.
``EventLogWidget`` adds the controls, the counters and the payload detail.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QFontDatabase, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from menace import events
from menace.events import Event

from ..panels import Area, PanelDefaults, restore_splitter, save_splitter

#: Default number of rows the log keeps.
DEFAULT_MAX_ROWS = 10_000

ALL_TOPICS_LABEL = "All topics"

#: Item-data roles beyond Qt's own.
PAYLOAD_ROLE = Qt.ItemDataRole.UserRole + 1
TOPIC_ROLE = Qt.ItemDataRole.UserRole + 2
# The roles EventLogModel.data answers, as the enum and as plain ints (Qt may pass either).
_ANSWERED = (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.TextAlignmentRole,
    PAYLOAD_ROLE, TOPIC_ROLE,
)
_ROLES = frozenset(_ANSWERED) | frozenset(int(getattr(r, "value", r)) for r in _ANSWERED)

_Index = QModelIndex | QPersistentModelIndex


class LogRow:
    """One event in the log; ``number`` is its position among every event seen (1-based).

    ``ts`` is when the event was published (seconds since the epoch). The
    one-line ``summary`` is made when first asked for (a row drawn, a text
    filter): under a flood most rows leave the log unseen, and summarising
    every event cost ~3 ms of each 500-event batch.
    """

    __slots__ = ("number", "ts", "topic", "payload", "_summary", "event_id")

    def __init__(self, number: int, ts: float, topic: str, payload: dict[str, Any],
                 summary: str | None = None, event_id: int = 0) -> None:
        self.number, self.ts, self.topic, self.payload, self._summary = number, ts, topic, payload, summary
        self.event_id = event_id  # the event's id (the journal's), 0 when unknown

    @property
    def summary(self) -> str:
        if self._summary is None:
            self._summary = events.summarize(self.topic, self.payload)
        return self._summary


def _time_text(ts: float) -> str:
    local = time.localtime(ts)
    return time.strftime("%H:%M:%S", local) + f".{int((ts % 1) * 1000):03d}"


class EventLogModel(QAbstractTableModel):
    """A bounded table of events: number, time, topic, summary."""

    COLUMNS = ("#", "Time", "Topic", "Summary")
    NUMBER, TIME, TOPIC, SUMMARY = range(4)

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS, parent=None) -> None:
        super().__init__(parent)
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        self.max_rows = max_rows
        self._rows: list[LogRow] = []
        self._next_number = 1

    # -- feeding -------------------------------------------------------------
    def append_events(self, batch: Sequence[Event], first_number: int | None = None) -> None:
        """Append a batch: at most one removal of old rows and one insertion."""
        if not batch:
            return
        if first_number is not None:
            self._next_number = first_number
        start_number = self._next_number
        self._next_number += len(batch)
        if len(batch) > self.max_rows:  # only the newest can be shown anyway
            skipped = len(batch) - self.max_rows
            batch = batch[skipped:]
            start_number += skipped
        new_rows = [
            LogRow(start_number + i, e.ts, e.topic, e.payload, event_id=e.id)
            for i, e in enumerate(batch)
        ]
        overflow = len(self._rows) + len(new_rows) - self.max_rows
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self._rows[:overflow]
            self.endRemoveRows()
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new_rows) - 1)
        self._rows.extend(new_rows)
        self.endInsertRows()

    def rows(self) -> list[LogRow]:
        """The rows shown, oldest first (a copy)."""
        return list(self._rows)

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    def set_max_rows(self, max_rows: int) -> None:
        """Keep at most ``max_rows`` rows from now on (the oldest go if there are more)."""
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        self.max_rows = max_rows
        overflow = len(self._rows) - max_rows
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self._rows[:overflow]
            self.endRemoveRows()

    def row_at(self, row: int) -> LogRow:
        return self._rows[row]

    # -- Qt model interface ------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def _display(self, row: LogRow, column: int) -> str | None:
        if column == self.NUMBER:
            return str(row.number)
        if column == self.TIME:
            return _time_text(row.ts)
        if column == self.TOPIC:
            return row.topic
        if column == self.SUMMARY:
            return row.summary
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # The view asks each cell for about ten roles per paint, most of them answered by
        # nobody here: those go first, before any call into the index.
        if role not in _ROLES or not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.ToolTipRole and column == self.SUMMARY:
            return row.summary
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.NUMBER:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == PAYLOAD_ROLE:
            return row.payload
        if role == TOPIC_ROLE:
            return row.topic
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None


class EventFilterProxy(QSortFilterProxyModel):
    """Keeps rows of one topic (or all) whose topic or summary contains a text (any case)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._topic: str | None = None
        self._text = ""

    @property
    def topic(self) -> str | None:
        return self._topic

    @property
    def text(self) -> str:
        return self._text

    def set_topic(self, topic: str | None) -> None:
        topic = topic or None
        if topic != self._topic:
            self.beginFilterChange()
            self._topic = topic
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        text = text.strip().casefold()
        if text != self._text:
            self.beginFilterChange()
            self._text = text
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if self._topic is None and not self._text:
            return True
        row = self.sourceModel().row_at(source_row)
        if self._topic is not None and row.topic != self._topic:
            return False
        if self._text:
            return self._text in row.topic.casefold() or self._text in row.summary.casefold()
        return True


class EventLogWidget(PanelDefaults, QWidget):
    """Live log of events with topic/text filter, pause, clear and follow-newest.

    ``add_events(batch)`` (the panel's ``handle_events``) is the slot the bridge feeds. Events that arrive while
    paused are held (up to the row limit, the newest; older ones would be
    evicted from the log anyway) and shown on resume; ``seen`` counts them all.
    """

    title = "Live events"
    area = Area.LOG
    countsChanged = Signal(int, int)  # seen, shown

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventLog")
        self.seen = 0
        self._held: deque[Event] = deque(maxlen=max_rows)
        self._held_count = 0
        self._held_first_number = 1
        self._topics: set[str] = set()

        self.model = EventLogModel(max_rows, self)
        self.proxy = EventFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self._build_filters()
        self._build_actions()
        self._build_view()
        self._build_layout()
        self._update_count()

    # -- construction ----------------------------------------------------------
    def _build_filters(self) -> None:
        self.topic_filter = QComboBox(self)
        self.topic_filter.setObjectName("eventTopicFilter")
        self.topic_filter.setToolTip("Show only events of one topic")
        self.topic_filter.addItem(ALL_TOPICS_LABEL, None)
        for topic in (*events.INPUT_TOPICS, *events.OUTPUT_TOPICS):
            self._add_topic(topic)
        self.topic_filter.currentIndexChanged.connect(self._on_topic_changed)

        self.text_filter = QLineEdit(self)
        self.text_filter.setObjectName("eventTextFilter")
        self.text_filter.setPlaceholderText("Filter text (Ctrl+F)")
        self.text_filter.setClearButtonEnabled(True)
        self.text_filter.textChanged.connect(self._on_text_changed)

    def _build_actions(self) -> None:
        self.pause_action = QAction("&Pause log", self)
        self.pause_action.setObjectName("pauseLogAction")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pause_action.setToolTip("Pause the log; events that arrive meanwhile are kept (Ctrl+P)")
        self.pause_action.toggled.connect(self.set_paused)
        self.pause_button = QToolButton(self)
        self.pause_button.setObjectName("pauseLogButton")
        self.pause_button.setDefaultAction(self.pause_action)
        self.pause_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        self.clear_action = QAction("C&lear log", self)
        self.clear_action.setObjectName("clearLogAction")
        self.clear_action.setShortcut(QKeySequence("Ctrl+L"))
        self.clear_action.setToolTip("Remove the rows shown (Ctrl+L); the count of events seen stays")
        self.clear_action.triggered.connect(self.clear)
        self.clear_button = QToolButton(self)
        self.clear_button.setObjectName("clearLogButton")
        self.clear_button.setDefaultAction(self.clear_action)
        self.clear_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        self.find_action = QAction("&Filter events", self)
        self.find_action.setObjectName("filterEventsAction")
        self.find_action.setShortcut(QKeySequence.StandardKey.Find)
        self.find_action.triggered.connect(self.focus_filter)

        self.follow_check = QCheckBox("Follow newest", self)
        self.follow_check.setObjectName("followNewestCheck")
        self.follow_check.setToolTip("Keep the newest event in view")
        self.follow_check.setChecked(True)

        self.count_label = QLabel(self)
        self.count_label.setObjectName("eventCountLabel")
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_view(self) -> None:
        self.view = QTableView(self)
        self.view.setObjectName("eventLogView")
        # The view reads the log's own model while nothing is filtered: the filter proxy,
        # attached, maps every row of every batch (a third of a storm's drain).
        self.view.setModel(self.model)
        self.proxy.setSourceModel(None)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vheader = self.view.verticalHeader()
        vheader.setVisible(False)
        # A fixed row height keeps a full buffer's relayout at a few ms per batch.
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        digit = self.fontMetrics().horizontalAdvance("0")
        header.resizeSection(EventLogModel.NUMBER, digit * 8)
        header.resizeSection(EventLogModel.TIME, digit * 14)
        header.resizeSection(EventLogModel.TOPIC, digit * 19)
        self.view.selectionModel().currentRowChanged.connect(self._show_detail)

        self.detail = QPlainTextEdit(self)
        self.detail.setObjectName("eventDetail")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select an event to see its full payload")
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("eventLogSplitter")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        # The payload pane opens on the first selected event: empty, it would only take room.
        self.splitter.setSizes([1000, 0])
        self._detail_opened = False

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.topic_filter)
        controls.addWidget(self.text_filter, 1)
        controls.addWidget(self.pause_button)
        controls.addWidget(self.clear_button)
        controls.addWidget(self.follow_check)
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.count_label)

    # -- properties ----------------------------------------------------------
    @property
    def max_rows(self) -> int:
        return self.model.max_rows

    @property
    def shown(self) -> int:
        """Rows in the log (before the filter)."""
        return self.model.rowCount()

    @property
    def held(self) -> int:
        """Events that arrived while paused and wait to be shown."""
        return self._held_count

    def is_paused(self) -> bool:
        return self.pause_action.isChecked()

    # -- the panel -------------------------------------------------------------
    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&Log": [self.pause_action, self.clear_action, self.find_action]}

    def save_state(self, settings: QSettings) -> None:
        save_splitter(settings, self.splitter)
        settings.setValue("log/follow", self.follow_check.isChecked())

    def restore_state(self, settings: QSettings) -> None:
        restore_splitter(settings, self.splitter)
        self.follow_check.setChecked(settings.value("log/follow", True, type=bool))

    def handle_events(self, batch: list[Event]) -> None:
        self.add_events(batch)

    @Slot()
    def focus_filter(self) -> None:
        self.text_filter.setFocus()
        self.text_filter.selectAll()

    # -- feeding -------------------------------------------------------------
    @Slot(list)
    def add_events(self, batch: list[Event]) -> None:
        """Take one batch from the bridge."""
        if not batch:
            return
        first_number = self.seen + 1
        self.seen += len(batch)
        new_topics = {e.topic for e in batch} - self._topics
        for topic in sorted(new_topics):
            self._add_topic(topic)
        if self.is_paused():
            if not self._held_count:
                self._held_first_number = first_number
            self._held.extend(batch)
            self._held_count += len(batch)
        else:
            self.model.append_events(batch, first_number)
            if self.follow_check.isChecked():
                self.view.scrollToBottom()
        self._update_count()

    def set_max_rows(self, max_rows: int) -> None:
        """Keep at most ``max_rows`` rows (and as many held while paused)."""
        self.model.set_max_rows(max_rows)
        self._held = deque(self._held, maxlen=max_rows)
        self._update_count()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Pause or resume; resuming shows every held event."""
        if self.pause_action.isChecked() != paused:
            self.pause_action.setChecked(paused)  # re-enters through toggled
            return
        self.pause_action.setText("Resume log" if paused else "Pause log")
        if not paused and self._held_count:
            held = list(self._held)
            # Numbers stay true to arrival order even when the oldest held fell out.
            first = self._held_first_number + self._held_count - len(held)
            self._held.clear()
            self._held_count = 0
            self.model.append_events(held, first)
            if self.follow_check.isChecked():
                self.view.scrollToBottom()
        self._update_count()

    @Slot()
    def clear(self) -> None:
        """Remove the rows shown (and any held); the seen count stays."""
        self.model.clear()
        self._held.clear()
        self._held_count = 0
        self.detail.clear()
        self._update_count()

    # -- internals -----------------------------------------------------------
    def _add_topic(self, topic: str) -> None:
        if topic not in self._topics:
            self._topics.add(topic)
            self.topic_filter.addItem(topic, topic)

    @Slot(int)
    def _on_topic_changed(self, index: int) -> None:
        self.proxy.set_topic(self.topic_filter.itemData(index))
        self._use_filter(self.proxy.topic is not None or bool(self.proxy.text))

    @Slot(str)
    def _on_text_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._use_filter(self.proxy.topic is not None or bool(self.proxy.text))

    def _use_filter(self, filtering: bool) -> None:
        """Show the rows through the filter proxy (attached) or straight from the log (proxy detached),
        keeping the selected event, the column widths and the payload pane."""
        wanted = self.proxy if filtering else self.model
        if self.view.model() is wanted:
            return
        current = self.view.currentIndex()
        if current.isValid() and current.model() is self.proxy:
            current = self.proxy.mapToSource(current)
        header = self.view.horizontalHeader()
        widths = [header.sectionSize(i) for i in range(header.count())]
        if filtering:
            self.proxy.setSourceModel(self.model)
        old_selection = self.view.selectionModel()
        self.view.setModel(wanted)
        if old_selection is not None:
            old_selection.deleteLater()
        if not filtering:
            self.proxy.setSourceModel(None)
        for i, width in enumerate(widths[: header.count()]):
            header.resizeSection(i, width)
        self.view.selectionModel().currentRowChanged.connect(self._show_detail)
        if current.isValid():
            index = self.proxy.mapFromSource(current) if filtering else current
            if index.isValid():
                self.view.setCurrentIndex(index)
                self.view.scrollTo(index)

    def _update_count(self) -> None:
        text = f"{self.shown:,} shown · {self.seen:,} seen"
        if self._held_count:
            text += f" · {self._held_count:,} held while paused"
        self.count_label.setText(text)
        self.countsChanged.emit(self.seen, self.shown)

    @Slot(QModelIndex, QModelIndex)
    def _show_detail(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        if not self._detail_opened and self.splitter.sizes()[1] == 0:
            self._detail_opened = True
            width = sum(self.splitter.sizes())
            self.splitter.setSizes([width * 2 // 3, width - width * 2 // 3])
        payload = current.data(PAYLOAD_ROLE)
        topic = current.data(TOPIC_ROLE)
        text = json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True, default=str)
        self.detail.setPlainText(f"{topic}\n{text}")
