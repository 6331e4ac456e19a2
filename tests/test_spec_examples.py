"""The user's examples (spec/learning_engine.md) that touch the stores, run as written.

The snippets are copied verbatim; when the spec is present next to the
checkout (``../shared/spec``), the test also checks they are still in it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "learning_engine.md"

# The first example, up to the stores it builds (the engine is another issue's).
STORES_EXAMPLE = """\
from menace.neuroplasticity import PathwayDB
from menace.menace_memory_manager import MenaceMemoryManager
"""
STORES_EXAMPLE_BODY = """\
pdb = PathwayDB("pathways.db")
mm = MenaceMemoryManager("mem.db")
"""

GPT_EXAMPLE = """\
from gpt_memory import GPTMemory
from menace.menace_memory_manager import MenaceMemoryManager

mm = MenaceMemoryManager("mem.db")
gpt_mem = GPTMemory(mm)
gpt_mem.log_interaction("idea?", "try a new helper", tags=["improvement"])
context = gpt_mem.fetch_context(["improvement"])
"""


@pytest.mark.skipif(not SPEC.exists(), reason="spec not next to this checkout")
def test_snippets_are_still_the_specs_words():
    spec = SPEC.read_text()
    assert STORES_EXAMPLE in spec
    assert STORES_EXAMPLE_BODY in spec
    assert GPT_EXAMPLE in spec


def test_store_example_creates_the_files_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(STORES_EXAMPLE + "\n" + STORES_EXAMPLE_BODY, namespace)
    pdb, mm = namespace["pdb"], namespace["mm"]
    try:
        assert (tmp_path / "pathways.db").exists()
        assert (tmp_path / "mem.db").exists()
        assert pdb.count_runs() == 0 and mm.count() == 0
    finally:
        pdb.close()
        mm.close()


def test_gpt_memory_example_persists_and_recalls_the_interaction(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(GPT_EXAMPLE, namespace)
    namespace["mm"].close()
    context = namespace["context"]
    assert "idea?" in context
    assert "try a new helper" in context
    with sqlite3.connect(tmp_path / "mem.db") as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM memory")]
    assert keys == ["gpt:improvement"]
