"""Exports: where they go, what they are called, and the CSV files themselves.

A file is offered in the folder used last (else the user's Documents
folder, else the home folder) under a name that says what and when
(``menace-learning-curve-2026-11-24-1405.csv``). CSV files have one header
row, ISO 8601 local times with their UTC offset, plain numbers and ``\\n``
line ends, so a spreadsheet or pandas reads them as they are.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths

CURVE_COLUMNS = (
    "time", "series", "model", "runs_learned", "accuracy", "accuracy_smoothed", "baseline", "log_loss",
    "cv_score", "cv_std", "holdout_score", "holdout_auc", "n_examples", "trigger", "note",
)
EVALUATION_COLUMNS = (
    "time", "model", "trigger", "n_examples", "cv_score", "cv_std", "cv_scores", "holdout_score",
    "holdout_auc", "baseline", "n_train", "n_holdout", "source", "chosen_from",
)


def iso(ts: float) -> str:
    """``ts`` (seconds since the epoch) as local ISO 8601 with its offset, to the millisecond."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


#: The folder of the last export this session (kept in QSettings by the Scores panel).
_last_folder = ""


def remember_folder(path_or_folder: str) -> None:
    """Note where the last export went (a file's folder, or a folder)."""
    global _last_folder
    p = Path(path_or_folder)
    _last_folder = str(p if p.is_dir() else p.parent) if path_or_folder else ""


def last_folder() -> str:
    return _last_folder


def export_folder(last: str | None = None) -> str:
    """The folder to offer: the last one used if it still exists, else Documents, else home."""
    last = _last_folder if last is None else last
    if last and Path(last).is_dir():
        return last
    for location in (QStandardPaths.StandardLocation.DocumentsLocation,
                     QStandardPaths.StandardLocation.HomeLocation):
        folder = QStandardPaths.writableLocation(location)
        if folder and Path(folder).is_dir():
            return folder
    return str(Path.home())


def default_path(folder: str, what: str, suffix: str, now: float | None = None) -> str:
    """``<folder>/menace-<what>-<YYYY-mm-dd-HHMM>.<suffix>``."""
    stamp = time.strftime("%Y-%m-%d-%H%M", time.localtime(time.time() if now is None else now))
    return str(Path(folder) / f"menace-{what}-{stamp}.{suffix}")


def with_suffix(path: str, suffix: str) -> str:
    """``path`` ending in ``.suffix`` (added when the user typed a name without it)."""
    return path if path.lower().endswith(f".{suffix}") else f"{path}.{suffix}"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return value


def _write(path: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    return count


def curve_rows(points: Mapping[str, Sequence[float]], models: Sequence[str],
               evaluations: Sequence[Mapping[str, Any]], markers: Sequence[Any]) -> list[dict[str, Any]]:
    """The learning curve as rows (points, evaluations and markers), oldest first.

    ``points`` holds equal-length columns ``ts``, ``examples``, ``accuracy``,
    ``smoothed``, ``baseline``, ``log_loss``; ``models`` the model of each point.
    """
    rows: list[dict[str, Any]] = [
        {"ts": float(ts), "series": "test_then_train", "model": model, "runs_learned": float(n),
         "accuracy": float(a), "accuracy_smoothed": float(s), "baseline": float(b), "log_loss": float(ll)}
        for ts, n, a, s, b, ll, model in zip(points["ts"], points["examples"], points["accuracy"],
                                              points["smoothed"], points["baseline"], points["log_loss"],
                                              models, strict=True)
    ]
    rows += [{**{k: e.get(k) for k in ("model", "cv_score", "cv_std", "holdout_score", "holdout_auc",
                                        "n_examples", "trigger")},
              "ts": e["ts"], "series": "evaluation"} for e in evaluations]
    rows += [{"ts": m.ts, "series": f"marker_{m.kind}", "note": m.text} for m in markers]
    rows.sort(key=lambda r: r["ts"])
    for row in rows:
        row["time"] = iso(row["ts"])
    return rows


def write_curve_csv(path: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Write :func:`curve_rows` to ``path``; returns the data rows written."""
    return _write(path, CURVE_COLUMNS, rows)


def evaluation_rows(evaluations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for e in evaluations:
        row = {k: e.get(k) for k in EVALUATION_COLUMNS}
        row["time"] = iso(float(e["ts"]))
        folds = e.get("cv_scores")
        row["cv_scores"] = " ".join(f"{float(s):.4f}" for s in folds) if isinstance(folds, list) else ""
        candidates = e.get("candidates")
        row["chosen_from"] = " ".join(sorted(candidates)) if isinstance(candidates, dict) else ""
        rows.append(row)
    return rows


def write_evaluations_csv(path: str, evaluations: Iterable[Mapping[str, Any]]) -> int:
    """Write one row per evaluation (the table's columns and more) to ``path``."""
    return _write(path, EVALUATION_COLUMNS, evaluation_rows(evaluations))
