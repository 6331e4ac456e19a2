"""EvaluationHistory: every evaluation of one engine, in memory and (optionally) on disk.

An entry is the dict :meth:`LearningEngine.evaluate` returns (``engine``,
``model``, ``ts``, ``cv_score``, ``holdout_score``, ...). On disk the history
is a JSON-lines file (``.jsonl``, one entry a line) or an SQLite file
(``.db`` / ``.sqlite``, table ``evaluations``); several engines may share a
file, each reads back its own entries. An unreadable line is logged and
skipped; a torn last line (a crash or a full disk during an append) is
dropped from the file, and an append writes its whole line or nothing.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .errors import FieldError
from .files import append_line, private_dir, read_lines
from .validation import check_text, expand_path

logger = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".db", ".sqlite", ".sqlite3")
_TABLE = (
    "CREATE TABLE IF NOT EXISTS evaluations ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, engine TEXT NOT NULL, ts REAL NOT NULL, data TEXT NOT NULL)"
)


def check_history_path(path: Any) -> Path | None:
    """``path`` as a Path ending in one of :data:`SUFFIXES`, or ``None``; else ``ValueError``."""
    if path is None:
        return None
    path = expand_path("persist_path", check_text("persist_path", os.fspath(path), allow_empty=False))
    if path.suffix.lower() not in SUFFIXES:
        raise FieldError("persist_path", f"persist_path must end in .jsonl, .db or .sqlite, got {str(path)!r}")
    return path


class EvaluationHistory:
    """The evaluations of the engine called ``engine``, oldest first.

    ``path`` ``None`` keeps them in memory only. Iterating, ``len`` and
    indexing see the entries; :meth:`append` adds one (and writes it).
    """

    def __init__(self, engine: str, path: str | os.PathLike[str] | None = None) -> None:
        self.engine = engine
        self.path = check_history_path(path)
        self.entries: list[dict[str, Any]] = self.load(repair=True) if self.path is not None else []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, index):
        return self.entries[index]

    def last(self) -> dict[str, Any] | None:
        return self.entries[-1] if self.entries else None

    def append(self, entry: dict[str, Any]) -> None:
        """Keep ``entry`` and write it to ``path`` (if any)."""
        self.entries.append(entry)
        if self.path is None:
            return
        line = json.dumps(entry, allow_nan=False, sort_keys=True)
        if not self.path.parent.exists():
            private_dir(self.path.parent, tighten=False)
        if self.path.suffix.lower() == ".jsonl":
            append_line(self.path, line)  # the whole line or nothing, 0600, no link followed
            return
        from .storage import connect, write_transaction

        conn = connect(self.path)
        try:
            with write_transaction(conn, str(self.path)):
                conn.execute(_TABLE)
                conn.execute(
                    "INSERT INTO evaluations(engine, ts, data) VALUES (?, ?, ?)", (self.engine, entry["ts"], line)
                )
        finally:
            conn.close()

    def load(self, *, repair: bool = False) -> list[dict[str, Any]]:
        """This engine's stored entries from ``path``, oldest first (``[]`` without one).

        ``repair``: cut a torn last line off the file (done once, when the history is opened).
        """
        path = self.path
        if path is None or not path.exists():
            return []
        entries: list[dict[str, Any]] = []
        for number, line in self._lines(path, repair):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("%s: skipping unreadable evaluation %s: %s", path, number, exc)
                continue
            if isinstance(entry, dict) and entry.get("engine", self.engine) == self.engine:
                entries.append(entry)
        return entries

    @staticmethod
    def _lines(path: Path, repair: bool) -> list[tuple[int, str]]:
        if path.suffix.lower() == ".jsonl":
            return list(read_lines(path, repair=repair and os.access(path, os.W_OK)))
        from .storage import connect

        conn = connect(path)
        try:
            conn.execute(_TABLE)
            rows = conn.execute("SELECT id, data FROM evaluations ORDER BY id").fetchall()
        finally:
            conn.close()
        return [(row[0], row[1]) for row in rows]
