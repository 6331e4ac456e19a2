"""Retrain, Evaluate and Auto-train: queue a job, follow it, cancel it, report it.

The buttons call the coordinator's ``request_*`` (which only queue the job and
return its id); what happens next is learned from the bus events the bridge
delivers: ``learning:progress`` moves the bar, ``learning:trained`` /
``learning:evaluated`` / ``learning:error`` / ``learning:cancelled`` with the
job's id end it. A button stays disabled while its job is queued or running.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QGridLayout,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from menace import events

from ..bridge import BusEvent
from .forms import MessageLabel

logger = logging.getLogger(__name__)

TRAIN, EVALUATE, AUTO_TRAIN = "train", "evaluate", "auto_train"
LABELS = {TRAIN: "Retrain", EVALUATE: "Evaluate", AUTO_TRAIN: "Auto-train"}
_END_TOPICS = (
    events.LEARNING_TRAINED,
    events.LEARNING_EVALUATED,
    events.LEARNING_ERROR,
    events.LEARNING_CANCELLED,
)


def _describe(topic: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(message, kind) for the event that ended a job."""
    if topic == events.LEARNING_EVALUATED:
        return (
            f"CV {payload.get('cv_score', float('nan')):.3f} · holdout "
            f"{payload.get('holdout_score', float('nan')):.3f} "
            f"({payload.get('model', '?')}, {payload.get('n_examples', '?')} examples)",
            "ok",
        )
    if topic == events.LEARNING_TRAINED:
        best = f", best model {payload['best']}" if payload.get("best") else ""
        return (
            f"trained {payload.get('model', '?')} on {payload.get('examples', '?')} examples "
            f"in {float(payload.get('duration_s') or 0):.2f} s{best}",
            "ok",
        )
    if topic == events.LEARNING_CANCELLED:
        return "cancelled", "plain"
    return f"failed: {payload.get('error', 'unknown error')}", "error"


class JobControls(QWidget):
    """The manual learning jobs of the main engine."""

    jobFinished = Signal(str, int, str, dict)  # kind, job_id, topic, payload

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobControls")
        self._coordinator: Any | None = None
        self.active: dict[int, str] = {}  # job_id -> kind
        self.results: dict[str, str] = {}  # kind -> last result text

        self.actions: dict[str, QAction] = {}
        self.buttons: dict[str, QToolButton] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (kind, keys, tip) in enumerate(
            (
                (TRAIN, "Ctrl+R", "Train the model again on all data (Ctrl+R)"),
                (EVALUATE, "Ctrl+E", "Cross-validate and score on the holdout split (Ctrl+E)"),
                (AUTO_TRAIN, "Ctrl+Shift+A", "Try the candidate models, keep the best (Ctrl+Shift+A)"),
            )
        ):
            name = {TRAIN: "retrain", EVALUATE: "evaluate", AUTO_TRAIN: "autoTrain"}[kind]
            action = QAction(LABELS[kind], self)
            action.setObjectName(f"{name}Action")
            action.setShortcut(QKeySequence(keys))
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, k=kind: self.request(k))
            button = QToolButton(self)
            button.setObjectName(f"{name}Button")
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            grid.addWidget(button, 0, column)
            self.actions[kind] = action
            self.buttons[kind] = button

        self.cancel_action = QAction("Cancel", self)
        self.cancel_action.setObjectName("cancelJobAction")
        self.cancel_action.setShortcut(QKeySequence("Ctrl+."))
        self.cancel_action.setToolTip("Cancel the queued and running jobs (Ctrl+.)")
        self.cancel_action.triggered.connect(self.cancel_all)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setObjectName("cancelJobButton")
        self.cancel_button.setDefaultAction(self.cancel_action)
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        grid.addWidget(self.cancel_button, 0, 3)

        self.progress = QProgressBar(self)
        self.progress.setObjectName("jobProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        self.status = MessageLabel("jobStatusLabel", self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._refresh()

    def bind(self, coordinator: Any | None) -> None:
        """Use ``coordinator`` (``None``: the service is not running)."""
        self._coordinator = coordinator
        if coordinator is None and self.active:
            self.active.clear()
            self.progress.setFormat("idle")
            self.progress.setValue(0)
        self._refresh()

    def is_running(self, kind: str) -> bool:
        return kind in self.active.values()

    @Slot()
    def request(self, kind: str) -> int | None:
        """Queue a job of ``kind``; returns its id, or ``None`` if it was not queued."""
        if self._coordinator is None or self.is_running(kind):
            return None
        method = {
            TRAIN: "request_train",
            EVALUATE: "request_evaluate",
            AUTO_TRAIN: "request_auto_train",
        }[kind]
        try:
            job_id = getattr(self._coordinator, method)()
        except Exception as exc:
            logger.exception("%s could not be queued", kind)
            self.status.show_message(f"{LABELS[kind]} could not be queued: {exc}")
            return None
        self.active[int(job_id)] = kind
        self.progress.setValue(0)
        self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): queued")
        self.status.show_message(f"{LABELS[kind]} queued as job {job_id}…", "plain")
        self._refresh()
        return int(job_id)

    @Slot()
    def cancel_all(self) -> None:
        if self._coordinator is None:
            return
        for job_id, kind in list(self.active.items()):
            try:
                accepted = self._coordinator.cancel(job_id)
            except Exception as exc:
                logger.exception("cancelling job %s failed", job_id)
                self.status.show_message(f"Could not cancel job {job_id}: {exc}")
                continue
            if accepted is False:
                self.status.show_message(
                    f"{LABELS[kind]} (job {job_id}) cannot be interrupted; it runs to its end.", "plain"
                )
        if self.active:
            self.progress.setFormat("cancelling…")

    @Slot(list)
    def handle_events(self, batch: Iterable[BusEvent]) -> None:
        """Follow the jobs this widget queued through their events."""
        if not self.active:
            return
        for event in batch:
            job_id = event.payload.get("job_id")
            if job_id not in self.active:
                continue
            kind = self.active[job_id]
            if event.topic == events.LEARNING_PROGRESS:
                fraction = min(max(float(event.payload.get("fraction") or 0.0), 0.0), 1.0)
                self.progress.setValue(round(1000 * fraction))
                # '%' starts a placeholder in a progress-bar format: keep it out of the text.
                message = str(event.payload.get("message") or "").replace("%", " pct")
                self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): %p% {message}")
            elif event.topic in _END_TOPICS:
                del self.active[job_id]
                text, level = _describe(event.topic, event.payload)
                self.results[kind] = text
                self.status.show_message(f"{LABELS[kind]} (job {job_id}) {text}", level)
                self.progress.setValue(1000 if event.topic != events.LEARNING_CANCELLED else 0)
                self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): {text.split(' (')[0]}".replace("%", " pct"))
                self.jobFinished.emit(kind, job_id, event.topic, dict(event.payload))
        self._refresh()

    def _refresh(self) -> None:
        bound = self._coordinator is not None
        for kind, action in self.actions.items():
            action.setEnabled(bound and not self.is_running(kind))
        self.cancel_action.setEnabled(bound and bool(self.active))
