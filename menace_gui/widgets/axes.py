"""Axes a person reads at a glance: times of day with the date, counts with separators.

pyqtgraph's ``DateAxisItem`` picks good tick positions at every span but
labels seconds as ``22.000 23.000`` (seconds and milliseconds without the
minute). :class:`TimeAxis` keeps its positions and labels them by the
distance between ticks: ``14:05:10`` for seconds, ``14:05`` for minutes,
``Tue 24 Nov`` for days, and names the date of the shown span in the axis
title. :class:`CountAxis` writes ``12,500`` instead of ``1.25e+04``.
"""

from __future__ import annotations

import time

import pyqtgraph as pg

DAY = 86_400.0


def tick_format(spacing: float) -> str:
    """The ``strftime`` format for ticks ``spacing`` seconds apart."""
    if spacing >= 28 * DAY:
        return "%b %Y"
    if spacing >= DAY:
        return "%a %d %b"
    if spacing >= 60:
        return "%H:%M"
    return "%H:%M:%S"


def tick_label(ts: float, spacing: float) -> str:
    """One tick: the time of day (with tenths of seconds below 1 s spacing), or the day at midnight."""
    local = time.localtime(ts)
    if 60 <= spacing < DAY and local.tm_hour == 0 and local.tm_min == 0:
        return time.strftime("%d %b", local)  # a new day among hours: say which
    text = time.strftime(tick_format(spacing), local)
    if spacing < 1:
        text += f".{int(round((ts % 1) * 10)) % 10}"
    return text


def span_title(start: float, end: float, what: str = "time") -> str:
    """``time (local), 2026-11-24`` or ``time (local), 2026-11-24 – 2026-11-26``."""
    try:
        first = time.strftime("%Y-%m-%d", time.localtime(start))
        last = time.strftime("%Y-%m-%d", time.localtime(end))
    except (OverflowError, OSError, ValueError):
        return f"{what} (local)"
    return f"{what} (local), {first}" + ("" if first == last else f" – {last}")


class TimeAxis(pg.DateAxisItem):
    """A date axis labelled by tick distance, with the date of the shown span in its title."""

    def __init__(self, orientation: str = "bottom", what: str = "time", **kwargs) -> None:
        super().__init__(orientation=orientation, **kwargs)
        self.what = what
        self._shown: tuple | None = None

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        labels = []
        for value in values:
            try:
                labels.append(tick_label(float(value), float(spacing)))
            except (OverflowError, OSError, ValueError):
                labels.append("")
        return labels

    def show_span(self, start: float, end: float) -> None:
        """Name the date(s) of ``start``..``end`` in the axis title (call on a range change)."""
        days = (time.localtime(start)[:3], time.localtime(end)[:3]) if end > start > 0 else None
        if days != self._shown:
            self._shown = days
            self.setLabel(span_title(start, end, self.what))


class CountAxis(pg.AxisItem):
    """Whole numbers with thousands separators (no SI prefix, no exponent)."""

    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation=orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if spacing >= 1:
            return [f"{value:,.0f}" for value in values]
        return [f"{value:,.2f}" for value in values]
