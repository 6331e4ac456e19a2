"""Input checks shared by every public entry point.

Each check raises :class:`~menace.errors.FieldError` (a ``ValueError``)
naming the field and the bad value, with the field's name in ``exc.field``,
so a caller (a script, a form, the service flags, the API) can show exactly
what was wrong and where.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import FieldError

MAX_TEXT = 1_000_000  # characters; a single stored text larger than this is refused
MAX_INT = 2**63 - 1
#: Bounds on a run's numbers, for every entry point (library, API, forms): the stores could
#: keep any finite number, but a model cannot learn from one whose square overflows
#: (1e200 seconds is a typo, not a run).
MAX_SECONDS = 1e9  # execution time, seconds (31 years)
MAX_ABS = 1e12  # |roi|, |myelination|, frequency
MAX_TS = 1e11  # seconds since the epoch (the year 5138)  # the largest SQLite INTEGER: a larger limit or id would overflow in a query
#: Most tags on one record, and the longest tag (characters).
MAX_TAGS = 100
MAX_TAG_CHARS = 200


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def expand_path(name: str, value: Any) -> Path:
    """``Path(value).expanduser()``; a ``~user`` that does not exist is a ``ValueError`` naming ``name``."""
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise FieldError(name, f"{name}: cannot expand {_short(str(value))}: {exc}") from None


def check_text(name: str, value: Any, *, allow_empty: bool = True, max_len: int = MAX_TEXT) -> str:
    """Return ``value`` as a str, or raise ``ValueError`` naming ``name``."""
    # Fast path (every logged run passes here several times): plain ASCII text
    # is valid UTF-8, so only NUL, length and blankness are left to check.
    if (
        type(value) is str
        and value.isascii()
        and len(value) <= max_len
        and "\x00" not in value
        and (allow_empty or not (value.isspace() or not value))
    ):
        return value
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(name, f"{name} must be text, got {type(value).__name__} {_short(value)}")
    if "\x00" in value:
        raise FieldError(name, f"{name} must not contain NUL characters")
    if not allow_empty and not value.strip():
        raise FieldError(name, f"{name} must not be empty")
    if len(value) > max_len:
        raise FieldError(name, f"{name} is too long ({len(value)} characters, at most {max_len})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FieldError(name, f"{name} is not valid text: {exc.reason}") from None
    return value


def check_name(name: str, value: Any, *, max_len: int = 100) -> str:
    """Return ``value`` stripped if it can name a file in a folder: no path separator, not
    ``.`` or ``..``, no control character; else ``ValueError`` naming ``name``."""
    value = check_text(name, value, allow_empty=False, max_len=max_len).strip()
    bad = sorted({c for c in value if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad or value in (".", ".."):
        raise FieldError(
            name, f"{name} must not contain path separators or control characters, got {_short(value)}"
        )
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return ``value`` as a finite float within bounds, or raise ``ValueError``."""
    if (
        type(value) is float
        and math.isfinite(value)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        return value  # the common case, checked without a conversion
    if isinstance(value, bool) or value is None:
        raise FieldError(name, f"{name} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float (10**400): not a finite number
        raise FieldError(name, f"{name} must be a finite number, got {_short(value)}") from None
    except (TypeError, ValueError):
        raise FieldError(name, f"{name} must be a number, got {_short(value)}") from None
    if not math.isfinite(number):
        raise FieldError(name, f"{name} must be a finite number, got {_short(value)}")
    if minimum is not None and number < minimum:
        raise FieldError(name, f"{name} must be >= {minimum}, got {_short(value)}")
    if maximum is not None and number > maximum:
        raise FieldError(name, f"{name} must be <= {maximum}, got {_short(value)}")
    return number


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` (and <= :data:`MAX_INT`), or raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"{name} must be an integer, got {_short(value)}")
    if value < minimum:
        raise FieldError(name, f"{name} must be >= {minimum}, got {value}")
    if value > MAX_INT:
        raise FieldError(name, f"{name} must be <= {MAX_INT}, got {_short(value)}")
    return value


def check_id(name: str, value: Any) -> int:
    """Return ``value`` if it is an id a store can hold (an int in 1..:data:`MAX_INT`), else
    ``ValueError`` naming ``name`` (an int beyond SQLite's range would overflow in a query)."""
    if type(value) is int and 0 < value <= MAX_INT:
        return value
    return check_positive_int(name, value)


def check_tags(name: str, value: Any, *, max_tags: int | None = None) -> list[str]:
    """Return a clean list of tags (non-empty strings without whitespace edges), duplicates
    dropped, in one linear pass; at most ``max_tags`` (default :data:`MAX_TAGS`) distinct tags
    of :data:`MAX_TAG_CHARS` characters each, else ``ValueError`` naming ``name`` and the limit."""
    limit = MAX_TAGS if max_tags is None else max_tags
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise FieldError(name, f"{name} must be a list of strings, got {_short(value)}")
    tags: dict[str, None] = {}  # ordered and a set at once: no quadratic "not in list"
    for tag in value:
        if not isinstance(tag, str):
            raise FieldError(name, f"{name} must contain only strings, got {_short(tag)}")
        tag = check_text(name, tag, max_len=MAX_TAG_CHARS).strip()
        if not tag:
            raise FieldError(name, f"{name} must not contain empty tags")
        tags[tag] = None
        if len(tags) > limit:
            raise FieldError(name, f"{name} has more than {limit} tags (the limit)")
    return list(tags)


def encode_tags(tags: list[str]) -> str:
    """Tags as stored in a ``tags`` column: a JSON list (a tag may contain spaces)."""
    return json.dumps(tags, ensure_ascii=False)


def decode_tags(stored: str | None) -> list[str]:
    """The list :func:`encode_tags` stored (older space-joined text is split)."""
    if not stored:
        return []
    if stored.startswith("["):
        try:
            tags = json.loads(stored)
        except ValueError:
            pass
        else:
            if isinstance(tags, list):
                return [str(t) for t in tags]
    return stored.split()


#: Shortest API bearer token accepted (characters); a made token has 43.
MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 512


def check_token(token: Any, field: str = "api_token") -> str:
    """``token`` if it is usable as a bearer token, else :class:`FieldError` naming ``field``."""
    if not isinstance(token, str):
        raise FieldError(field, f"{field} must be text, got {type(token).__name__}")
    if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise FieldError(
            field, f"{field} must be {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters, got {len(token)}"
        )
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise FieldError(field, f"{field} must be printable ASCII without spaces")
    return token
