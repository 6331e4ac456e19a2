"""CodeDB: a small store of code snippets; each add publishes ``code:new``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import events
from .storage import SQLiteStore, fts_query
from .validation import (
    check_id,
    check_positive_int,
    check_tags,
    check_text,
    decode_tags,
    encode_tags,
)


@dataclass(frozen=True)
class CodeSnippet:
    id: int
    code: str
    summary: str
    language: str
    tags: list[str]
    ts: float


class CodeDB(SQLiteStore):
    """Code snippets with full-text search.

    Args:
        path: SQLite file.
        event_bus: publishes ``code:new`` after each committed :meth:`add`.
    """

    MIGRATIONS = (
        """
        CREATE TABLE code (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL,
            summary TEXT NOT NULL,
            language TEXT NOT NULL,
            tags TEXT NOT NULL,
            ts REAL NOT NULL
        );
        CREATE VIRTUAL TABLE code_fts USING fts5(code, summary, content='code', content_rowid='id');
        CREATE TRIGGER code_ai AFTER INSERT ON code BEGIN
            INSERT INTO code_fts(rowid, code, summary) VALUES (new.id, new.code, new.summary);
        END;
        """,
    )

    def __init__(self, path: str | os.PathLike[str] = "code.db", event_bus: Any | None = None) -> None:
        super().__init__(path)
        self.event_bus = event_bus

    def add(
        self,
        code: str,
        summary: str = "",
        language: str = "python",
        tags: Iterable[str] | None = None,
    ) -> int:
        """Store a snippet; returns its id. ``code`` must not be empty."""
        code = check_text("code", code, allow_empty=False)
        summary = check_text("summary", summary, max_len=10_000)
        language = check_text("language", language, allow_empty=False, max_len=50).strip()
        tag_list = check_tags("tags", tags)
        ts = time.time()
        with self._write() as conn:
            code_id = conn.execute(
                "INSERT INTO code(code, summary, language, tags, ts) VALUES (?,?,?,?,?)",
                (code, summary, language, encode_tags(tag_list), ts),
            ).lastrowid
        if self.event_bus is not None:
            self.event_bus.publish(
                events.CODE_NEW,
                {
                    "code_id": code_id,
                    "summary": events.clip(summary),
                    "language": language,
                    "tags": tag_list,
                    "ts": ts,
                    "code": events.clip(code),
                },
            )
        return code_id

    @staticmethod
    def _snippet(row) -> CodeSnippet:
        return CodeSnippet(
            row["id"], row["code"], row["summary"], row["language"],
            decode_tags(row["tags"]), row["ts"],
        )

    def get(self, code_id: int) -> CodeSnippet | None:
        check_id("code_id", code_id)
        rows = self._read("SELECT * FROM code WHERE id=?", (code_id,))
        return self._snippet(rows[0]) if rows else None

    def latest(self, limit: int = 50) -> list[CodeSnippet]:
        check_positive_int("limit", limit)
        return [self._snippet(r) for r in self._read("SELECT * FROM code ORDER BY id DESC LIMIT ?", (limit,))]

    def search(self, text: str, limit: int = 20) -> list[CodeSnippet]:
        """Snippets whose code or summary contains every word of ``text``."""
        query = fts_query(check_text("text", text, max_len=10_000))
        check_positive_int("limit", limit)
        if not query:
            return []
        rows = self._read(
            "SELECT c.* FROM code_fts f JOIN code c ON c.id = f.rowid WHERE code_fts MATCH ? "
            "ORDER BY bm25(code_fts) LIMIT ?",
            (query, limit),
        )
        return [self._snippet(r) for r in rows]

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM code")[0][0]
