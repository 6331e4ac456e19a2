"""Embeddings of stored texts, cached in memory and in the store: one rule for every backend.

:class:`EmbeddingCache` is mixed into :class:`~menace.menace_memory_manager.MenaceMemoryManager`
(SQLite) and :class:`~menace.postgres.memory.PgMemoryManager`; each store only says
how it reads and writes the ``embeddings`` table (:meth:`EmbeddingCache._stored_vectors`,
:meth:`EmbeddingCache._store_vectors`). A text is embedded once per embedder, ever:
the in-memory cache answers first, then the table, and only texts neither knows
reach the embedder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from .validation import check_positive_int, check_text


def text_hash(text: str) -> str:
    """The key of a text in the embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """``embed``, ``embed_many`` and ``query_vector`` over a store's ``embeddings`` table."""

    #: Vectors kept in memory; past it the memory cache is emptied (the table still has them).
    MEMORY_CACHE_LIMIT = 200_000

    embedder: Any
    _vector_cache: dict[str, np.ndarray]

    def _stored_vectors(self, embedder: str, hashes: list[str]) -> Iterable[tuple[str, bytes]]:
        """``(text hash, float32 bytes)`` of those of ``hashes`` the table has for ``embedder``."""
        raise NotImplementedError

    def _store_vectors(self, embedder: str, rows: list[tuple[str, bytes]]) -> None:
        """Insert ``(text hash, float32 bytes)`` rows for ``embedder`` (a row already there is kept)."""
        raise NotImplementedError

    def latest(self, limit: int = 100, offset: int = 0, key_prefix: str | None = None) -> list[Any]:
        raise NotImplementedError

    def embed(self, text: str) -> np.ndarray:
        """The embedding of ``text`` (float32, L2-normalised), from the cache when known."""
        return self.embed_many([check_text("text", text)])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """Embeddings of many texts, one row each; only unknown texts reach the embedder."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not one string")
        texts = [check_text(f"texts[{i}]", t) for i, t in enumerate(texts)]
        name = self.embedder.name
        hashes = [text_hash(t) for t in texts]
        cache = self._vector_cache
        # Vectors of this call in a local dict: another thread may clear the shared cache meanwhile.
        found = {h: v for h in dict.fromkeys(hashes) if (v := cache.get(h)) is not None}
        missing = [h for h in dict.fromkeys(hashes) if h not in found]
        if missing and len(cache) > self.MEMORY_CACHE_LIMIT:
            cache.clear()  # bounded: the table still has them
        if missing:
            for h, vector in self._stored_vectors(name, missing):
                found[h] = cache[h] = np.frombuffer(vector, dtype=np.float32)
            todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in found}
            if todo:
                vectors = [v.astype(np.float32) for v in self.embedder.encode(list(todo.values()))]
                self._store_vectors(name, [(h, v.tobytes()) for h, v in zip(todo, vectors, strict=True)])
                for h, v in zip(todo, vectors, strict=True):
                    found[h] = cache[h] = v
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([found[h] for h in hashes])

    def query_vector(self, text: str, limit: int = 5, scan: int = 5000) -> list[tuple[Any, float]]:
        """The ``limit`` entries most similar to ``text`` by cosine similarity.

        Looks at the newest ``scan`` entries; returns ``(entry, similarity)``.
        """
        text = check_text("text", text, allow_empty=False, max_len=100_000)
        check_positive_int("limit", limit)
        entries = self.latest(scan)
        if not entries:
            return []
        query = self.embed(text)
        matrix = self.embed_many([e.data for e in entries])
        scores = matrix @ query
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(entries[i], float(scores[i])) for i in order]
