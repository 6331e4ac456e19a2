"""Panels: one protocol, and a new panel is one entry in the window's list."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu

from menace_gui.client_source import FixedClientSource
from menace_gui.main_window import MainWindow, default_panels
from menace_gui.panels import Area, Panel, PanelDefaults


class ProbePanel(PanelDefaults, QLabel):
    """A panel that notes what the window does to it."""

    title = "Probe"
    area = Area.VIEWS

    def __init__(self) -> None:
        super().__init__("probe")
        self.setObjectName("probePanel")
        self.bound: list = []
        self.topics: list[str] = []
        self.restored = None
        self.action = QAction("Probe it", self)
        self.action.setObjectName("probeItAction")

    def bind(self, client, runner) -> None:
        self.bound.append(client)

    def handle_events(self, batch) -> None:
        self.topics.extend(e.topic for e in batch)

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("probe/answer", 42)

    def restore_state(self, settings: QSettings) -> None:
        self.restored = settings.value("probe/answer", 0, type=int)

    def menu_actions(self):
        return {"&Probe": [self.action]}


def test_every_default_panel_follows_the_protocol(qtbot):
    panels = default_panels(None)
    for panel in panels:
        qtbot.addWidget(panel)
        assert isinstance(panel, Panel), type(panel).__name__
        assert panel.objectName() and panel.title and panel.area in Area
    assert [p.title for p in panels if p.area == Area.VIEWS] == ["Scores", "Evaluations", "Pathways", "Memory"]
    assert [p.title for p in panels if p.area == Area.FORMS] == ["Log pathway", "GPT interaction", "Predict"]


def test_a_new_panel_is_one_entry_in_the_list(qtbot, tmp_path, fake_client):
    ini = str(tmp_path / "gui.ini")
    probe = ProbePanel()
    window = MainWindow(FixedClientSource(fake_client), QSettings(ini, QSettings.Format.IniFormat),
                        panels=[*default_panels(None), probe])
    qtbot.addWidget(window)
    assert window.panel("probePanel") is probe and probe.restored == 0
    assert window.view_tabs.tabText(window.view_tabs.indexOf(probe)) == "Probe"
    show = window.findChild(QAction, "showProbeAction")
    assert show.shortcut().toString() == "Ctrl+5"
    show.trigger()
    assert window.view_tabs.currentWidget() is probe
    assert probe.action in window.findChild(QMenu, "probeMenu").actions()
    assert probe.bound == [fake_client]
    fake_client.publish("test:probe", {})
    qtbot.waitUntil(lambda: "test:probe" in probe.topics)
    window.close()
    assert probe.bound == [fake_client, None]
    assert QSettings(ini, QSettings.Format.IniFormat).value("probe/answer", 0, type=int) == 42
