"""GPTMemory: prompt/response pairs with language models, kept in Menace's memory.

Each :meth:`GPTMemory.log_interaction` stores one entry under the key
``gpt:<tag>`` of its first tag (``gpt:untagged`` without tags), tagged with
``gpt`` and every given tag, and the store publishes ``memory:new``. Secrets
in the prompt, the response and the tags (API keys, tokens, private keys,
passwords; the rules are in :mod:`menace.redaction`) are replaced by
``[REDACTED]`` before anything is stored, indexed, embedded or announced.
Nothing is deleted unless a :class:`RetentionPolicy` the user configured says
so; what is deleted is removed from the file, the full-text index and the bus
journal. See ``docs/gpt_memory.md``.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .menace_memory_manager import MemoryEntry, MenaceMemoryManager
from .protocols import MemoryStore
from .redaction import REDACTED, SECRET_PATTERNS, redact
from .validation import (
    MAX_INT,
    MAX_TAGS,
    MAX_TEXT,
    check_number,
    check_positive_int,
    check_tags,
    check_text,
)

__all__ = [
    "GPTMemory", "Interaction", "RetentionPolicy", "REDACTED", "SECRET_PATTERNS", "redact",
    "extractive_summary",
]

GPT_TAG = "gpt"
SUMMARY_TAG = "gpt-summary"
KEY_PREFIX = "gpt:"
SUMMARY_PREFIX = "gpt-summary:"
#: Longest prompt, and longest response, in characters as passed (before redaction).
MAX_INTERACTION_CHARS = MAX_TEXT
#: Longest tag the store accepts (``validation.check_tags``).
MAX_TAG_LEN = 200


@dataclass(frozen=True)
class Interaction:
    """One prompt/response pair as stored."""

    prompt: str
    response: str
    tags: list[str]
    ts: float
    key: str
    version: int


@dataclass(frozen=True)
class RetentionPolicy:
    """What :meth:`GPTMemory.apply_retention` may delete. ``None`` keeps everything.

    ``max_age_days``: interactions older than this are deleted.
    ``max_per_tag``: only the newest this many interactions per key are kept.
    """

    max_age_days: float | None = None
    max_per_tag: int | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None:
            check_number("max_age_days", self.max_age_days, minimum=0.0)
        if self.max_per_tag is not None:
            check_positive_int("max_per_tag", self.max_per_tag)


class GPTMemory:
    """Persist and recall conversations with language models.

    Args:
        manager: the :class:`MenaceMemoryManager` to store into.
        retention: deletion rule applied by :meth:`apply_retention` (and after
            each log when ``apply_on_log`` is true); default keeps everything.
        redact_secrets: replace secret-looking values before storing (default on).
        extra_secret_patterns: more regular expressions (strings or compiled)
            to redact, on top of :data:`SECRET_PATTERNS`.
    """

    def __init__(
        self,
        manager: MenaceMemoryManager,
        *,
        retention: RetentionPolicy | None = None,
        apply_on_log: bool = False,
        redact_secrets: bool = True,
        extra_secret_patterns: Iterable[str | re.Pattern[str]] = (),
    ) -> None:
        if not isinstance(manager, MemoryStore):  # the SQLite store or its PostgreSQL twin
            raise ValueError(f"manager must be a MenaceMemoryManager, got {type(manager).__name__}")
        if retention is not None and not isinstance(retention, RetentionPolicy):
            raise ValueError(f"retention must be a RetentionPolicy, got {type(retention).__name__}")
        self.manager = manager
        self.retention = retention or RetentionPolicy()
        self.apply_on_log = apply_on_log
        self.redact_secrets = redact_secrets
        extra = []
        for pattern in extra_secret_patterns:
            try:
                extra.append(re.compile(pattern) if isinstance(pattern, str) else pattern)
            except re.error as exc:
                raise ValueError(f"extra_secret_patterns: {pattern!r} is not a valid regex: {exc}") from None
            if not isinstance(extra[-1], re.Pattern):
                raise ValueError(f"extra_secret_patterns must hold regexes, got {pattern!r}")
        #: Every pattern redacted before storing.
        self.secret_patterns: tuple[re.Pattern[str], ...] = (*SECRET_PATTERNS, *extra)

    def _clean(self, name: str, text: Any, allow_empty: bool) -> str:
        text = check_text(name, text, allow_empty=allow_empty, max_len=MAX_INTERACTION_CHARS)
        return redact(text, self.secret_patterns) if self.redact_secrets else text

    def _tags(self, name: str, tags: Any) -> list[str]:
        """Checked tags, redacted as stored text is: a secret in a tag would otherwise
        reach the key, the tags column, the full-text index and the journal. Lookups
        redact the same way, so asking by the tag as written still finds it."""
        tag_list = check_tags(name, tags, max_tags=MAX_TAGS - 1)  # one more: the gpt tag
        if not self.redact_secrets:
            return tag_list
        cleaned: dict[str, None] = {}  # ordered, and a set: linear in the number of tags
        for tag in tag_list:
            tag = redact(tag, self.secret_patterns)[:MAX_TAG_LEN].strip()
            if tag:
                cleaned[tag] = None
        return list(cleaned)

    def log_interaction(self, prompt: str, response: str, tags: Iterable[str] | None = None) -> int:
        """Store one prompt/response pair; returns its version under its key."""
        prompt = self._clean("prompt", prompt, allow_empty=False)
        response = self._clean("response", response, allow_empty=True)
        tag_list = self._tags("tags", tags)
        key = KEY_PREFIX + (tag_list[0] if tag_list else "untagged")
        data = json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False)
        # The limits applied to what the caller passed (above); quoting may make the stored
        # JSON longer than either, which the store must not refuse under another name.
        version = self.manager.store(key, data, [GPT_TAG, *tag_list], max_data_len=max(MAX_TEXT, len(data)))
        if self.apply_on_log:
            self.apply_retention()
        return version

    @staticmethod
    def _interaction(entry: MemoryEntry) -> Interaction | None:
        try:
            data = json.loads(entry.data)
            prompt, response = str(data["prompt"]), str(data["response"])
        except (ValueError, KeyError, TypeError):
            return None
        tags = [t for t in entry.tags if t != GPT_TAG]
        return Interaction(prompt, response, tags, entry.ts, entry.key, entry.version)

    def interactions(self, tags: Iterable[str] | str | None = None, limit: int = 50) -> list[Interaction]:
        """Stored interactions carrying any of ``tags`` (all without), newest first."""
        check_positive_int("limit", limit)
        tag_list = self._tags("tags", tags) or [GPT_TAG]
        # Only GPTMemory's own keys: other entries with the same tag (summaries,
        # notes a producer stored) must not crowd interactions out of the limit.
        entries = self.manager.search_by_tag(tag_list, limit=min(limit + 10, MAX_INT), key_prefix=KEY_PREFIX)
        found = [
            i for e in entries if GPT_TAG in e.tags and (i := self._interaction(e)) is not None
        ]
        return found[:limit]

    def fetch_context(self, tags: Iterable[str] | str, limit: int = 5) -> str:
        """Readable recent context for ``tags``: prompt and response text, newest first.

        Includes the stored summary of older interactions for each tag, if any.
        """
        tag_list = self._tags("tags", tags)
        if not tag_list:
            raise ValueError("tags must name at least one tag")
        check_positive_int("limit", limit)
        parts = []
        for item in self.interactions(tag_list, limit):
            parts.append(f"Prompt: {item.prompt}\nResponse: {item.response}")
        for tag in tag_list:
            summary = self.manager.query(SUMMARY_PREFIX + tag, limit=1)
            if summary:
                parts.append(f"Summary of earlier [{tag}]: {summary[0].data}")
        return "\n\n".join(parts)

    def search(self, text: str, limit: int = 10) -> list[Interaction]:
        """Interactions whose prompt or response contains every word of ``text``, best first.

        Any text is searched as text (quotes and search operators never raise);
        words only found in the key or tags (such as "prompt" or "gpt") do not match.
        """
        text = check_text("text", text, max_len=10_000)
        check_positive_int("limit", limit)
        wanted = _terms(text)
        if not wanted:
            return []
        entries = self.manager.search(text, limit=limit * 5 + 50)
        found = []
        for entry in entries:
            if not entry.key.startswith(KEY_PREFIX) or GPT_TAG not in entry.tags:
                continue
            item = self._interaction(entry)
            if item is not None and wanted <= _terms(f"{item.prompt} {item.response}"):
                found.append(item)
        return found[:limit]

    def summarize(self, tag: str, keep_recent: int = 5, sentences: int = 5) -> str:
        """Extractive summary of ``tag``'s interactions older than the newest ``keep_recent``.

        The summary is stored beside the raw rows under ``gpt-summary:<tag>``
        (the rows are kept) and returned; empty if there is nothing older.
        """
        tag = check_text("tag", tag, allow_empty=False, max_len=MAX_TAG_LEN).strip()
        tag = self._tags("tag", [tag])[0]
        check_positive_int("keep_recent", keep_recent, minimum=0)
        check_positive_int("sentences", sentences)
        older = self.interactions([tag], limit=10_000)[keep_recent:]
        if not older:
            return ""
        text = " ".join(f"{i.prompt} {i.response}" for i in reversed(older))
        summary = extractive_summary(text, sentences)
        if summary:
            self.manager.store(SUMMARY_PREFIX + tag, summary, [SUMMARY_TAG, tag])
        return summary

    def apply_retention(self, now: float | None = None) -> int:
        """Delete what the retention policy says may go; returns how many entries."""
        policy = self.retention
        if policy.max_age_days is None and policy.max_per_tag is None:
            return 0
        now = time.time() if now is None else check_number("now", now, minimum=0.0)
        doomed: set[int] = set()
        entries = self.manager.latest(limit=1_000_000, key_prefix=KEY_PREFIX)
        per_key: Counter[str] = Counter()
        for entry in entries:  # newest first
            per_key[entry.key] += 1
            if policy.max_per_tag is not None and per_key[entry.key] > policy.max_per_tag:
                doomed.add(entry.id)
            if policy.max_age_days is not None and now - entry.ts > policy.max_age_days * 86_400:
                doomed.add(entry.id)
        return self.manager.delete(sorted(doomed))


_TERM = re.compile(r"[^\W_]+")


def _terms(text: str) -> set[str]:
    """Words of ``text`` folded as the full-text index folds them (case, accents)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return set(_TERM.findall(folded))


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z0-9_']{3,}")


def extractive_summary(text: str, sentences: int = 5) -> str:
    """The ``sentences`` most representative sentences of ``text``, in original order.

    A sentence scores the mean log frequency of its words over the whole text.
    """
    parts = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not parts:
        return ""
    freq = Counter(w.lower() for w in _WORD.findall(text))
    scored = []
    for idx, sentence in enumerate(parts):
        words = [w.lower() for w in _WORD.findall(sentence)]
        score = sum(math.log1p(freq[w]) for w in words) / (len(words) or 1)
        scored.append((score, idx))
    chosen = sorted(idx for _, idx in sorted(scored, reverse=True)[:sentences])
    seen, out = set(), []
    for idx in chosen:
        if parts[idx] not in seen:
            seen.add(parts[idx])
            out.append(parts[idx])
    return " ".join(out)
