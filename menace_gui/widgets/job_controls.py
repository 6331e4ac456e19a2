"""Retrain, Evaluate and Auto-train: queue a job, follow it, cancel it, report it.

A button asks the client to queue a job (``client.submit_job``, on the task
runner: it only queues and returns the job's id); what happens next is learned
from the events the bridge delivers: ``learning:progress`` moves the bar,
``learning:trained`` / ``learning:evaluated`` / ``learning:error`` /
``learning:cancelled`` with the job's id end it. A button stays disabled from
the click until its job has ended.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
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
from menace.client import MenaceClient
from menace.events import Event

from ..panels import Area, PanelDefaults
from ..task_runner import TaskRunner
from .forms import MessageLabel

logger = logging.getLogger(__name__)

TRAIN, EVALUATE, AUTO_TRAIN = "train", "evaluate", "auto_train"
LABELS = {TRAIN: "Retrain", EVALUATE: "Evaluate", AUTO_TRAIN: "Auto-train"}
#: End events of jobs whose id has not come back yet that are kept (see ``_early_ends``).
EARLY_ENDS_KEPT = 256
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


class JobControls(PanelDefaults, QWidget):
    """The manual learning jobs of the main engine (a panel: the Jobs menu is theirs)."""

    title = "Learning jobs"
    area = Area.JOBS

    jobQueued = Signal(str, int)  # kind, job_id
    jobFinished = Signal(str, int, str, dict)  # kind, job_id, topic, payload

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobControls")
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._submitting: dict[str, bool] = {}  # kind -> cancel once its id is known
        # A fast job can end before the id of its submit comes back: its end waits here.
        self._early_ends: OrderedDict[int, tuple[str, dict]] = OrderedDict()
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

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Queue jobs through ``client`` on ``runner`` (``None``: the service is not running)."""
        self._client, self._runner = client, runner
        if client is None and (self.active or self._submitting):
            self.active.clear()
            self._submitting.clear()
            self._early_ends.clear()
            self.progress.setFormat("idle")
            self.progress.setValue(0)
        self._refresh()

    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&Jobs": [*self.actions.values(), self.cancel_action]}

    def is_running(self, kind: str) -> bool:
        """True from the click until the job of ``kind`` has ended."""
        return kind in self._submitting or kind in self.active.values()

    def is_idle(self) -> bool:
        """No job is being queued, queued or running."""
        return not self._submitting and not self.active

    @Slot()
    def request(self, kind: str) -> bool:
        """Ask for a job of ``kind``; ``False`` if it was not asked (unbound, or one runs).

        ``jobQueued(kind, job_id)`` follows once the client has queued it.
        """
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed or self.is_running(kind):
            return False
        self._submitting[kind] = False
        self.progress.setValue(0)
        self.progress.setFormat(f"{LABELS[kind]}: queueing")
        runner.submit(
            client.submit_job, kind,
            on_done=lambda job_id: self._queued(kind, int(job_id)),
            on_error=lambda exc: self._not_queued(kind, exc),
        )
        self._refresh()
        return True

    def _queued(self, kind: str, job_id: int) -> None:
        if kind not in self._submitting:
            return  # unbound meanwhile: the service stopped
        cancel = self._submitting.pop(kind)
        self.active[job_id] = kind
        self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): queued")
        self.status.show_message(f"{LABELS[kind]} queued as job {job_id}…", "plain")
        self.jobQueued.emit(kind, job_id)
        early = self._early_ends.pop(job_id, None)
        if early is not None:
            self._end(job_id, *early)
        elif cancel:
            self._cancel(job_id)
        self._refresh()

    def _not_queued(self, kind: str, exc: BaseException) -> None:
        if self._submitting.pop(kind, None) is None:
            return
        self.progress.setFormat("idle")
        self.status.show_message(f"{LABELS[kind]} could not be queued: {exc}")
        self._refresh()

    @Slot()
    def cancel_all(self) -> None:
        """Cancel every job asked for here (one still being queued, once its id is known)."""
        if self._client is None:
            return
        for kind in self._submitting:
            self._submitting[kind] = True
        for job_id in list(self.active):
            self._cancel(job_id)
        if self.active or self._submitting:
            self.progress.setFormat("cancelling…")

    def _cancel(self, job_id: int) -> None:
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed:
            return
        runner.submit(
            client.cancel_job, job_id,
            on_done=lambda accepted: self._cancel_answered(job_id, accepted),
            on_error=lambda exc: self.status.show_message(f"Could not cancel job {job_id}: {exc}"),
        )

    def _cancel_answered(self, job_id: int, accepted: bool) -> None:
        kind = self.active.get(job_id)
        if kind is not None and not accepted:
            self.status.show_message(
                f"{LABELS[kind]} (job {job_id}) cannot be interrupted; it runs to its end.", "plain"
            )

    @Slot(list)
    def handle_events(self, batch: Iterable[Event]) -> None:
        """Follow the jobs asked for here through their events."""
        if self.is_idle():
            return
        for event in batch:
            job_id = event.payload.get("job_id")
            if job_id not in self.active:
                if self._submitting and job_id is not None and event.topic in _END_TOPICS:
                    self._early_ends[job_id] = (event.topic, event.payload)
                    while len(self._early_ends) > EARLY_ENDS_KEPT:
                        self._early_ends.popitem(last=False)
                continue
            kind = self.active[job_id]
            if event.topic == events.LEARNING_PROGRESS:
                fraction = min(max(float(event.payload.get("fraction") or 0.0), 0.0), 1.0)
                self.progress.setValue(round(1000 * fraction))
                # '%' starts a placeholder in a progress-bar format: keep it out of the text.
                message = str(event.payload.get("message") or "").replace("%", " pct")
                self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): %p% {message}")
            elif event.topic in _END_TOPICS:
                self._end(job_id, event.topic, event.payload)
        self._refresh()

    def _end(self, job_id: int, topic: str, payload: dict) -> None:
        kind = self.active.pop(job_id)
        text, level = _describe(topic, payload)
        self.results[kind] = text
        self.status.show_message(f"{LABELS[kind]} (job {job_id}) {text}", level)
        self.progress.setValue(1000 if topic != events.LEARNING_CANCELLED else 0)
        self.progress.setFormat(f"{LABELS[kind]} (job {job_id}): {text.split(' (')[0]}".replace("%", " pct"))
        self.jobFinished.emit(kind, job_id, topic, dict(payload))

    def _refresh(self) -> None:
        bound = self._client is not None
        for kind, action in self.actions.items():
            action.setEnabled(bound and not self.is_running(kind))
        self.cancel_action.setEnabled(bound and not self.is_idle())
