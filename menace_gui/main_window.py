"""The main window: lays out a list of panels and binds them to a client.

Composition only. Each panel draws itself and follows one protocol
(``panels.py``): the window places it by its ``area``, binds it to the client,
hands it every batch of events, keeps its state and puts its actions in the
menus, all in loops over :func:`default_panels`. The bridge moves events
(``bridge.py``), a client source hands the client over (``client_source.py``;
the service thread runs the stack in this process) and the task runner makes
the slow calls off the GUI thread (``task_runner.py``). A test hands in its
own source (and QSettings) and drives the real window.

Two things wait for the first paint, so the window shows at once: panels
finish building what they did not need to show a frame
(``finish_building``: the charts), and the app's own start-up work. A window
made with ``responsive_close`` closes without blocking: it says it is
stopping, keeps painting, and closes once the service has stopped.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
from collections.abc import Sequence

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGroupBox,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from menace.client import MenaceClient

from . import gui_settings
from .bridge import EventBridge
from .client_source import CRASHED, RECONNECTING, RUNNING, STOPPED, STOPPING, ClientSource
from .panels import Area, Panel
from .task_runner import TaskRunner
from .theme import SYSTEM, ThemeSwitcher
from .widgets.evaluations_panel import EvaluationsPanel
from .widgets.event_log import DEFAULT_MAX_ROWS, EventLogWidget
from .widgets.forms import GptInteractionForm, MessageLabel, PathwayForm
from .widgets.job_controls import JobControls
from .widgets.memory_view import MemoryView
from .widgets.pathway_table import PathwayTable
from .widgets.predict_form import PredictForm
from .widgets.scores_panel import ScoresPanel
from .widgets.status_bar import StatusPanel

logger = logging.getLogger(__name__)

#: Milliseconds between checks of a closing window's service (and of the preload).
CLOSE_POLL_MS = 50
#: What the charts need, imported in a thread after the first paint (pyqtgraph alone
#: took 0.6-0.75 s here: imported in the GUI thread, the window could not answer meanwhile).
PRELOAD_MODULES = ("numpy", "pyqtgraph", "pyqtgraph.exporters")


def preload_modules(names: Sequence[str] = PRELOAD_MODULES) -> None:
    """Import ``names`` (in the calling thread); a failure is logged, the GUI import says it again."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            logger.exception("could not import %s ahead of the charts", name)
#: Characters of the narrowest left column (jobs and forms).
LEFT_MIN_CHARS = 40


def freeze_startup_heap() -> None:
    """Move the objects alive now (libraries, the stack, the widgets) out of the collector's reach.

    They live as long as the app, yet every full collection walked them all:
    140 ms in the idle window and up to 440 ms under an event flood on this
    machine. After ``gc.freeze()`` a full collection only walks newer objects.
    """
    gc.collect()
    gc.freeze()


def default_panels(parent: QWidget | None, max_log_rows: int = DEFAULT_MAX_ROWS) -> list[Panel]:
    """The monitor's panels, in the order of their tabs (a new panel is one more entry)."""
    return [
        JobControls(parent),
        PathwayForm(parent),
        GptInteractionForm(parent),
        PredictForm(parent),
        ScoresPanel(parent),
        EvaluationsPanel(parent),
        PathwayTable(parent),
        MemoryView(parent),
        EventLogWidget(max_log_rows, parent),
    ]


class _FirstPaint(QObject):
    """Calls ``painted()`` at the first Paint event of the object it filters."""

    def __init__(self, painted, parent: QObject) -> None:
        super().__init__(parent)
        self._painted = painted
        self._done = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if not self._done and event.type() == QEvent.Type.Paint:
            self._done = True
            self._painted()
        return False


class MainWindow(QMainWindow):
    """Menace's desktop monitor.

    ``closed`` is emitted once the window has closed and its source has shut down.

    Args:
        source: the :class:`~menace_gui.client_source.ClientSource` whose
            client the window shows (the window opens it, and shuts it down
            on close): a :class:`~menace_gui.service_thread.ServiceThread`
            runs the stack in this process. ``None`` gives an empty window
            (forms and jobs disabled).
        settings: where geometry, splitters and the panels' state are kept
            (default ``QSettings()``).
        max_log_rows: rows the event log keeps (with the default panels).
        panels: the panels to show instead of :func:`default_panels`.
        freeze_heap: once a client is shown, freeze the start-up heap
            (:func:`freeze_startup_heap`); the app does, tests need not.
        responsive_close: close without blocking (see the module doc); the
            app does; without it ``close()`` returns once all has stopped.
    """

    closed = Signal()
    #: The window's first frame is on screen (then it finishes building).
    firstPainted = Signal()

    def __init__(
        self,
        source: ClientSource | None = None,
        settings: QSettings | None = None,
        max_log_rows: int = DEFAULT_MAX_ROWS,
        parent: QWidget | None = None,
        *,
        panels: Sequence[Panel] | None = None,
        freeze_heap: bool = False,
        responsive_close: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Menace monitor")
        self.qsettings = settings if settings is not None else QSettings()
        self.source: ClientSource | None = None
        #: The client shown, or ``None`` (not ready yet, or the service stopped).
        self.client: MenaceClient | None = None
        self._closed = False
        self._closing = False  # a responsive close is under way
        self._close_done = False
        self._source_stopping = False
        self._responsive_close = responsive_close
        self._painted = False
        self._built = False
        self._preload: threading.Thread | None = None
        self._freeze_heap = freeze_heap
        self.themes = ThemeSwitcher(QApplication.instance()) if QApplication.instance() else None
        self.runner = TaskRunner(self)
        self.bridge = EventBridge(parent=self)
        self.banner = MessageLabel("serviceBanner", self)
        self.status = StatusPanel(self)
        self._containers: dict = {}  # panel -> the scroll area it sits in (forms)
        self.panels: list[Panel] = [*(panels if panels is not None else default_panels(self, max_log_rows)),
                                    self.status]
        self._paint_watch = _FirstPaint(self._first_paint, self)
        self.installEventFilter(self._paint_watch)
        self._lay_out()
        self._build_menus()
        self._wire_panels()
        for panel in self.panels:
            self.bridge.eventsReceived.connect(panel.handle_events)
        self.resize(1280, 820)
        self.restore_settings()
        self._close_timer = QTimer(self)
        self._close_timer.setObjectName("closeTimer")
        self._close_timer.setInterval(CLOSE_POLL_MS)
        self._close_timer.timeout.connect(self._continue_close)
        if source is not None:
            self.set_source(source)

    def set_source(self, source: ClientSource) -> None:
        """Show the client of ``source`` (opening it); a window made without one gets it here."""
        if self.source is not None or self._closed or self._closing:
            raise RuntimeError("the window already has a source (or is closing)")
        self.source = source
        source.clientReady.connect(self.attach_client)
        source.stateChanged.connect(self._on_source_state)
        self.status.set_state(source.state, source.detail)
        remote = getattr(source, "remote_label", None)
        if remote:  # a service elsewhere: say so where the operator looks
            self.status.set_remote(remote, getattr(source, "note", "") or f"connected to {source.location}")
        self.setWindowTitle(f"Menace monitor — {source.location}")
        if source.client is not None:
            self.attach_client(source.client)
        else:
            source.open()

    def _wire_panels(self) -> None:
        """Panels that work together: a pathway chosen in the table is predicted in the form."""
        table, form = self.panel("pathwayTable"), self.panel("predictForm")
        if table is not None and form is not None:
            table.pathwayChosen.connect(lambda pathway: self._predict_pathway(form, pathway))

    def _predict_pathway(self, form, pathway) -> None:
        self.show_panel(form)
        form.use_pathway(pathway)

    # -- after the first paint ----------------------------------------------------------
    def _first_paint(self) -> None:
        self._painted = True
        self.removeEventFilter(self._paint_watch)  # from now on no event of the window passes through Python
        self.firstPainted.emit()
        self._preload = threading.Thread(target=preload_modules, name="menace-gui-preload", daemon=True)
        self._preload.start()
        QTimer.singleShot(CLOSE_POLL_MS, self._build_when_loaded)

    @Slot()
    def _build_when_loaded(self) -> None:
        """Finish building once the preload thread has imported the charts' modules (no waiting here)."""
        if self._built or self._closing or self._closed:
            return
        if self._preload is not None and self._preload.is_alive():
            QTimer.singleShot(CLOSE_POLL_MS, self._build_when_loaded)
            return
        self.finish_building()

    def _join_preload(self) -> None:
        if self._preload is not None:
            self._preload.join()
            self._preload = None

    @Slot()
    def finish_building(self) -> None:
        """Let every panel build what the first paint did not need (once; after the first paint it
        happens by itself, once its modules are imported; called earlier, it imports them here)."""
        if self._built:
            return
        self._join_preload()
        self._built = True
        for panel in self.panels:
            finish = getattr(panel, "finish_building", None)
            if finish is not None:
                finish()

    # -- layout (PyMeasure-like: jobs and forms left, views and log right) ----------
    def _lay_out(self) -> None:
        self.form_tabs = QTabWidget(self)
        self.form_tabs.setObjectName("formTabs")
        self.view_tabs = QTabWidget(self)
        self.view_tabs.setObjectName("viewTabs")
        left = QWidget(self)
        left.setObjectName("leftPanel")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * LEFT_MIN_CHARS)
        self.right_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.right_splitter.setObjectName("rightSplitter")
        self.right_splitter.addWidget(self.view_tabs)
        for panel in self.panels:
            if panel.area == Area.FORMS:
                self.form_tabs.addTab(self._scrolling(panel), panel.title)
            elif panel.area == Area.VIEWS:
                self.view_tabs.addTab(panel, panel.title)
            elif panel.area == Area.STATUS:
                self.setStatusBar(panel)
            elif panel.area in (Area.JOBS, Area.LOG):
                box = QGroupBox(panel.title, self)
                box.setObjectName(f"{panel.objectName()}Box")
                QVBoxLayout(box).addWidget(panel)
                if panel.area == Area.JOBS:
                    left_layout.addWidget(box)
                else:
                    self.right_splitter.addWidget(box)
        left_layout.addWidget(self.form_tabs, 1)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 2)
        self.right_splitter.setSizes([600, 340])  # the plots' size hint would squeeze the log

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

    def _scrolling(self, panel: Panel) -> QScrollArea:
        """``panel`` in a scroll area: a tall form scrolls instead of making the window taller."""
        scroll = QScrollArea(self)
        scroll.setObjectName(f"{panel.objectName()}Scroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(panel)
        self._containers[panel] = scroll
        return scroll

    # -- menus and shortcuts -----------------------------------------------------------
    def _menu(self, title: str) -> QMenu:
        for action in self.menuBar().actions():
            if action.menu() is not None and action.text() == title:
                return action.menu()
        menu = self.menuBar().addMenu(title)
        menu.setObjectName(f"{title.strip('&').lower()}Menu")
        return menu

    def _build_menus(self) -> None:
        self.menuBar().setObjectName("menuBar")
        file_menu = self._menu("&File")
        for panel in self.panels:
            for title, actions in panel.menu_actions().items():
                self._menu(title).addActions(list(actions))
        file_menu.addSeparator()
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setObjectName("settingsAction")
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setObjectName("quitAction")
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = self._menu("&View")
        views = [p for p in self.panels if p.area == Area.VIEWS]
        forms = [p for p in self.panels if p.area == Area.FORMS]
        for i, panel in enumerate(views):
            self._add_show_action(view_menu, panel, panel.title, f"show{panel.title.replace(' ', '')}Action",
                                  f"Ctrl+{i + 1}" if i < 9 else "")
        view_menu.addSeparator()
        for i, panel in enumerate(forms):
            self._add_show_action(view_menu, panel, f"{panel.title} form", f"showForm{i + 1}Action",
                                  f"Ctrl+Shift+{i + 1}" if i < 9 else "")
        for action in self.menuBar().actions():
            self.addAction(action)

    def _add_show_action(self, menu: QMenu, panel: Panel, text: str, name: str, keys: str) -> None:
        action = QAction(text, self)
        action.setObjectName(name)
        if keys:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(lambda _=False, p=panel: self.show_panel(p))
        menu.addAction(action)

    # -- settings --------------------------------------------------------------------
    def settings_dialog(self):
        """A Settings dialog on this window's QSettings (the theme previews as it is chosen)."""
        from menace.models import available_models  # the model menu's names (imports numpy)

        from .widgets.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.qsettings, available_models(), self)
        dialog.themeChosen.connect(self.apply_theme)
        return dialog

    @Slot()
    def open_settings(self) -> None:
        dialog = self.settings_dialog()
        dialog.setModal(True)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    @Slot(str)
    def apply_theme(self, theme: str) -> None:
        """Switch the application to ``theme`` (light, dark or system)."""
        if self.themes is not None:
            self.themes.apply(theme)

    def show_panel(self, panel: Panel) -> None:
        """Bring ``panel``'s tab to the front (a form also gets the keyboard focus)."""
        page = self._containers.get(panel, panel)
        for tabs in (self.view_tabs, self.form_tabs):
            if tabs.indexOf(page) >= 0:
                tabs.setCurrentWidget(page)
                if tabs is self.form_tabs:
                    panel.focusNextChild()

    def panel(self, object_name: str) -> Panel | None:
        """The panel with this ``objectName``, or ``None``."""
        return next((p for p in self.panels if p.objectName() == object_name), None)

    # -- the client ------------------------------------------------------------------
    @Slot(object)
    def attach_client(self, client: MenaceClient) -> None:
        """Show ``client``: follow its events (catching up on what was missed), bind every panel."""
        if self._closed or self._closing:
            return  # a client handed over while the window closes is let go with its source
        self.client = client
        self.bridge.attach(client, self.runner)
        for panel in self.panels:
            panel.bind(client, self.runner)
        if self._freeze_heap:
            self._freeze_heap = False
            QTimer.singleShot(500, freeze_startup_heap)  # after the first paint and loads

    def detach_client(self) -> None:
        """Stop showing the client: forms and jobs are disabled, the views keep their data."""
        self.bridge.detach()
        for panel in self.panels:
            panel.bind(None, None)
        self.client = None

    @Slot(str, str)
    def _on_source_state(self, state: str, detail: str) -> None:
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
        elif state == RECONNECTING:
            self.banner.show_message(
                f"Disconnected from the service ({detail}). Retrying; the window keeps what it shows "
                "and catches up with every event it missed once the service answers again.", "plain"
            )
        elif state == RUNNING:
            self.banner.clear_message()

    # -- settings ------------------------------------------------------------------
    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        for splitter in (self.main_splitter, self.right_splitter):
            s.setValue(f"splitters/{splitter.objectName()}", splitter.saveState())
        s.setValue("tabs/view", self.view_tabs.currentIndex())
        s.setValue("tabs/form", self.form_tabs.currentIndex())
        for panel in self.panels:
            panel.save_state(s)
        s.sync()

    def restore_settings(self) -> None:
        s = self.qsettings
        for key, restore in (("window/geometry", self.restoreGeometry), ("window/state", self.restoreState),
                             ("splitters/mainSplitter", self.main_splitter.restoreState),
                             ("splitters/rightSplitter", self.right_splitter.restoreState)):
            saved = s.value(key, QByteArray(), type=QByteArray)
            if saved and not saved.isEmpty():
                restore(saved)
        theme = gui_settings.read_theme(s)
        if theme != SYSTEM:
            self.apply_theme(theme)
        self.view_tabs.setCurrentIndex(s.value("tabs/view", 0, type=int))
        self.form_tabs.setCurrentIndex(s.value("tabs/form", 0, type=int))
        for panel in self.panels:
            panel.restore_state(s)

    # -- closing -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop listening, finish the worker's task, then shut the source down (it stops the stack).

        Blocks until done; a responsive close (:meth:`begin_close`) does the same without blocking.
        """
        if self._closed:
            return
        self._closed = True
        self._close_timer.stop()
        self._join_preload()
        self.bridge.detach()
        self.runner.shutdown(wait=True)  # a write in progress completes before the stores close
        self.detach_client()
        if self.source is not None:
            self.source.shutdown()

    def is_closing(self) -> bool:
        """True from a responsive close's start until the window has closed."""
        return self._closing and not self._close_done

    def begin_close(self) -> None:
        """Say "stopping…", stop listening and working, then stop the source, all without blocking."""
        if self._closing or self._closed:
            return
        self._closing = True
        self.save_settings()
        self.status.set_state(STOPPING, "closing the monitor")
        self.banner.show_message("Stopping the self-learning service… the window closes when it has "
                                 "stopped (the data already saved is safe).", "plain")
        self.main_splitter.setEnabled(False)
        self.menuBar().setEnabled(False)
        self.bridge.detach()
        self.runner.shutdown_later()  # a write in progress completes before the stores close
        if self.client is None:
            self._stop_source()  # nothing was shown yet, so nothing is being written: stop at once
        self._close_timer.start()

    @Slot()
    def _continue_close(self) -> None:
        if not self._source_stopping:
            if not self.runner.is_drained():
                return  # a write in progress completes before the stores close
            self._stop_source()
        preloading = self._preload is not None and self._preload.is_alive()
        if preloading or not self.runner.is_drained() or (self.source is not None and not self.source.is_stopped()):
            return
        self._close_timer.stop()
        self._closed = True
        self._join_preload()  # it has ended: this only reaps it
        if self.source is not None:
            self.source.shutdown()  # already stopped: joins what is left at once
        self._close_done = True
        self.close()

    def _stop_source(self) -> None:
        self._source_stopping = True
        self.detach_client()
        if self.source is not None:
            self.source.request_stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._responsive_close and not self._close_done:
            event.ignore()
            self.begin_close()
            return
        if not self._closing:
            self.save_settings()
        self.shutdown()
        event.accept()
        self.closed.emit()
