"""What the GUI tests share besides fixtures: the FakeClient, starting the real window, seeding runs.

A module of its own (not conftest.py) so test modules can import it by name.
"""

from __future__ import annotations

import random
import time

from PySide6.QtCore import QSettings

from menace import events
from menace.client import ClientStatus, Contribution, Counts, Explanation, LoggedRun, Prediction
from menace.config import Settings
from menace.events import Event
from menace.jobs import JobInfo
from menace.menace_memory_manager import MemoryEntry
from menace.neuroplasticity import Pathway, PathwayRecord
from menace_gui.main_window import MainWindow
from menace_gui.service_thread import RUNNING, ServiceThread

START_TIMEOUT_MS = 30_000


def start_window(qtbot, data_dir, ini_path, *, keep: bool = False, **window_kw) -> MainWindow:
    """Start the real stack (no metrics server) in a ServiceThread and show the window on it.

    Unless ``keep``, qtbot closes and deletes the window after the test, so a
    closed window never stays the application's active window.
    """
    service = ServiceThread(Settings(data_dir=data_dir, metrics_port=0))
    window = MainWindow(service, QSettings(str(ini_path), QSettings.Format.IniFormat), **window_kw)
    if not keep:
        qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.client is not None and service.state == RUNNING, timeout=START_TIMEOUT_MS)
    window.finish_building()  # the first paint does it; offscreen, do not wait for one
    return window


def seed_pathways(stack, n: int = 40, seed: int = 7) -> None:
    """Log ``n`` runs with both outcomes, as a producer script would."""
    rng = random.Random(seed)
    stack.pathway_db.log_many(
        PathwayRecord(
            actions=f"step{i % 5}->check->store",
            exec_time=rng.uniform(0.1, 3.0),
            roi=rng.uniform(-1, 3),
            outcome="SUCCESS" if rng.random() < 0.5 + 0.1 * (i % 5) - 0.2 else "FAILURE",
            ts=time.time() - (n - i),
        )
        for i in range(n)
    )


class FakeClient:
    """A MenaceClient kept in memory: no stack, no SQLite, no bus.

    ``publish`` plays the learner (an event to every subscriber and to the
    "journal" ``events_since`` reads); ``refuse`` makes the next write raise
    that error. What the window sent is in ``runs``, ``interactions``,
    ``predictions``, ``submitted`` and ``cancelled``.
    """

    def __init__(self) -> None:
        now = time.time()
        self.callbacks: list = []
        self.journal: list[Event] = []
        self.runs: list[dict] = []
        self.interactions: list[tuple] = []
        self.predictions: list[tuple] = []
        self.submitted: list[tuple[str, dict]] = []
        self.cancelled: list[int] = []
        self.refuse: Exception | None = None
        self.closed = False
        self.model_examples = 120
        self.stored_runs = 130
        self._jobs: dict[int, JobInfo] = {}
        self.history = [
            {"engine": "pathways", "model": "fake", "ts": now - 7200, "cv_score": 0.61, "holdout_score": 0.58},
            {"engine": "pathways", "model": "fake", "ts": now - 3600, "cv_score": 0.66, "holdout_score": 0.63},
        ]
        self.prequential = [
            {"engine": "pathways", "model": "fake", "ts": now - 1800 + 60 * i, "accuracy": 0.6 + 0.01 * i,
             "baseline": 0.55, "log_loss": 0.6, "n_window": 100, "n_total": 100 * (i + 1)}
            for i in range(10)
        ]
        self.stored_pathways = [
            Pathway(id=i, actions=f"fake{i}->step", frequency=10 * i, successes=5 * i, success_rate=0.5,
                    avg_exec_time=1.0, avg_roi=0.5, last_activation=now, myelination_score=float(i))
            for i in range(1, 4)
        ]
        self.stored_memory = [
            MemoryEntry(id=1, key="gpt:fake", version=1, data='{"prompt": "hi", "response": "there"}',
                        tags=["gpt", "fake"], ts=now),
            MemoryEntry(id=2, key="notes", version=1, data="zebra crossing", tags=[], ts=now),
        ]
        self.publish(events.SERVICE_STARTED, {"data_dir": "fake://menace", "model": "fake", "metrics_url": None})

    # -- playing the learner ------------------------------------------------------
    def publish(self, topic: str, payload: dict) -> Event:
        event = Event(len(self.journal) + 1, time.time(), topic, {"ts": time.time(), **payload})
        self.journal.append(event)
        for callback in list(self.callbacks):
            callback(event)
        return event

    def _write(self) -> None:
        if self.refuse is not None:
            error, self.refuse = self.refuse, None
            raise error

    # -- MenaceClient -------------------------------------------------------------
    def status(self) -> ClientStatus:
        return ClientStatus(location="fake://menace", engine="pathways", model="fake-model", trained=True,
                            examples_learned=0, metrics_url="http://127.0.0.1:9/metrics", learner=False,
                            started=time.time(), session_event_id=0, model_examples=self.model_examples)

    def subscribe(self, callback) -> None:
        self.callbacks.append(callback)

    def unsubscribe(self, callback) -> None:
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    def events_since(self, event_id: int, limit: int = 1000) -> list[Event]:
        return [e for e in self.journal if e.id > event_id][:limit]

    def log_run(self, run) -> LoggedRun:
        self._write()
        self.runs.append(dict(run))
        logged = LoggedRun(run_id=len(self.runs), pathway_id=7)
        self.publish(events.PATHWAY_NEW, {"pathway_id": 7, "run_id": logged.run_id, **dict(run)})
        return logged

    def log_interaction(self, prompt, response, tags=()) -> int:
        self._write()
        self.interactions.append((prompt, response, list(tags)))
        self.publish(events.MEMORY_NEW, {"memory_id": 40 + len(self.interactions), "key": "gpt:x",
                                         "version": 1, "tags": list(tags), "data": prompt})
        return 40 + len(self.interactions)

    def predict(self, freq, exec_time, roi, myelination, actions) -> Prediction:
        self._write()
        self.predictions.append((freq, exec_time, roi, myelination, actions))
        return Prediction(probability=0.75, model="fake-model", trained=True)

    def predict_many(self, queries) -> list[Prediction]:
        self._write()
        return [Prediction(probability=round(0.2 + 0.1 * (len(q["actions"]) % 7), 2), model="fake-model",
                           trained=True) for q in queries]

    def explain(self, freq, exec_time, roi, myelination, actions) -> Explanation:
        prediction = self.predict(freq, exec_time, roi, myelination, actions)
        contributions = (
            Contribution("roi", "ROI", "feature", roi, 0.5, 0.12),
            Contribution("step 1", actions.split("->")[0], "step", actions.split("->")[0], None, -0.05),
        )
        return Explanation(prediction.probability, prediction.model, True, contributions, "fake occlusion")

    def submit_job(self, kind: str, **options) -> int:
        job_id = len(self._jobs) + 1
        self.submitted.append((kind, options))
        self._jobs[job_id] = JobInfo(job_id, kind, "pathways", "queued", dict(options), 0.0, "", None, None,
                                     time.time(), None, None)
        return job_id

    def cancel_job(self, job_id: int) -> bool:
        if job_id not in self._jobs:
            return False
        self.cancelled.append(job_id)
        self.publish(events.LEARNING_CANCELLED, {"job_id": job_id, "kind": self._jobs[job_id].kind,
                                                 "engine": "pathways"})
        return True

    def job(self, job_id: int) -> JobInfo | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[JobInfo]:
        return list(self._jobs.values())

    def pathways(self, limit: int = 5000) -> list:
        return self.stored_pathways[:limit]

    def find_pathway(self, actions: str):
        return next((p for p in self.stored_pathways if p.actions == actions), None)

    def memory(self, text: str = "", limit: int = 200) -> list:
        found = [e for e in self.stored_memory if text.casefold() in e.data.casefold()]
        return found[:limit]

    def evaluation_history(self) -> list[dict]:
        return [dict(h) for h in self.history]

    def prequential_history(self) -> list[dict]:
        return [dict(p) for p in self.prequential]

    def counts(self) -> Counts:
        return Counts(pathways=len(self.stored_pathways), runs=self.stored_runs + len(self.runs),
                      memory=len(self.stored_memory))

    def close(self) -> None:
        self.closed = True
        self.callbacks.clear()
