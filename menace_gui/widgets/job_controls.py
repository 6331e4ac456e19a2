"""Retrain, Evaluate and Auto-train: queue a job, follow it in the job list, cancel it.

A button asks the client to queue a job (``client.submit_job``, on the task
runner: it only queues and returns the job's id); what happens next is learned
from the events the bridge delivers: ``learning:progress`` moves its row's
bar, ``learning:trained`` / ``learning:evaluated`` / ``learning:error`` /
``learning:cancelled`` with the job's id end it. The list also shows the jobs
the service queued itself (a drift retrain) and, at start, ``client.jobs()``.
A button stays disabled from the click until its job has ended.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QSizePolicy,
    QTableView,
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
from .job_list import (
    CANCELLED,
    DONE,
    FAILED,
    RUNNING,
    JobTableModel,
    ProgressDelegate,
    kind_label,
    plain_error,
)

logger = logging.getLogger(__name__)

TRAIN, EVALUATE, AUTO_TRAIN = "train", "evaluate", "auto_train"
LABELS = {TRAIN: "Retrain", EVALUATE: "Evaluate", AUTO_TRAIN: "Auto-train"}
#: End events of jobs whose id has not come back yet that are kept (see ``_early_ends``).
EARLY_ENDS_KEPT = 256
#: Rows of the job list shown without scrolling.
VISIBLE_JOBS = 3
_END_TOPICS = (
    events.LEARNING_TRAINED,
    events.LEARNING_EVALUATED,
    events.LEARNING_ERROR,
    events.LEARNING_CANCELLED,
)
_STATE_OF_END = {
    events.LEARNING_TRAINED: DONE, events.LEARNING_EVALUATED: DONE,
    events.LEARNING_ERROR: FAILED, events.LEARNING_CANCELLED: CANCELLED,
}
_KIND_OF_END = {events.LEARNING_EVALUATED: EVALUATE}


def _describe(topic: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(message, kind) for the event that ended a job."""
    if topic == events.LEARNING_EVALUATED:
        auc = payload.get("holdout_auc")
        return (
            f"CV {payload.get('cv_score', float('nan')):.3f} · holdout "
            f"{payload.get('holdout_score', float('nan')):.3f}"
            + (f" · AUC {auc:.3f}" if isinstance(auc, int | float) else "")
            + f" ({payload.get('model', '?')}, {payload.get('n_examples', '?')} runs)",
            "ok",
        )
    if topic == events.LEARNING_TRAINED:
        best = f"; best model {payload['best']}" if payload.get("best") else ""
        return (
            f"trained {payload.get('model', '?')} on {payload.get('examples', '?')} runs "
            f"in {float(payload.get('duration_s') or 0):.2f} s{best}",
            "ok",
        )
    if topic == events.LEARNING_CANCELLED:
        return "cancelled", "plain"
    return plain_error(payload.get("error")), "error"


class JobControls(PanelDefaults, QWidget):
    """The manual learning jobs of the main engine and the job list (the Jobs menu is theirs)."""

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
        self.active: dict[int, str] = {}  # job_id -> kind, the jobs asked for here
        self.results: dict[str, str] = {}  # kind -> last result text
        self.jobs = JobTableModel(self)
        self.actions: dict[str, QAction] = {}
        self.buttons: dict[str, QToolButton] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (kind, keys, tip) in enumerate((
            (TRAIN, "Ctrl+R", "Train the model again on all runs (Ctrl+R)"),
            (EVALUATE, "Ctrl+E", "Cross-validate and score on the holdout split (Ctrl+E)"),
            (AUTO_TRAIN, "Ctrl+Shift+A", "Try the candidate models, keep the best (Ctrl+Shift+A)"),
        )):
            self._add_button(grid, column, kind, keys, tip)
        self.cancel_action = QAction("Cancel", self)
        self.cancel_action.setObjectName("cancelJobAction")
        self.cancel_action.setShortcut(QKeySequence("Ctrl+."))
        self.cancel_action.setToolTip("Cancel the queued and running jobs asked for here (Ctrl+.)")
        self.cancel_action.triggered.connect(self.cancel_all)
        self.cancel_button = self._tool_button("cancelJobButton", self.cancel_action)
        grid.addWidget(self.cancel_button, 0, 3)
        self.view = self._build_view()
        self.status = MessageLabel("jobStatusLabel", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addWidget(self.view)
        layout.addWidget(self.status)
        self._refresh()

    def _tool_button(self, name: str, action: QAction) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName(name)
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        return button

    def _add_button(self, grid: QGridLayout, column: int, kind: str, keys: str, tip: str) -> None:
        name = {TRAIN: "retrain", EVALUATE: "evaluate", AUTO_TRAIN: "autoTrain"}[kind]
        action = QAction(LABELS[kind], self)
        action.setObjectName(f"{name}Action")
        action.setShortcut(QKeySequence(keys))
        action.setToolTip(tip)
        action.triggered.connect(lambda _=False, k=kind: self.request(k))
        self.actions[kind] = action
        self.buttons[kind] = self._tool_button(f"{name}Button", action)
        grid.addWidget(self.buttons[kind], 0, column)

    def _build_view(self) -> QTableView:
        view = QTableView(self)
        view.setObjectName("jobTableView")
        view.setModel(self.jobs)
        view.setItemDelegate(ProgressDelegate(view))
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setWordWrap(False)
        view.verticalHeader().setVisible(False)
        row = self.fontMetrics().height() + 6
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        view.verticalHeader().setDefaultSectionSize(row)
        header = view.horizontalHeader()
        digit = self.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate((4, 11, 9)):
            header.resizeSection(column, digit * chars)
        header.setStretchLastSection(True)
        view.setMinimumHeight(row * (VISIBLE_JOBS + 1) + 4)
        view.setMaximumHeight(row * (VISIBLE_JOBS + 3) + 4)
        view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        view.selectionModel().currentRowChanged.connect(self._show_job)
        return view

    # -- the panel ---------------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Queue jobs through ``client`` on ``runner`` (``None``: the service is not running)."""
        self._client, self._runner = client, runner
        if client is None and (self.active or self._submitting):
            for job_id in self.active:
                row = self.jobs.job(job_id)
                if row is not None and row.state not in (DONE, FAILED, CANCELLED):
                    self.jobs.upsert(job_id, state=CANCELLED, message="the service stopped")
            self.active.clear()
            self._submitting.clear()
            self._early_ends.clear()
        if client is not None and runner is not None and not runner.closed:
            runner.submit(client.jobs, on_done=self._jobs_read,
                          on_error=lambda exc: logger.warning("could not list the jobs: %s", exc))
        self._refresh()

    def _jobs_read(self, infos: list) -> None:
        for info in infos:
            state = info.state if info.state in (DONE, FAILED, CANCELLED, RUNNING) else "queued"
            result = "" if info.result is None or isinstance(info.result, bool) else _result_text(info.result)
            self.jobs.upsert(int(info.id), kind=str(info.kind), state=state, fraction=float(info.fraction or 0),
                             message=str(info.message or ""), result=result, error=plain_error(info.error)
                             if info.error else "", submitted=float(info.submitted or 0) or None,
                             reason=str((info.params or {}).get("reason") or ""))

    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&Jobs": [*self.actions.values(), self.cancel_action]}

    def is_running(self, kind: str) -> bool:
        """True from the click until the job of ``kind`` has ended."""
        return kind in self._submitting or kind in self.active.values()

    def is_idle(self) -> bool:
        """No job is being queued, queued or running (of those asked for here)."""
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
        self.status.show_message(f"{LABELS[kind]}: queueing…", "plain")
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
        self.jobs.upsert(job_id, kind=kind)
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
        self.status.show_message(f"{LABELS[kind]} could not be queued: {plain_error(exc)}")
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
            self.status.show_message("Cancelling…", "plain")

    def _cancel(self, job_id: int) -> None:
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed:
            return
        runner.submit(
            client.cancel_job, job_id,
            on_done=lambda accepted: self._cancel_answered(job_id, accepted),
            on_error=lambda exc: self.status.show_message(f"Could not cancel job {job_id}: {plain_error(exc)}"),
        )

    def _cancel_answered(self, job_id: int, accepted: bool) -> None:
        kind = self.active.get(job_id)
        if kind is not None and not accepted:
            self.status.show_message(
                f"{LABELS[kind]} (job {job_id}) cannot be interrupted; it runs to its end.", "plain"
            )

    @Slot(list)
    def handle_events(self, batch: Iterable[Event]) -> None:
        """Follow every job in the list, and the jobs asked for here to their end."""
        for event in batch:
            job_id = event.payload.get("job_id")
            if not isinstance(job_id, int) or isinstance(job_id, bool):
                continue
            if event.topic == events.LEARNING_PROGRESS:
                self._progress(job_id, event.payload)
            elif event.topic in _END_TOPICS:
                self._ended(job_id, event.topic, event.payload)
        self._refresh()

    def _progress(self, job_id: int, payload: dict) -> None:
        fraction = min(max(float(payload.get("fraction") or 0.0), 0.0), 1.0)
        self.jobs.upsert(job_id, kind=str(payload.get("kind") or ""), state=RUNNING, fraction=fraction,
                         message=str(payload.get("message") or ""))

    def _ended(self, job_id: int, topic: str, payload: dict) -> None:
        if job_id in self.active:
            self._end(job_id, topic, payload)
            return
        if self._submitting:  # perhaps the job whose id is on its way
            self._early_ends[job_id] = (topic, payload)
            while len(self._early_ends) > EARLY_ENDS_KEPT:
                self._early_ends.popitem(last=False)
        self._show_end(job_id, topic, payload)

    def _show_end(self, job_id: int, topic: str, payload: dict) -> str:
        text, _level = _describe(topic, payload)
        known = self.jobs.job(job_id)
        kind = known.kind if known is not None and known.kind else str(
            payload.get("kind") or _KIND_OF_END.get(topic) or (payload.get("source") if topic == events.LEARNING_ERROR
                                                               else TRAIN))
        state = _STATE_OF_END[topic]
        self.jobs.upsert(job_id, kind=kind, state=state, fraction=1.0 if state == DONE else 0.0,
                         result=text if state == DONE else "", error=text if state == FAILED else "",
                         reason=str(payload.get("reason") or (known.reason if known else "")))
        return text

    def _end(self, job_id: int, topic: str, payload: dict) -> None:
        kind = self.active.pop(job_id)
        self.jobs.upsert(job_id, kind=kind)
        text = self._show_end(job_id, topic, payload)
        _, level = _describe(topic, payload)
        self.results[kind] = text
        verb = "failed: " if level == "error" else ""
        self.status.show_message(f"{LABELS[kind]} (job {job_id}) {verb}{text}", level)
        self.jobFinished.emit(kind, job_id, topic, dict(payload))

    @Slot(QModelIndex, QModelIndex)
    def _show_job(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        row = self.jobs.row_of(current.row())
        level = "error" if row.state == FAILED else ("ok" if row.state == DONE else "plain")
        self.status.show_message(f"{kind_label(row.kind)} (job {row.id}) {row.state}: {row.outcome()}", level)

    def _refresh(self) -> None:
        bound = self._client is not None
        for kind, action in self.actions.items():
            action.setEnabled(bound and not self.is_running(kind))
        self.cancel_action.setEnabled(bound and not self.is_idle())


def _result_text(result: Any) -> str:
    """A job's stored result in a few words (the scores of an evaluation, the model of an auto-train)."""
    if isinstance(result, dict) and "cv_score" in result:
        return _describe(events.LEARNING_EVALUATED, result)[0]
    return f"best model {result}" if isinstance(result, str) else str(result)[:200]
