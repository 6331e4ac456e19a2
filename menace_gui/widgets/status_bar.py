"""The status bar: service state, model, counts, last scores, metrics URL."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QLabel, QStatusBar, QWidget

from ..client_source import CRASHED, RUNNING, STOPPED
from .forms import error_color, ok_color


class StatusPanel(QStatusBar):
    """Permanent labels a glance at the bottom of the window tells it all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.state = STOPPED
        self.state_label = self._label("serviceStateLabel", "Whether the self-learning stack runs")
        self.model_label = self._label("modelLabel", "The main engine's model")
        self.pathways_label = self._label("pathwayCountStatus", "Pathways in the database")
        self.memory_label = self._label("memoryCountStatus", "Memory entries")
        self.scores_label = self._label("lastScoresLabel", "The last evaluation's scores")
        self.metrics_label = self._label("metricsUrlLabel", "Prometheus metrics endpoint")
        self.metrics_label.setTextFormat(Qt.TextFormat.RichText)
        self.metrics_label.setOpenExternalLinks(True)
        self.set_state(STOPPED, "")
        self.set_model(None)
        self.set_counts(None, None)
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

    def set_state(self, state: str, detail: str) -> None:
        self.state = state
        palette = self.palette()
        if state == RUNNING:
            color = ok_color(palette)
        elif state == CRASHED:
            color = error_color(palette)
        else:
            color = palette.color(QPalette.ColorRole.WindowText)
        text = f"● {state}"
        if state == CRASHED and detail:
            text += f": {detail[:80]}"
        label_palette = self.state_label.palette()
        label_palette.setColor(QPalette.ColorRole.WindowText, color)
        self.state_label.setPalette(label_palette)
        self.state_label.setText(text)
        self.state_label.setToolTip(f"Service {state}" + (f": {detail}" if detail else ""))

    def set_model(self, model: Any) -> None:
        self.model_label.setText(f"model: {model}" if model else "model: –")

    def set_counts(self, pathways: int | None, memory: int | None) -> None:
        self.pathways_label.setText(f"pathways: {pathways:,}" if pathways is not None else "pathways: –")
        self.memory_label.setText(f"memory: {memory:,}" if memory is not None else "memory: –")

    def set_scores(self, cv: float | None, holdout: float | None) -> None:
        if cv is None or holdout is None:
            self.scores_label.setText("last scores: –")
        else:
            self.scores_label.setText(f"last scores: CV {cv:.3f} · holdout {holdout:.3f}")

    def set_metrics_url(self, url: str | None) -> None:
        if url:
            safe = html.escape(url, quote=True)
            self.metrics_label.setText(f'metrics: <a href="{safe}">{safe}</a>')
        else:
            self.metrics_label.setText("metrics: off")
