"""The Settings dialog: the model, the evaluation policy, the test-then-train window, the theme.

Everything is kept in QSettings (:mod:`menace_gui.gui_settings`). The
service's settings apply at the next start of the monitor's own service, as
the dialog says; the theme applies at once (``themeChosen``).
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from menace import config

from .. import gui_settings
from ..gui_settings import ServicePreferences
from ..theme import DARK, LIGHT, SYSTEM

APPLY_NOTE = (
    "The model, evaluation, drift and test-then-train settings apply at the next start of the "
    "monitor's own service (close and open the monitor again); a command-line flag or an environment "
    "variable given at start wins over them. They do not change a service the monitor connects to. "
    "The theme applies at once."
)


def _spin(name: str, minimum: int, maximum: int, suffix: str, special: str, tip: str, parent: QWidget) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setObjectName(name)
    spin.setRange(minimum, maximum)
    spin.setGroupSeparatorShown(True)
    spin.setSuffix(suffix)
    if special:
        spin.setSpecialValueText(special)
    spin.setToolTip(tip)
    return spin


class SettingsDialog(QDialog):
    """Edit the preferences in ``settings``; OK saves them, Cancel leaves them.

    ``models``: the model names to offer (the service's menu).
    """

    themeChosen = Signal(str)

    def __init__(self, settings: QSettings, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Menace settings")
        self.settings = settings
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("settingsModelCombo")
        self.model_combo.addItem("the model used last (an auto-train's choice)", "")
        for model in models:
            self.model_combo.addItem(model, model)
        self.model_combo.setToolTip("The model the service starts with")
        self.eval_every = _spin("settingsEvalEverySpin", 0, 10_000_000, " runs", "never",
                                "Evaluate after this many runs learned (never: off)", self)
        self.eval_interval = _spin("settingsEvalIntervalSpin", 0, 7 * 86_400, " s", "never",
                                   "Evaluate this often while the model learns (never: off)", self)
        self.eval_max = _spin("settingsEvalMaxSpin", 0, 100_000_000, " runs", "all runs",
                              "A periodic evaluation reads at most this many of the newest runs (all: no cap)", self)
        self.prequential = _spin("settingsPrequentialSpin", 1, 1_000_000, " runs", "",
                                 "Runs in the rolling test-then-train accuracy of the learning curve", self)
        self.drift_combo = QComboBox(self)
        self.drift_combo.setObjectName("settingsDriftCombo")
        self.drift_combo.addItem("retrain on the runs since the change", "retrain")
        self.drift_combo.addItem("only report it", "none")
        self.theme_combo = QComboBox(self)
        self.theme_combo.setObjectName("settingsThemeCombo")
        for label, theme in (("as the system", SYSTEM), ("light", LIGHT), ("dark", DARK)):
            self.theme_combo.addItem(label, theme)
        self.theme_combo.currentIndexChanged.connect(lambda _: self.themeChosen.emit(self.theme_combo.currentData()))
        self._lay_out()
        self.load()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("&Model:", self.model_combo)
        form.addRow("&Evaluate every:", self.eval_every)
        form.addRow("…or every:", self.eval_interval)
        form.addRow("Evaluate on at most:", self.eval_max)
        form.addRow("On &drift:", self.drift_combo)
        form.addRow("&Test-then-train window:", self.prequential)
        form.addRow("T&heme:", self.theme_combo)
        note = QLabel(APPLY_NOTE, self)
        note.setObjectName("settingsApplyNote")
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        self.buttons.setObjectName("settingsButtons")
        for button, name in ((QDialogButtonBox.StandardButton.Ok, "settingsOkButton"),
                             (QDialogButtonBox.StandardButton.Cancel, "settingsCancelButton"),
                             (QDialogButtonBox.StandardButton.RestoreDefaults, "settingsDefaultsButton")):
            self.buttons.button(button).setObjectName(name)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 60)

    def show_preferences(self, p: ServicePreferences) -> None:
        index = self.model_combo.findData(p.model)
        if index < 0:  # a model this menu does not list: keep it selectable
            self.model_combo.addItem(p.model, p.model)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(index)
        self.eval_every.setValue(p.eval_every_examples)
        self.eval_interval.setValue(p.eval_every_seconds)
        self.eval_max.setValue(p.eval_max_examples)
        self.prequential.setValue(p.prequential_window)
        self.drift_combo.setCurrentIndex(max(0, self.drift_combo.findData(p.drift_policy)))

    def preferences(self) -> ServicePreferences:
        """What the dialog shows now."""
        return ServicePreferences(
            model=str(self.model_combo.currentData() or ""),
            eval_every_examples=self.eval_every.value(),
            eval_every_seconds=self.eval_interval.value(),
            eval_max_examples=self.eval_max.value(),
            prequential_window=self.prequential.value(),
            drift_policy=str(self.drift_combo.currentData() or config.DEFAULT_DRIFT_POLICY),
        )

    def load(self) -> None:
        self.show_preferences(gui_settings.read_preferences(self.settings))
        self._initial_theme = gui_settings.read_theme(self.settings)
        self.theme_combo.blockSignals(True)
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(self._initial_theme)))
        self.theme_combo.blockSignals(False)

    @Slot()
    def restore_defaults(self) -> None:
        self.show_preferences(ServicePreferences())
        self.theme_combo.setCurrentIndex(self.theme_combo.findData(SYSTEM))

    def accept(self) -> None:
        gui_settings.write_preferences(self.settings, self.preferences())
        self.settings.setValue(gui_settings.THEME_KEY, self.theme_combo.currentData())
        self.settings.sync()
        super().accept()

    def reject(self) -> None:
        if self.theme_combo.currentData() != self._initial_theme:
            self.themeChosen.emit(self._initial_theme)  # the preview goes back
        super().reject()
