"""Saved models and their metadata on a hostile disk (issue 15, items 9-11 and 22).

Unloadable or impossible metadata, files that expand beyond the size limit,
two processes saving a directory model at once (and processes killed while
saving), and engine or model names that would leave ``models/``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.model_store import ModelStore, expanded_size
from menace.models import register
from menace.models.tabular import sio
from menace.neuroplasticity import PathwayDB, PathwayRecord


def runs(n: int) -> list[PathwayRecord]:
    return [
        PathwayRecord(["fetch->parse", "login->buy", "scan->fix"][i % 3], exec_time=0.5 + i % 5,
                      roi=float(i % 4), outcome="FAILURE" if i % 3 == 2 else "SUCCESS")
        for i in range(n)
    ]


@pytest.fixture
def stores(tmp_path):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder="hashing")
    pdb.log_many(runs(40))
    yield pdb, mm
    pdb.close()
    mm.close()


def trained_model(stores) -> Path:
    pdb, mm = stores
    engine = LearningEngine(pdb, mm)
    assert engine.train()
    return engine.model_path()


def rewrite_meta(path: Path, **changes) -> None:
    """The same skops model with its metadata changed (a valid file, damaged metadata)."""
    data = sio.load(str(path), trusted=sio.get_untrusted_types(file=str(path)))
    data["meta"].update(changes)
    sio.dump(data, str(path))


def restart_and_read_the_log(stores, caplog) -> tuple[LearningEngine, list[logging.LogRecord]]:
    pdb, mm = stores
    caplog.clear()
    with caplog.at_level(logging.INFO):
        engine = LearningEngine(pdb, mm)
    return engine, [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- item 9: unloadable or impossible metadata ----------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"n_seen": None}, {"n_seen": "many"}, {"n_seen": -3}, {"n_seen": 2.5}, {"n_seen": True},
        {"trained_through_run_id": 10**30}, {"trained_through_run_id": "3"},
        {"trained_through_run_id": 10**6},  # ahead of the store's newest run (40)
        {"learned_runs": [[1, 10**30]]},  # ahead of the store too
        {"saved_at": "yesterday"}, {"saved_at": float("inf")}, {"prequential": [1, 2]},
    ],
    ids=repr,
)
def test_a_model_with_metadata_that_cannot_be_true_is_one_clear_line_then_untrained(stores, caplog, changes):
    path = trained_model(stores)
    rewrite_meta(path, **changes)
    engine, problems = restart_and_read_the_log(stores, caplog)
    assert not engine.is_trained
    assert len(problems) == 1, [r.getMessage() for r in problems]
    message = problems[0].getMessage()
    assert str(path) in message and "starting untrained" in message and "\n" not in message
    assert not any(r.exc_info for r in caplog.records)  # no traceback
    pdb, _ = stores
    pdb.log_many(runs(6))  # and it learns again from the start
    assert engine.partial_train(pdb.run_events(since_id=40))
    assert engine.n_seen == 6


def test_a_model_metadata_that_is_fine_still_loads(stores, caplog):
    trained_model(stores)
    engine, problems = restart_and_read_the_log(stores, caplog)
    assert engine.is_trained and engine.n_seen == 40 and problems == []


# -- item 10: the expanded size of a saved model is capped ----------------------------------------


def add_padding(path: Path, megabytes: int) -> None:
    """A member of zeros: a few KB in the file, ``megabytes`` MB expanded."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.bin", b"\0" * (megabytes << 20))


def test_a_model_file_that_expands_beyond_the_limit_is_refused_before_loading(stores, caplog, monkeypatch):
    path = trained_model(stores)
    add_padding(path, 64)
    assert path.stat().st_size < 1 << 20 and expanded_size(path) > 64 << 20
    monkeypatch.setenv("MENACE_MAX_MODEL_BYTES", str(32 << 20))
    loaded = []
    monkeypatch.setattr(sio, "load", lambda *a, **k: loaded.append(a))  # must not be reached
    engine, problems = restart_and_read_the_log(stores, caplog)
    assert not engine.is_trained and loaded == []
    message = problems[0].getMessage()
    assert str(path) in message and "more than the limit" in message and "MENACE_MAX_MODEL_BYTES" in message


def test_a_model_beyond_the_limit_is_not_saved_and_the_previous_file_stays(stores, caplog, monkeypatch):
    path = trained_model(stores)
    before = path.read_bytes()
    monkeypatch.setenv("MENACE_MAX_MODEL_BYTES", "1000")  # smaller than any model
    pdb, mm = stores
    engine = LearningEngine(pdb, mm, model="rf", model_dir=path.parent)
    with caplog.at_level(logging.ERROR):
        assert engine.train()  # the model is trained and used; only its file is not written
    assert "not saving the model" in caplog.text and "more than the limit" in caplog.text
    assert not engine.model_path().exists() and path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_limit_is_configurable_and_checked_like_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("MENACE_MAX_MODEL_BYTES", "many")
    with pytest.raises(ValueError, match="MENACE_MAX_MODEL_BYTES"):
        ModelStore("pathways", tmp_path)
    assert ModelStore("pathways", tmp_path, max_bytes=5).max_bytes == 5


# -- item 11: a directory model, saved by two processes and killed at any moment --------------------

#: A directory model standing in for the transformer's: three files, the marker last.
DIRECTORY_FAMILY = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from menace.model_store import ModelStore
    from menace.models.base import ModelFamily

    class Folder(ModelFamily):
        name = "folder"
        file_suffix = ".hf"
        saves_directory = True

        def save(self, estimator, meta, path):
            path.mkdir()
            (path / "weights.bin").write_bytes(estimator.encode() * 20000)
            time.sleep(0.002)
            (path / "config.json").write_text(json.dumps({"token": estimator}))
            (path / "meta.json").write_text(json.dumps(meta))

        def load(self, path):
            token = json.loads((path / "config.json").read_text())["token"]
            if (path / "weights.bin").read_bytes() != token.encode() * 20000:
                raise ValueError("torn model")
            return token, json.loads((path / "meta.json").read_text())

    META = {"format": 1, "model": "folder", "features": "f", "embedder": None, "n_features": 1,
            "n_seen": 1, "trained_through_run_id": 0, "learned_runs": []}
    store = ModelStore("pathways", Path(sys.argv[1]))
    """
)
SAVER = DIRECTORY_FAMILY + textwrap.dedent(
    """
    failed = 0
    for i in range(int(sys.argv[2])):
        failed += store.save(Folder(), f"{os.getpid()}-{i}", META) is None
    print(failed)
    """
)
READER = DIRECTORY_FAMILY + textwrap.dedent(
    """
    checks = missing = 0
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        checks += 1
        missing += store.load(Folder(), META) is None
    print(checks, missing)
    """
)


def python(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def versions_left(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if p.is_dir() and not p.is_symlink())


def test_two_processes_saving_a_directory_model_at_once_both_succeed_and_a_reader_always_finds_one(
    tmp_path,
):
    models = tmp_path / "models"
    first = python(SAVER, models, 1)
    assert first.communicate(timeout=60)[0].strip() == "0"
    savers = [python(SAVER, models, 60) for _ in range(2)]
    reader = python(READER, models, 4)
    outputs = [p.communicate(timeout=120) for p in (*savers, reader)]
    assert [out.strip() for out, _ in outputs[:2]] == ["0", "0"], [err[-2000:] for _, err in outputs]
    checks, missing = map(int, outputs[2][0].split())
    assert checks > 50 and missing == 0, outputs[2][1][-2000:]
    assert "torn model" not in outputs[2][1] and "cannot be loaded" not in outputs[2][1]
    assert len(versions_left(models)) == 1  # no leftovers: only the current version
    assert (models / "folder.hf").resolve().name == versions_left(models)[0]


def test_a_saver_killed_at_any_moment_never_leaves_a_reader_without_a_whole_model(tmp_path):
    models = tmp_path / "models"
    assert python(SAVER, models, 1).communicate(timeout=60)[0].strip() == "0"
    reader = python(READER, models, 6)
    rng = random.Random(15)
    deadline = time.monotonic() + 5
    kills = 0
    while time.monotonic() < deadline:
        saver = python(SAVER, models, 1000)
        time.sleep(rng.uniform(0.2, 0.6))  # the interpreter starts in ~0.2 s, then saves in a loop
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        kills += 1
    out, err = reader.communicate(timeout=60)
    checks, missing = map(int, out.split())
    assert kills >= 5 and checks > 50 and missing == 0, err[-2000:]
    assert "cannot be loaded" not in err
    assert python(SAVER, models, 1).communicate(timeout=60)[0].strip() == "0"
    assert len(versions_left(models)) == 1  # the next save removed what the kills left


def test_a_directory_model_of_an_older_release_is_moved_to_a_version_on_the_next_save(tmp_path):
    models = tmp_path / "models"
    assert python(SAVER, models, 1).communicate(timeout=60)[0].strip() == "0"
    current = (models / "folder.hf").resolve()
    (models / "folder.hf").unlink()
    current.rename(models / "folder.hf")  # the old layout: a plain directory
    assert python(READER, models, 0.3).communicate(timeout=60)[0].split()[1] == "0"
    assert python(SAVER, models, 2).communicate(timeout=60)[0].strip() == "0"
    assert (models / "folder.hf").is_symlink() and len(versions_left(models)) == 1


# -- item 22: names that would leave models/ ------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\\b", ".", "x\x00y", "tab\there"])
def test_an_engine_name_with_a_path_separator_is_refused(stores, name, tmp_path):
    pdb, mm = stores
    with pytest.raises(ValueError, match="name"):
        LearningEngine(pdb, mm, name=name)
    assert not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("name", ["../../x", "evil/model", ".."])
def test_a_registered_model_name_with_a_path_separator_is_refused(name):
    with pytest.raises(ValueError, match="name"):
        register(name, "menace.models.logreg:LogisticRegressionFamily")
