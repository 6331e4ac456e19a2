"""Cold start: ``import menace`` and ``menace-gui`` to the first painted window.

Each figure sits next to its baseline in the same run: a bare ``python -c pass``
for the import, a bare PySide6 ``QMainWindow`` for the window. Both windows are
timed by the same harness (an event filter installed when the app calls
``exec``), from process launch to the first Paint event of a top-level window;
the harness then closes the windows the normal way, so the app shuts down as it
would for a user. Target: the monitor's first paint within 3x the bare window's.
The monitor paints its window first and loads the service's modules and the
charts (pyqtgraph) right after that paint (see ``menace_gui.app``).

    python bench/cold_start.py [--repeat 5] [--out bench/results/cold_start.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The monitor's first paint may take at most this many times a bare window's.
TARGET_RATIO = 3.0

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


def paired_medians(first: str, second: str, env: dict, repeat: int, marker: str) -> tuple[float, float]:
    """Medians of two launches taken in turns (a, b, a, b, ...), so both see the same load."""
    timed(first, env, marker)  # warm the OS file cache
    timed(second, env, marker)
    a, b = [], []
    for _ in range(repeat):
        a.append(timed(first, env, marker))
        b.append(timed(second, env, marker))
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cold_start.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
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
        try:
            bare_win, gui = paired_medians(HARNESS + BARE_WINDOW, HARNESS + MENACE_GUI, genv, args.repeat,
                                           "FIRST_PAINT")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            bare_win, gui = float("nan"), float("nan")
            print(f"menace-gui did not paint: {exc}", file=sys.stderr)
    rows.append(("`menace-gui` to first painted window", gui, "bare PySide6 window", bare_win, "-"))

    lines = [f"Median of {args.repeat} launches each, after one warm-up; the two windows are launched in "
             "turns (bare, monitor, bare, ...) so both see the same load.", "",
             "| what | time | baseline | baseline time | ratio |", "|---|---|---|---|---|"]
    for what, value, base, base_value, _ in rows:
        lines.append(f"| {what} | {value * 1000:.0f} ms | {base} | {base_value * 1000:.0f} ms | "
                     f"{value / base_value:.2f}x |")
    ratio = gui / bare_win
    lines += ["", f"`import menace` costs {1000 * (imp - bare_py):.0f} ms over a bare interpreter.",
              f"First paint: {ratio:.2f}x a bare PySide6 window (target <= {TARGET_RATIO:.0f}x): "
              f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}."]
    body = "\n".join(lines)
    print(body)
    command = "python bench/cold_start.py" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    Path(args.out).write_text(
        "# Cold start\n\n"
        f"```\n{command}\n```\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load_before:.2f} before "
        f"and {os.getloadavg()[0]:.2f} after on {os.cpu_count()} cores (other work may have been running), "
        f"Python {platform.python_version()}, {env['QT_QPA_PLATFORM']} Qt, empty data directory.\n\n"
        f"{body}\n\n"
        "The window paints first; the service's modules (its flag parser comes with them), the stack and "
        "the charts (pyqtgraph) load right after that paint, so the ratio is what an operator waits for a "
        "window, not for the service to run.\n"
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
