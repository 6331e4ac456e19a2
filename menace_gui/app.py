"""Entry point of the desktop monitor: ``menace-gui`` / ``python -m menace_gui``.

Takes the service's own flags (``--data-dir``, ``--model``, ``--metrics-port``,
...; see ``menace-gui --help``) plus ``--max-log-rows`` and ``--connect``.
Without ``--data-dir`` or ``MENACE_DATA_DIR`` the data directory used last
time is opened again (else the service's default).

Three ways to run: on a data directory nobody learns from, the monitor runs
the learning stack itself (in a thread); on a data directory a running
``menace-service`` owns, it attaches to that service as a client (no second
learner) and says so in the status bar; with ``--connect URL`` it shows the
service at that URL over its API (token from ``--api-token``,
``MENACE_API_TOKEN``, the one remembered for that URL, or asked for once). The Settings dialog's choices
(model, evaluation policy, test-then-train window, drift policy) apply here,
where no flag or environment variable sets them.

The window is shown first and paints at once; the service's modules (the
flags come from its parser) and the charts load right after that first
paint. Without a display (no ``DISPLAY`` or ``WAYLAND_DISPLAY`` on Linux,
and no ``QT_QPA_PLATFORM``) the monitor says so in one line and exits with
:data:`NO_DISPLAY_EXIT` instead of letting Qt abort.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from . import gui_settings
from .main_window import MainWindow
from .remote_source import RemoteClientSource
from .widgets.event_log import DEFAULT_MAX_ROWS

logger = logging.getLogger(__name__)

ORGANIZATION = "Menace"
APPLICATION = "menace-gui"
LAST_DATA_DIR_KEY = "data/last_dir"
MAX_ROWS_KEY = "log/max_rows"
#: Exit status when there is no display to open the window on.
NO_DISPLAY_EXIT = 2
#: What each Linux platform plugin needs in the environment.
_DISPLAY_OF = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can open here (one line saying how to run the monitor), or ``None``.

    Only Linux and the BSDs can lack a display; Qt's own answer there is an
    abort with a misleading hint about libxcb.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    plugin = (environ.get("QT_QPA_PLATFORM") or "").split(":")[0].strip().lower()
    needed = _DISPLAY_OF.get(plugin)
    if plugin and (needed is None or environ.get(needed)):
        return None  # offscreen, vnc, eglfs...: they need no display server; or the one needed is set
    if not plugin and (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return None
    missing = needed or "DISPLAY nor WAYLAND_DISPLAY"
    return (f"menace-gui: no display to open a window on ({'neither ' if not needed else ''}{missing} is set); "
            "run it in a desktop session, under a virtual one with `xvfb-run menace-gui`, or without a "
            "window with QT_QPA_PLATFORM=offscreen (for tests and screenshots)")


def build_gui_parser():
    """The service's parser plus ``--max-log-rows`` (imports the service's modules)."""
    from menace.self_learning_service import build_parser

    parser = build_parser()
    parser.prog = "menace-gui"
    parser.description = (
        "Menace desktop monitor: runs the self-learning service on a data directory and "
        "shows its events, scores and data. Without --data-dir the last directory is reopened."
    )
    parser.add_argument(
        "--max-log-rows", metavar="N", type=int, default=None,
        help=f"rows the live event log keeps (default {DEFAULT_MAX_ROWS:,}, remembered)",
    )
    parser.add_argument(
        "--connect", metavar="URL",
        help="show the Menace service at URL (e.g. http://host:8001) over its API instead of running "
        "one here; the token comes from --api-token, MENACE_API_TOKEN, the one remembered for URL, "
        "or is asked for",
    )
    return parser


def service_from_args(argv: Sequence[str], qsettings: QSettings, ask_token: TokenPrompt | None = None):
    """Parse ``argv`` into the window's client source and the log's row limit.

    The source is a :class:`RemoteClientSource` for ``--connect URL`` or for a
    data directory a running service owns, else a ServiceThread running the
    stack here (with the Settings dialog's choices). ``ask_token(url)`` is
    asked when no token is known for a URL. Raises ``SystemExit``
    (argparse's usage error) for bad flags.
    """
    parser = build_gui_parser()
    args = parser.parse_args(list(argv))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.max_log_rows is not None and args.max_log_rows < 1:
        parser.error(f"--max-log-rows must be >= 1, got {args.max_log_rows}")
    max_rows = args.max_log_rows or qsettings.value(MAX_ROWS_KEY, DEFAULT_MAX_ROWS, type=int)
    qsettings.setValue(MAX_ROWS_KEY, max_rows)
    if args.connect:
        url = check_url(parser, args.connect)
        token = args.api_token or os.environ.get("MENACE_API_TOKEN") or remembered_token(qsettings, url)
        if not token and ask_token is not None:
            token = ask_token(url)
        if token:
            remember_token(qsettings, url, token)
        return RemoteClientSource(url, token or None), max_rows
    return _local_or_attached(parser, args, qsettings), max_rows


def _database_owner(settings):
    """The running learner of ``settings.database_url`` (``None``: nobody, or the database is unreachable
    now; the stack's own start then says why)."""
    try:
        from menace.postgres.database import Database
        from menace.postgres.lease import owner_of as database_owner_of

        database = Database(settings.database_url, min_size=1, max_size=1)
    except Exception as exc:  # psycopg missing, a bad URL, no server: the local start explains it
        logger.debug("could not ask the database for its learner: %s", exc)
        return None
    try:
        return database_owner_of(database)
    except Exception as exc:
        logger.debug("could not ask the database for its learner: %s", exc)
        return None
    finally:
        database.close()


#: How long the monitor waits for a learner that is still starting to say where its API is.
OWNER_READY_WAIT = 10.0


def _owner_when_ready(find: Callable[[], Any], location: str, wait: float = OWNER_READY_WAIT, poll: float = 0.1):
    """The learner ``find()`` names as the owner, once it is ready (its API address, if any, written).

    A service that is still starting holds the lease before its API answers;
    attaching to it then would find no address and start a second stack that
    the lease refuses. ``None``: nobody owns it.
    """
    holder = find()
    if holder is None or holder.ready or holder.api_url:  # an address is written once the API answers
        return holder
    logger.info("%s is owned by a learner that is still starting (%s): waiting up to %.0f s for its API",
                location, holder.describe(), wait)
    deadline = time.monotonic() + wait
    while holder is not None and not (holder.ready or holder.api_url) and time.monotonic() < deadline:
        time.sleep(poll)
        holder = find()
    return holder


def _local_or_attached(parser, args, qsettings: QSettings):
    """A ServiceThread on the data directory, or a client of the service that owns it."""
    from menace.lease import owner_of
    from menace.self_learning_service import TORCH_THREADS, settings_from_args

    from .service_thread import ServiceThread

    if args.data_dir is None and not os.environ.get("MENACE_DATA_DIR"):
        last = qsettings.value(LAST_DATA_DIR_KEY, "", type=str)
        if last:
            args.data_dir = last
    for name, value in gui_settings.service_overrides(qsettings, args).items():
        setattr(args, name, value)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    qsettings.setValue(LAST_DATA_DIR_KEY, str(settings.data_dir))
    holder = _owner_when_ready(
        (lambda: _database_owner(settings)) if settings.database_url else (lambda: owner_of(settings.data_dir)),
        settings.store_location,
    )
    if holder is not None and holder.api_url:
        from menace.api.tokens import read_token

        where = "this database" if settings.database_url else "this data directory"
        logger.info("%s is owned by the service of pid %d on %s at %s: attaching to it", settings.store_location,
                    holder.pid, holder.host, holder.api_url)
        token = (
            args.api_token or os.environ.get("MENACE_API_TOKEN") or remembered_token(qsettings, holder.api_url)
            or read_token(settings.data_dir)
        )
        return RemoteClientSource(
            holder.api_url, token,
            note=f"attached to the service of {where} (pid {holder.pid} on {holder.host}; it learns, this window watches)",
        )
    explicit_port = args.metrics_port is not None or bool(os.environ.get("MENACE_METRICS_PORT"))
    # As the headless service does: torch (MiniLM) on one thread unless the user
    # says otherwise; more threads contending here made each call ~10x slower.
    os.environ.setdefault("OMP_NUM_THREADS", str(TORCH_THREADS))
    return ServiceThread(settings, metrics_required=explicit_port)


# -- connecting to a service elsewhere ------------------------------------------------------

TokenPrompt = Callable[[str], str | None]
TOKENS_KEY = "connect/tokens"


def check_url(parser, url: str) -> str:
    """``url`` with no trailing slash, if it is an http(s) URL with a host; else a usage error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"--connect needs a URL like http://host:8001, got {url!r}")
    return url.strip().rstrip("/")


def remembered_token(qsettings: QSettings, url: str) -> str:
    return qsettings.value(f"{TOKENS_KEY}/{_key(url)}", "", type=str)


def remember_token(qsettings: QSettings, url: str, token: str) -> None:
    """Keep the token for ``url`` in the monitor's settings file, readable by this user only."""
    qsettings.setValue(f"{TOKENS_KEY}/{_key(url)}", token)
    qsettings.sync()
    path = qsettings.fileName()
    if path and os.path.exists(path):
        os.chmod(path, 0o600)


def _key(url: str) -> str:
    return url.replace("://", "_").replace("/", "_").replace(":", "_")


def ask_token(parent) -> TokenPrompt:
    """A prompt for the API token of a URL, as a password field (``None`` if cancelled)."""

    def ask(url: str) -> str | None:
        from PySide6.QtWidgets import QInputDialog, QLineEdit

        token, ok = QInputDialog.getText(
            parent, "Menace service token",
            f"The API token of {url}\n(in the service's data directory, file api_token):",
            QLineEdit.EchoMode.Password,
        )
        return token.strip() if ok and token.strip() else None

    return ask


def _start_service(app: QApplication, window: MainWindow, argv: Sequence[str], qsettings: QSettings) -> None:
    """After the first paint: read the flags, then start the service in its thread."""
    try:
        service, max_rows = service_from_args(argv, qsettings, ask_token(window))
    except SystemExit as exc:  # argparse said what was wrong on stderr
        window.close()
        app.exit(exc.code if isinstance(exc.code, int) else 2)
        return
    log = window.panel("eventLog")
    if log is not None and log.max_rows != max_rows:
        log.set_max_rows(max_rows)
    window.set_source(service)


def main(argv: list[str] | None = None) -> int:
    """Open the main window; returns the exit status when it closes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        build_gui_parser().parse_args(argv)  # prints the help and exits
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return NO_DISPLAY_EXIT

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APPLICATION])
    qsettings = QSettings()
    max_rows = qsettings.value(MAX_ROWS_KEY, DEFAULT_MAX_ROWS, type=int)
    window = MainWindow(None, qsettings, max_log_rows=max(1, max_rows), freeze_heap=True, responsive_close=True)
    window.closed.connect(app.quit)  # the monitor's window is the app, whatever else is open
    # ...so Qt's own last-window quit is not needed: its Quit event, posted as the window
    # closes, would arrive after exec() returned and end the next event loop of the process.
    app.setQuitOnLastWindowClosed(False)
    window.firstPainted.connect(lambda: QTimer.singleShot(0, lambda: _start_service(app, window, argv, qsettings)))
    window.show()

    # Ctrl-C / SIGTERM close the window (and so stop the stack) like the close button.
    previous = {
        sig: signal.signal(sig, lambda *_: QTimer.singleShot(0, window.close))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    pulse = QTimer()
    pulse.start(200)  # lets Python run its signal handlers while Qt's loop waits
    pulse.timeout.connect(lambda: None)
    try:
        code = app.exec()
    finally:
        pulse.stop()
        window.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
