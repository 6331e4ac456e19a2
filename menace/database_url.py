"""PostgreSQL URLs: recognised, checked and shown without their password.

Kept apart from :mod:`menace.postgres` so that the settings can check a
``database_url`` without importing psycopg or any store.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import FieldError

_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(value: Any) -> bool:
    """Whether ``value`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(value, str) and value.startswith(_SCHEMES)


def check_database_url(value: Any, name: str = "database_url") -> str:
    """``value`` if it is a PostgreSQL URL, else a ``FieldError`` naming ``name``."""
    if not is_database_url(value):
        shown = redact(value) if isinstance(value, str) else repr(value)
        raise FieldError(name, f"{name} must be a postgresql:// URL, got {shown!r:.100}")
    if "\x00" in value or len(value) > 4096:
        raise FieldError(name, f"{name} must be a URL of at most 4096 characters without NUL")
    return value


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs, messages and ``path``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
