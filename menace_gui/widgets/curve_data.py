"""The learning curve's data, apart from its drawing: no Qt here, numpy arrays that grow.

:class:`LearningCurveData` keeps what the Scores tab draws: the live model's
test-then-train points (``learning:prequential`` payloads and the stored
``prequential_history()``), the evaluations (``learning:evaluated`` and the
stored history) and the events worth a mark on the time line (a model
switch, a drift, a full retrain). Each point gets two x values, its time and
the runs learned so far (``n_total`` counts from zero again for a new model,
so the runs of earlier models are added in front), and a smoothed accuracy
(TensorBoard's debiased exponential moving average), so the chart switches
axes and redraws a million points without a Python loop.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Weight of the moving average (0: no smoothing; TensorBoard's default is 0.6).
DEFAULT_SMOOTHING = 0.6
#: Columns of a test-then-train point, in the order of :attr:`LearningCurveData.columns`.
POINT_COLUMNS = ("ts", "examples", "accuracy", "smoothed", "baseline", "log_loss")  # + "n_total"

MODEL, DRIFT, RETRAIN = "model", "drift", "retrain"


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Marker:
    """A moment worth a mark on the curve: ``kind`` is model, drift or retrain."""

    ts: float
    kind: str
    text: str


class Growing:
    """A float64 array that grows at its end in amortised O(1) (capacity doubles)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        n = len(values)
        if self.size + n > len(self._data):
            bigger = np.empty(max(2 * len(self._data), self.size + n), dtype=np.float64)
            bigger[: self.size] = self._data[: self.size]
            self._data = bigger
        self._data[self.size : self.size + n] = values
        self.size += n

    def replace(self, values: np.ndarray) -> None:
        self.size = 0
        self.extend(np.asarray(values, dtype=np.float64))

    def view(self) -> np.ndarray:
        """The values (a view: valid until the next change)."""
        return self._data[: self.size]


def decimate(x: np.ndarray, columns: list[np.ndarray], x0: float, x1: float,
             bins: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The points with ``x0 <= x <= x1`` (and one more on each side), at most about ``2 * bins + 1``.

    ``x`` is sorted. With more than ``4 * bins`` points in range, each of
    ``bins`` equal runs of points becomes its lowest and highest value (the
    "peak" downsampling pyqtgraph does, done once for every column, which
    share ``x``), plus the last point, so no spike is lost and the line ends
    where the data ends. NaNs are skipped within a run.
    """
    i0 = max(int(np.searchsorted(x, x0, side="left")) - 1, 0)
    i1 = min(int(np.searchsorted(x, x1, side="right")) + 1, len(x))
    n = i1 - i0
    if n <= 4 * bins:
        return x[i0:i1], [c[i0:i1] for c in columns]
    offsets = (np.arange(bins, dtype=np.int64) * n) // bins
    xs = np.empty(2 * bins + 1)
    xs[0:-1:2], xs[1:-1:2], xs[-1] = x[i0 + offsets], x[i0 + offsets], x[i1 - 1]
    out = []
    for column in columns:
        part = column[i0:i1]
        ys = np.empty(2 * bins + 1)
        with np.errstate(invalid="ignore"):
            ys[0:-1:2] = np.fmin.reduceat(part, offsets)
            ys[1:-1:2] = np.fmax.reduceat(part, offsets)
        ys[-1] = part[-1]
        out.append(ys)
    return xs, out


def follow_range(lo: float, hi: float, current: tuple[float, float], min_span: float,
                 ahead: float = 0.1, behind: float = 0.02) -> tuple[float, float] | None:
    """The x range to show data spanning ``lo``..``hi``, or ``None`` to keep ``current``.

    ``current`` is kept while the data stays inside it and fills at least
    half of it, so a growing curve moves its axis once per ``ahead`` of its
    span (room left on the right), not at every new point.
    """
    span = max(hi - lo, min_span)
    c0, c1 = current
    if c0 <= lo and hi <= c1 and (c1 - c0) <= 2 * span + min_span:
        return None
    middle_shift = (span - (hi - lo)) / 2  # a span shorter than the least one: centre it
    return lo - middle_shift - behind * span, hi + middle_shift + ahead * span


def fit_values(lo: float, hi: float, current: tuple[float, float], share: float = 0.1,
               least: float = 0.01) -> tuple[float, float] | None:
    """The y range to show values ``lo``..``hi`` with padding, or ``None`` to keep ``current``.

    Padding is ``share`` of the spread (at least ``least``); ``current`` is
    kept while the values stay inside it and fill at least half of it.
    """
    pad = max(share * (hi - lo), least)
    c0, c1 = current
    if c0 <= lo and hi <= c1 and (hi - lo + 2 * pad) >= 0.5 * (c1 - c0):
        return None
    return lo - pad, hi + pad


def smooth(values: np.ndarray, weight: float, state: tuple[float, int] = (0.0, 0)) -> tuple[np.ndarray, tuple]:
    """TensorBoard's smoothing, a debiased exponential moving average of ``values``.

    ``state`` carries it on from an earlier call; returns the smoothed values and the new state.
    """
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0 or not len(values):
        return values.copy(), state
    last, count = state
    if len(values) > 2000:  # a stored history: one vectorised filter instead of a loop
        from scipy.signal import lfilter

        biased, _ = lfilter([1 - weight], [1, -weight], values, zi=[weight * last])
        steps = np.arange(count + 1, count + len(values) + 1, dtype=np.float64)
        return biased / (1 - weight**steps), (float(biased[-1]), count + len(values))
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        last = weight * last + (1 - weight) * value
        count += 1
        out[i] = last / (1 - weight**count)
    return out, (last, count)


class LearningCurveData:
    """Test-then-train points, evaluations and markers (see the module doc)."""

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING) -> None:
        self.smoothing = smoothing
        self.columns = {name: Growing() for name in (*POINT_COLUMNS, "n_total")}
        self.models: list[tuple[int, str]] = []  # (first point index, model) per run of points
        self._offset = 0.0  # runs learned by the models before the current one
        self._last_total = 0.0
        self._ema = (0.0, 0)
        self.evaluations: list[dict[str, Any]] = []
        self._evaluation_keys: set[tuple] = set()
        self.markers: list[Marker] = []  # drifts and retrains (model switches: see all_markers)
        #: True once the stored history has been read (the chart stops saying "loading").
        self.history_loaded = False

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return self.columns["ts"].size

    def column(self, name: str) -> np.ndarray:
        return self.columns[name].view()

    def is_empty(self) -> bool:
        return not len(self) and not self.evaluations

    def model_at(self, index: int) -> str:
        """The model of point ``index``."""
        starts = [start for start, _ in self.models]
        i = bisect.bisect_right(starts, index) - 1
        return self.models[i][1] if i >= 0 else ""

    def examples_at(self, ts: np.ndarray | list[float]) -> np.ndarray:
        """Runs learned at the times ``ts`` (interpolated between points; 0 before the first)."""
        times, examples = self.column("ts"), self.column("examples")
        if not len(times):
            return np.zeros(len(ts))
        return np.interp(np.asarray(ts, dtype=np.float64), times, examples, left=0.0)

    def nearest(self, ts: float) -> int | None:
        """The index of the point nearest ``ts``, or ``None`` without points."""
        times = self.column("ts")
        if not len(times):
            return None
        i = int(np.searchsorted(times, ts))
        if i >= len(times):
            return len(times) - 1
        if i > 0 and ts - times[i - 1] < times[i] - ts:
            return i - 1
        return i

    # -- test-then-train points ----------------------------------------------------
    def add_points(self, payloads: Iterable[Mapping[str, Any]]) -> int:
        """Append ``learning:prequential`` payloads (newer than the last point); returns how many."""
        rows = []
        last_ts = self.column("ts")[-1] if len(self) else -math.inf
        for payload in payloads:
            row = self._row(payload)
            if row is not None and row[0] > last_ts:
                rows.append(row)
                last_ts = row[0]
        if rows:
            self._append(rows)
        return len(rows)

    def set_history(self, points: Iterable[Mapping[str, Any]]) -> int:
        """Put the stored points older than the first one shown in front; returns how many."""
        self.history_loaded = True
        first = self.column("ts")[0] if len(self) else math.inf
        stored = sorted((row for row in map(self._row, points) if row is not None and row[0] < first),
                        key=lambda row: row[0])
        if not stored:
            return 0
        c = self.columns
        shown = [(c["ts"].view()[i], c["n_total"].view()[i], c["accuracy"].view()[i], c["baseline"].view()[i],
                  c["log_loss"].view()[i], self.model_at(i)) for i in range(len(self))]
        for column in self.columns.values():
            column.size = 0
        self.models.clear()
        self._offset, self._last_total, self._ema = 0.0, 0.0, (0.0, 0)
        self._append([*stored, *shown])
        return len(stored)

    @staticmethod
    def _row(payload: Mapping[str, Any]) -> tuple | None:
        ts, accuracy, total = (finite(payload.get(k)) for k in ("ts", "accuracy", "n_total"))
        if ts is None or accuracy is None or total is None:
            return None
        baseline, log_loss = finite(payload.get("baseline")), finite(payload.get("log_loss"))
        return (ts, total, accuracy, math.nan if baseline is None else baseline,
                math.nan if log_loss is None else log_loss, str(payload.get("model") or ""))

    def _append(self, rows: list[tuple]) -> None:
        start, n = len(self), len(rows)
        examples = np.fromiter((self._examples_of(row, start + i) for i, row in enumerate(rows)),
                               dtype=np.float64, count=n)
        accuracy = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
        smoothed, self._ema = smooth(accuracy, self.smoothing, self._ema)
        values = {
            "ts": np.fromiter((r[0] for r in rows), dtype=np.float64, count=n),
            "n_total": np.fromiter((r[1] for r in rows), dtype=np.float64, count=n),
            "examples": examples, "accuracy": accuracy, "smoothed": smoothed,
            "baseline": np.fromiter((r[3] for r in rows), dtype=np.float64, count=n),
            "log_loss": np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
        }
        for name, array in values.items():
            self.columns[name].extend(array)

    def _examples_of(self, row: tuple, index: int) -> float:
        """Runs learned up to this point: ``n_total`` plus the runs of the models before."""
        total, model = row[1], row[5]
        previous = self.models[-1][1] if self.models else None
        if previous != model:
            self.models.append((index, model))
        if total < self._last_total or (previous is not None and previous != model):
            self._offset += self._last_total
        self._last_total = total
        return self._offset + total

    # -- evaluations and markers -------------------------------------------------
    def add_evaluation(self, entry: Mapping[str, Any]) -> bool:
        """Add a ``learning:evaluated`` payload or a stored evaluation; ``False`` if bad or known.

        The same evaluation arrives as a stored entry and as an event: the two
        are merged (the event adds ``trigger`` and ``job_id``, the entry the folds).
        """
        ts, cv, holdout = (finite(entry.get(k)) for k in ("ts", "cv_score", "holdout_score"))
        if ts is None or cv is None or holdout is None:
            return False
        key = (round(ts, 3), round(cv, 9), round(holdout, 9))
        if key in self._evaluation_keys:
            known = next((e for e in self.evaluations if e["_key"] == key), None)
            if known is not None:
                known.update({k: v for k, v in entry.items() if k not in known})
            return False
        self._evaluation_keys.add(key)
        record = {**entry, "ts": ts, "cv_score": cv, "holdout_score": holdout, "_key": key}
        bisect.insort(self.evaluations, record, key=lambda e: e["ts"])
        return True

    def evaluation_times(self) -> np.ndarray:
        return np.fromiter((e["ts"] for e in self.evaluations), dtype=np.float64, count=len(self.evaluations))

    def evaluation_values(self, key: str) -> np.ndarray:
        """``key`` of every evaluation (NaN where missing)."""
        return np.asarray([finite(e.get(key)) if finite(e.get(key)) is not None else math.nan
                           for e in self.evaluations], dtype=np.float64)

    def add_marker(self, ts: float, kind: str, text: str) -> Marker:
        marker = Marker(float(ts), kind, text)
        bisect.insort(self.markers, marker, key=lambda m: m.ts)
        return marker

    def all_markers(self) -> list[Marker]:
        """The drifts and retrains, and a model switch wherever the points change model, by time."""
        times = self.column("ts")
        switches = [
            Marker(float(times[start]), MODEL, f"{self.models[i - 1][1]} → {model}")
            for i, (start, model) in enumerate(self.models) if i > 0
        ]
        return sorted([*self.markers, *switches], key=lambda m: m.ts)

    # -- settings --------------------------------------------------------------------
    def set_smoothing(self, weight: float) -> None:
        """Smooth again with ``weight`` (0..0.99)."""
        self.smoothing = min(max(float(weight), 0.0), 0.99)
        smoothed, self._ema = smooth(self.column("accuracy"), self.smoothing)
        self.columns["smoothed"].replace(smoothed)
