"""The main window: assembles the widgets and binds them to a client.

Composition only: each widget draws itself (``widgets/``) and reaches data
only through a :class:`~menace.client.MenaceClient`, the bridge moves events
(``bridge.py``), a client source hands the client over (``client_source.py``;
the service thread runs the stack in this process) and the task runner does
slow calls off the GUI thread (``task_runner.py``). A test hands in its own
source (and QSettings) and drives the real window.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QGroupBox,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from menace import events
from menace.client import MenaceClient
from menace.events import Event

from .bridge import EventBridge
from .client_source import CRASHED, RUNNING, STOPPED, ClientSource
from .task_runner import TaskRunner
from .widgets.event_log import DEFAULT_MAX_ROWS, EventLogWidget
from .widgets.forms import GptInteractionForm, MessageLabel, PathwayForm, PredictForm
from .widgets.job_controls import JobControls
from .widgets.memory_view import MemoryView
from .widgets.pathway_table import PathwayTable
from .widgets.score_chart import ScoreChart, TrainingActivity
from .widgets.status_bar import StatusPanel

logger = logging.getLogger(__name__)

#: Milliseconds between refreshes of the pathway / memory counts.
COUNTS_INTERVAL_MS = 5000
_SPLITTERS = ("mainSplitter", "rightSplitter", "chartSplitter", "eventLogSplitter", "memorySplitter")


def freeze_startup_heap() -> None:
    """Move the objects alive now (libraries, the stack, the widgets) out of the collector's reach.

    They live as long as the app, yet every full collection walked them all:
    140 ms in the idle window and up to 440 ms under an event flood on this
    machine. After ``gc.freeze()`` a full collection only walks newer objects.
    """
    gc.collect()
    gc.freeze()


class MainWindow(QMainWindow):
    """Menace's desktop monitor.

    ``closed`` is emitted once the window has closed and its source has shut down.

    Args:
        source: the :class:`~menace_gui.client_source.ClientSource` whose
            client the window shows (the window opens it, and shuts it down
            on close): a :class:`~menace_gui.service_thread.ServiceThread`
            runs the stack in this process. ``None`` gives an empty window
            (forms and jobs disabled).
        settings: where geometry and splitters are kept (default ``QSettings()``).
        max_log_rows: rows the event log keeps.
        freeze_heap: once the stack is shown, freeze the start-up heap
            (:func:`freeze_startup_heap`); the app does, tests need not.
    """

    closed = Signal()

    def __init__(
        self,
        source: ClientSource | None = None,
        settings: QSettings | None = None,
        max_log_rows: int = DEFAULT_MAX_ROWS,
        parent: QWidget | None = None,
        *,
        freeze_heap: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Menace monitor")
        self.qsettings = settings if settings is not None else QSettings()
        self.source = source
        #: The client shown, or ``None`` (not ready yet, or the service stopped).
        self.client: MenaceClient | None = None
        self._closed = False
        self._freeze_heap = freeze_heap

        self.runner = TaskRunner(self)
        self.bridge = EventBridge(parent=self)

        # -- widgets -----------------------------------------------------------
        self.job_controls = JobControls(self)
        self.pathway_form = PathwayForm(self)
        self.gpt_form = GptInteractionForm(self)
        self.predict_form = PredictForm(self)
        self.score_chart = ScoreChart(self)
        self.activity = TrainingActivity(self)
        self.pathway_table = PathwayTable(self)
        self.memory_view = MemoryView(self)
        self.event_log = EventLogWidget(max_log_rows, self)
        self.status = StatusPanel(self)
        self.setStatusBar(self.status)
        self.banner = MessageLabel("serviceBanner", self)

        # -- layout (PyMeasure-like: inputs and queue left, plots and log right) --
        jobs_box = QGroupBox("Learning jobs", self)
        jobs_box.setObjectName("jobsBox")
        QVBoxLayout(jobs_box).addWidget(self.job_controls)
        self.form_tabs = QTabWidget(self)
        self.form_tabs.setObjectName("formTabs")
        self.form_tabs.addTab(self.pathway_form, "Log pathway")
        self.form_tabs.addTab(self.gpt_form, "GPT interaction")
        self.form_tabs.addTab(self.predict_form, "Predict")
        left = QWidget(self)
        left.setObjectName("leftPanel")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(jobs_box)
        left_layout.addWidget(self.form_tabs, 1)
        left.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 44)

        self.chart_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.chart_splitter.setObjectName("chartSplitter")
        self.chart_splitter.addWidget(self.score_chart)
        self.chart_splitter.addWidget(self.activity)
        self.chart_splitter.setStretchFactor(0, 3)
        self.chart_splitter.setStretchFactor(1, 1)
        self.chart_splitter.setSizes([380, 170])
        self.view_tabs = QTabWidget(self)
        self.view_tabs.setObjectName("viewTabs")
        self.view_tabs.addTab(self.chart_splitter, "Scores")
        self.view_tabs.addTab(self.pathway_table, "Pathways")
        self.view_tabs.addTab(self.memory_view, "Memory")

        log_box = QGroupBox("Live events", self)
        log_box.setObjectName("eventLogBox")
        log_layout = QVBoxLayout(log_box)
        log_layout.addWidget(self.event_log)

        self.right_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.right_splitter.setObjectName("rightSplitter")
        self.right_splitter.addWidget(self.view_tabs)
        self.right_splitter.addWidget(log_box)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 2)
        self.right_splitter.setSizes([560, 380])  # the plots' size hint would squeeze the log

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(left)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([left.minimumWidth(), 1000])

        central = QWidget(self)
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(6, 6, 6, 0)
        central_layout.addWidget(self.banner)
        central_layout.addWidget(self.main_splitter, 1)
        self.setCentralWidget(central)
        self._build_menus()

        # -- wiring ------------------------------------------------------------
        self.bridge.eventsReceived.connect(self.event_log.add_events)
        self.bridge.eventsReceived.connect(self.job_controls.handle_events)
        self.bridge.eventsReceived.connect(self.pathway_table.handle_events)
        self.bridge.eventsReceived.connect(self.memory_view.handle_events)
        self.bridge.eventsReceived.connect(self._on_events)
        self._counts_timer = QTimer(self)
        self._counts_timer.setObjectName("countsTimer")
        self._counts_timer.setInterval(COUNTS_INTERVAL_MS)
        self._counts_timer.timeout.connect(self.refresh_counts)
        self._counts_busy = False
        self._counts_dirty = False

        self.resize(1280, 820)
        self.restore_settings()
        if source is not None:
            source.clientReady.connect(self.attach_client)
            source.stateChanged.connect(self._on_service_state)
            self.status.set_state(source.state, source.detail)
            self.setWindowTitle(f"Menace monitor — {source.location}")
            if source.client is not None:
                self.attach_client(source.client)
            else:
                source.open()

    # -- menus and shortcuts -----------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        bar.setObjectName("menuBar")
        file_menu = bar.addMenu("&File")
        file_menu.setObjectName("fileMenu")
        file_menu.addAction(self.score_chart.export_png_action)
        file_menu.addAction(self.score_chart.export_csv_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setObjectName("quitAction")
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        jobs_menu = bar.addMenu("&Jobs")
        jobs_menu.setObjectName("jobsMenu")
        for action in (*self.job_controls.actions.values(), self.job_controls.cancel_action):
            jobs_menu.addAction(action)

        log_menu = bar.addMenu("&Log")
        log_menu.setObjectName("logMenu")
        log_menu.addAction(self.event_log.pause_action)
        log_menu.addAction(self.event_log.clear_action)
        find_action = QAction("&Filter events", self)
        find_action.setObjectName("filterEventsAction")
        find_action.setShortcut(QKeySequence.StandardKey.Find)
        find_action.triggered.connect(lambda: (self.event_log.text_filter.setFocus(), self.event_log.text_filter.selectAll()))
        log_menu.addAction(find_action)

        view_menu = bar.addMenu("&View")
        view_menu.setObjectName("viewMenu")
        for i, name in enumerate(("Scores", "Pathways", "Memory")):
            action = QAction(name, self)
            action.setObjectName(f"show{name}Action")
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self.view_tabs.setCurrentIndex(i))
            view_menu.addAction(action)
        view_menu.addSeparator()
        for i, name in enumerate(("Log pathway form", "GPT interaction form", "Predict form")):
            action = QAction(name, self)
            action.setObjectName(f"showForm{i + 1}Action")
            action.setShortcut(QKeySequence(f"Ctrl+Shift+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self._show_form(i))
            view_menu.addAction(action)
        for action in (*bar.actions(),):
            self.addAction(action)

    def _show_form(self, index: int) -> None:
        self.form_tabs.setCurrentIndex(index)
        self.form_tabs.currentWidget().focusNextChild()

    # -- the client ----------------------------------------------------------------
    @Slot(object)
    def attach_client(self, client: MenaceClient) -> None:
        """Show ``client``: follow its events, bind the forms, jobs and data views."""
        if self._closed:
            return
        self.client = client
        self.bridge.attach(client, self.runner)
        self.pathway_form.bind(client, self.runner)
        self.gpt_form.bind(client, self.runner)
        self.predict_form.bind(client, self.runner)
        self.job_controls.bind(client, self.runner)
        self.pathway_table.bind(client, self.runner)
        self.memory_view.bind(client, self.runner)
        self.runner.submit(client.status, on_done=self._status_loaded,
                           on_error=lambda exc: logger.warning("no status: %s", exc))
        self.runner.submit(client.evaluation_history, on_done=self._history_loaded,
                           on_error=lambda exc: logger.warning("no evaluation history: %s", exc))
        self.refresh_counts()
        self._counts_timer.start()
        if self._freeze_heap:
            self._freeze_heap = False
            QTimer.singleShot(500, freeze_startup_heap)  # after the first paint and loads

    def detach_client(self) -> None:
        """Stop showing the client (the service stopped or crashed): disable what needs it."""
        self.bridge.detach()
        self._counts_timer.stop()
        self.pathway_form.bind(None, None)
        self.gpt_form.bind(None, None)
        self.predict_form.bind(None, None)
        self.job_controls.bind(None, None)
        self.pathway_table.bind(None, None)  # the data views keep showing the last data they loaded
        self.memory_view.bind(None, None)
        self.client = None

    def _status_loaded(self, status: Any) -> None:
        self.status.set_model(status.model)
        self.status.set_metrics_url(status.metrics_url)

    def _history_loaded(self, history: list[dict]) -> None:
        self.score_chart.set_history(history)
        points = self.score_chart.points()
        if points:
            self.status.set_scores(points[-1][1], points[-1][2])

    @Slot(str, str)
    def _on_service_state(self, state: str, detail: str) -> None:
        self.status.set_state(state, detail)
        if self._closed:
            return
        if state == CRASHED:
            self.banner.show_message(
                f"The self-learning service crashed: {detail}. Forms and jobs are disabled; "
                "the data already saved is safe. Restart the monitor to try again."
            )
            self.detach_client()
        elif state == STOPPED:
            self.banner.show_message("The self-learning service has stopped.", "plain")
            self.detach_client()
        elif state == RUNNING:
            self.banner.clear_message()

    # -- events ----------------------------------------------------------------------
    @Slot(list)
    def _on_events(self, batch: Iterable[Event]) -> None:
        trained = []
        for event in batch:
            topic = event.topic
            if topic == events.LEARNING_EVALUATED:
                if self.score_chart.add_evaluation(event.payload):
                    self.status.set_scores(event.payload["cv_score"], event.payload["holdout_score"])
            elif topic == events.LEARNING_TRAINED:
                trained.append(event.payload)
            elif topic in events.INPUT_TOPICS:
                self._counts_dirty = True
        if trained:
            self.activity.add_trained(trained)
            model = trained[-1].get("model")
            if model:
                self.status.set_model(model)

    @Slot()
    def refresh_counts(self) -> None:
        """Count pathways and memory entries in the worker, one count at a time."""
        client = self.client
        if client is None or self._counts_busy or self._closed:
            return
        self._counts_busy = True
        self._counts_dirty = False

        def done(counts):
            self._counts_busy = False
            self.status.set_counts(counts.pathways, counts.memory)

        def failed(exc):
            self._counts_busy = False
            logger.warning("could not count: %s", exc)

        self.runner.submit(client.counts, on_done=done, on_error=failed)

    # -- settings ------------------------------------------------------------------
    def _splitter(self, name: str) -> QSplitter:
        return self.findChild(QSplitter, name)

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        for name in _SPLITTERS:
            s.setValue(f"splitters/{name}", self._splitter(name).saveState())
        s.setValue("tabs/view", self.view_tabs.currentIndex())
        s.setValue("tabs/form", self.form_tabs.currentIndex())
        s.setValue("log/follow", self.event_log.follow_check.isChecked())
        s.sync()

    def restore_settings(self) -> None:
        s = self.qsettings
        geometry = s.value("window/geometry", QByteArray(), type=QByteArray)
        if geometry and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = s.value("window/state", QByteArray(), type=QByteArray)
        if state and not state.isEmpty():
            self.restoreState(state)
        for name in _SPLITTERS:
            saved = s.value(f"splitters/{name}", QByteArray(), type=QByteArray)
            if saved and not saved.isEmpty():
                self._splitter(name).restoreState(saved)
        self.view_tabs.setCurrentIndex(s.value("tabs/view", 0, type=int))
        self.form_tabs.setCurrentIndex(s.value("tabs/form", 0, type=int))
        self.event_log.follow_check.setChecked(s.value("log/follow", True, type=bool))

    # -- closing -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop listening, finish the worker's task, stop the stack and join its thread."""
        if self._closed:
            return
        self._closed = True
        self._counts_timer.stop()
        self.bridge.detach()
        self.runner.shutdown(wait=True)  # a write in progress completes before the stores close
        self.detach_client()
        if self.source is not None:
            self.source.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.shutdown()
        event.accept()
        self.closed.emit()
