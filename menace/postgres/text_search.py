"""Full-text search on PostgreSQL with the same rules and the same safety as the SQLite stores.

SQLite's FTS5 index (``unicode61`` tokenizer) splits text into words (runs
of letters and digits), folds case and drops accents, and
:func:`menace.storage.fts_query` makes any user text a query of phrases, one
per whitespace-separated chunk, all required. Here Python does the same
splitting and folding (:func:`tokens`) for the stored text and for the query
alike, and hands PostgreSQL ready-made values: the document as a
``tsvector`` literal (each word with its positions, :func:`tsvector`) and the
query as a ``tsquery`` literal (each chunk a phrase ``'a' <-> 'b'``, chunks
joined by ``&``, :func:`tsquery`). Both travel as bound parameters cast to
their type; a word is only ever letters and digits, so no text can add an
operator, a quote or a syntax error to the query, and PostgreSQL's own
parser (whose splitting depends on context and on the database's locale)
never sees the text. A word is found as written, folded: no stemming, no
stop words.
"""

from __future__ import annotations

import re
import unicodedata

#: Most characters of a text that go into its ``tsvector``.
INDEXED_CHARS = 200_000
#: Most chunks of a query (a longer query is cut).
MAX_CHUNKS = 256
#: PostgreSQL's limits: the longest lexeme (bytes), the highest position, positions per lexeme.
MAX_LEXEME_BYTES = 2046
MAX_POSITION = 16383
MAX_POSITIONS = 256

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """``text`` lower-cased with its accents removed, as FTS5's ``unicode61`` tokenizer folds it."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def tokens(text: str) -> list[str]:
    """The folded words of ``text``, in order (a word longer than PostgreSQL takes is left out)."""
    return [w for w in _WORD.findall(fold(text)) if len(w.encode("utf-8")) <= MAX_LEXEME_BYTES]


def tsvector(*parts: str) -> str:
    """The ``tsvector`` literal of ``parts`` joined by spaces (at most :data:`INDEXED_CHARS` characters)."""
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(tokens(" ".join(parts)[:INDEXED_CHARS]), start=1):
        seen = positions.setdefault(word, [])
        position = min(index, MAX_POSITION)
        if len(seen) < MAX_POSITIONS and (not seen or seen[-1] != position):
            seen.append(position)
    return " ".join(f"'{word}':{','.join(map(str, where))}" for word, where in positions.items())


def tsquery(text: str) -> str | None:
    """The ``tsquery`` literal matching every whitespace-separated chunk of ``text`` as a phrase,
    or ``None`` when no chunk holds a word."""
    phrases = []
    for chunk in text.split()[:MAX_CHUNKS]:
        words = tokens(chunk)
        if words:
            phrases.append("(" + " <-> ".join(f"'{w}'" for w in words) + ")")
    return " & ".join(phrases) or None
