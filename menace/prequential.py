"""Test-then-train (prequential) scores and drift detection of a model that learns online.

Every run an incremental update learns is first predicted by the model as it
was (river's progressive validation, MOA's prequential evaluation): the
prediction is scored against the run's label, then the model learns it.
:class:`PrequentialScore` keeps the figures over the last ``window`` runs and
since the start:

* ``accuracy``: share of runs whose prediction (``p >= 0.5``) was right;
* ``baseline``: the accuracy of always guessing the window's majority class,
  so an operator sees whether the model beats guessing;
* ``log_loss`` (probabilities clipped to ``[1e-15, 1 - 1e-15]``) and
  ``brier`` (mean squared error of the probability).

:class:`DriftMonitor` runs ADWIN (``river.drift.ADWIN``: adaptive windowing,
Bifet and Gavaldà 2007; a maintained implementation, 0.5 µs an update) over
the stream of prediction errors (0 right, 1 wrong). ADWIN keeps a window of
recent errors and cuts it where its two parts differ by more than chance
allows (confidence ``delta``); a cut where the error *rose* is a drift. The
monitor then reports the error rate before and after the cut and how many
runs lie after it. A cut where the error fell (the model improved) is not a
drift. river is imported on first use, not by ``import menace``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import append_line, private_dir, read_lines

logger = logging.getLogger(__name__)

#: Runs in the rolling window, by default.
DEFAULT_WINDOW = 500
#: ADWIN's confidence: lower finds fewer, surer drifts.
DEFAULT_DELTA = 0.002
#: Runs scored before a drift may be reported (early learning always looks like a change).
MIN_RUNS_FOR_DRIFT = 200
#: Least time between two updates of an engine's test-then-train gauges, seconds.
GAUGE_INTERVAL = 0.5
#: A model whose error since it was made exceeds guessing's by this much is drifted too.
WORSE_THAN_GUESSING = 0.1
#: A model grown from nothing by updates alone is watched for drift (ADWIN, and held to
#: guessing) only after this many runs: its first hundreds of runs are its learning, not a drift.
FRESH_MODEL_RUNS = 1000
_EPS = 1e-15


class PrequentialScore:
    """Rolling and running test-then-train figures of one model (see the module doc)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        self.window = window
        self._y = np.zeros(window, dtype=np.int8)
        self._p = np.zeros(window, dtype=np.float64)
        self._next = 0
        self._filled = 0
        self.n_total = 0
        self._correct_total = 0
        self._positives_total = 0
        self._log_loss_total = 0.0
        self._brier_total = 0.0

    def update(self, y: np.ndarray, proba: np.ndarray) -> None:
        """Score a batch: ``y`` the 0/1 labels, ``proba`` the predicted P(success) before learning."""
        y = np.asarray(y, dtype=np.int8)
        p = np.clip(np.nan_to_num(np.asarray(proba, dtype=np.float64), nan=0.5), 0.0, 1.0)
        if len(y) != len(p):
            raise ValueError(f"y and proba differ in length ({len(y)} and {len(p)})")
        if not len(y):
            return
        self.n_total += len(y)
        self._correct_total += int(np.sum((p >= 0.5) == (y == 1)))
        self._positives_total += int(np.sum(y))
        self._log_loss_total += float(np.sum(_log_loss(y, p)))
        self._brier_total += float(np.sum((p - y) ** 2))
        if len(y) >= self.window:
            self._y[:] = y[-self.window :]
            self._p[:] = p[-self.window :]
            self._next, self._filled = 0, self.window
            return
        end = self._next + len(y)
        if end <= self.window:
            self._y[self._next : end], self._p[self._next : end] = y, p
        else:
            first = self.window - self._next
            self._y[self._next :], self._p[self._next :] = y[:first], p[:first]
            self._y[: end - self.window], self._p[: end - self.window] = y[first:], p[first:]
        self._next = end % self.window
        self._filled = min(self.window, self._filled + len(y))

    def snapshot(self) -> dict[str, Any] | None:
        """The current figures, or ``None`` before the first scored run."""
        if not self._filled:
            return None
        y, p = self._y[: self._filled], self._p[: self._filled]
        positives = float(np.mean(y))
        return {
            "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
            "baseline": max(positives, 1.0 - positives),
            "log_loss": float(np.mean(_log_loss(y, p))),
            "brier": float(np.mean((p - y) ** 2)),
            "n_window": int(self._filled),
            "n_total": int(self.n_total),
            "accuracy_total": self._correct_total / self.n_total,
            "baseline_total": max(self._positives_total, self.n_total - self._positives_total) / self.n_total,
            "log_loss_total": self._log_loss_total / self.n_total,
        }

    # -- saved with the model, so a restart continues the curve -----------------------------
    def state(self) -> dict[str, Any]:
        order = np.r_[self._next : self._filled, 0 : self._next] if self._filled == self.window else np.arange(self._filled)
        return {
            "window": self.window,
            "y": self._y[order].astype(int).tolist(),
            "p": [float(v) for v in self._p[order]],
            "n_total": self.n_total,
            "correct_total": self._correct_total,
            "positives_total": self._positives_total,
            "log_loss_total": self._log_loss_total,
            "brier_total": self._brier_total,
        }

    @classmethod
    def from_state(cls, state: Any, window: int = DEFAULT_WINDOW) -> PrequentialScore:
        """A score restored from :meth:`state`; ``ValueError`` for anything malformed."""
        if not isinstance(state, dict):
            raise ValueError(f"prequential state must be a dict, got {type(state).__name__}")
        score = cls(window)
        y, p = state.get("y", []), state.get("p", [])
        if not isinstance(y, list) or not isinstance(p, list) or len(y) != len(p):
            raise ValueError("prequential state: y and p must be lists of one length")
        if any(v not in (0, 1) for v in y) or any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in p):
            raise ValueError("prequential state: labels must be 0/1 and probabilities in [0, 1]")
        totals = [state.get(k) for k in ("n_total", "correct_total", "positives_total")]
        losses = [state.get(k) for k in ("log_loss_total", "brier_total")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in totals) or not all(
            isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in losses
        ):
            raise ValueError("prequential state: totals must be non-negative numbers")
        if totals[1] > totals[0] or totals[2] > totals[0] or len(y) > totals[0]:
            raise ValueError("prequential state: totals do not add up")
        if y:
            score.update(np.asarray(y), np.asarray(p, dtype=np.float64))
        score.n_total, score._correct_total, score._positives_total = totals
        score._log_loss_total, score._brier_total = float(losses[0]), float(losses[1])
        return score


def _log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1.0 - p))


@dataclass(frozen=True)
class Drift:
    """A rise of the error rate: ``error_before`` / ``error_after`` (0..1) around the cut,
    ``runs_after`` runs since it, found after ``n_examples`` scored runs (counted since the
    model's figures began, see :class:`OnlineQuality`)."""

    error_before: float
    error_after: float
    runs_after: int
    n_examples: int


def preload_drift_detector() -> None:
    """Import river's ADWIN now (about 0.1 s with the GIL held), so that the first drift
    check does not stall every thread of a service in the middle of a stream of runs.
    Without river, nothing (the monitor says so when it is used)."""
    try:
        import river.drift  # noqa: F401
    except ImportError:  # pragma: no cover - river is a dependency
        pass


class DriftMonitor:
    """ADWIN over a model's prediction errors; :meth:`update` returns a :class:`Drift` or ``None``."""

    def __init__(self, delta: float = DEFAULT_DELTA, min_runs: int = MIN_RUNS_FOR_DRIFT) -> None:
        self.delta = delta
        self.min_runs = min_runs
        self.seen = 0
        self._errors = 0
        self._positives = 0
        self._adwin: Any = None
        self._available = True

    def _detector(self) -> Any:
        if self._adwin is None and self._available:
            try:
                from river.drift import ADWIN
            except ImportError:  # pragma: no cover - river is a dependency
                logger.warning("river is not installed: drift detection is off (pip install river)")
                self._available = False
                return None
            self._adwin = ADWIN(delta=self.delta)
        return self._adwin

    def reset(self) -> None:
        """Start afresh (the model was replaced)."""
        self._adwin = None
        self.seen = self._errors = self._positives = 0

    def update(self, errors: np.ndarray, labels: np.ndarray | None = None) -> Drift | None:
        """Feed 0/1 errors in order (and the runs' labels); the first rise of the error rate
        found, if any.

        Besides ADWIN's cuts, a model that, since it was made, errs more than
        guessing the majority class would (by :data:`WORSE_THAN_GUESSING`) is
        reported too, with all its runs as the runs after: a model retrained
        on the wrong runs shows a steady, high error that has no cut to find.
        """
        errors = np.asarray(errors, dtype=np.int8)
        found = self._adwin_update(errors)
        if labels is not None and found is None:
            found = self._guessing_check(errors, np.asarray(labels))
        return found

    def _guessing_check(self, errors: np.ndarray, labels: np.ndarray) -> Drift | None:
        self._errors += int(errors.sum())
        self._positives += int(labels.sum())
        n = self.seen
        if n < self.min_runs:
            return None
        error, guessing = self._errors / n, min(self._positives, n - self._positives) / n
        if error <= guessing + WORSE_THAN_GUESSING:
            return None
        drift = Drift(float(guessing), float(error), n, n)
        self.reset()  # reported once; the policy acts on it
        return drift

    def _adwin_update(self, errors: np.ndarray) -> Drift | None:
        adwin = self._detector()
        if adwin is None:
            self.seen += len(errors)
            return None
        # The window's width and mean are read once per batch, not per run: between
        # cuts the window only grows by one run per update.
        width, mean = adwin.width, adwin.estimation
        found = None
        total = mean * width
        values = errors.tolist()
        for i, error in enumerate(values):
            adwin.update(error)
            total += error
            if not adwin.drift_detected:
                continue
            kept, after = adwin.width, adwin.estimation
            dropped = width + i + 1 - kept
            seen = self.seen + i + 1
            if found is None and dropped > 0:
                before = (total - after * kept) / dropped
                if after > before and seen >= self.min_runs:
                    found = Drift(float(min(max(before, 0.0), 1.0)), float(after), int(kept), seen)
            width, total = kept - (i + 1), after * kept  # go on from the cut window
        self.seen += len(values)
        return found


class OnlineQuality:
    """One engine's test-then-train bookkeeping: the figures, the drift monitor, the kept curve.

    :meth:`score` is called by each incremental update with the model as it
    was, before it learns; it updates the figures and the drift monitor, the
    engine's gauges (at most every :data:`GAUGE_INTERVAL` seconds) and the
    curve file (at most every ``save_interval`` seconds). :meth:`new_model`
    starts the figures afresh when the model family changes (never mixed
    across models) and the error stream afresh after any full training.
    """

    def __init__(
        self, engine: str, metrics: Any, *, window: int = DEFAULT_WINDOW, delta: float = DEFAULT_DELTA,
        path: Path | None = None, save_interval: float = 10.0,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.score_ = PrequentialScore(window)
        self._drift = DriftMonitor(delta)
        self._pending: Drift | None = None
        self.path = path
        self.save_interval = save_interval
        self._last_point = 0.0
        self._last_gauges = -GAUGE_INTERVAL
        self._fresh = True  # no full training yet: a model still learning from nothing

    @property
    def window(self) -> int:
        return self.score_.window

    def score(self, proba: np.ndarray, y: np.ndarray, model: str) -> None:
        """Score a batch the model predicted (``proba``) before learning its labels ``y``."""
        self.score_.update(y, proba)
        if self._fresh and self.score_.n_total >= FRESH_MODEL_RUNS:
            self._fresh = False
        # The drift monitor watches a grown model only: a model learning from nothing errs less
        # on the runs of pathways it has seen, and the embedding prefetcher learns those first
        # (a run with a new text waits for its embedding), so its first hundreds of errors rise
        # with no change in the workflows (found at 10,000 runs/s: 0.125 -> 0.332 after 513).
        drift = None
        if not self._fresh:
            drift = self._drift.update(((proba >= 0.5).astype(np.int8) != y).astype(np.int8), y)
        if drift is not None:
            # The monitor counts since its own reset; report the position on the figures' count.
            drift = dataclasses.replace(drift, n_examples=self.score_.n_total)
            logger.warning(
                "%s: drift in %s's errors after %d runs: error %.3f -> %.3f over the last %d runs",
                self.engine, model, drift.n_examples, drift.error_before, drift.error_after, drift.runs_after,
            )
            self._pending = drift
            self.metrics.observe_drift(self.engine)
        now = time.monotonic()
        if now - self._last_gauges >= GAUGE_INTERVAL:  # the gauges need not follow every batch
            self._last_gauges = now
            self.metrics.observe_prequential(self.engine, self.score_.snapshot())
        if self.path is not None and now - self._last_point >= self.save_interval:
            self.keep_point(model)

    def snapshot(self, model: str) -> dict[str, Any] | None:
        """The figures now, with ``engine``, ``model`` and ``ts``; ``None`` before the first
        scored run. Brings the gauges up to date too."""
        snapshot = self.score_.snapshot()
        self.metrics.observe_prequential(self.engine, snapshot)
        if snapshot is None:
            return None
        return {"engine": self.engine, "model": model, "ts": time.time(), **snapshot}

    def pop_drift(self) -> Drift | None:
        drift, self._pending = self._pending, None
        return drift

    def new_model(self, family_changed: bool) -> None:
        """A full training made a new model."""
        if family_changed:
            self.score_ = PrequentialScore(self.score_.window)
        self._drift.reset()
        self._pending = None
        self._fresh = False

    # -- kept across restarts: the figures in the model's metadata, the curve in a file ----------
    def state(self) -> dict[str, Any]:
        return self.score_.state()

    def restore(self, state: Any) -> None:
        """Continue the figures saved with a model; a damaged state only restarts them."""
        if state is not None:
            try:
                self.score_ = PrequentialScore.from_state(state, self.score_.window)
            except ValueError as exc:
                logger.warning("%s: ignoring the saved test-then-train figures (%s)", self.engine, exc)
        self._fresh = self.score_.n_total < FRESH_MODEL_RUNS
        self.metrics.observe_prequential(self.engine, self.score_.snapshot())

    def keep_point(self, model: str) -> None:
        """Append the figures now to the curve file (if any)."""
        self._last_point = time.monotonic()
        point = self.snapshot(model)
        if point is None or self.path is None:
            return
        try:
            if not self.path.parent.exists():
                private_dir(self.path.parent, tighten=False)
            append_line(self.path, json.dumps(point, allow_nan=False))  # 0600, whole line, no link
        except (OSError, ValueError) as exc:
            logger.warning("%s: could not keep the prequential figures in %s: %s", self.engine, self.path, exc)

    def history(self) -> list[dict[str, Any]]:
        """The kept curve, oldest first ([] without a file)."""
        if self.path is None or not self.path.exists():
            return []
        points = []
        try:
            lines = list(read_lines(self.path, repair=False))
        except OSError as exc:  # a link planted there, another user's file: not read
            logger.warning("%s: not reading the prequential figures in %s: %s", self.engine, self.path, exc)
            return []
        for number, line in lines:
            try:
                point = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s: skipping unreadable prequential line %d", self.path, number)
                continue
            if isinstance(point, dict) and point.get("engine") == self.engine:
                points.append(point)
        return points
