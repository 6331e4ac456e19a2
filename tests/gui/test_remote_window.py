"""The monitor as a client of a service running elsewhere: ``--connect URL`` and attaching to a data dir.

A real ``menace-service`` runs in a subprocess; the window reaches it only
through its HTTP API (the code path of ``menace-gui --connect``).
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from menace import events
from menace_gui.app import service_from_args
from menace_gui.client_source import RECONNECTING, RUNNING
from menace_gui.main_window import MainWindow
from menace_gui.remote_source import RemoteClientSource

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "remote-window-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(data_dir: Path, port: int, token: str | None = TOKEN, *extra: str) -> subprocess.Popen:
    """The service in a subprocess; ``token`` None: it makes its own in ``data_dir/api_token``."""
    env = dict(os.environ, MENACE_EMBEDDER="hashing", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("MENACE_DATA_DIR", None)
    env.pop("MENACE_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "menace.self_learning_service", "--data-dir", str(data_dir), "--metrics-port",
         str(port), *(["--api-token", token] if token else []), "--eval-every", "0", "--eval-interval", "0", *extra],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the service did not answer")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(15)


def ini(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


def open_remote(qtbot, tmp_path, argv) -> MainWindow:
    source, _rows = service_from_args(argv, ini(tmp_path), lambda url: pytest.fail(f"asked for a token of {url}"))
    assert isinstance(source, RemoteClientSource)
    window = MainWindow(source, ini(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.client is not None and source.state == RUNNING, timeout=20_000)
    window.finish_building()
    return window


def seen(window, topic: str) -> list[dict]:
    return [row.payload for row in window.panel("eventLog").model.rows() if row.topic == topic]


@pytest.fixture
def service(tmp_path):
    port = free_port()
    proc = start_service(tmp_path / "data", port)
    yield f"http://127.0.0.1:{port}", proc, tmp_path / "data", port
    stop(proc)


def test_connect_drives_the_whole_window_through_the_api(qtbot, tmp_path, service):
    url, _proc, _data, _port = service
    window = open_remote(qtbot, tmp_path, ["--connect", url, "--api-token", TOKEN])
    assert url in window.windowTitle() and url in window.status.state_label.toolTip()
    assert window.status.remote_label.isVisible() and url in window.status.remote_label.text()
    form = window.panel("pathwayForm")
    for i in range(24):  # log runs from the form, both outcomes, as an operator would
        form.editor("actions").setText(f"scan->fix{i % 2}")
        form.editor("exec_time").setText("1.5")
        form.editor("roi").setText("2" if i % 2 else "-1")
        form.editor("outcome").setCurrentIndex(form.editor("outcome").findData("SUCCESS" if i % 2 else "FAILURE"))
        with qtbot.waitSignal(form.succeeded, timeout=10_000):
            assert form.submit()
    qtbot.waitUntil(lambda: len(seen(window, events.PATHWAY_NEW)) == 24, timeout=10_000)
    qtbot.waitUntil(lambda: sum(p.get("examples", 0) for p in seen(window, events.LEARNING_TRAINED)
                                if p.get("mode") == "partial") == 24, timeout=10_000)  # learned there
    qtbot.waitUntil(lambda: len(window.panel("scoresPanel").curve.data) > 0, timeout=10_000)  # the curve moved

    controls = window.panel("jobControls")
    assert controls.request("evaluate")
    qtbot.waitUntil(lambda: bool(seen(window, events.LEARNING_EVALUATED)), timeout=20_000)
    with qtbot.waitSignal(controls.jobQueued, timeout=10_000) as queued:
        assert controls.request("auto_train")
    job_id = queued.args[1]
    assert window.client.cancel_job(job_id) or window.client.job(job_id).state in ("cancelled", "done")
    qtbot.waitUntil(lambda: window.client.job(job_id).state in ("cancelled", "done"), timeout=20_000)
    assert window.client.status().learner  # the service learns; the window only watches
    window.close()
    qtbot.waitUntil(lambda: window.source.is_stopped(), timeout=10_000)
    left = [t.name for t in threading.enumerate() if t.name.startswith(("menace-http", "menace-gui-"))]
    assert not left, f"threads left running after the window closed: {left}"


def test_the_token_is_remembered_for_its_url_in_a_file_only_its_owner_reads(tmp_path, service):
    url = service[0]
    source, _ = service_from_args(["--connect", url + "/", "--api-token", TOKEN], ini(tmp_path))
    assert source.url == url
    again, _ = service_from_args(["--connect", url], ini(tmp_path), lambda u: pytest.fail("asked again"))
    assert again._token == TOKEN  # noqa: SLF001 - the token it will send
    mode = stat.S_IMODE(os.stat(tmp_path / "gui.ini").st_mode)
    assert mode == 0o600
    asked = []
    other, _ = service_from_args(["--connect", "http://127.0.0.1:9"], ini(tmp_path), lambda u: asked.append(u))
    assert asked == ["http://127.0.0.1:9"]


def test_a_bad_url_is_a_usage_error():
    with pytest.raises(SystemExit) as caught:
        service_from_args(["--connect", "ftp:/nowhere"], QSettings())
    assert caught.value.code == 2


def test_a_data_dir_a_service_owns_is_watched_not_learned_from_twice(qtbot, tmp_path):
    port, data_dir = free_port(), tmp_path / "owned"
    proc = start_service(data_dir, port, token=None)  # its token: in data_dir/api_token, read by its user
    try:
        window = open_remote(qtbot, tmp_path, ["--data-dir", str(data_dir)])
        assert window.source.url == f"http://127.0.0.1:{port}"
        assert f"pid {proc.pid}" in window.status.state_label.toolTip()  # the status bar says whose it is
        assert "attached" in window.status.remote_label.text()
        assert window.client.status().learner and window.client.service_status()["location"] == str(data_dir)
        window.close()
    finally:
        stop(proc)


def test_a_service_still_starting_is_waited_for_not_doubled(tmp_path):
    """The lease is taken before the API answers: the monitor waits for the address, not a second stack."""
    from menace.lease import FileLease, owner_of

    data_dir = tmp_path / "starting"
    data_dir.mkdir(mode=0o700)
    lease = FileLease(data_dir)
    lease.acquire()
    assert owner_of(data_dir).api_url is None  # named, no API yet
    late = threading.Timer(0.6, lambda: lease.publish(api_url="http://127.0.0.1:9", ready=True))
    late.start()
    try:
        began = time.monotonic()
        source, _ = service_from_args(["--data-dir", str(data_dir), "--api-token", TOKEN], ini(tmp_path))
        assert isinstance(source, RemoteClientSource) and source.url == "http://127.0.0.1:9"
        assert 0.5 < time.monotonic() - began < 5
    finally:
        late.join()
        lease.release()


@pytest.mark.postgres
def test_a_database_a_service_learns_from_is_watched_through_its_api(qtbot, tmp_path, pg_url):
    port = free_port()
    proc = start_service(tmp_path / "host-a", port, TOKEN, "--database-url", pg_url)
    try:
        # Another data directory (another host's), the same database: the window finds
        # the database's learner and watches it instead of failing on its lease.
        window = open_remote(qtbot, tmp_path, ["--data-dir", str(tmp_path / "host-b"), "--database-url", pg_url,
                                               "--api-token", TOKEN])
        assert window.source.url == f"http://127.0.0.1:{port}"
        assert "this database" in window.status.state_label.toolTip()
        window.client.log_run({"actions": "fetch->parse", "exec_time": 1.0, "outcome": "SUCCESS"})
        qtbot.waitUntil(lambda: bool(seen(window, events.PATHWAY_NEW)), timeout=20_000)
        window.close()
    finally:
        stop(proc)


def test_a_refused_token_is_said_in_the_window(qtbot, tmp_path, service):
    url = service[0]
    source, _ = service_from_args(["--connect", url, "--api-token", "wrong-token-0123456789"], ini(tmp_path))
    window = MainWindow(source, ini(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: source.state == "crashed", timeout=10_000)
    assert "401" in source.detail or "token" in source.detail.lower()
    assert window.banner.isVisible()


@pytest.mark.slow
def test_a_lost_service_shows_retrying_and_the_events_resume_without_gap_or_duplicate(qtbot, tmp_path, service):
    url, proc, data_dir, port = service
    window = open_remote(qtbot, tmp_path, ["--connect", url, "--api-token", TOKEN])
    client = window.client
    client.log_run({"actions": "a->b", "outcome": "SUCCESS"})
    qtbot.waitUntil(lambda: len(seen(window, events.PATHWAY_NEW)) == 1, timeout=10_000)
    stop(proc, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.source.state == RECONNECTING, timeout=15_000)
    assert "retrying" in window.status.state_label.text() and window.banner.isVisible()
    assert window.minimumSizeHint().width() <= 1280  # the long reason does not widen the window off a laptop screen
    from menace.neuroplasticity import PathwayDB, PathwayRecord

    with PathwayDB(data_dir / "pathways.db") as script:  # runs logged while the service is away
        script.log_many([PathwayRecord("c->d", outcome="FAILURE") for _ in range(3)])
    restarted = start_service(data_dir, port)
    try:
        qtbot.waitUntil(lambda: window.source.state == RUNNING, timeout=30_000)
        qtbot.waitUntil(lambda: len(seen(window, events.PATHWAY_NEW)) >= 4, timeout=20_000)
        rows = window.panel("eventLog").model.rows()
        ids = [row.event_id for row in rows if row.event_id]
        assert len(ids) == len(set(ids)), "an event was shown twice"
        assert not window.banner.isVisible() or "Disconnected" not in window.banner.text()
    finally:
        window.close()
        stop(restarted)
