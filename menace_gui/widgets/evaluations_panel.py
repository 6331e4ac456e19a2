"""The Evaluations tab (MLflow's run list, for evaluations): one sortable row each, details below.

Rows come from the client's ``evaluation_history()`` and from
``learning:evaluated`` events (the same evaluation from both is one row: the
event adds its trigger, the stored entry its folds). Selecting a row shows
everything about it; an auto-train's row also shows its candidates, which
one was chosen and why.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSettings,
    Qt,
    Slot,
)
from PySide6.QtGui import QAction, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from .. import export, theme
from ..panels import Area, PanelDefaults, restore_splitter, save_splitter
from ..task_runner import TaskRunner
from .forms import MessageLabel
from .table_models import SORT_ROLE, read_only_table

logger = logging.getLogger(__name__)

_Index = QModelIndex | QPersistentModelIndex
TRIGGERS = {"examples": "every N runs", "interval": "timer", "manual": "manual", "auto_train": "auto-train"}
#: A baseline point is kept at most this often (seconds): the table needs minutes, not every update.
BASELINE_STEP = 1.0


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def evaluation_key(entry: Mapping[str, Any]) -> tuple | None:
    """What makes two records the same evaluation (time, CV and holdout), or ``None`` if invalid."""
    ts, cv, holdout = (number(entry.get(k)) for k in ("ts", "cv_score", "holdout_score"))
    if ts is None or cv is None or holdout is None:
        return None
    return round(ts, 3), round(cv, 9), round(holdout, 9)


def trigger_of(entry: Mapping[str, Any]) -> str:
    if entry.get("source") == "auto_train":
        return TRIGGERS["auto_train"]
    trigger = entry.get("trigger")
    return TRIGGERS.get(str(trigger), str(trigger)) if trigger else "–"


def _fmt(value: Any, fmt: str = ".3f") -> str:
    x = number(value)
    return "–" if x is None else format(x, fmt)


#: (title, raw value, display text, tooltip)
COLUMNS = (
    ("Time", lambda e: e["ts"], lambda e: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["ts"])),
     "When the evaluation finished"),
    ("Model", lambda e: str(e.get("model", "")), lambda e: str(e.get("model", "?")), "The model family evaluated"),
    ("Trigger", trigger_of, trigger_of, "What started it: manual, every N runs learned, the timer, or an auto-train"),
    ("Runs", lambda e: number(e.get("n_examples")) or 0, lambda e: f"{int(number(e.get('n_examples')) or 0):,}",
     "Runs it was measured on"),
    ("CV", lambda e: e["cv_score"], lambda e: _fmt(e["cv_score"]), "Mean accuracy over the cross-validation folds"),
    ("± folds", lambda e: number(e.get("cv_std")) or 0.0, lambda e: _fmt(e.get("cv_std")),
     "Spread (standard deviation) of the folds' accuracy"),
    ("Holdout", lambda e: e["holdout_score"], lambda e: _fmt(e["holdout_score"]),
     "Accuracy on the held-out runs the scored model never saw"),
    ("AUC", lambda e: number(e.get("holdout_auc")) or 0.0, lambda e: _fmt(e.get("holdout_auc")),
     "Area under the ROC curve on the holdout (0.5: no better than chance)"),
    ("Guessing", lambda e: number(e.get("baseline")) or 0.0, lambda e: _fmt(e.get("baseline")),
     "Accuracy of always guessing the majority class, over the live model's recent runs at that time "
     "(test-then-train window): what an accuracy is worth"),
)
RIGHT_ALIGNED = {3, 4, 5, 6, 7, 8}


class EvaluationTableModel(QAbstractTableModel):
    """Evaluations, oldest first, merged by :func:`evaluation_key`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []
        self._keys: dict[tuple, dict[str, Any]] = {}

    def add(self, entries: Iterable[Mapping[str, Any]]) -> int:
        """Add evaluations (stored entries or event payloads); returns how many rows are new."""
        added = 0
        for entry in entries:
            key = evaluation_key(entry)
            if key is None:
                continue
            known = self._keys.get(key)
            if known is not None:
                known.update({k: v for k, v in entry.items() if k not in known})
                row = self._rows.index(known)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                continue
            record = {**entry, "ts": key[0], "cv_score": number(entry["cv_score"]),
                      "holdout_score": number(entry["holdout_score"])}
            row = bisect.bisect([r["ts"] for r in self._rows], record["ts"])
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.insert(row, record)
            self._keys[key] = record
            self.endInsertRows()
            added += 1
        return added

    def set_baselines(self, baseline_at) -> None:
        """Fill the Guessing column with ``baseline_at(ts)`` where it is still empty."""
        for record in self._rows:
            if number(record.get("baseline")) is None:
                value = baseline_at(record["ts"])
                if value is not None:
                    record["baseline"] = value
        if self._rows:
            self.dataChanged.emit(self.index(0, 8), self.index(len(self._rows) - 1, 8))

    def record(self, row: int) -> dict[str, Any]:
        return self._rows[row]

    def records(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record, (_, raw, text, _tip) = self._rows[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(record)
        if role == SORT_ROLE:
            return raw(record)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in RIGHT_ALIGNED:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section][3]
        return None


def candidate_rows(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An auto-train's candidates, best first, each with its verdict (why it was or was not chosen)."""
    candidates = entry.get("candidates")
    if not isinstance(candidates, Mapping):
        return []
    chosen = entry.get("model")
    scored = {name: r for name, r in candidates.items() if isinstance(r, Mapping) and number(r.get("cv_score")) is not None}
    best = number(scored[chosen]["cv_score"]) if chosen in scored else None
    rows = []
    for name, result in candidates.items():
        result = result if isinstance(result, Mapping) else {}
        cv = number(result.get("cv_score"))
        if name == chosen:
            verdict = "chosen: highest mean CV accuracy" + (" (a tie goes to the earlier candidate)"
                                                             if sum(number(r.get("cv_score")) == best
                                                                    for r in scored.values()) > 1 else "")
        elif cv is None:
            verdict = f"not scored: {result.get('skipped') or 'no score'}"
        else:
            verdict = f"CV {best - cv:.3f} below the chosen one" if best is not None and cv < best else \
                "CV as high, but listed after the chosen one"
        rows.append({"model": name, "cv_score": cv, "cv_std": number(result.get("cv_std")),
                     "holdout_score": number(result.get("holdout_score")),
                     "holdout_auc": number(result.get("holdout_auc")), "verdict": verdict, "chosen": name == chosen})
    rows.sort(key=lambda r: (not r["chosen"], -(r["cv_score"] if r["cv_score"] is not None else -1)))
    return rows


CANDIDATE_COLUMNS = (
    ("Model", lambda r: r["model"], str),
    ("CV", lambda r: r["cv_score"], _fmt),
    ("± folds", lambda r: r["cv_std"], _fmt),
    ("Holdout", lambda r: r["holdout_score"], _fmt),
    ("AUC", lambda r: r["holdout_auc"], _fmt),
    ("Verdict", lambda r: r["verdict"], str),
)


class CandidateTableModel(QAbstractTableModel):
    """The candidates of one auto-train (see :func:`candidate_rows`); the chosen one in bold and green."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(CANDIDATE_COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, (_, raw, text) = self._rows[index.row()], CANDIDATE_COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(raw(row))
        if role == SORT_ROLE:
            return raw(row) if raw(row) is not None else -1.0
        if role == Qt.ItemDataRole.FontRole and row["chosen"]:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and row["chosen"]:
            parent = self.parent()
            return theme.color("ok", parent.palette()) if parent is not None else None
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == len(CANDIDATE_COLUMNS) - 1:
            return row["verdict"]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return CANDIDATE_COLUMNS[section][0]
        return None


def describe(entry: Mapping[str, Any]) -> str:
    """Everything about one evaluation, as text for the details pane."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["ts"]))
    lines = [f"Evaluation of {entry.get('model', '?')} at {when} · trigger: {trigger_of(entry)}"
             + (f" · job {entry['job_id']}" if entry.get("job_id") else "")]
    n, n_train, n_holdout = (number(entry.get(k)) for k in ("n_examples", "n_train", "n_holdout"))
    folds = entry.get("cv") or (len(entry["cv_scores"]) if isinstance(entry.get("cv_scores"), list) else None)
    runs = f"Runs: {int(n or 0):,}"
    if n_train is not None and n_holdout is not None:
        runs += f" ({int(n_train):,} in {folds or '?'} cross-validation folds, {int(n_holdout):,} held out)"
    lines.append(runs)
    cv = f"CV accuracy: {entry['cv_score']:.4f}"
    if number(entry.get("cv_std")) is not None:
        cv += f" ± {entry['cv_std']:.4f}"
    if isinstance(entry.get("cv_scores"), list):
        cv += "   folds: " + "  ".join(_fmt(s, ".4f") for s in entry["cv_scores"])
    lines.append(cv)
    lines.append(f"Holdout accuracy: {entry['holdout_score']:.4f} · holdout AUC: {_fmt(entry.get('holdout_auc'), '.4f')}"
                 f" · guessing the majority class: {_fmt(entry.get('baseline'), '.4f')}")
    extra = [f"{label}: {entry[key]}" for key, label in
             (("features", "features"), ("seed", "seed"), ("test_split", "holdout share"))
             if entry.get(key) is not None]
    if number(entry.get("duration_s")) is not None:
        extra.append(f"took {entry['duration_s']:.2f} s")
    if extra:
        lines.append(" · ".join(extra))
    if isinstance(entry.get("candidates"), Mapping):
        lines.append(f"Auto-train: {len(entry['candidates'])} candidates compared, {entry.get('model')} chosen "
                     "(see the table below).")
    return "\n".join(lines)


class EvaluationsPanel(PanelDefaults, QWidget):
    """Every evaluation in a sortable table; the selected one in full, with an auto-train's candidates."""

    title = "Evaluations"
    area = Area.VIEWS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluationsPanel")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._baselines: list[tuple[float, float]] = []
        self.model = EvaluationTableModel(self)
        self.proxy, self.view = read_only_table(self.model, "evaluationTableView", self)
        self.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        digit = self.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate((19, 10, 12, 8, 7, 7, 8, 7, 9)):
            header.resizeSection(column, digit * chars)
        header.setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(self._show_selected)
        self.count_label = QLabel("No evaluations yet", self)
        self.count_label.setObjectName("evaluationCountLabel")
        self.count_label.setWordWrap(True)
        self.detail = QPlainTextEdit(self)
        self.detail.setObjectName("evaluationDetail")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select an evaluation to see its folds, runs and settings")
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.candidates = CandidateTableModel(self)
        self.candidate_proxy, self.candidate_view = read_only_table(self.candidates, "candidateTableView", self)
        self.candidate_view.horizontalHeader().setStretchLastSection(True)
        self.candidate_view.setVisible(False)
        self.message = MessageLabel("evaluationsMessage", self)
        self._lay_out()
        self.export_action = QAction("Export evaluations as C&SV…", self)
        self.export_action.setObjectName("exportEvaluationsAction")
        self.export_action.triggered.connect(self.ask_export_csv)

    def _lay_out(self) -> None:
        lower = QWidget(self)
        lower.setObjectName("evaluationDetailBox")
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.detail, 1)
        lower_layout.addWidget(self.candidate_view, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("evaluationSplitter")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.count_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.message)

    # -- the panel -------------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        self._client, self._runner = client, runner
        if client is None or runner is None or runner.closed:
            return
        runner.submit(lambda: (client.evaluation_history(), client.prequential_history()),
                      on_done=lambda h: self._history_read(*h),
                      on_error=lambda exc: logger.warning("no evaluation history: %s", exc))

    def _history_read(self, evaluations: list[dict], points: list[dict]) -> None:
        self._note_baselines(points)
        self.add_evaluations(evaluations)

    def handle_events(self, batch: Sequence[Event]) -> None:
        points = [e.payload for e in batch if e.topic == events.LEARNING_PREQUENTIAL]
        if points:
            self._note_baselines(points)
        evaluated = [e.payload for e in batch if e.topic == events.LEARNING_EVALUATED]
        if evaluated:
            self.add_evaluations(evaluated)
        if any(e.topic == events.LEARNING_TRAINED and e.payload.get("mode") == "auto" for e in batch):
            self.reload()  # an auto-train keeps its comparison in the history, not in an event

    def reload(self) -> None:
        """Read the stored evaluations again (in the worker) and add the new ones."""
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed:
            return
        runner.submit(client.evaluation_history, on_done=self.add_evaluations,
                      on_error=lambda exc: logger.warning("no evaluation history: %s", exc))

    def add_evaluations(self, entries: Iterable[Mapping[str, Any]]) -> int:
        added = self.model.add(entries)
        self.model.set_baselines(self.baseline_at)
        n = self.model.rowCount()
        self.count_label.setText(f"{n:,} evaluations · click a header to sort, a row for its details"
                                 if n else "No evaluations yet")
        current = self.view.currentIndex()
        if current.isValid():
            self._show_selected(current, QModelIndex())
        return added

    def _note_baselines(self, points: Iterable[Mapping[str, Any]]) -> None:
        for point in points:
            ts, baseline = number(point.get("ts")), number(point.get("baseline"))
            if ts is None or baseline is None:
                continue
            if self._baselines and ts < self._baselines[-1][0]:
                bisect.insort(self._baselines, (ts, baseline))
            elif not self._baselines or ts - self._baselines[-1][0] >= BASELINE_STEP:
                self._baselines.append((ts, baseline))

    def baseline_at(self, ts: float) -> float | None:
        """The majority-class accuracy of the newest test-then-train point at or before ``ts``."""
        i = bisect.bisect_right(self._baselines, (ts, math.inf)) - 1
        return self._baselines[i][1] if i >= 0 else None

    @Slot(QModelIndex, QModelIndex)
    def _show_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        entry = self.model.record(self.proxy.mapToSource(current).row())
        self.detail.setPlainText(describe(entry))
        rows = candidate_rows(entry)
        self.candidates.set_rows(rows)
        self.candidate_view.setVisible(bool(rows))
        if rows:
            self.candidate_view.resizeColumnsToContents()

    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&File": [self.export_action]}

    def save_state(self, settings: QSettings) -> None:
        save_splitter(settings, self.splitter)

    def restore_state(self, settings: QSettings) -> None:
        restore_splitter(settings, self.splitter)

    @Slot()
    def ask_export_csv(self) -> None:
        suggested = export.default_path(export.export_folder(), "evaluations", "csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export the evaluations", suggested, "CSV (*.csv)")
        if path:
            self.export_csv(export.with_suffix(path, "csv"))

    def export_csv(self, path: str) -> int:
        """Write every evaluation to ``path``; says so under the table; returns the rows written."""
        try:
            rows = export.write_evaluations_csv(path, self.model.records())
        except OSError as exc:
            self.message.show_message(f"Could not save the CSV file: {exc}")
            return 0
        export.remember_folder(path)
        self.message.show_message(f"Saved {rows:,} evaluations to {path}", "ok")
        return rows
