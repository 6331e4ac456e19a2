"""The job queue as a table (PyMeasure's browser of experiments, for learning jobs).

One row per job, newest first: what it is, its state (queued, running,
done, failed, cancelled) and its progress or result. A running job's row
draws a progress bar; a failed one is red and says what went wrong in plain
words (the exception's class name is left out; the whole message is in the
row's tooltip and in the line under the table).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar

from .. import theme

_Index = QModelIndex | QPersistentModelIndex

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ENDED = (DONE, FAILED, CANCELLED)
KIND_LABELS = {"train": "Retrain", "evaluate": "Evaluate", "auto_train": "Auto-train"}
#: Rows kept (the oldest ended ones go first).
MAX_JOBS = 200
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 20
STATE_ROLE = Qt.ItemDataRole.UserRole + 21

_CLASS_PREFIX = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Cancelled|Warning|Exit|Interrupt)\s*:\s*")


def plain_error(text: Any) -> str:
    """An error message without the exception class in front, starting with a capital."""
    message = _CLASS_PREFIX.sub("", str(text or "unknown error"), count=1).strip() or "unknown error"
    return message[:1].upper() + message[1:]


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize() if kind else "Job")


@dataclass(frozen=True)
class JobRow:
    """One job as the table shows it; times in seconds since the epoch."""

    id: int
    kind: str
    state: str = QUEUED
    fraction: float = 0.0
    message: str = ""
    result: str = ""
    error: str = ""
    submitted: float = 0.0
    finished: float | None = None
    reason: str = ""

    def outcome(self) -> str:
        """The progress or result text of the row."""
        if self.state == FAILED:
            return f"failed: {self.error}"
        if self.state == CANCELLED:
            return "cancelled"
        if self.state == DONE:
            return self.result or "done"
        if self.state == RUNNING:
            return f"{100 * self.fraction:.0f}% {self.message}".strip()
        return "waiting for the worker"


COLUMNS = ("#", "Job", "State", "Progress / result")


class JobTableModel(QAbstractTableModel):
    """Jobs, newest first (see the module doc); :meth:`upsert` changes or adds one."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []

    def job(self, job_id: int) -> JobRow | None:
        return next((r for r in self._rows if r.id == job_id), None)

    def row_of(self, index: int) -> JobRow:
        return self._rows[index]

    def jobs(self) -> list[JobRow]:
        return list(self._rows)

    def upsert(self, job_id: int, **changes: Any) -> JobRow:
        """Change job ``job_id`` (added, newest first, if unknown); an ended job stays ended."""
        for i, row in enumerate(self._rows):
            if row.id == job_id:
                if row.state in ENDED and changes.get("state", row.state) not in ENDED:
                    return row  # a late progress report after its end changes nothing
                new = replace(row, **changes)
                self._rows[i] = new
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
                return new
        new = JobRow(id=job_id, submitted=changes.pop("submitted", None) or time.time(), **changes)
        position = next((i for i, r in enumerate(self._rows) if r.id < job_id), len(self._rows))
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.insert(position, new)
        self.endInsertRows()
        self._trim()
        return new

    def _trim(self) -> None:
        while len(self._rows) > MAX_JOBS:
            ended = [i for i, r in enumerate(self._rows) if r.state in ENDED]
            i = ended[-1] if ended else len(self._rows) - 1
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self.endRemoveRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    # -- Qt --------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def _text(self, row: JobRow, column: int) -> str:
        if column == 0:
            return str(row.id)
        if column == 1:
            return kind_label(row.kind) + (" (drift)" if row.reason == "drift" else "")
        if column == 2:
            return row.state
        return row.outcome()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            started = time.strftime("%H:%M:%S", time.localtime(row.submitted))
            return f"{kind_label(row.kind)} job {row.id}, asked for at {started}: {row.outcome()}"
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._color(row)
        if role == FRACTION_ROLE:
            return row.fraction
        if role == STATE_ROLE:
            return row.state
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _color(self, row: JobRow):
        parent = self.parent()
        palette = parent.palette() if parent is not None else QApplication.palette()
        if row.state == FAILED:
            return theme.color("error", palette)
        if row.state == DONE:
            return theme.color("ok", palette)
        if row.state == CANCELLED:
            return palette.color(QPalette.ColorRole.PlaceholderText)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None


class ProgressDelegate(QStyledItemDelegate):
    """Draws a running job's last column as a progress bar with its message."""

    def paint(self, painter, option, index) -> None:
        if index.column() != len(COLUMNS) - 1 or index.data(STATE_ROLE) != RUNNING:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(1, 2, -1, -2)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(1000 * float(index.data(FRACTION_ROLE) or 0.0))
        bar.text = str(index.data())
        bar.textVisible = True
        bar.state = option.state
        bar.palette = option.palette
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)
