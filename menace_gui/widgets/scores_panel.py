"""The Scores tab: the score chart over the training-activity plot.

The chart starts from ``client.evaluation_history()`` and then follows
``learning:evaluated``; the activity plot follows ``learning:trained``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from ..panels import Area, PanelDefaults, restore_splitter, save_splitter
from ..task_runner import TaskRunner
from .score_chart import ScoreChart, TrainingActivity

logger = logging.getLogger(__name__)


class ScoresPanel(PanelDefaults, QWidget):
    """CV and holdout scores per evaluation above the examples learned over time."""

    title = "Scores"
    area = Area.VIEWS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scoresPanel")
        self.chart = ScoreChart(self)
        self.activity = TrainingActivity(self)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("chartSplitter")
        self.splitter.addWidget(self.chart)
        self.splitter.addWidget(self.activity)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 170])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Add the client's stored evaluations (read in the worker); ``None`` keeps what is drawn."""
        if client is not None and runner is not None and not runner.closed:
            runner.submit(client.evaluation_history, on_done=self.chart.set_history,
                          on_error=lambda exc: logger.warning("no evaluation history: %s", exc))

    def handle_events(self, batch: Sequence[Event]) -> None:
        trained = []
        for event in batch:
            if event.topic == events.LEARNING_EVALUATED:
                self.chart.add_evaluation(event.payload)
            elif event.topic == events.LEARNING_TRAINED:
                trained.append(event.payload)
        if trained:
            self.activity.add_trained(trained)

    def menu_actions(self) -> dict[str, list[QAction]]:
        return {"&File": [self.chart.export_png_action, self.chart.export_csv_action]}

    def save_state(self, settings: QSettings) -> None:
        save_splitter(settings, self.splitter)

    def restore_state(self, settings: QSettings) -> None:
        restore_splitter(settings, self.splitter)
