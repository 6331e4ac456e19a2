"""The exceptions Menace raises on purpose, in one place.

``FieldError`` is a ``ValueError`` (so ``except ValueError`` keeps working)
that also says which input was wrong in ``field``: a form puts the message
under that field, the API names it in a 422 answer.
"""

from __future__ import annotations

import errno
import sqlite3


class FieldError(ValueError):
    """Bad input: ``field`` names the argument or payload key that was wrong.

    ``str(exc)`` is the whole message, which starts with the field's name.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TrainingCancelled(Exception):
    """Raised when a ``cancel`` event was set; the live model is left as it was."""


class UnsafePathError(PermissionError):
    """A file or directory Menace would write is not safe to use: a symbolic link, another
    user's, or in a directory others can write. The message names the path and the reason."""


class StorageError(sqlite3.OperationalError):
    """An SQLite store could not be read or written; the message names the file and the cause
    (the disk is full, the file is read-only, it is not a database, ...).

    ``path`` is the file, ``cause`` the short reason, ``sqlite_error`` SQLite's own message.
    A subclass of ``sqlite3.OperationalError``, so existing handlers keep working.
    """

    def __init__(self, path: str, cause: str, sqlite_error: str = "") -> None:
        detail = f" ({sqlite_error})" if sqlite_error and sqlite_error != cause else ""
        super().__init__(f"{path}: {cause}{detail}")
        self.path = path
        self.cause = cause
        self.sqlite_error = sqlite_error


#: Causes of start failures in words a user can act on, by errno.
_OS_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file or its directory is read-only",
    errno.EACCES: "the file or its directory is read-only for this user",
    errno.EPERM: "the file or its directory is read-only for this user",
    errno.EDQUOT: "the disk quota is used up",
}


def start_error_message(exc: BaseException) -> str | None:
    """One line saying why the service could not start (the file and the cause), or ``None``
    when ``exc`` is not a problem with the data directory, its files or the settings.

    Used by ``menace-service`` to print ``menace-service: error: <this>`` and exit 2.
    """
    if isinstance(exc, StorageError | UnsafePathError | ValueError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        cause = _OS_CAUSES.get(exc.errno)
        detail = exc.strerror or str(exc)
        return f"{where}{cause} ({detail})" if cause else f"{where}{detail}"
    if isinstance(exc, sqlite3.Error):
        return f"SQLite: {exc}"
    if type(exc).__name__ == "SchemaError":  # menace.storage.SchemaError (no import cycle)
        return str(exc)
    return None
