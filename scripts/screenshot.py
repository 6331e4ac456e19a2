"""Make docs/screenshot.png: the real monitor learning from a stream that drifts.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--dark] [--size 1280x820]

Runs offscreen by default (``QT_QPA_PLATFORM=offscreen``; set it to ``xcb``
under Xvfb for a real X window). In a temporary data directory the real stack
learns a stream of runs as a producer script would log them: for the first
part some workflows succeed and others fail; then the concept flips (the good
ones start failing, the bad ones succeed). The learning curve shows the
accuracy rise, the drop at the flip, the drift mark and the drift retrain, and
the recovery; periodic evaluations add CV and holdout points. Then a pathway
is predicted with its "why", and an event is selected in the log.
"""

from __future__ import annotations

import argparse
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
from PySide6.QtWidgets import QApplication  # noqa: E402

from menace.config import Settings  # noqa: E402
from menace.neuroplasticity import PathwayRecord  # noqa: E402
from menace_gui.main_window import MainWindow  # noqa: E402
from menace_gui.service_thread import RUNNING, ServiceThread  # noqa: E402
from menace_gui.theme import DARK, LIGHT  # noqa: E402

ACTIONS = [
    "fetch_invoices->parse_pdf->store",
    "scrape_prices->normalise->compare",
    "read_inbox->classify->reply",
    "pull_repo->run_tests->report",
    "export_crm->dedupe->sync",
    "resize_images->upload_cdn",
    "query_metrics->detect_anomaly->alert",
    "backup_db->verify->rotate",
]
GOOD_BEFORE = set(ACTIONS[::2])


def wait(app: QApplication, condition, timeout: float = 60.0) -> None:
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


def run(rng: random.Random, flipped: bool) -> PathwayRecord:
    actions = rng.choice(ACTIONS)
    good = (actions in GOOD_BEFORE) != flipped
    roi = rng.uniform(0.5, 3.0) if good else rng.uniform(-1.0, 1.0)
    outcome = rng.choices(["SUCCESS", "PARTIAL_SUCCESS", "FAILURE"], [0.88, 0.04, 0.08] if good else [0.1, 0.1, 0.8])[0]
    return PathwayRecord(actions=actions, inputs="batch", outputs="ok", exec_time=rng.uniform(0.2, 6.0),
                         resources="cpu:2 mem:512M", outcome=outcome, roi=roi)


def stream(app: QApplication, stack, rng: random.Random, runs: int, flip_at: int, per_tick: int) -> None:
    """Log ``runs`` runs, ``per_tick`` every 0.1 s (the concept flips at ``flip_at``)."""
    for start in range(0, runs, per_tick):
        stack.pathway_db.log_many([run(rng, flipped=i >= flip_at) for i in range(start, start + per_tick)])
        pause(app, 0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshot.png")
    parser.add_argument("--dark", action="store_true", help="use the dark theme")
    parser.add_argument("--tab", type=int, default=0, help="view tab: 0 scores, 1 evaluations, 2 pathways, 3 memory")
    parser.add_argument("--size", default="1280x820", help="window size WxH (logical pixels)")
    parser.add_argument("--runs", type=int, default=4200, help="runs in the stream (default 4,200)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    app = QApplication([sys.argv[0]])
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="menace-shot-") as tmp:
        data_dir = Path(tmp) / "data"
        settings = Settings(data_dir=data_dir, metrics_port=0, eval_every_examples=700, eval_every_seconds=0,
                            prequential_window=200)
        service = ServiceThread(settings)
        window = MainWindow(service, QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat))
        window.apply_theme(DARK if args.dark else LIGHT)
        window.resize(width, height)
        window.show()
        wait(app, lambda: window.client is not None and service.state == RUNNING)
        window.finish_building()
        stack = service.stack  # a producer script's view of the data: the stores themselves

        stream(app, stack, rng, args.runs, flip_at=args.runs // 2, per_tick=12)
        for prompt, response, tags in (
            ("Why do invoice runs fail on Mondays?", "The PDF parser times out on the weekend backlog.", ["invoices"]),
            ("Suggest a faster dedupe", "Hash normalised e-mail addresses first.", ["crm", "improvement"]),
        ):
            stack.gpt_memory.log_interaction(prompt, response, tags)
        controls = window.panel("jobControls")
        controls.request("evaluate")
        wait(app, controls.is_idle, 120)

        table, form = window.panel("pathwayTable"), window.panel("predictForm")
        table.refresh()
        wait(app, lambda: table.model.rowCount() == len(ACTIONS) and not table.is_predicting(), 60)
        pathway = next(table.model.record(r) for r in range(table.model.rowCount())
                       if table.model.record(r).actions == ACTIONS[1])
        window.show_panel(form)
        form.use_pathway(pathway)
        wait(app, lambda: not form.is_busy(), 30)

        log = window.panel("eventLog")
        pause(app, 1.5)  # let the tables, counts and the curve catch up
        row = next((r for r in range(log.proxy.rowCount() - 1, -1, -1)
                    if log.proxy.index(r, 2).data() == "learning:drift"), log.proxy.rowCount() - 1)
        log.view.setCurrentIndex(log.proxy.index(row, 0))
        window.view_tabs.setCurrentIndex(args.tab)
        window.status.refresh()
        scores = window.panel("scoresPanel")
        scores.curve.fit()
        pause(app, 0.8)

        image = window.grab()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out)):
            print(f"could not save {out}", file=sys.stderr)
            return 1
        data = scores.curve.data
        print(f"saved {out} ({image.width()}x{image.height()}); curve: {len(data)} points, "
              f"{len(data.evaluations)} evaluations, markers: {[m.text for m in data.all_markers()]}")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
