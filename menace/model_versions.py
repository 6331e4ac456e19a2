"""Directory models (the transformer's) saved atomically: versions behind a symbolic link.

A directory cannot be renamed over another one, so a directory model is
never replaced in place. Each save writes a new *version*,
``.<name>.<random hex>`` beside it, and then points ``<name>`` (a symbolic
link to that sibling) at it by renaming a new link over the old one: one
atomic step. A reader resolves the link once and reads that version, so it
finds the old model or the new one, whole, whatever process is killed when.

Locks (``flock``; POSIX): a saver holds an exclusive lock on its version's
``.lock`` file while writing it, and a lock on ``.<name>.lock`` (exclusive)
only for the swap and the clean-up that follows; readers hold that one
shared while they load. The clean-up removes every version that is not the
current one and that no live saver is writing, so two processes saving at
once both succeed and leave one version behind, and a saver killed midway
leaves a version the next save removes.

A model saved by an older release as a plain directory is moved to a
version on the next save. If the link is missing (a kill during that move),
readers use the newest finished version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import UnsafePathError
from .files import open_private, secure_tree

try:
    import fcntl
except ImportError:  # not POSIX: no locks (one saver at a time is then the caller's job)
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: Seconds after which a saver's lock file without its version is left over from a kill.
ORPHAN_AGE = 60.0


def _version_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}")


@contextlib.contextmanager
def _flock(lock_path: Path, mode: int) -> Iterator[int]:
    fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        if fcntl is not None:
            fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _exclusive() -> int:
    return fcntl.LOCK_EX if fcntl is not None else 0


def _shared() -> int:
    return fcntl.LOCK_SH if fcntl is not None else 0


def _lock_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def current_version(path: Path) -> Path | None:
    """The version ``path`` points at (checked to be one of its own), or ``None`` if it does not
    exist. A plain directory at ``path`` (saved by an older release) is its own version."""
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError:  # not a link
        return path if path.is_dir() else None
    if not _version_pattern(path).fullmatch(target):
        raise UnsafePathError(f"{path}: links to {target!r}, not to one of its own saved versions")
    return path.with_name(target)


def _versions(path: Path) -> list[Path]:
    pattern = _version_pattern(path)
    return [p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir()]


def _being_written(version: Path) -> bool:
    """Whether a live saver holds the lock of ``version`` (a dead one's lock is free)."""
    lock = version.with_name(version.name + ".lock")
    if not lock.exists():
        return False
    if fcntl is None:
        return True
    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _finished(version: Path) -> bool:
    """A version whose saver got as far as linking it (its lock file is gone)."""
    return not version.with_name(version.name + ".lock").exists()


def resolve(path: Path) -> Path | None:
    """The version a reader should load: the current one, else the newest finished one."""
    current = current_version(path)
    if current is not None:
        return current
    finished = [v for v in _versions(path) if _finished(v)]
    return max(finished, key=lambda v: v.stat().st_mtime_ns) if finished else None


@contextlib.contextmanager
def reading(path: Path) -> Iterator[Path | None]:
    """``with reading(path) as version:`` the version to load (``None``: no model), kept
    from being removed until the block ends."""
    if not path.parent.is_dir():
        yield None
        return
    with _flock(_lock_file(path), _shared()):
        yield resolve(path)


def save(path: Path, write: Callable[[Path], None]) -> None:
    """Save a directory model at ``path``: ``write(directory)`` writes a new version (the
    directory must not exist yet), which then replaces the current one atomically."""
    version = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    own_lock = version.with_name(version.name + ".lock")
    with _flock(own_lock, _exclusive()):
        try:
            write(version)
            secure_tree(version)
            with _flock(_lock_file(path), _exclusive()):
                _link(path, version)
                own_lock.unlink()
                _clean(path, keep=version)
        except BaseException:
            shutil.rmtree(version, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                own_lock.unlink()
            raise


def _link(path: Path, version: Path) -> None:
    """Point ``path`` at ``version`` in one rename (the caller holds the exclusive lock)."""
    if path.is_dir() and not path.is_symlink():  # an older release's plain directory
        os.replace(path, path.with_name(f".{path.name}.{uuid.uuid4().hex}"))
    link = path.with_name(f".{path.name}.{uuid.uuid4().hex}.link")
    os.symlink(version.name, link)
    try:
        os.replace(link, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        raise


def _clean(path: Path, keep: Path) -> None:
    """Remove versions other than ``keep`` that no live saver writes, and stray links."""
    for version in _versions(path):
        if version != keep and not _being_written(version):
            shutil.rmtree(version, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                version.with_name(version.name + ".lock").unlink()
    stray = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}\.(link|lock)")
    for leftover in path.parent.iterdir():
        match = stray.fullmatch(leftover.name)
        if match is None:
            continue
        with contextlib.suppress(FileNotFoundError):
            if match.group(1) == "link" or _orphan_lock(leftover):
                leftover.unlink()


def _orphan_lock(lock: Path) -> bool:
    """A version's lock file left by a saver killed before it made the version (a minute
    old, so a saver that has just made it is never robbed of it)."""
    version = lock.with_name(lock.name[: -len(".lock")])
    return not version.exists() and time.time() - lock.stat().st_mtime > ORPHAN_AGE and not _being_written(version)
