"""Run generators shared by several test files (not a test file: nothing here is collected)."""

from __future__ import annotations

import random

from menace.neuroplasticity import Outcome, PathwayRecord

GOOD = ["fetch->parse->store", "build->test->deploy", "lint->test->merge"]
BAD = ["fetch->skip_tests->deploy", "scrape->force_push", "login->scrape->retry"]



def make_runs(n: int, seed: int = 0, t0: float = 1.0e9) -> list[PathwayRecord]:
    """Runs whose success depends on the action text and the ROI."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        good = rng.random() < 0.5
        actions = rng.choice(GOOD if good else BAD)
        roi = rng.uniform(-2.0, 4.0)
        p = (0.92 if good else 0.15) if roi > 0 else (0.5 if good else 0.05)
        outcome = Outcome.SUCCESS if rng.random() < p else rng.choice(
            [Outcome.FAILURE, Outcome.PARTIAL_SUCCESS])
        records.append(PathwayRecord(actions=actions, exec_time=rng.uniform(0.1, 5.0), roi=roi,
                                     outcome=outcome, ts=t0 + 60.0 * i))
    return records
