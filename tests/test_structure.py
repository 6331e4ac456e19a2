"""The shape the reshape promised: public exports, protocols a fake can satisfy, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from menace import events
from menace.embeddings import HashingEmbedder
from menace.errors import FieldError
from menace.features import ORDER_DIM
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.neuroplasticity import Pathway, PathwayDB, PathwayRecord
from menace.protocols import EmbeddingSource, EventBus, Learner, PathwayStore
from menace.run_watcher import run_payload

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_imports_work_from_the_package_without_loading_it_all():
    code = (
        "import sys\n"
        "import menace\n"
        "lazy = 'menace.learning_engine' not in sys.modules\n"
        "from menace import PathwayDB, LearningEngine, UnifiedEventBus, SelfLearningCoordinator, "
        "GPTMemory, MenaceMemoryManager\n"
        "print(lazy, PathwayDB.__module__, LearningEngine.__module__, GPTMemory.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "menace.neuroplasticity", "menace.learning_engine", "menace.gpt_memory"]
    with pytest.raises(AttributeError, match="nothing"):
        import menace

        menace.nothing  # noqa: B018


def test_the_sqlite_stores_and_the_engine_satisfy_the_protocols(tmp_path, bus):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder=HashingEmbedder(16))
    engine = LearningEngine(pdb, mm)
    assert isinstance(pdb, PathwayStore)
    assert isinstance(mm, EmbeddingSource)
    assert isinstance(bus, EventBus)
    assert isinstance(engine, Learner)
    pdb.close()
    mm.close()


class ListStore:
    """A pathway store in a list: only what the PathwayStore protocol names."""

    path = ":memory:"
    half_life_days = 30.0

    def __init__(self, runs: list[dict]) -> None:
        self._runs = runs

    def runs(self, pathway_id=None, *, since_id=0, limit=None):
        rows = [r for r in self._runs if r["id"] > since_id]
        return rows[:limit] if limit else rows

    def count_runs(self):
        return len(self._runs)

    def newest_run_id(self):
        return self._runs[-1]["id"] if self._runs else 0

    def logged_here(self, run_id):
        return False

    def logged_here_many(self, run_ids):
        return [False for _ in run_ids]

    def run_events(self, since_id=0, limit=2000):
        return []

    def find(self, actions):
        mine = [r for r in self._runs if r["actions"] == actions]
        if not mine:
            return None
        wins = sum(r["outcome"] == "SUCCESS" for r in mine)
        return Pathway(1, actions, len(mine), wins, wins / len(mine), 1.0, 1.0, mine[-1]["ts"], 0.0)

    def get(self, pathway_id):
        return None


class ConstantEmbeddings:
    """An embedding source without SQLite: hashing vectors, no cache."""

    def __init__(self) -> None:
        self.embedder = HashingEmbedder(16)

    def embed_many(self, texts):
        return self.embedder.encode(list(texts))


def test_the_engine_learns_from_any_store_that_keeps_the_protocol():
    runs = [
        {"id": i + 1, "actions": "check->deploy" if i % 2 else "deploy", "exec_time": 1.0,
         "roi": 2.0 if i % 2 else -1.0, "outcome": "SUCCESS" if i % 2 else "FAILURE",
         "prior_frequency": i // 2, "prior_myelination": 0.0, "ts": 1.7e9 + i}
        for i in range(40)
    ]
    engine = LearningEngine(ListStore(runs), ConstantEmbeddings())
    assert engine.model_dir is None  # a store without a folder: nothing is saved
    assert engine.train() is True
    assert engine.predict_success(5, 1.0, 2.0, 0.0, "check->deploy") > 0.5 > engine.predict_success(
        5, 1.0, -1.0, 0.0, "deploy"
    )
    assert engine.has_learned(40) and not engine.has_learned(41)


def test_the_pathway_new_payload_has_one_builder(tmp_path):
    """The store's live event and the watcher's event for the same run are the same payload."""
    published = []

    class Capture:
        def publish(self, topic, payload):
            published.append(payload)

    pdb = PathwayDB(tmp_path / "pathways.db", event_bus=Capture())
    pdb.log(PathwayRecord("a->b", exec_time=2.0, roi=1.5, outcome="PARTIAL_SUCCESS", ts=1.7e9))
    live = published[0]
    (row,) = pdb.runs()
    rebuilt = run_payload(row)  # the stats the run row carries
    assert {k: v for k, v in rebuilt.items() if k != "external"} == live
    assert rebuilt["external"] is True
    events.validate_input(events.PATHWAY_NEW, live)
    pdb.close()


def test_every_topic_has_a_spec_that_summarises_and_names_the_wrong_field():
    assert set(events.INPUT_TOPICS) | set(events.OUTPUT_TOPICS) == set(events.TOPICS)
    for topic, spec in events.TOPICS.items():
        assert spec.summarise({}) == "" or isinstance(spec.summarise({}), str), topic
        with pytest.raises(FieldError) as caught:
            spec.validate({})
        assert caught.value.field in spec.fields, topic
    with pytest.raises(FieldError) as caught:
        events.validate_input(events.LEARNING_TRAINED, {})
    assert caught.value.field == "topic"


def test_validation_errors_name_their_field_and_stay_value_errors():
    with pytest.raises(ValueError) as caught:
        PathwayRecord("a", exec_time=-1.0)
    assert isinstance(caught.value, FieldError) and caught.value.field == "exec_time"
    with pytest.raises(FieldError) as caught:
        PathwayRecord("a", outcome="MAYBE")
    assert caught.value.field == "outcome"


def _local_imports(path: Path) -> set[str]:
    """The ``menace`` modules a module imports (relative or absolute)."""
    package = "menace" if path.parent.name == "menace" else f"menace.{path.parent.name}"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
                found.update(names)
            elif node.module and node.module.startswith("menace"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("menace"))
    return found


def test_the_library_has_no_import_cycle():
    modules = {}
    for path in (ROOT / "menace").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        modules[name] = path
    graph = {
        name: {m for m in _local_imports(path) if m in modules and m != name and m != "menace"}
        for name, path in modules.items()
    }
    # lazy imports inside functions count too: a cycle through them is still a cycle to read
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for name in graph:
        if name not in seen:
            visit(name)


def test_no_test_file_imports_another():
    offenders = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = getattr(node, "module", None) or ""
            names = [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else [module]
            if any(n.split(".")[-1].startswith("test_") or n.startswith("tests") for n in names if n):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_features_are_one_pipeline_for_training_and_prediction(tmp_path):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder=HashingEmbedder(16))
    engine = LearningEngine(pdb, mm)
    row = engine.features_of(np.array([[3.0, 1.0, 2.0, 0.5]]), ["a->b"])
    assert row.shape == (1, len(engine.feature_names)) == (1, 5 + 16 + ORDER_DIM)
    pdb.close()
    mm.close()
