"""The status bar: service state, model, counts (pathways, runs, memory), last scores, metrics URL."""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QLabel, QStatusBar, QWidget

from menace import events
from menace.client import ClientStatus, Counts, MenaceClient
from menace.events import Event

from ..client_source import CRASHED, RECONNECTING, RUNNING, STARTING, STOPPED, STOPPING
from ..panels import Area, PanelDefaults
from ..task_runner import TaskRunner
from .forms import error_color, ok_color

logger = logging.getLogger(__name__)

#: Milliseconds between refreshes of the pathway / memory counts.
COUNTS_INTERVAL_MS = 5000


def _scores(entry: Any) -> tuple[float, float] | None:
    """``(cv_score, holdout_score)`` of an evaluation if both are finite numbers."""
    try:
        cv, holdout = float(entry["cv_score"]), float(entry["holdout_score"])
    except (KeyError, TypeError, ValueError):
        return None
    return (cv, holdout) if math.isfinite(cv) and math.isfinite(holdout) else None


def _ts(entry: Any) -> float:
    try:
        ts = float(entry.get("ts") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return ts if math.isfinite(ts) else 0.0


def newest_scores(history: Sequence[dict]) -> tuple[float, float, float] | None:
    """``(ts, cv_score, holdout_score)`` of the newest evaluation that has scores, or ``None``."""
    dated = [(_ts(h), *s) for h in history if (s := _scores(h))]
    return max(dated) if dated else None


class StatusPanel(PanelDefaults, QStatusBar):
    """Permanent labels a glance at the bottom of the window tells it all.

    It follows the panel protocol (the window binds it and hands it events),
    but sits in the window's status bar rather than in a tab. The service
    state comes from the window's client source (:meth:`set_state`).
    """

    title = "Status"
    area = Area.STATUS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.state = STOPPED
        self._detail = ""
        self._trained: bool | None = None
        self._client: MenaceClient | None = None
        self._runner: TaskRunner | None = None
        self._counting = False
        self._scores_ts = -math.inf  # when the evaluation shown was made
        self.remote_label = self._label("remoteServiceLabel", "The service this window watches through its API")
        self.remote_label.hide()  # shown for --connect and for an attached window
        self.state_label = self._label("serviceStateLabel", "Whether the self-learning stack runs")
        self.model_label = self._label("modelLabel", "The main engine's model")
        self.pathways_label = self._label("pathwayCountStatus", "Pathways in the database")
        self.runs_label = self._label("runCountStatus", "Runs stored (every logged run of every pathway)")
        self.memory_label = self._label("memoryCountStatus", "Memory entries")
        self.scores_label = self._label("lastScoresLabel", "The last evaluation's scores")
        self.metrics_label = self._label("metricsUrlLabel", "Prometheus metrics endpoint")
        self.metrics_label.setTextFormat(Qt.TextFormat.RichText)
        self.metrics_label.setOpenExternalLinks(True)
        self._counts_timer = QTimer(self)
        self._counts_timer.setObjectName("countsTimer")
        self._counts_timer.setInterval(COUNTS_INTERVAL_MS)
        self._counts_timer.timeout.connect(self.refresh)
        self.set_state(STOPPED, "")
        self.set_model(None)
        self.set_counts(None, None, None)
        self.set_scores(None, None)
        self.set_metrics_url(None)

    def _label(self, name: str, tip: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setToolTip(tip)
        label.setFrameShape(QFrame.Shape.NoFrame)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addPermanentWidget(label)
        return label

    # -- the panel ---------------------------------------------------------------
    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Show ``client``'s model, metrics, last scores and counts (counts every 5 s)."""
        self._client, self._runner = client, runner
        if client is None or runner is None:
            self._counts_timer.stop()
            return

        def first_look() -> tuple[ClientStatus, tuple[float, float, float] | None]:
            return client.status(), newest_scores(client.evaluation_history())

        runner.submit(first_look, on_done=self._looked, on_error=lambda exc: logger.warning("no status: %s", exc))
        self.refresh()
        self._counts_timer.start()

    def _looked(self, look: tuple[ClientStatus, tuple[float, float, float] | None]) -> None:
        status, newest = look
        self.set_model(status.model, status.trained)
        self.set_metrics_url(status.metrics_url)
        if newest is not None:
            self._show_scores(*newest)

    def _show_scores(self, ts: float, cv: float, holdout: float) -> None:
        # The stored history can arrive after a live evaluation: never go back in time.
        if ts >= self._scores_ts:
            self._scores_ts = ts
            self.set_scores(cv, holdout)

    def handle_events(self, batch: Sequence[Event]) -> None:
        model = None
        for event in batch:
            if event.topic == events.LEARNING_EVALUATED:
                scores = _scores(event.payload)
                if scores is not None:
                    self._show_scores(_ts(event.payload), *scores)
            elif event.topic == events.LEARNING_TRAINED:
                model = event.payload.get("model") or model
        if model:
            self.set_model(model, True)

    @Slot()
    def refresh(self) -> None:
        """Count pathways, runs and memory entries in the worker, one count at a time."""
        client, runner = self._client, self._runner
        if client is None or runner is None or runner.closed or self._counting:
            return
        self._counting = True
        runner.submit(client.counts, on_done=self._counted, on_error=self._not_counted)

    def _counted(self, counts: Counts) -> None:
        self._counting = False
        self.set_counts(counts.pathways, counts.runs, counts.memory)

    def _not_counted(self, exc: BaseException) -> None:
        self._counting = False
        logger.warning("could not count: %s", exc)

    # -- the labels --------------------------------------------------------------
    def set_state(self, state: str, detail: str) -> None:
        self.state, self._detail = state, detail
        palette = self.palette()
        label_palette = QPalette(palette)  # the window's colours now: a theme switch comes back here
        if state == RUNNING:
            label_palette.setColor(QPalette.ColorRole.WindowText, ok_color(palette))
        elif state in (CRASHED, RECONNECTING):
            label_palette.setColor(QPalette.ColorRole.WindowText, error_color(palette))
        text = f"● {state}…" if state in (STOPPING, STARTING) else f"● {state}"
        if state == CRASHED and detail:  # a retrying window's reason is in the banner and the tooltip
            text += f": {detail[:60]}"
        self.state_label.setPalette(label_palette)
        self.state_label.setText(text)
        self.state_label.setToolTip(f"Service {state}" + (f": {detail}" if detail else ""))

    def set_model(self, model: Any, trained: bool | None = None) -> None:
        """Show the model, and whether it is trained when known (a loaded model is)."""
        if trained is not None:
            self._trained = trained
        if not model:
            self.model_label.setText("model: –")
            return
        state = {True: " (trained)", False: " (not trained yet)"}.get(self._trained, "")
        self.model_label.setText(f"model: {model}{state}")

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.set_state(self.state, self._detail)

    def set_counts(self, pathways: int | None, runs: int | None, memory: int | None) -> None:
        self.pathways_label.setText(f"pathways: {pathways:,}" if pathways is not None else "pathways: –")
        self.runs_label.setText(f"runs: {runs:,}" if runs is not None else "runs: –")
        self.memory_label.setText(f"memory: {memory:,}" if memory is not None else "memory: –")

    def set_scores(self, cv: float | None, holdout: float | None) -> None:
        if cv is None or holdout is None:
            self.scores_label.setText("last scores: –")
        else:
            self.scores_label.setText(f"last scores: CV {cv:.3f} · holdout {holdout:.3f}")

    def set_remote(self, text: str, tip: str = "") -> None:
        """Say that the window watches a service elsewhere (``text``: e.g. ``watching http://...``)."""
        self.remote_label.setText(f"⇄ {text}")
        self.remote_label.setToolTip(tip or text)
        self.remote_label.setVisible(bool(text))

    def set_metrics_url(self, url: str | None) -> None:
        if url:
            safe = html.escape(url, quote=True)
            self.metrics_label.setText(f'metrics: <a href="{safe}">{safe}</a>')
        else:
            self.metrics_label.setText("metrics: off")
