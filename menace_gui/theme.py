"""Light, dark or the system's look, and colours that read on either.

Every colour a widget draws with comes from here and is picked for the
palette in use (:func:`is_dark`): the series of the charts, the reds and
greens of messages, links. Widgets ask again on a ``PaletteChange`` event,
so switching the theme in the Settings dialog recolours everything at once.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

LIGHT, DARK, SYSTEM = "light", "dark", "system"
THEMES = (SYSTEM, LIGHT, DARK)

#: Chart series: (on a light background, on a dark background). Okabe-Ito hues,
#: darker on light and lighter on dark, each at least 4.5:1 against its background.
_SERIES = {
    "accuracy": ("#0060a8", "#6cb8f0"),
    "baseline": ("#5f5f5f", "#b0b0b0"),
    "cv": ("#a04a00", "#f5a35c"),
    "holdout": ("#006e4e", "#3fd1a4"),
    "drift": ("#b00020", "#ff8a80"),
    "retrain": ("#5f5f5f", "#b0b0b0"),
    "model": ("#7b2d8e", "#d59cf0"),
    "incremental": ("#0060a8", "#6cb8f0"),
    "full": ("#a04a00", "#f5a35c"),
    "stored": ("#5f5f5f", "#b0b0b0"),
    "error": ("#b00020", "#ff8a80"),
    "ok": ("#1b5e20", "#81c784"),
    "link": ("#0b57d0", "#8ab4f8"),
    "up": ("#1b5e20", "#81c784"),
    "down": ("#b00020", "#ff8a80"),
}


def is_dark(palette: QPalette) -> bool:
    """Whether the palette's window colour is dark."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def color(name: str, palette: QPalette) -> QColor:
    """The colour called ``name`` (see ``_SERIES``) that reads on ``palette``."""
    light, dark = _SERIES[name]
    return QColor(dark if is_dark(palette) else light)


def dark_palette() -> QPalette:
    """A dark palette for the Fusion style, links and disabled text included."""
    p = QPalette()
    for role, value in (
        (QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
        (QPalette.ColorRole.Base, "#1e1e1e"), (QPalette.ColorRole.AlternateBase, "#262626"),
        (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#353535"),
        (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#3d7bd9"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#353535"),
        (QPalette.ColorRole.ToolTipText, "#e6e6e6"), (QPalette.ColorRole.PlaceholderText, "#9a9a9a"),
        (QPalette.ColorRole.Link, _SERIES["link"][1]), (QPalette.ColorRole.LinkVisited, "#c58af9"),
        (QPalette.ColorRole.Light, "#505050"), (QPalette.ColorRole.Midlight, "#404040"),
        (QPalette.ColorRole.Mid, "#303030"), (QPalette.ColorRole.Dark, "#202020"),
        (QPalette.ColorRole.Shadow, "#000000"), (QPalette.ColorRole.BrightText, "#ffffff"),
    ):
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f7f7f"))
    return p


def light_palette() -> QPalette:
    """A light palette (Fusion's own), with a link colour that reads on it."""
    from PySide6.QtWidgets import QStyleFactory

    style = QStyleFactory.create("Fusion")
    p = QPalette(style.standardPalette()) if style is not None else QPalette()
    p.setColor(QPalette.ColorRole.Link, QColor(_SERIES["link"][0]))
    return p


class ThemeSwitcher:
    """Applies a theme to the application, remembering the system's palette and style.

    ``system`` gives back what the application had before any switch; light and
    dark use the Fusion style (the native styles ignore much of a palette).
    """

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self._system_palette = QPalette(app.palette())
        self._system_style = app.style().name()
        self.theme = SYSTEM

    def apply(self, theme: str) -> None:
        """Switch to ``theme`` (one of :data:`THEMES`; anything else counts as system)."""
        theme = theme if theme in THEMES else SYSTEM
        if theme == SYSTEM:
            self.app.setStyle(self._system_style)
            self.app.setPalette(self._system_palette)
        else:
            self.app.setStyle("Fusion")
            self.app.setPalette(dark_palette() if theme == DARK else light_palette())
        self.theme = theme
