"""Files on a shared machine (issue 15, items 6-7): private modes, no links followed, no other
user's files or directories, unpredictable temporary files.

Ownership cases hand files to ``nobody`` with ``chown``, which needs root; they skip otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from menace import config
from menace import self_learning_service as service
from menace.errors import UnsafePathError
from menace.files import append_line, atomic_write, check_data_dir, read_lines
from menace.history import EvaluationHistory
from menace.menace_memory_manager import MenaceMemoryManager
from menace.neuroplasticity import PathwayDB, PathwayRecord
from menace.self_learning_service import run_background

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
NOBODY = 65534
needs_root = pytest.mark.skipif(not ROOT, reason="handing a file to another user (chown) needs root")


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def runs(n: int) -> list[PathwayRecord]:
    return [
        PathwayRecord(["fetch->parse", "login->buy", "scan->fix"][i % 3], exec_time=0.5 + i % 5,
                      roi=float(i % 4), outcome="FAILURE" if i % 3 == 2 else "SUCCESS")
        for i in range(n)
    ]


def modes(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (itself included) with its mode, in octal."""
    found = {".": oct(stat.S_IMODE(folder.stat().st_mode))}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def run_the_service_once(data_dir: Path) -> None:
    """Everything that writes a file: stores, the journal, a trained and saved model, an
    auto-train choice, an evaluation, the test-then-train figures and the state file."""
    start, stop = run_background(data_dir=data_dir, metrics_port=0)
    stack = start()
    try:
        stack.memory.store("prompt", "a private prompt", ["gpt"])
        stack.pathway_db.log_many(runs(60))
        coordinator = stack.coordinator
        assert coordinator.wait_idle(20)
        assert coordinator.wait_job(coordinator.request_auto_train(["logreg", "rf"]), 60).finished_ok
        assert coordinator.wait_job(coordinator.request_evaluate(), 60).finished_ok
        stack.pathway_db.log_many(runs(30))
        assert coordinator.wait_idle(20)
    finally:
        stop()


@pytest.mark.parametrize("mask", [0o000, 0o022])
def test_every_file_the_service_creates_is_0600_and_every_folder_0700_whatever_the_umask(tmp_path, mask):
    data_dir = tmp_path / "fresh" / "data"
    with umask(mask):
        run_the_service_once(data_dir)
    found = modes(data_dir)
    expected = {config.EVALUATIONS_FILE, config.PREQUENTIAL_FILE, config.PATHWAYS_DB, config.MEMORY_DB,
                config.EVENTS_DB, service.STATE_FILE, config.MODELS_DIR, f"{config.MODELS_DIR}/live.json"}
    assert expected <= set(found), sorted(found)
    wrong = {
        name: mode for name, mode in found.items()
        if mode != ("0o700" if (data_dir / name).is_dir() else "0o600")
    }
    assert wrong == {}
    assert oct(stat.S_IMODE((tmp_path / "fresh").stat().st_mode)) == "0o700"  # made by Menace too


def test_sqlite_wal_and_shm_files_are_private_while_the_store_is_open(tmp_path):
    with umask(0):
        db = MenaceMemoryManager(tmp_path / "mem.db", embedder="hashing")
        try:
            db.store("k", "a private prompt")
            companions = [p for p in tmp_path.iterdir() if p.name.startswith("mem.db-")]
            assert {p.name for p in companions} >= {"mem.db-wal", "mem.db-shm"}
            assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in companions)
        finally:
            db.close()


def test_files_an_older_release_left_readable_are_made_private_when_opened(tmp_path):
    db = PathwayDB(tmp_path / "pathways.db")
    db.log(runs(1)[0])
    db.close()
    os.chmod(tmp_path / "pathways.db", 0o644)
    PathwayDB(tmp_path / "pathways.db").close()
    assert stat.S_IMODE((tmp_path / "pathways.db").stat().st_mode) == 0o600


# -- a data directory others can write, or another user owns ----------------------------------


def start_error(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = service.main(argv)
    return code, err.getvalue()


def test_a_data_directory_others_can_write_is_refused_with_one_line_and_exit_2(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    code, err = start_error(["--data-dir", str(shared), "--metrics-port", "0"])
    assert code == 2
    assert err.startswith("menace-service: error: ") and err.count("\n") == 1, err
    assert str(shared) in err and "written by other users" in err and "Traceback" not in err
    assert list(shared.iterdir()) == []  # nothing written there


@needs_root
def test_a_data_directory_another_user_owns_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    code, err = start_error(["--data-dir", str(theirs), "--metrics-port", "0"])
    assert code == 2 and "belongs to another user" in err and str(theirs) in err
    assert list(theirs.iterdir()) == []


def test_the_data_directory_check_accepts_a_private_one_and_creates_a_missing_one_0700(tmp_path):
    with umask(0):
        made = check_data_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    check_data_dir(made)  # an existing private one is fine


# -- no symbolic link followed, no other user's file used ---------------------------------------


@pytest.fixture
def secret(tmp_path):
    """A file outside the data directory that Menace must never change."""
    path = tmp_path / "root-only"
    path.write_text("do not touch\n")
    os.chmod(path, 0o600)
    return path


def test_a_link_planted_at_the_evaluation_history_is_refused_not_followed(tmp_path, secret):
    (tmp_path / "evaluations.jsonl").symlink_to(secret)
    history = EvaluationHistory("pathways")
    history.path = tmp_path / "evaluations.jsonl"
    with pytest.raises(UnsafePathError, match="symbolic link"):
        history.append({"engine": "pathways", "ts": 1.0, "cv_score": 0.5})
    assert secret.read_text() == "do not touch\n"


@pytest.mark.parametrize("writer", ["append_line", "read_lines"])
def test_jsonl_files_are_never_read_or_written_through_a_link(tmp_path, secret, writer):
    link = tmp_path / "prequential.jsonl"
    link.symlink_to(secret)
    with pytest.raises(UnsafePathError):
        if writer == "append_line":
            append_line(link, "{}")
        else:
            list(read_lines(link))
    assert secret.read_text() == "do not touch\n"


@pytest.mark.parametrize("name", [config.PATHWAYS_DB, config.MEMORY_DB, f"{config.MEMORY_DB}-wal"])
def test_a_database_file_planted_as_a_link_is_refused(tmp_path, secret, name):
    (tmp_path / name).symlink_to(secret)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        MenaceMemoryManager(tmp_path / config.MEMORY_DB, embedder="hashing") if "mem" in name else PathwayDB(
            tmp_path / name
        )
    assert secret.read_text() == "do not touch\n"


@needs_root
@pytest.mark.parametrize("name", [config.MEMORY_DB, f"{config.MEMORY_DB}-wal", config.EVALUATIONS_FILE])
def test_a_file_another_user_created_in_advance_receives_nothing(tmp_path, name):
    planted = tmp_path / name
    planted.write_bytes(b"")
    os.chown(planted, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="another user"):
        if name == config.EVALUATIONS_FILE:
            append_line(planted, json.dumps({"prompt": "secret"}))
        else:
            MenaceMemoryManager(tmp_path / config.MEMORY_DB, embedder="hashing")
    assert planted.read_bytes() == b""


def test_links_at_the_old_predictable_temporary_names_are_not_written_through(tmp_path, secret):
    settings = service.Settings(data_dir=tmp_path, metrics_port=0)
    for name in (f".{service.STATE_FILE}.{os.getpid()}.tmp", f".{service.STATE_FILE}.tmp"):
        (tmp_path / name).symlink_to(secret)
    service.write_state(settings, {"last_run_id": 7})
    assert secret.read_text() == "do not touch\n"
    assert service.read_state(settings) == {"last_run_id": 7}
    assert stat.S_IMODE((tmp_path / service.STATE_FILE).stat().st_mode) == 0o600


def test_atomic_write_replaces_a_link_instead_of_writing_through_it(tmp_path, secret):
    target = tmp_path / "live.json"
    target.symlink_to(secret)
    atomic_write(target, b'{"model": "rf"}')
    assert not target.is_symlink() and target.read_bytes() == b'{"model": "rf"}'
    assert secret.read_text() == "do not touch\n"


def test_temporary_files_get_unpredictable_names_made_exclusively(tmp_path, monkeypatch):
    made: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        if str(path).endswith(".tmp"):
            made.append((os.path.basename(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    for _ in range(3):
        atomic_write(tmp_path / "service_state.json", b"{}")
    names = [name for name, _ in made]
    assert len(set(names)) == 3 and all(str(os.getpid()) not in name for name in names)
    assert all(flags & os.O_EXCL and flags & os.O_CREAT for _, flags in made)
    assert [p.name for p in tmp_path.iterdir()] == ["service_state.json"]  # no temporary file left


def test_the_readme_says_what_menace_promises_and_what_it_does_not():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    for phrase in ("0700", "0600", "umask", "symbolic link", "another user", "not a guarantee",
                   "trust_remote_code=False", "MENACE_MAX_MODEL_BYTES", "127.0.0.1", "warning",
                   "30 days", "256 MB", "Not promised", "redact"):
        assert phrase in section, phrase


def test_a_group_writable_data_directory_is_refused_unless_the_group_is_the_users_own(tmp_path):
    import grp
    import pwd

    folder = tmp_path / "group"
    folder.mkdir()
    os.chmod(folder, 0o770)
    me = pwd.getpwuid(os.geteuid()).pw_name
    own = next((g for g in grp.getgrall() if g.gr_name == me and set(g.gr_mem) <= {me}), None)
    other = next((g for g in grp.getgrall() if g.gr_name != me), None)
    if own is None or other is None:
        pytest.skip("needs a private group of this user and another group")
    os.chown(folder, -1, other.gr_gid)
    with pytest.raises(UnsafePathError, match="written by other users"):
        check_data_dir(folder)
    os.chown(folder, -1, own.gr_gid)  # umask 002 with a user's private group: still private
    check_data_dir(folder)
