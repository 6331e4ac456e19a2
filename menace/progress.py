"""Progress reports and cancellation for long work (training, evaluation, jobs).

Long calls take ``progress(fraction 0..1, message)`` and a ``cancel`` event
(``threading.Event``); they report as they go and raise
:class:`~menace.errors.TrainingCancelled` once ``cancel`` is set. A broken
progress callback is logged and never breaks the work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .errors import FieldError, TrainingCancelled

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def report(progress: Progress | None, fraction: float, message: str) -> None:
    """Call ``progress`` with ``fraction`` clipped to 0..1; swallow (and log) its errors."""
    if progress is None:
        return
    try:
        progress(min(max(float(fraction), 0.0), 1.0), message)
    except Exception:  # a broken progress bar must not break training
        logger.exception("progress callback failed")


def within(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` for a sub-task: its fraction 0..1 is mapped onto ``lo..hi``."""
    if progress is None:
        return None
    return lambda fraction, message: report(progress, lo + (hi - lo) * fraction, message)


def check_hooks(progress: Any, cancel: Any) -> None:
    """``ValueError`` unless ``progress`` is callable and ``cancel`` event-like (or None)."""
    if progress is not None and not callable(progress):
        raise FieldError(
            "progress", f"progress must be callable(fraction, message), got {type(progress).__name__}"
        )
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise FieldError("cancel", f"cancel must be a threading.Event, got {type(cancel).__name__}")


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`~menace.errors.TrainingCancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("cancelled; the live model is unchanged")
