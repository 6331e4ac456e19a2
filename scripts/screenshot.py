"""Make docs/screenshot.png: the real monitor window with generated data in it.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--dark]

Runs offscreen by default (``QT_QPA_PLATFORM=offscreen``; set it to ``xcb``
under Xvfb for a real X window). The data lives in a temporary directory: a
day of stored evaluations, pathway runs and GPT interactions are generated,
then the window's own Retrain and Evaluate buttons add a live point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MENACE_EMBEDDER", "hashing")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from menace import config  # noqa: E402
from menace.config import Settings  # noqa: E402
from menace.neuroplasticity import PathwayRecord  # noqa: E402
from menace_gui.main_window import MainWindow  # noqa: E402
from menace_gui.service_thread import RUNNING, ServiceThread  # noqa: E402
from menace_gui.widgets.event_log import EventLogWidget  # noqa: E402
from menace_gui.widgets.forms import PredictForm  # noqa: E402
from menace_gui.widgets.job_controls import JobControls  # noqa: E402

ACTIONS = [
    "fetch_invoices->parse_pdf->store",
    "scrape_prices->normalise->compare",
    "read_inbox->classify->reply",
    "pull_repo->run_tests->report",
    "export_crm->dedupe->sync",
    "resize_images->upload_cdn",
    "query_metrics->detect_anomaly->alert",
]


def wait(app: QApplication, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def pause(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def write_history(data_dir: Path, rng: random.Random) -> None:
    """A day of hourly evaluations, improving as data accumulates."""
    now = time.time()
    lines = []
    for i in range(24):
        progress = i / 23
        cv = 0.58 + 0.22 * progress + rng.uniform(-0.025, 0.025)
        lines.append({
            "engine": "pathways", "model": "logreg", "ts": now - (24 - i) * 3600,
            "cv_score": round(cv, 4), "holdout_score": round(cv + rng.uniform(-0.05, 0.03), 4),
            "n_examples": 40 + 12 * i, "source": "generated for the screenshot",
        })
    (data_dir / config.EVALUATIONS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))


def dark_palette() -> QPalette:
    p = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
        (QPalette.ColorRole.Base, "#1e1e1e"), (QPalette.ColorRole.AlternateBase, "#262626"),
        (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#353535"),
        (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#3d7bd9"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#353535"),
        (QPalette.ColorRole.ToolTipText, "#e6e6e6"), (QPalette.ColorRole.PlaceholderText, "#8a8a8a"),
    ):
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return p


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshot.png")
    parser.add_argument("--dark", action="store_true", help="use a dark palette")
    parser.add_argument("--tab", type=int, default=0, help="view tab: 0 scores, 1 pathways, 2 memory")
    parser.add_argument("--size", default="1440x900", help="window size WxH (logical pixels)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    app = QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="menace-shot-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_history(data_dir, rng)
        service = ServiceThread(Settings(data_dir=data_dir, metrics_port=0, eval_every_examples=0))
        window = MainWindow(service, QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat))
        window.resize(width, height)
        window.show()
        wait(app, lambda: window.client is not None and service.state == RUNNING)
        stack = service.stack  # a producer script's view of the data: the stores themselves

        now = time.time()
        records = []
        for i in range(160):
            actions = rng.choice(ACTIONS)
            good = ACTIONS.index(actions) % 3 != 2
            records.append(PathwayRecord(
                actions=actions, inputs=f"batch-{i}", outputs="ok",
                exec_time=rng.uniform(0.2, 6.0), resources="cpu:2 mem:512M",
                outcome=rng.choices(["SUCCESS", "PARTIAL_SUCCESS", "FAILURE"],
                                    [0.7, 0.1, 0.2] if good else [0.25, 0.15, 0.6])[0],
                roi=rng.uniform(0.5, 3.0) if good else rng.uniform(-1.0, 1.0),
                ts=now - (160 - i) * 60,
            ))
        for chunk in range(0, len(records), 20):
            stack.pathway_db.log_many(records[chunk:chunk + 20])
            pause(app, 0.1)
        for prompt, response, tags in (
            ("Why do invoice runs fail on Mondays?", "The PDF parser times out on the weekend backlog.", ["invoices"]),
            ("Suggest a faster dedupe", "Hash normalised e-mail addresses first.", ["crm", "improvement"]),
            ("Summarise the anomaly alerts", "Three spikes, all after the CDN deploy.", ["metrics"]),
        ):
            stack.gpt_memory.log_interaction(prompt, response, tags)

        controls = window.findChild(JobControls)
        controls.request("train")
        wait(app, controls.is_idle, 60)
        controls.request("evaluate")
        wait(app, controls.is_idle, 60)

        form = window.findChild(PredictForm)
        for name, value in (("frequency", "12"), ("exec_time", "1.8"), ("roi", "1.6"),
                            ("myelination", "9.5"), ("actions", ACTIONS[0])):
            form.editor(name).setText(value)
        window.show_panel(form)
        form.submit()
        wait(app, lambda: not form.is_busy(), 30)

        log = window.findChild(EventLogWidget)
        pause(app, 1.5)  # let the table and counts refresh
        row = next((r for r in range(log.proxy.rowCount() - 1, -1, -1)
                    if log.proxy.index(r, 2).data() == "learning:evaluated"), log.proxy.rowCount() - 1)
        log.view.setCurrentIndex(log.proxy.index(row, 0))
        log.view.scrollToBottom()
        window.view_tabs.setCurrentIndex(args.tab)
        window.status.refresh()
        pause(app, 0.5)

        image = window.grab()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out)):
            print(f"could not save {out}", file=sys.stderr)
            return 1
        print(f"saved {out} ({image.width()}x{image.height()}, device pixel ratio {image.devicePixelRatio()})")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
