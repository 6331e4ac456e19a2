"""A throwaway PostgreSQL cluster in a temporary folder (for tests and benchmarks).

:class:`ThrowawayCluster` runs ``initdb`` and ``pg_ctl start`` from the
installed server binaries, listens only on a unix socket in its own folder
(on a free port number, so several clusters never clash), and removes
everything on :meth:`~ThrowawayCluster.stop`::

    with ThrowawayCluster() as cluster:
        url = cluster.create_database("menace")
        ...

The binaries are found in ``$MENACE_PG_BINDIR`` (when set, only there), else
from ``pg_config --bindir``, in Debian's ``/usr/lib/postgresql/<version>/bin``
(``apt-get install postgresql``) or on the ``PATH``. The server refuses to run as root: as root,
every server command runs as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: Settings of a cluster made for tests: fast, not durable (it is thrown away).
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
HOW_TO_GET = (
    "no PostgreSQL server binaries (initdb, pg_ctl) found: install them "
    "(Debian/Ubuntu: apt-get install postgresql) or set MENACE_PG_BINDIR"
)


class ClusterError(RuntimeError):
    """The throwaway cluster could not be made or started (the message says why)."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None`` when they are not installed."""
    candidates: list[str] = []
    if os.environ.get("MENACE_PG_BINDIR"):  # when set, the only place looked at
        folder = Path(os.environ["MENACE_PG_BINDIR"])
        return folder if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")) else None
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             check=True, timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for folder in candidates:
        if folder and all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _version(folder: str) -> int:
    try:
        return int(Path(folder).parent.name.split(".")[0])
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayCluster:
    """A private PostgreSQL server in a temporary folder (see the module doc).

    Args:
        settings: server settings (``postgresql.conf`` names), on top of
            :data:`FAST` when ``fast`` is true, else on top of the defaults.
        fast: no fsync and asynchronous commit, for tests (default); a
            benchmark passes ``False`` to measure the durable defaults.
    """

    def __init__(self, settings: dict[str, Any] | None = None, *, fast: bool = True) -> None:
        self.bindir = find_bindir()
        if self.bindir is None:
            raise ClusterError(HOW_TO_GET)
        self.settings = {**(FAST if fast else {}), "max_connections": 300, **(settings or {})}
        self.folder: Path | None = None
        self.port = 0
        self._user: str | None = None

    # -- running the server commands -----------------------------------------------------------
    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self._user, "--", *command] if self._user else command

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True,
                                timeout=timeout, cwd="/")
        if result.returncode != 0:
            raise ClusterError(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    def start(self) -> ThrowawayCluster:
        """Make the cluster and start its server; returns ``self``."""
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres").pw_name
            except KeyError:
                raise ClusterError("running as root needs a 'postgres' user to run the server as") from None
        self.folder = Path(tempfile.mkdtemp(prefix="menace-pg-"))
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        data = self.folder / "data"
        try:
            self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
            self.port = _free_port()
            options = " ".join(f"-c {name}={value}" for name, value in {
                "listen_addresses": "''", "unix_socket_directories": str(self.folder), "port": self.port,
                **self.settings,
            }.items())
            self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "server.log"),
                      "-w", "-t", "60", "start")
        except BaseException:
            self._remove()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the folder; idempotent."""
        if self.folder is None:
            return
        try:
            if (self.folder / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            self._remove()

    def _remove(self) -> None:
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- addresses ----------------------------------------------------------------------------
    def url(self, dbname: str = "postgres", *, schema: str | None = None) -> str:
        """A ``postgresql://`` URL of a database of this cluster (``schema``: its search path)."""
        if self.folder is None:
            raise ClusterError("the cluster is not running")
        url = f"postgresql://postgres@/{quote(dbname)}?host={quote(str(self.folder))}&port={self.port}"
        if schema:
            url += "&options=" + quote(f"-csearch_path={schema}")
        return url

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing); its URL."""
        import psycopg  # the postgres extra

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                from psycopg import sql

                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log (for a failing test's message)."""
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-chars:]  # type: ignore[operator]
        except (OSError, TypeError):
            return ""

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
