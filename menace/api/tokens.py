"""The API's bearer token: made on first start in ``<data dir>/api_token``, or given.

The file is created exclusively with mode 0600 (only its owner reads it), so
two services starting at once cannot write different tokens, and a local
client (a script, the desktop app) on the same machine finds the token next
to the data. A token given with ``--api-token`` / ``MENACE_API_TOKEN`` is
used instead and no file is written.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from .. import config
from ..validation import MIN_TOKEN_LENGTH, check_token

__all__ = ["MIN_TOKEN_LENGTH", "TOKEN_FILE", "check_token", "load_or_create_token", "matches", "read_token"]

logger = logging.getLogger(__name__)

#: In the data directory.
TOKEN_FILE = config.API_TOKEN_FILE
def read_token(data_dir: str | os.PathLike[str]) -> str | None:
    """The token stored in ``data_dir``, or ``None`` (no file, or one this user cannot read)."""
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def load_or_create_token(data_dir: str | os.PathLike[str]) -> str:
    """The token of ``data_dir``, made (random, 256 bits) on first use.

    Raises ``PermissionError`` if the file exists but cannot be read, and
    ``ValueError`` if it holds something that is not a usable token.
    """
    path = Path(data_dir) / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = path.read_text(encoding="ascii").strip()
        _warn_if_readable_by_others(path)
        return check_token(existing, str(path))
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    logger.info("made a new API token in %s (mode 0600)", path)
    return token


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        logger.warning("%s can be read by other users (mode %o); chmod 600 it", path, mode & 0o777)


def matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))
