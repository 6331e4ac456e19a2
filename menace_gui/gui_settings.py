"""What the Settings dialog keeps in QSettings, and how it is read back.

Values are always read with ``type=`` (an INI file gives strings back in a
new process otherwise). The service's settings (model, evaluation policy,
test-then-train window, drift policy) apply when the monitor next starts its
local stack: :func:`service_overrides` turns them into
:class:`menace.config.Settings` fields, for those the command line and the
environment leave unset (a flag beats the environment, which beats these,
which beat the defaults). The theme applies at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from PySide6.QtCore import QSettings

from menace import config

from .theme import SYSTEM, THEMES

THEME_KEY = "appearance/theme"


@dataclass(frozen=True)
class ServicePreferences:
    """The service settings the dialog edits (``model`` "": the model used last)."""

    model: str = ""
    eval_every_examples: int = config.DEFAULT_EVAL_EVERY
    eval_every_seconds: int = int(config.DEFAULT_EVAL_INTERVAL)
    eval_max_examples: int = config.DEFAULT_EVAL_MAX_EXAMPLES
    prequential_window: int = config.DEFAULT_PREQUENTIAL_WINDOW
    drift_policy: str = config.DEFAULT_DRIFT_POLICY


#: Each preference: its QSettings key, the flag that overrides it and its environment variable.
SOURCES = {
    "model": ("service/model", "model", "MENACE_MODEL"),
    "eval_every_examples": ("service/eval_every_examples", "eval_every", "MENACE_EVAL_EVERY"),
    "eval_every_seconds": ("service/eval_every_seconds", "eval_interval", "MENACE_EVAL_INTERVAL"),
    "eval_max_examples": ("service/eval_max_examples", "eval_max_examples", "MENACE_EVAL_MAX_EXAMPLES"),
    "prequential_window": ("service/prequential_window", "prequential_window", "MENACE_PREQUENTIAL_WINDOW"),
    "drift_policy": ("service/drift_policy", "drift_policy", "MENACE_DRIFT_POLICY"),
}


def read_preferences(settings: QSettings) -> ServicePreferences:
    """The stored service preferences (defaults for what is missing or unreadable)."""
    defaults = ServicePreferences()
    values: dict[str, Any] = {}
    for f in fields(ServicePreferences):
        default = getattr(defaults, f.name)
        value = settings.value(SOURCES[f.name][0], default, type=type(default))
        values[f.name] = value if isinstance(value, type(default)) else default
    if values["drift_policy"] not in config.DRIFT_POLICIES:
        values["drift_policy"] = defaults.drift_policy
    for name in ("eval_every_examples", "eval_every_seconds", "eval_max_examples"):
        values[name] = max(0, values[name])
    values["prequential_window"] = max(1, values["prequential_window"])
    return ServicePreferences(**values)


def write_preferences(settings: QSettings, preferences: ServicePreferences) -> None:
    for f in fields(ServicePreferences):
        settings.setValue(SOURCES[f.name][0], getattr(preferences, f.name))


def stored_keys(settings: QSettings) -> set[str]:
    """The preferences the operator has saved (the others are left to the defaults)."""
    return {name for name, (key, _, _) in SOURCES.items() if settings.contains(key)}


def service_overrides(settings: QSettings, args: Any = None, environ: Any = None) -> dict[str, Any]:
    """Stored preferences as parser attributes, for those no flag (in ``args``) or variable sets.

    Returns ``{"model": "rf", "eval_every": 500, ...}`` (the argparse names
    of ``menace-gui``'s flags), to be set on ``args`` before the settings are made.
    """
    environ = os.environ if environ is None else environ
    preferences = read_preferences(settings)
    saved = stored_keys(settings)
    overrides: dict[str, Any] = {}
    for name, (_, flag, variable) in SOURCES.items():
        if name not in saved or environ.get(variable) or (args is not None and getattr(args, flag, None) is not None):
            continue
        value = getattr(preferences, name)
        if name == "model" and not value:
            continue  # "the model used last" is the service's own default
        overrides[flag] = value
    return overrides


def read_theme(settings: QSettings) -> str:
    theme = settings.value(THEME_KEY, SYSTEM, type=str)
    return theme if theme in THEMES else SYSTEM
