"""Cold start: ``import menace`` and ``menace-gui`` to the first painted window.

Each figure sits next to its baseline in the same run: a bare ``python -c pass``
for the import, a bare PySide6 ``QMainWindow`` for the window. Both windows are
timed by the same harness (an event filter installed when the app calls
``exec``), from process launch to the first Paint event of a top-level window;
the harness then closes the windows the normal way, so the app shuts down as it
would for a user.

    python bench/cold_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HARNESS = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

class FirstPaint(QObject):
    done = False
    def eventFilter(self, obj, event):
        if not self.done and event.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.isWindow():
            self.done = True
            print("FIRST_PAINT", time.time(), flush=True)
            QTimer.singleShot(0, QApplication.closeAllWindows)
        return False

_exec = QApplication.exec
def exec_(*args):
    app = QApplication.instance()
    app._first_paint = FirstPaint()
    app.installEventFilter(app._first_paint)
    return _exec()
QApplication.exec = exec_
"""

BARE_WINDOW = r"""
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication([])
win = QMainWindow(); win.setCentralWidget(QLabel("bare")); win.resize(1200, 800); win.show()
app.exec()
"""

MENACE_GUI = r"""
import sys
from menace_gui.app import main
sys.argv = ["menace-gui"]
sys.exit(main())
"""


def timed(code: str, env: dict, marker: str | None = None) -> float:
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    if marker is None:
        return time.time() - start
    for line in proc.stdout.splitlines():
        if line.startswith(marker):
            return float(line.split()[1]) - start
    raise RuntimeError(f"no {marker} line in output: {proc.stdout[-500:]} {proc.stderr[-1500:]}")


def median(code: str, env: dict, repeat: int, marker: str | None = None) -> float:
    timed(code, env, marker)  # warm the OS file cache
    return statistics.median(timed(code, env, marker) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    rows = []
    bare_py = median("pass", env, args.repeat)
    imp = median("import menace", env, args.repeat)
    rows.append(("`import menace`", imp, "`python -c pass`", bare_py, "-"))
    imp_all = median(
        "import menace.neuroplasticity, menace.menace_memory_manager, menace.unified_event_bus",
        env, args.repeat,
    )
    rows.append(("import the stores and the bus", imp_all, "`python -c pass`", bare_py, "-"))
    with tempfile.TemporaryDirectory() as data:
        genv = dict(env, MENACE_DATA_DIR=data, MENACE_METRICS_PORT="0")
        bare_win = median(HARNESS + BARE_WINDOW, genv, args.repeat, "FIRST_PAINT")
        try:
            gui = median(HARNESS + MENACE_GUI, genv, args.repeat, "FIRST_PAINT")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            gui = float("nan")
            print(f"menace-gui did not paint: {exc}", file=sys.stderr)
    rows.append(("`menace-gui` to first painted window", gui, "bare PySide6 window", bare_win, "-"))

    print(f"Median of {args.repeat} launches each, after one warm-up.\n")
    print("| what | time | baseline | baseline time | ratio |")
    print("|---|---|---|---|---|")
    for what, value, base, base_value, _ in rows:
        print(f"| {what} | {value * 1000:.0f} ms | {base} | {base_value * 1000:.0f} ms | {value / base_value:.2f}x |")
    print(f"\n`import menace` costs {1000 * (imp - bare_py):.0f} ms over a bare interpreter.")


if __name__ == "__main__":
    main()
