"""MenaceMemoryManager: versioned text memory with full-text, tag and vector search.

``store(key, data, tags)`` appends a new version of ``key`` (versions per key
start at 1, are unique and never reused, also with several writers), commits,
then publishes ``memory:new``. ``embed(text)`` gives the embedding the
learning engine uses for action text; embeddings are cached on disk by
(embedder, text), so the same text is embedded once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import events
from .embedding_cache import EmbeddingCache, text_hash
from .embeddings import Embedder, default_embedder
from .storage import SQLiteStore, escape_like, fts_query, truncate_wal
from .validation import (
    MAX_TEXT,
    check_positive_int,
    check_tags,
    check_text,
    decode_tags,
    encode_tags,
)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class MemoryEntry:
    """One stored version of a key."""

    id: int
    key: str
    version: int
    data: str
    tags: list[str] = field(default_factory=list)
    ts: float = 0.0


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with ``prefix`` taken literally."""
    return escape_like(prefix) + "%"


class MenaceMemoryManager(EmbeddingCache, SQLiteStore):
    """Versioned memory store.

    Args:
        path: SQLite file.
        event_bus: publishes ``memory:new`` after each committed ``store``.
        embedder: an embedder object, ``"hashing"``, ``"minilm"`` or ``None``
            for the default (MiniLM when the transformer extra is installed).
    """

    MIGRATIONS = (
        """
        CREATE TABLE memory (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL,
            tags TEXT NOT NULL,
            ts REAL NOT NULL,
            UNIQUE(key, version)
        );
        CREATE TABLE key_versions (key TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
        CREATE TABLE memory_tags (
            memory_id INTEGER NOT NULL REFERENCES memory(id) ON DELETE CASCADE,
            tag TEXT NOT NULL
        );
        CREATE INDEX memory_tags_tag ON memory_tags(tag, memory_id);
        CREATE VIRTUAL TABLE memory_fts USING fts5(key, data, tags, content='memory', content_rowid='id');
        CREATE TRIGGER memory_ai AFTER INSERT ON memory BEGIN
            INSERT INTO memory_fts(rowid, key, data, tags) VALUES (new.id, new.key, new.data, new.tags);
        END;
        CREATE TRIGGER memory_ad AFTER DELETE ON memory BEGIN
            INSERT INTO memory_fts(memory_fts, rowid, key, data, tags)
            VALUES ('delete', old.id, old.key, old.data, old.tags);
        END;
        CREATE TABLE embeddings (
            embedder TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (embedder, text_hash)
        );
        """,
    )

    #: Deleted entries leave no readable trace in the file (see :meth:`delete`).
    SECURE_DELETE = True

    def __init__(
        self,
        path: str | os.PathLike[str] = "mem.db",
        event_bus: Any | None = None,
        embedder: Embedder | str | None = None,
    ) -> None:
        if embedder is None or isinstance(embedder, str):
            embedder = default_embedder(embedder)  # a bad choice is refused before the file is made
        super().__init__(path)
        self.event_bus = event_bus
        #: The active embedder; ``embedder.name`` says which one.
        self.embedder: Embedder = embedder
        self._vector_cache: dict[str, np.ndarray] = {}
        logger.info("memory %s: embedder %s", self.path, self.embedder.name)

    # -- writing -----------------------------------------------------------
    def store(
        self, key: str, data: Any, tags: Iterable[str] | str | None = None, *, max_data_len: int = MAX_TEXT
    ) -> int:
        """Store ``data`` (text, or a JSON-serialisable value) as the next version of ``key``.

        Returns the new version number. Raises ``ValueError`` for a bad key,
        data (longer than ``max_data_len`` characters) or tags (at most
        :data:`~menace.validation.MAX_TAGS`); nothing is written then.
        """
        key = check_text("key", key, allow_empty=False, max_len=1000).strip()
        if not isinstance(data, str):
            try:
                data = json.dumps(data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"data must be text or JSON-serialisable: {exc}") from None
        data = check_text("data", data, max_len=max_data_len)
        tag_list = check_tags("tags", tags)
        ts = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT last_version FROM key_versions WHERE key=?", (key,)).fetchone()
            version = 1 if row is None else row[0] + 1
            conn.execute(
                "INSERT INTO key_versions(key, last_version) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET last_version = excluded.last_version",
                (key, version),
            )
            memory_id = conn.execute(
                "INSERT INTO memory(key, version, data, tags, ts) VALUES (?,?,?,?,?)",
                (key, version, data, encode_tags(tag_list), ts),
            ).lastrowid
            conn.executemany(
                "INSERT INTO memory_tags(memory_id, tag) VALUES (?, ?)",
                [(memory_id, t) for t in tag_list],
            )
        if self.event_bus is not None:
            self.event_bus.publish(
                events.MEMORY_NEW,
                {
                    "memory_id": memory_id,
                    "key": key,
                    "version": version,
                    "tags": tag_list,
                    "ts": ts,
                    "data": events.clip(data),
                },
            )
        return version

    def delete(self, memory_ids: Iterable[int]) -> int:
        """Delete entries by id (used by retention rules); returns how many were deleted.

        A deleted entry's text is removed everywhere Menace keeps it: the row and its
        tags, the full-text index (merged with FTS5's ``optimize``, which drops the
        deleted terms; its cost grows with the index, not with the number deleted),
        the cached embeddings of the text, the WAL (checkpointed and truncated), and,
        when the store's bus journals, the journaled ``memory:new`` events of these ids.
        Freed pages are zeroed (``PRAGMA secure_delete``). Versions are never reused.
        """
        ids = sorted({check_positive_int("memory_id", i) for i in memory_ids})
        if not ids:
            return 0
        deleted, hashes = 0, set()
        with self._write() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for (data,) in conn.execute(f"SELECT data FROM memory WHERE id IN ({marks})", chunk):
                    # Embedded as stored, and as clipped in the memory:new payload.
                    hashes.update(text_hash(text) for text in {data, events.clip(data)})
                conn.execute(f"DELETE FROM memory_tags WHERE memory_id IN ({marks})", chunk)
                deleted += conn.execute(f"DELETE FROM memory WHERE id IN ({marks})", chunk).rowcount
            if deleted:
                embedders = [row[0] for row in conn.execute("SELECT DISTINCT embedder FROM embeddings")]
                conn.executemany(
                    "DELETE FROM embeddings WHERE embedder=? AND text_hash=?",
                    [(name, h) for name in embedders for h in hashes],
                )
                conn.execute("INSERT INTO memory_fts(memory_fts) VALUES('optimize')")
        if deleted:
            with self._lock:
                truncate_wal(self._conn, self.path)
            for h in hashes:
                self._vector_cache.pop(h, None)
        forget = getattr(self.event_bus, "forget", None)
        if callable(forget):
            forget(events.MEMORY_NEW, "memory_id", ids)
        return deleted

    # -- reading -----------------------------------------------------------
    @staticmethod
    def _entry(row) -> MemoryEntry:
        return MemoryEntry(
            id=row["id"], key=row["key"], version=row["version"], data=row["data"],
            tags=decode_tags(row["tags"]), ts=row["ts"],
        )

    def query(self, key: str, limit: int = 10) -> list[MemoryEntry]:
        """The newest ``limit`` versions of ``key``, newest first."""
        key = check_text("key", key).strip()
        check_positive_int("limit", limit)
        rows = self._read(
            "SELECT * FROM memory WHERE key=? ORDER BY version DESC LIMIT ?", (key, limit)
        )
        return [self._entry(r) for r in rows]

    def latest(self, limit: int = 100, offset: int = 0, key_prefix: str | None = None) -> list[MemoryEntry]:
        """The newest entries over all keys, newest first (optionally keys starting with a prefix)."""
        check_positive_int("limit", limit)
        check_positive_int("offset", offset, minimum=0)
        if key_prefix:
            key_prefix = check_text("key_prefix", key_prefix, max_len=1000)
            rows = self._read(
                "SELECT * FROM memory WHERE key LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ? OFFSET ?",
                (_like_prefix(key_prefix), limit, offset),
            )
        else:
            rows = self._read("SELECT * FROM memory ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
        return [self._entry(r) for r in rows]

    def search(self, text: str, limit: int = 20) -> list[MemoryEntry]:
        """Full-text search for entries containing every word of ``text``, best match first.

        Any text is searched as text: quotes and FTS operators never raise.
        """
        text = check_text("text", text, max_len=10_000)
        check_positive_int("limit", limit)
        query = fts_query(text)
        if not query:
            return []
        rows = self._read(
            "SELECT m.* FROM memory_fts f JOIN memory m ON m.id = f.rowid "
            "WHERE memory_fts MATCH ? ORDER BY bm25(memory_fts), m.id DESC LIMIT ?",
            (query, limit),
        )
        return [self._entry(r) for r in rows]

    def search_by_tag(
        self, tag: str | Iterable[str], limit: int = 100, *, key_prefix: str | None = None
    ) -> list[MemoryEntry]:
        """Entries carrying any of the given tags, newest first.

        ``key_prefix`` keeps only keys starting with it (taken literally).
        """
        tags = check_tags("tag", tag)
        check_positive_int("limit", limit)
        if not tags:
            return []
        marks = ",".join("?" * len(tags))
        sql = (
            f"SELECT * FROM memory WHERE id IN (SELECT memory_id FROM memory_tags WHERE tag IN ({marks}))"
        )
        params: list[Any] = list(tags)
        if key_prefix:
            key_prefix = check_text("key_prefix", key_prefix, max_len=1000)
            sql += " AND key LIKE ? ESCAPE '\\'"
            params.append(_like_prefix(key_prefix))
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [self._entry(r) for r in rows]

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM memory")[0][0]

    # -- embeddings --------------------------------------------------------
    def _stored_vectors(self, embedder: str, hashes: list[str]) -> list[tuple[str, bytes]]:
        rows: list[tuple[str, bytes]] = []
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows.extend(
                (row[0], row[1])
                for row in self._read(
                    f"SELECT text_hash, vector FROM embeddings WHERE embedder=? AND text_hash IN ({marks})",
                    (embedder, *chunk),
                )
            )
        return rows

    def _store_vectors(self, embedder: str, rows: list[tuple[str, bytes]]) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO embeddings(embedder, text_hash, vector) VALUES (?,?,?)",
                [(embedder, h, v) for h, v in rows],
            )

    def embedding_cache_size(self) -> int:
        """Embeddings stored on disk for the active embedder."""
        return self._read(
            "SELECT COUNT(*) FROM embeddings WHERE embedder=?", (self.embedder.name,)
        )[0][0]
