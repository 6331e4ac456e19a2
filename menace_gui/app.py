"""Entry point of the desktop monitor: ``menace-gui`` / ``python -m menace_gui``.

Takes the service's own flags (``--data-dir``, ``--model``, ``--metrics-port``,
...; see ``menace-gui --help``) plus ``--max-log-rows``. Without
``--data-dir`` or ``MENACE_DATA_DIR`` the data directory used last time is
opened again (else the service's default).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from menace.self_learning_service import TORCH_THREADS, build_parser, settings_from_args

from .main_window import MainWindow
from .service_thread import ServiceThread
from .widgets.event_log import DEFAULT_MAX_ROWS

logger = logging.getLogger(__name__)

ORGANIZATION = "Menace"
APPLICATION = "menace-gui"
LAST_DATA_DIR_KEY = "data/last_dir"
MAX_ROWS_KEY = "log/max_rows"


def build_gui_parser():
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Open the main window; returns the exit status when it closes."""
    parser = build_gui_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.max_log_rows is not None and args.max_log_rows < 1:
        parser.error(f"--max-log-rows must be >= 1, got {args.max_log_rows}")

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APPLICATION])
    qsettings = QSettings()

    if args.data_dir is None and not os.environ.get("MENACE_DATA_DIR"):
        last = qsettings.value(LAST_DATA_DIR_KEY, "", type=str)
        if last:
            args.data_dir = last
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    qsettings.setValue(LAST_DATA_DIR_KEY, str(settings.data_dir))
    max_rows = args.max_log_rows or qsettings.value(MAX_ROWS_KEY, DEFAULT_MAX_ROWS, type=int)
    qsettings.setValue(MAX_ROWS_KEY, max_rows)
    explicit_port = args.metrics_port is not None or bool(os.environ.get("MENACE_METRICS_PORT"))

    # As the headless service does: torch (MiniLM) on one thread unless the user
    # says otherwise; more threads contending here made each call ~10x slower.
    os.environ.setdefault("OMP_NUM_THREADS", str(TORCH_THREADS))
    service = ServiceThread(settings, metrics_required=explicit_port)
    window = MainWindow(service, qsettings, max_log_rows=max_rows, freeze_heap=True)
    window.closed.connect(app.quit)  # the monitor's window is the app, whatever else is open
    # ...so Qt's own last-window quit is not needed: its Quit event, posted as the window
    # closes, would arrive after exec() returned and end the next event loop of the process.
    app.setQuitOnLastWindowClosed(False)
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
