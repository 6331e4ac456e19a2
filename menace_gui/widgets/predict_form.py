"""Predict: pick a pathway (or type a new action text), see its chance of success and why.

Typing in the Actions box searches the stored pathways (any part of the
text, any case). When the text is a stored pathway, its numbers fill in by
themselves (runs so far, average exec time and ROI, myelination) and can be
changed to ask "what if"; a new action text gets 0 runs and 0 myelination
and asks for the exec time and ROI to expect. The Pathways tab can send a
row here too (:meth:`PredictForm.use_pathway`). The answer comes from
``client.explain``: the probability, and for each input how much it pushed
the prediction up or down (how that is computed is said under the table).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QStringListModel,
    Qt,
    QTimer,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSizePolicy,
    QStyledItemDelegate,
    QTableView,
    QWidget,
)

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from .. import theme
from ..task_runner import TaskRunner
from .forms import FormBase, number_field, text_field

logger = logging.getLogger(__name__)

#: Milliseconds after the last keystroke in Actions before the stored pathway is looked up.
LOOKUP_DELAY_MS = 300
#: Pathways offered by the search box.
MAX_SUGGESTIONS = 5000
_Index = QModelIndex | QPersistentModelIndex


def plain_number(value: float, digits: int = 3) -> str:
    """A number as a person types it: ``12``, ``1.25``, ``1310.2`` (no exponent)."""
    if not math.isfinite(value):
        return ""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class ContributionModel(QAbstractTableModel):
    """The contributions of one explanation: input, value, what replaced it, effect."""

    COLUMNS = ("Input (compared with)", "Effect")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def set_contributions(self, contributions: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = list(contributions)
        self.endResetModel()

    def contribution(self, row: int) -> Any:
        return self._rows[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    @staticmethod
    def _text(c: Any, column: int) -> str:
        if column == 1:
            return f"{100 * c.effect:+.1f} pts"
        if c.kind == "feature":
            reference = "" if c.reference is None else f" (avg {plain_number(float(c.reference), 1)})"
            return f"{c.label} {plain_number(float(c.value))}{reference}"
        return f"{c.name} “{c.label}” (left out)"

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        c = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(c, index.column())
        if role == Qt.ItemDataRole.UserRole:
            return float(c.effect)
        if role == Qt.ItemDataRole.ToolTipRole:
            direction = "up" if c.effect >= 0 else "down"
            compared = "left out" if c.reference is None else f"set to its training average {c.reference:.4g}"
            return (f"{self._text(c, 0)}: pushed the prediction {direction} by {abs(100 * c.effect):.1f} "
                    f"percentage points (compared with it {compared})")
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None


class EffectDelegate(QStyledItemDelegate):
    """Draws an effect as a bar from the middle: green to the right (up), red to the left (down).

    The bar is a strip along the bottom of the cell, under the text, so it never covers a digit.
    """

    def paint(self, painter, option, index) -> None:
        effect = index.data(Qt.ItemDataRole.UserRole)
        if index.column() == 1 and isinstance(effect, float):
            palette = option.widget.palette() if option.widget is not None else option.palette
            cell = QRectF(option.rect.adjusted(2, 2, -2, -2))
            rect = QRectF(cell.left(), cell.bottom() - 4, cell.width(), 4)
            half = rect.width() / 2
            width = min(abs(effect) * 2, 1.0) * half  # 50 points fill half the cell
            colour = theme.color("up" if effect >= 0 else "down", palette)
            colour.setAlpha(200)
            left = rect.center().x() if effect >= 0 else rect.center().x() - width
            painter.fillRect(QRectF(left, rect.top(), max(width, 1.0), rect.height()), colour)
        super().paint(painter, option, index)


class PredictForm(FormBase):
    """The success probability of a run of a pathway, and why (``client.explain``).

    A result that arrives after a field changed is not shown (it would
    describe other inputs); the operator is asked to predict again.
    """

    submit_text = "Predict"
    busy_text = "Predicting…"
    prefix = "predict"
    title = "Predict"
    FIELDS = ("frequency", "exec_time", "roi", "myelination", "actions")
    unbound_reason = "No learning engine yet"
    field_aliases = {"freq": "frequency"}  # the engine's name for it
    refused_text = "Not predicted: fix the {fields} marked above."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictForm")
        self._generation = 0
        self._submitted_generation = -1
        self._lookup_generation = 0
        self._filling = False
        self._auto_filled: set[str] = set()  # fields whose text a lookup put there (not typed)
        self.last_probability: float | None = None
        self.last_explanation: Any = None
        self.pathway: Any = None  # the stored pathway the actions name, if any
        self._build_fields()
        self._build_result()
        self._lookup_timer = QTimer(self)
        self._lookup_timer.setObjectName("predictLookupTimer")
        self._lookup_timer.setSingleShot(True)
        self._lookup_timer.setInterval(LOOKUP_DELAY_MS)
        self._lookup_timer.timeout.connect(self.look_up)
        self._suggest_timer = QTimer(self)
        self._suggest_timer.setObjectName("predictSuggestTimer")
        self._suggest_timer.setSingleShot(True)
        self._suggest_timer.setInterval(2000)
        self._suggest_timer.timeout.connect(self.load_suggestions)

    def _build_fields(self) -> None:
        actions = self.add_field("actions", "&Actions", QLineEdit(self), text_field("actions", required=True),
                                 "A stored pathway (type any part of it to search) or a new action sequence")
        actions.setPlaceholderText("search the pathways, or type new steps: fetch->parse->store")
        actions.setClearButtonEnabled(True)
        self.suggestions = QStringListModel(self)
        completer = QCompleter(self.suggestions, self)
        completer.setObjectName("predictActionsCompleter")
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setMaxVisibleItems(12)
        completer.activated.connect(lambda text: self.editor("actions").setText(text))
        actions.setCompleter(completer)
        actions.textChanged.connect(self._actions_changed)
        self.lookup_label = QLabel(self)
        self.lookup_label.setObjectName("predictLookupLabel")
        self.lookup_label.setWordWrap(True)
        self.lookup_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self._grid.addWidget(self.lookup_label, self._grid.rowCount(), 1)
        for name, label, check, tip in (
            ("frequency", "&Runs before", number_field("frequency", 0.0),
             "How many times the pathway ran before (0 for a new one)"),
            ("exec_time", "E&xec time (s)", number_field("exec_time", 0.0), "The run's execution time in seconds"),
            ("roi", "R&OI", number_field("roi"), "The run's return on investment"),
            ("myelination", "&Myelination", number_field("myelination"),
             "How established the pathway is: grows with each run, fades with time (0 for a new one)"),
        ):
            editor = self.add_field(name, label, QLineEdit(self), check, tip)
            editor.textChanged.connect(self._inputs_changed)
            editor.textChanged.connect(lambda _text, n=name: self._typed(n))

    def _build_result(self) -> None:
        self.result_label = QLabel("Probability of success: –", self)
        self.result_label.setObjectName("predictionResultLabel")
        self.result_label.setWordWrap(True)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        font = self.result_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.result_label.setFont(font)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_bar = QProgressBar(self)
        self.result_bar.setObjectName("predictionBar")
        self.result_bar.setRange(0, 1000)
        self.result_bar.setValue(0)
        self.result_bar.setTextVisible(False)
        self.result_bar.setMaximumHeight(self.fontMetrics().height() // 2 + 4)
        self.why = ContributionModel(self)
        self.why_view = QTableView(self)
        self.why_view.setObjectName("predictionWhyView")
        self.why_view.setModel(self.why)
        self.why_view.setItemDelegate(EffectDelegate(self.why_view))
        self.why_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.why_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.why_view.verticalHeader().setVisible(False)
        self.why_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.why_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(1, self.fontMetrics().horizontalAdvance("+00.0 pts") + 24)
        self.why_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.why_view.setMinimumHeight((self.fontMetrics().height() + 6) * 8)
        self.why_view.setVisible(False)
        self.method_label = QLabel(self)
        self.method_label.setObjectName("predictionMethodLabel")
        self.method_label.setWordWrap(True)
        self.method_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.method_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = self.layout()
        stretch = layout.count() - 1  # the form ends with a stretch: the result goes before it
        for widget in (self.result_label, self.result_bar, self.why_view, self.method_label):
            layout.insertWidget(stretch, widget)
            stretch += 1
        layout.setStretchFactor(self.why_view, 1)

    # -- the panel -------------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        super().bind(client, runner)
        if client is not None:
            self.load_suggestions()
            if self.editor("actions").text().strip():
                self._lookup_timer.start()
        else:
            self._lookup_timer.stop()
            self._suggest_timer.stop()

    def handle_events(self, batch: Sequence[Event]) -> None:
        if self._is_bound() and not self._suggest_timer.isActive():
            if any(e.topic == events.PATHWAY_NEW for e in batch):
                self._suggest_timer.start()

    @Slot()
    def load_suggestions(self) -> None:
        """Offer the stored pathways' action texts in the search box (read in the worker)."""
        if not self._is_bound() or self._runner.closed:
            return
        client = self._client
        self._runner.submit(lambda: [p.actions for p in client.pathways(MAX_SUGGESTIONS)],
                            on_done=self.suggestions.setStringList,
                            on_error=lambda exc: logger.warning("no pathways to suggest: %s", exc))

    # -- looking the pathway up ------------------------------------------------------------
    @Slot()
    def _actions_changed(self) -> None:
        self._inputs_changed()
        if not self._filling:
            self.pathway = None
            self._lookup_timer.start()

    @Slot()
    def look_up(self) -> None:
        """Find the typed action text among the stored pathways (in the worker) and fill its numbers in."""
        text = self.editor("actions").text().strip()
        if not text or not self._is_bound() or self._runner.closed:
            self.lookup_label.setText("")
            return
        self._lookup_generation += 1
        generation, client = self._lookup_generation, self._client
        self._runner.submit(client.find_pathway, text,
                            on_done=lambda p: self._looked_up(generation, text, p),
                            on_error=lambda exc: self.lookup_label.setText(f"Could not look it up: {exc}"))

    def _looked_up(self, generation: int, text: str, pathway: Any) -> None:
        if generation != self._lookup_generation or text != self.editor("actions").text().strip():
            return  # typed on meanwhile
        if pathway is None:
            self.pathway = None
            self._fill(only_untyped=True, frequency=0.0, myelination=0.0)
            self.lookup_label.setText(
                "A new pathway: 0 runs before and 0 myelination; enter the exec time and ROI you expect.")
            return
        self._show_pathway(pathway, only_untyped=True)

    def use_pathway(self, pathway: Any, submit: bool = True) -> bool:
        """Fill the form from a stored pathway (its averages); then predict if ``submit``."""
        self._filling = True
        try:
            self.editor("actions").setText(pathway.actions)
        finally:
            self._filling = False
        self._show_pathway(pathway, only_untyped=False)
        self._lookup_timer.stop()
        return self.submit() if submit else True

    def _show_pathway(self, pathway: Any, only_untyped: bool) -> None:
        self.pathway = pathway
        self._fill(only_untyped, frequency=float(pathway.frequency), exec_time=float(pathway.avg_exec_time),
                   roi=float(pathway.avg_roi), myelination=float(pathway.myelination_score))
        self.lookup_label.setText(
            f"Pathway #{pathway.id}: {pathway.frequency:,} runs, {100 * pathway.success_rate:.1f} % succeeded; "
            "its averages are filled in (edit them to ask “what if”).")

    def _typed(self, name: str) -> None:
        if not self._filling:
            self._auto_filled.discard(name)  # a value of the operator's: a lookup leaves it

    def _fill(self, only_untyped: bool, **values: float) -> None:
        """Put ``values`` in their fields; with ``only_untyped``, not over a value typed by hand."""
        for name, value in values.items():
            editor = self.editor(name)
            if only_untyped and editor.text().strip() and name not in self._auto_filled:
                continue
            self._filling = True
            try:
                editor.setText(plain_number(value, 4))
            finally:
                self._filling = False
            self._auto_filled.add(name)

    # -- predicting ------------------------------------------------------------------------
    @Slot()
    def _inputs_changed(self) -> None:
        self._generation += 1
        if self.last_probability is not None:
            self.result_label.setText("Probability of success: – (inputs changed: predict again)")
            self.result_bar.setValue(0)
            self.last_probability = None

    def _prepare(self, values: dict[str, Any]):
        self._submitted_generation = self._generation
        return self._client.explain, tuple(values[name] for name in self.FIELDS)

    def _done(self, result: Any) -> None:
        if self._submitted_generation != self._generation:
            self._finish()
            self.status.show_message("Inputs changed while predicting: press Predict again.", "plain")
            return
        probability = float(result.probability)
        self.last_probability, self.last_explanation = probability, result
        self.result_label.setText(f"Probability of success: {100 * probability:.1f} %"
                                  + ("" if result.trained else " (no model trained yet: a coin toss)"))
        self.result_bar.setValue(round(1000 * probability))
        contributions = list(getattr(result, "contributions", ()) or ())
        self.why.set_contributions(contributions)
        self.why_view.setVisible(bool(contributions))
        self.method_label.setText(("Why: " + result.method) if contributions else "")
        super()._done(result)

    def _describe(self, result: Any) -> str:
        return f"Predicted by the {result.model} model." if result.model else "Predicted."

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.why_view.viewport().update()

