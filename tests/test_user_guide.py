"""Every Python example of docs/learning_engine.md (the user's guide) runs as written.

The examples read like a session on a user's existing data, so the test first
logs a few hundred runs into ``pathways.db`` in a fresh working directory, then
executes the guide's Python blocks in order, in one interpreter, unchanged.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "learning_engine.md"

SEED = textwrap.dedent(
    """
    import random
    from menace.neuroplasticity import PathwayDB, PathwayRecord, Outcome
    rng = random.Random(7)
    db = PathwayDB("pathways.db")
    records = []
    for i in range(240):
        good = rng.random() < 0.5
        actions = rng.choice(["fetch->parse->store", "fetch->store"]) if good else rng.choice(
            ["login->scrape->retry", "scrape->retry->fail"])
        outcome = Outcome.SUCCESS if (good ^ (rng.random() < 0.1)) else Outcome.FAILURE
        records.append(PathwayRecord(actions, "in", "out", rng.uniform(0.1, 3), "cpu", outcome,
                                     rng.uniform(0, 5) if good else rng.uniform(-2, 2)))
    db.log_many(records)
    db.close()
    """
)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run_guide(tmp_path: Path, blocks: list[str]) -> subprocess.CompletedProcess:
    script = SEED + "\n".join(f"# --- example {i}\n{b}" for i, b in enumerate(blocks))
    env = dict(os.environ, MENACE_DATA_DIR=str(tmp_path / "data"), MENACE_METRICS_PORT="0")
    return subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=900,
    )


def test_guide_has_the_examples_we_run():
    blocks = python_blocks()
    assert len(blocks) >= 7
    assert any("engine.train()" in b for b in blocks)


@pytest.mark.skipif(not _port_free(8001), reason="the guide's example binds port 8001")
def test_guide_examples_run_as_written_without_transformer(tmp_path):
    blocks = [b for b in python_blocks() if 'model="transformer"' not in b]
    result = run_guide(tmp_path, blocks)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "best model" in result.stdout
    # evaluate() printed two scores in [0, 1]
    cv, holdout = (float(x) for x in re.search(r"^([\d.]+) ([\d.]+)$", result.stdout, re.M).groups())
    assert 0.0 <= cv <= 1.0 and 0.0 <= holdout <= 1.0


@pytest.mark.slow
@pytest.mark.skipif(not _port_free(8001), reason="the guide's example binds port 8001")
def test_guide_examples_run_as_written_with_transformer(tmp_path):
    result = run_guide(tmp_path, python_blocks())
    assert result.returncode == 0, result.stderr[-4000:]
