"""The one small protocol every panel of the main window follows.

A panel is a widget that says where it goes (``area``) and under what title,
and that the window then only talks to through :class:`Panel`'s methods: bind
it to a client, hand it each batch of events, save and restore its state,
collect its menu actions, and let it finish building after the first paint
(a panel with heavy parts, the charts, builds them then). The window loops over its list of panels for each
of these, as PyMeasure's ``ManagedWindowBase`` loops over its ``widget_list``,
so adding a panel is one entry in that list (``main_window.default_panels``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QSplitter

from menace.client import MenaceClient
from menace.events import Event

from .task_runner import TaskRunner


class Area(StrEnum):
    """Where the window puts a panel."""

    JOBS = "jobs"  # a titled box at the top left
    FORMS = "forms"  # a tab under the jobs (Ctrl+Shift+<n> shows it)
    VIEWS = "views"  # a tab at the top right (Ctrl+<n> shows it)
    LOG = "log"  # a titled box under the views
    STATUS = "status"  # the status bar (the window's own StatusPanel)


@runtime_checkable
class Panel(Protocol):
    """What the main window needs from a panel (a ``QWidget`` with an ``objectName``)."""

    #: The tab or box title.
    title: str
    area: Area

    def objectName(self) -> str: ...

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        """Use ``client``, calling it on ``runner``; ``None``: the service is not running."""
        ...

    def handle_events(self, batch: Sequence[Event]) -> None:
        """One batch of events, oldest first (in the GUI thread; must be quick)."""
        ...

    def save_state(self, settings: QSettings) -> None:
        """Keep what the operator set (splitters, check boxes) in ``settings``."""
        ...

    def restore_state(self, settings: QSettings) -> None:
        """Set it again from ``settings`` (read with ``type=``: INI gives strings back)."""
        ...

    def menu_actions(self) -> Mapping[str, Sequence[QAction]]:
        """Actions for the window's menus, by menu title (``"&File"``, ``"&Jobs"``...)."""
        ...

    def finish_building(self) -> None:
        """Build what the window's first paint does not need (called once, right after it)."""
        ...


class PanelDefaults:
    """Mixin with the protocol's methods doing nothing: a panel overrides what it needs."""

    def bind(self, client: MenaceClient | None, runner: TaskRunner | None) -> None:
        pass

    def handle_events(self, batch: Sequence[Event]) -> None:
        pass

    def save_state(self, settings: QSettings) -> None:
        pass

    def restore_state(self, settings: QSettings) -> None:
        pass

    def menu_actions(self) -> Mapping[str, Sequence[QAction]]:
        return {}

    def finish_building(self) -> None:
        pass


def save_splitter(settings: QSettings, splitter: QSplitter) -> None:
    """Keep ``splitter``'s sizes under ``splitters/<its objectName>``."""
    settings.setValue(f"splitters/{splitter.objectName()}", splitter.saveState())


def restore_splitter(settings: QSettings, splitter: QSplitter) -> None:
    """Set ``splitter``'s sizes again, if they were kept."""
    saved = settings.value(f"splitters/{splitter.objectName()}", QByteArray(), type=QByteArray)
    if saved and not saved.isEmpty():
        splitter.restoreState(saved)
