"""One learner per store: the lease a learning stack holds on its data directory.

Whoever learns from a store holds its lease for as long as it runs: the
service, or the desktop app's own stack. Everyone else is a client of that
learner (over the API), so two models are never trained from one store and
one never silently overwrites the other's saved model.

:class:`FileLease` is the lease on a data directory: an exclusive
``flock`` on ``<data dir>/learner.lock`` (the OS releases it when the
process ends, a crash or SIGKILL included, so a stale lock cannot outlive its
holder), plus ``<data dir>/learner.json`` naming the holder (pid, host, API
URL, start time) for whoever finds the lease taken. A database backend will
add a lease with the same small interface (:class:`Lease`), for instance a
PostgreSQL advisory lock.

    lease = FileLease(data_dir)
    lease.acquire()                    # LeaseHeldError naming the holder if taken
    lease.publish(api_url="http://127.0.0.1:8001")
    ...
    lease.release()

:func:`owner_of` answers "is this data directory owned by a running learner,
and where is its API?" without taking anything (the desktop app asks it
before starting a stack of its own).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from . import config
from .files import atomic_write, open_private, private_dir

logger = logging.getLogger(__name__)

#: In the data directory: the file whose lock is the lease, and who holds it.
LOCK_FILE = config.LEARNER_LOCK
HOLDER_FILE = config.LEARNER_FILE
#: Seconds between tries while waiting for a lease (``--standby``).
POLL_INTERVAL = 0.5

try:  # POSIX
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease: ``pid`` on ``host``, its API at ``api_url`` (``None``
    when it serves none), since ``started`` (seconds since the epoch).
    ``ready`` once the holder has started everything it serves (its API
    included): before that, a client that finds no ``api_url`` cannot tell
    "serves none" from "not yet"."""

    pid: int
    host: str
    started: float
    api_url: str | None = None
    location: str = ""
    ready: bool = False

    def describe(self) -> str:
        """One line naming the holder, e.g. ``pid 4242 on host, API http://127.0.0.1:8001``."""
        if not self.pid:
            return "a process that has not named itself yet (starting)"
        where = f"API {self.api_url}" if self.api_url else "no API"
        return f"pid {self.pid} on {self.host}, {where}"

    @classmethod
    def from_json(cls, data: Any) -> LeaseHolder | None:
        if not isinstance(data, dict):
            return None
        pid, started = data.get("pid"), data.get("started")
        if type(pid) is not int or not isinstance(started, int | float):
            return None
        api_url = data.get("api_url")
        return cls(
            pid=pid, host=str(data.get("host", "")), started=float(started),
            api_url=api_url if isinstance(api_url, str) else None,
            location=str(data.get("location", "")), ready=data.get("ready") is True,
        )


class LeaseHeldError(RuntimeError):
    """The lease is held by another learner; ``holder`` says who (``None`` if it has not said yet)."""

    def __init__(self, location: str, holder: LeaseHolder | None) -> None:
        self.location = location
        self.holder = holder
        who = holder.describe() if holder is not None else "a process that has not named itself yet"
        super().__init__(f"{location} is already used by a running Menace learner: {who}")


@runtime_checkable
class Lease(Protocol):
    """The lease on one store, held by at most one learner at a time."""

    location: str
    #: The holder before this one if it ended without releasing (a crash), else ``None``.
    previous: LeaseHolder | None

    @property
    def held(self) -> bool:
        """True while this object holds the lease."""
        ...

    def acquire(self) -> None:
        """Take the lease now, or raise :class:`LeaseHeldError` naming the holder."""
        ...

    def wait(self, stop: threading.Event | None = None, on_wait: Callable[[LeaseHolder | None], Any] | None = None) -> bool:
        """Take the lease as soon as it is free; False if ``stop`` was set first.

        ``on_wait(holder)`` is called once if the lease is taken when waiting starts.
        """
        ...

    def publish(self, **details: Any) -> None:
        """Tell whoever asks who holds the lease (``api_url=...``); only while held."""
        ...

    def holder(self) -> LeaseHolder | None:
        """Who holds the lease now (this object included), or ``None`` when it is free."""
        ...

    def release(self) -> None:
        """Let go of the lease (idempotent)."""
        ...



def wait_for_lease(
    take: Callable[[], bool],
    holder: Callable[[], LeaseHolder | None],
    stop: threading.Event | None = None,
    on_wait: Callable[[LeaseHolder | None], Any] | None = None,
    poll: float = POLL_INTERVAL,
) -> bool:
    """The standby's loop, for any lease: ``take()`` every ``poll`` seconds until it succeeds
    (True) or ``stop`` is set (False); ``on_wait(holder())`` once, when the first try fails."""
    told = False
    while True:
        if take():
            return True
        if not told:
            told = True
            if on_wait is not None:
                on_wait(holder())
        if stop is not None:
            if stop.wait(poll):
                return False
        else:
            time.sleep(poll)


class TakenLease:
    """What every lease does the same way once it can try once (``_try``), say whether it holds
    (``held``), write its holder (``_write_holder``) and read the holder (``holder``)."""

    location: str
    _mutex: threading.RLock
    _details: dict[str, Any]
    #: Seconds between two tries of :meth:`wait`.
    poll_interval: float = POLL_INTERVAL

    def _try(self) -> bool:
        raise NotImplementedError

    @property
    def held(self) -> bool:
        raise NotImplementedError

    def _write_holder(self) -> None:
        raise NotImplementedError

    def holder(self) -> LeaseHolder | None:
        raise NotImplementedError

    def _take(self) -> bool:
        with self._mutex:
            if self._try():
                logger.info("holding the learner lease on %s", self.location)
                return True
        return False

    def _take_while_waiting(self) -> bool:
        """One try of :meth:`wait` (a lease whose store can be away says so and tries again)."""
        return self._take()

    def _holder_while_waiting(self) -> LeaseHolder | None:
        return self.holder()

    def acquire(self) -> None:
        if not self._take():
            raise LeaseHeldError(self.location, self.holder())

    def wait(
        self,
        stop: threading.Event | None = None,
        on_wait: Callable[[LeaseHolder | None], Any] | None = None,
        poll: float | None = None,
    ) -> bool:
        poll = self.poll_interval if poll is None else poll
        return wait_for_lease(self._take_while_waiting, self._holder_while_waiting, stop, on_wait, poll)

    def publish(self, **details: Any) -> None:
        with self._mutex:
            if not self.held:
                raise RuntimeError(f"publish() without holding the lease on {self.location}")
            self._details.update(details)
            self._write_holder()

class FileLease(TakenLease):
    """The lease on a data directory (see the module doc).

    Thread-safe; one object holds the lease at most once. Another
    ``FileLease`` on the same directory, in this process or another, is
    refused while this one holds it (``flock`` locks belong to an open file,
    not to a process).
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.location = str(self.data_dir)
        self._lock_path = self.data_dir / LOCK_FILE
        self._holder_path = self.data_dir / HOLDER_FILE
        self._fh: IO[bytes] | None = None
        self._details: dict[str, Any] = {}
        self.previous: LeaseHolder | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fh is not None

    def _try(self) -> bool:
        """Take the lock if it is free (caller holds ``_mutex``)."""
        if self._fh is not None:
            return True
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        # 0600, never through a planted link or another user's file; kept open for the lease's life
        fh = os.fdopen(open_private(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a+b")
        if not _try_lock(fh):
            fh.close()
            return False
        self._fh = fh
        # A holder that released removed its file: one still here died holding the lease.
        self.previous = _read_holder(self.data_dir)
        if self.previous is not None:
            logger.warning("the last learner on %s (%s) ended without releasing its lease",
                           self.location, self.previous.describe())
        self._details = {
            "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "api_url": None, "location": self.location,
        }
        self._write_holder()
        return True

    def _write_holder(self) -> None:
        atomic_write(self._holder_path, json.dumps(self._details).encode())  # 0600, a random temp name

    def holder(self) -> LeaseHolder | None:
        with self._mutex:
            if self._fh is not None:
                return LeaseHolder.from_json(self._details)
        return owner_of(self.data_dir)

    def release(self) -> None:
        with self._mutex:
            fh, self._fh = self._fh, None
            if fh is None:
                return
            try:
                self._holder_path.unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("could not remove %s: %s", self._holder_path, exc)
            try:
                _unlock(fh)
            finally:
                fh.close()
        logger.info("released the learner lease on %s", self.location)

    def __enter__(self) -> FileLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<FileLease {self.location} {'held' if self.held else 'free'}>"


def owner_of(data_dir: str | os.PathLike[str]) -> LeaseHolder | None:
    """The running learner that holds ``data_dir``'s lease, or ``None`` if nobody does.

    Takes nothing: it tries the lock and lets go at once. A holder that has
    not written its details yet is reported with what is known (its pid 0).
    """
    data_dir = Path(data_dir)
    lock_path = data_dir / LOCK_FILE
    try:
        fh = open(lock_path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return None
    try:
        if _try_lock(fh):
            _unlock(fh)
            return None
    finally:
        fh.close()
    holder = _read_holder(data_dir)
    return holder if holder is not None else LeaseHolder(pid=0, host="", started=0.0, location=str(data_dir))


def _read_holder(data_dir: Path) -> LeaseHolder | None:
    try:
        return LeaseHolder.from_json(json.loads((data_dir / HOLDER_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


__all__ = ["FileLease", "Lease", "LeaseHeldError", "LeaseHolder", "owner_of"]
