"""Forms: log a pathway, log a GPT interaction, predict success.

Every field is checked with the library's own validation (the same rules the
API enforces) as you type and again on submit; the message sits right under
the field and nothing is written while any field is wrong. A submit calls the
client (``log_run``, ``log_interaction``, ``predict``) on the
:class:`~menace_gui.task_runner.TaskRunner` worker and its result comes back
by signal, so the window never waits; an input the client refuses (a
:class:`~menace.errors.FieldError`) is shown under the field it names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from menace.client import LoggedRun, MenaceClient
from menace.errors import FieldError
from menace.labels import Outcome
from menace.validation import check_number, check_tags, check_text

from .. import theme
from ..panels import Area, PanelDefaults
from ..task_runner import TaskRunner
from .job_list import plain_error

logger = logging.getLogger(__name__)

Validator = Callable[[str], Any]


def error_color(palette: QPalette) -> QColor:
    """A red that reads on the palette's window colour (light or dark)."""
    return theme.color("error", palette)


def ok_color(palette: QPalette) -> QColor:
    """A green that reads on the palette's window colour (light or dark)."""
    return theme.color("ok", palette)


def _message(name: str, exc: Exception) -> str:
    """The library's message without the leading field name: 'must be >= 0.0, got -1'."""
    text = str(exc)
    if text.startswith(name + " "):
        text = text[len(name) + 1 :]
    return text[:1].upper() + text[1:]


def number_field(name: str, minimum: float | None = None) -> Validator:
    def check(text: str) -> float:
        if not text.strip():
            raise ValueError(f"{name} is required")
        return check_number(name, text.strip(), minimum=minimum)

    return check


def text_field(name: str, required: bool = False, max_len: int = 100_000) -> Validator:
    def check(text: str) -> str:
        return check_text(name, text, allow_empty=not required, max_len=max_len)

    return check


def tags_field(name: str) -> Validator:
    def check(text: str) -> list[str]:
        parts = [p.strip() for p in text.replace(";", ",").split(",")]
        tags = [p for p in parts if p]
        for tag in tags:
            if any(c.isspace() for c in tag):
                raise ValueError(f"{name} must be separated by commas; {tag!r} contains a space")
        return check_tags(name, tags)

    return check


class MessageLabel(QLabel):
    """A word-wrapped message in the palette's error or success colour; hidden when empty."""

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._kind = "plain"
        self.setVisible(False)

    def show_message(self, text: str, kind: str = "error") -> None:
        self._kind = kind
        self._recolor()
        self.setText(text)
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.show_message("", "plain")

    def _recolor(self) -> None:
        palette = self.palette()
        if self._kind == "error":
            color = error_color(palette)
        elif self._kind == "ok":
            color = ok_color(palette)
        else:
            color = self.parentWidget().palette().color(QPalette.ColorRole.WindowText)
        if palette.color(QPalette.ColorRole.WindowText) != color:
            palette.setColor(QPalette.ColorRole.WindowText, color)
            self.setPalette(palette)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        # A light/dark switch changes the window colour: pick the matching red again.
        if event.type() == event.Type.PaletteChange:
            self._recolor()


class FormBase(PanelDefaults, QWidget):
    """Fields with inline messages, a submit button and a status line (a panel in the form tabs).

    Subclasses add fields with :meth:`add_field` and implement :meth:`_start`,
    which receives the checked values and hands the work to the runner.
    Signals: ``succeeded(result)`` and ``failed(message)`` after each submit.
    """

    succeeded = Signal(object)
    failed = Signal(str)

    title = "Form"
    area = Area.FORMS
    submit_text = "Submit"
    busy_text = "Working…"
    prefix = "form"
    unbound_reason = "The service is not running"
    #: The library's name of a field -> the form's, where they differ.
    field_aliases: dict[str, str] = {}
    #: What the status line says when a field is wrong ("{fields}": "field" or "fields").
    refused_text = "Nothing was saved: fix the {fields} marked above."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: dict[str, tuple[QWidget, MessageLabel, Validator]] = {}
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._busy = False
        self._grid = QGridLayout()
        self._grid.setColumnStretch(1, 1)
        self._grid.setVerticalSpacing(2)
        self.submit_button = QPushButton(self.submit_text, self)
        self.submit_button.setObjectName(f"{self.prefix}SubmitButton")
        self.submit_button.setToolTip(f"{self.submit_text} (Ctrl+Enter)")
        self.submit_button.clicked.connect(self.submit)
        self.status = MessageLabel(f"{self.prefix}Status", self)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.submit)
        outer = QVBoxLayout(self)
        outer.addLayout(self._grid)
        outer.addWidget(self.submit_button, 0, Qt.AlignmentFlag.AlignRight)
        outer.addWidget(self.status)
        outer.addStretch(1)
        self._set_ready(False, "The service is not running yet")

    # -- building --------------------------------------------------------------
    def add_field(self, name: str, label: str, editor: QWidget, validator: Validator, tip: str = "") -> QWidget:
        """Add ``editor`` for field ``name``; its message label is ``<prefix><Name>Error``."""
        row = self._grid.rowCount()
        title = QLabel(label, self)
        title.setBuddy(editor)
        editor.setObjectName(f"{self.prefix}{name[:1].upper()}{name[1:]}Edit")
        if tip:
            editor.setToolTip(tip)
        error = MessageLabel(f"{self.prefix}{name[:1].upper()}{name[1:]}Error", self)
        align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
        self._grid.addWidget(title, row, 0, align)
        self._grid.addWidget(editor, row, 1)
        self._grid.addWidget(error, row + 1, 1)
        self._fields[name] = (editor, error, validator)
        signal = getattr(editor, "textChanged", None) or getattr(editor, "currentIndexChanged", None)
        if signal is not None:
            signal.connect(lambda *_: self._on_edited(name))
        return editor

    def field_names(self) -> list[str]:
        return list(self._fields)

    def editor(self, name: str) -> QWidget:
        return self._fields[name][0]

    def error_text(self, name: str) -> str:
        return self._fields[name][1].text()

    # -- values and checks ---------------------------------------------------
    @staticmethod
    def _raw(editor: QWidget) -> str:
        if isinstance(editor, QPlainTextEdit):
            return editor.toPlainText()
        if isinstance(editor, QComboBox):
            return str(editor.currentData())
        return editor.text()

    def check_field(self, name: str, show: bool = True) -> tuple[Any, str]:
        editor, label, validator = self._fields[name]
        try:
            value, message = validator(self._raw(editor)), ""
        except ValueError as exc:
            value, message = None, _message(name, exc)
        if show:
            label.show_message(message)
        return value, message

    def check_all(self) -> dict[str, Any] | None:
        """Every field's value, or ``None`` (with the messages shown) if any is wrong."""
        values, ok = {}, True
        for name in self._fields:
            value, message = self.check_field(name)
            ok = ok and not message
            values[name] = value
        return values if ok else None

    def _on_edited(self, name: str) -> None:
        # As you type: report a problem in a field already flagged or holding text.
        editor, label, _ = self._fields[name]
        if label.text() or self._raw(editor).strip():
            self.check_field(name)
        else:
            label.clear_message()

    def show_field_error(self, exc: BaseException) -> bool:
        """Put a :class:`~menace.errors.FieldError` under the field it names; ``True`` if the form has it."""
        if not isinstance(exc, FieldError):
            return False
        name = self.field_aliases.get(exc.field, exc.field)
        if name not in self._fields:
            return False
        self._fields[name][1].show_message(_message(exc.field, exc))
        return True

    # -- running -------------------------------------------------------------
    def _set_ready(self, ready: bool, why: str = "") -> None:
        self.submit_button.setEnabled(ready and not self._busy)
        if not ready and why:
            self.submit_button.setToolTip(why)
        else:
            self.submit_button.setToolTip(f"{self.submit_text} (Ctrl+Enter)")

    def is_busy(self) -> bool:
        return self._busy

    @Slot()
    def submit(self) -> bool:
        """Check the fields and, if all are right, start the work; ``False`` otherwise."""
        if self._busy or not self.submit_button.isEnabled():
            return False
        values = self.check_all()
        if values is None:
            wrong = sum(bool(self.error_text(name)) for name in self._fields)
            self.status.show_message(self.refused_text.format(fields="field" if wrong == 1 else "fields"))
            self.failed.emit("invalid input")
            return False
        try:
            work, args = self._prepare(values)
        except ValueError as exc:
            if not self.show_field_error(exc):
                self.status.show_message(str(exc))
            self.failed.emit(str(exc))
            return False
        self._busy = True
        self.submit_button.setEnabled(False)
        self.submit_button.setText(self.busy_text)
        self.status.show_message("Working…", "plain")
        assert self._runner is not None
        self._runner.submit(work, *args, on_done=self._done, on_error=self._error)
        return True

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Submit through ``client`` on ``runner`` (``None``: the service is not running)."""
        self._client, self._runner = client, runner
        self._set_ready(self._is_bound(), self.unbound_reason)

    def _is_bound(self) -> bool:
        return self._client is not None and self._runner is not None

    def _finish(self) -> None:
        self._busy = False
        self.submit_button.setText(self.submit_text)
        self.submit_button.setEnabled(self._is_bound())

    def _done(self, result: Any) -> None:
        self._finish()
        self.status.show_message(self._describe(result), "ok")
        self.succeeded.emit(result)

    def _error(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, ValueError) and self.show_field_error(exc):
            self.status.show_message(self.refused_text.format(fields="field"))
        else:
            self.status.show_message(plain_error(exc))
        self.failed.emit(str(exc))

    # -- for subclasses --------------------------------------------------------
    def _prepare(self, values: dict[str, Any]) -> tuple[Callable[..., Any], tuple]:
        raise NotImplementedError

    def _describe(self, result: Any) -> str:
        return "Done."


class PathwayForm(FormBase):
    """Log one run of an action sequence (``client.log_run``)."""

    title = "Log pathway"
    submit_text = "Log pathway"
    busy_text = "Logging…"
    prefix = "pathway"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pathwayForm")
        actions = self.add_field(
            "actions", "&Actions", QLineEdit(self), text_field("actions", required=True),
            "The action sequence, e.g. fetch->parse->store",
        )
        actions.setPlaceholderText("fetch->parse->store")
        self.add_field("inputs", "&Inputs", QLineEdit(self), text_field("inputs"))
        self.add_field("outputs", "O&utputs", QLineEdit(self), text_field("outputs"))
        exec_time = self.add_field(
            "exec_time", "E&xec time (s)", QLineEdit(self), number_field("exec_time", 0.0),
            "Execution time in seconds (>= 0)",
        )
        exec_time.setPlaceholderText("seconds, e.g. 1.5")
        self.add_field("resources", "&Resources", QLineEdit(self), text_field("resources"))
        outcome = QComboBox(self)
        for member in Outcome:
            outcome.addItem(member.value.replace("_", " ").title(), member.value)
        self.add_field("outcome", "Out&come", outcome, Outcome.coerce)
        roi = self.add_field("roi", "R&OI", QLineEdit(self), number_field("roi"), "Return on investment (any finite number)")
        roi.setPlaceholderText("e.g. 1.2")

    def _prepare(self, values: dict[str, Any]):
        return self._client.log_run, (values,)

    def _describe(self, logged: LoggedRun) -> str:
        return f"Logged a run of pathway #{logged.pathway_id}."


class GptInteractionForm(FormBase):
    """Log one prompt/response pair (``client.log_interaction``)."""

    title = "GPT interaction"
    submit_text = "Log interaction"
    busy_text = "Logging…"
    prefix = "gpt"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gptForm")
        for name, label in (("prompt", "&Prompt"), ("response", "&Response")):
            editor = QPlainTextEdit(self)
            editor.setTabChangesFocus(True)
            line = editor.fontMetrics().lineSpacing()
            editor.setMinimumHeight(line * 3 + 12)
            editor.setMaximumHeight(line * 6 + 12)
            self.add_field(name, label, editor, text_field(name, required=name == "prompt"))
        tags = self.add_field("tags", "&Tags", QLineEdit(self), tags_field("tags"), "Comma-separated tags")
        tags.setPlaceholderText("improvement, billing")

    def _prepare(self, values: dict[str, Any]):
        return self._client.log_interaction, (values["prompt"], values["response"], values["tags"])

    def _describe(self, memory_id: Any) -> str:
        return f"Logged the interaction (memory entry #{memory_id})."
