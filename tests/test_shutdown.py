"""Stopping right after start, while MiniLM is still loading, exits cleanly.

Closing the desktop window (or Ctrl-C on the service) in the first seconds used
to abandon the thread that loads the embedder; the interpreter then aborted at
exit ("terminate called without an active exception").
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from menace.embeddings import minilm_model_dir, transformers_available

SCRIPT = """
import threading, time
from menace import embeddings
from menace.self_learning_service import run_background

# A loaded machine: the model load takes longer than stop()'s grace time.
_load = embeddings.MiniLMEmbedder._load
def slow_load(self):
    time.sleep(4)
    _load(self)
embeddings.MiniLMEmbedder._load = slow_load

start, stop = run_background(data_dir={data!r}, metrics_port=0)
start()
time.sleep(0.5)
stop()
alive = [t.name for t in threading.enumerate() if t.name.startswith("menace")]
print("ALIVE", alive)
"""


@pytest.mark.slow
@pytest.mark.skipif(minilm_model_dir() is None or not transformers_available(), reason="needs the transformer extra")
def test_stop_during_embedder_load_exits_cleanly(tmp_path):
    env = dict(os.environ, MENACE_EMBEDDER="minilm")
    for attempt in range(2):
        data = tmp_path / f"data{attempt}"
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(data=str(data))],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "ALIVE []" in result.stdout
        assert "leaving it to finish" not in result.stderr
