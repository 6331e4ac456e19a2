"""Files Menace writes: private modes, no symbolic links followed, exclusive temporary names.

Every file Menace creates is ``0600`` and every directory ``0700``, whatever
the process umask, because stored prompts and runs are private (SQLite's
``-wal`` and ``-shm`` files take the mode of their database file, so a
database made ``0600`` keeps them ``0600`` too). Files are opened with
``O_NOFOLLOW``: a symbolic link planted where Menace writes is refused, never
written through, and so is a file another user owns. Temporary files are
made by :func:`tempfile.mkstemp` (random name, created exclusively) beside
their target and renamed over it, so a reader sees the old file or the new
one. JSON-lines files are appended a whole line at a time: a line that
cannot be written whole (a full disk) is cut off again, and a torn last
line left by a crash is dropped before the next append and when read.

The data directory must belong to the user running Menace and must not be
writable by anyone else (:func:`check_data_dir`): in a directory others can
write, every one of these guarantees could be undone by renaming files
under Menace's feet.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UnsafePathError

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: SQLite's companions of a database file (they take its mode when SQLite creates them).
DB_COMPANIONS = ("-wal", "-shm", "-journal")


def _uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _owner_error(path: Path | str, st: os.stat_result, what: str) -> UnsafePathError:
    return UnsafePathError(
        f"{path}: {what} belongs to another user (uid {st.st_uid}, not {_uid()}); Menace reads and "
        "writes only files of the user it runs as"
    )


def check_owned_file(path: Path | str, st: os.stat_result) -> None:
    """Refuse (:class:`UnsafePathError`) anything at ``path`` but a regular file of this user."""
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path}: is a symbolic link; Menace does not write through links")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path}: is not a regular file")
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        raise _owner_error(path, st, "the file")


def check_dir(path: Path | str, *, tighten: bool = False) -> None:
    """Refuse a directory another user owns or others can write (:class:`UnsafePathError`).

    ``tighten``: make a directory of this user ``0700`` (Menace's own folders, like ``models/``).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UnsafePathError(f"{path}: directory does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path}: is not a directory")
    uid = _uid()
    if uid is None:
        return
    if st.st_uid != uid:
        raise _owner_error(path, st, "the directory")
    if st.st_mode & 0o002 or (st.st_mode & 0o020 and not _own_group(st.st_gid, uid)):
        raise UnsafePathError(
            f"{path}: the directory can be written by other users (mode {stat.S_IMODE(st.st_mode):04o});"
            f" make it private (chmod 700 {path}) or choose another"
        )
    if tighten and stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def _own_group(gid: int, uid: int) -> bool:
    """Whether ``gid`` is the user's private group (named after the user, no other members):
    with umask 002 (Debian and Ubuntu desktops) a group-writable folder is still the user's."""
    try:
        import grp
        import pwd

        user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False
    return group.gr_name == user and all(member == user for member in group.gr_mem)


def private_dir(path: Path | str, *, tighten: bool = True) -> Path:
    """``path`` as a directory: created ``0700`` (with missing parents) whatever the umask;
    an existing one is checked with :func:`check_dir`. Returns ``Path(path)``."""
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # made by another process meanwhile: checked below
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask
    check_dir(path, tighten=tighten)
    return path


def check_data_dir(path: Path | str) -> Path:
    """The service's data directory, made ``0700`` if missing; refuses one that another user
    owns or that others can write (:class:`UnsafePathError`, a ``PermissionError``)."""
    path = Path(path)
    if os.path.lexists(path):
        check_dir(path)
        return path
    return private_dir(path)


def open_nofollow(path: Path | str, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (:class:`UnsafePathError`)."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise UnsafePathError(f"{path}: is a symbolic link; Menace does not follow links") from None
        raise


def open_private(path: Path | str, flags: int) -> int:
    """``os.open(path, flags)`` for writing a private file: created ``0600``, a symbolic link
    or another user's file refused (:class:`UnsafePathError`), an existing file of this user
    made ``0600``. Returns the descriptor."""
    fd = open_nofollow(path, flags, FILE_MODE)
    try:
        st = os.fstat(fd)
        check_owned_file(path, st)
        if stat.S_IMODE(st.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def secure_existing(path: Path | str) -> bool:
    """Check an existing file at ``path`` (a regular file of this user, else
    :class:`UnsafePathError`) and make it ``0600``; ``False`` if there is none."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    check_owned_file(path, st)
    if stat.S_IMODE(st.st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)
    return True


def prepare_database(path: Path | str) -> None:
    """Before SQLite opens ``path``: the database file created ``0600`` (its ``-wal`` and
    ``-shm`` then take that mode), or an existing one and its companions checked and made
    ``0600``. A symbolic link or another user's file is refused."""
    for suffix in DB_COMPANIONS:
        secure_existing(f"{path}{suffix}")
    if not secure_existing(path):
        os.close(open_private(path, os.O_RDWR | os.O_CREAT))


@contextlib.contextmanager
def _naming(path: Path | str) -> Iterator[None]:
    """An ``OSError`` without a file name (``os.write`` on a full disk) gets ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None and type(exc) in _PLAIN_OS_ERRORS:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise


_PLAIN_OS_ERRORS = (OSError, PermissionError, FileNotFoundError, IsADirectoryError)


def atomic_write(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data``: written to a fresh ``0600`` temporary file beside it
    (random name, created exclusively), flushed to disk, renamed over ``path``. A link at
    ``path`` is replaced, never followed; on any failure ``path`` is left as it was."""
    path = Path(path)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def temporary_path(path: Path | str) -> Path:
    """A fresh, empty ``0600`` file beside ``path`` with a random name (created exclusively),
    for a writer that needs a file name; the caller renames it over ``path`` or removes it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def append_line(path: Path | str, line: str) -> None:
    """Append ``line`` and a newline to ``path`` (a private file), whole or not at all.

    A torn last line (a crash during an earlier append) is dropped first, so
    this line does not join it. If the line cannot be written whole (a full
    disk), the file is cut back to where it was and the ``OSError`` raised.
    """
    data = line.encode("utf-8") + b"\n"
    fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        size = _drop_torn_tail(fd, path)
        try:
            with _naming(path):
                _write_all(fd, data)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_private(path: Path | str, limit: int = 1 << 20) -> bytes:
    """The bytes of a small file Menace wrote (at most ``limit``), never through a symbolic
    link and never another user's file (:class:`UnsafePathError`)."""
    fd = open_nofollow(path, os.O_RDONLY)
    try:
        check_owned_file(path, os.fstat(fd))
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than {limit} bytes")
    return data


def read_lines(path: Path | str, *, repair: bool = True) -> Iterator[tuple[int, str]]:
    """``(number, line)`` for each whole line of a JSON-lines file, without its newline.

    A last line without its newline is torn (a crash or a full disk while it
    was written): it is skipped and, with ``repair``, cut off the file (logged).
    Reading never follows a symbolic link (:class:`UnsafePathError`).
    """
    fd = open_nofollow(path, os.O_RDWR if repair else os.O_RDONLY)
    try:
        check_owned_file(path, os.fstat(fd))
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            logger.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - cut)
            data = data[:cut]
            if repair:
                os.ftruncate(fd, cut)
    finally:
        os.close(fd)
    for number, raw in enumerate(data.splitlines(), start=1):
        yield number, raw.decode("utf-8", errors="replace")


def secure_tree(path: Path | str) -> None:
    """Make a directory Menace wrote (a saved model) ``0700`` and its files ``0600``;
    a symbolic link inside is refused (:class:`UnsafePathError`)."""
    for root, dirs, files in os.walk(path):
        os.chmod(root, DIR_MODE)
        for name in (*dirs, *files):
            full = os.path.join(root, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(f"{full}: is a symbolic link; a saved model holds none")
            if not stat.S_ISDIR(st.st_mode):
                os.chmod(full, FILE_MODE)


def _drop_torn_tail(fd: int, path: Path | str) -> int:
    """Cut a last line that lacks its newline; the file's size after."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    chunk = 65536
    end = size
    while end > 0:
        start = max(0, end - chunk)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            cut = start + found + 1
            break
        end = start
    else:
        cut = 0
    logger.warning("%s: dropping a torn last line (%d bytes) before appending", path, size - cut)
    os.ftruncate(fd, cut)
    return cut


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
