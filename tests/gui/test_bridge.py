"""The bridge: a client's events reach Qt in batches, resumed by id, no gap, no duplicate."""

from __future__ import annotations

from menace_gui.bridge import CATCH_UP_PAGE, MAX_EMIT, EventBridge
from menace_gui.task_runner import TaskRunner


def follow(qtbot, client):
    bridge, runner, delivered = EventBridge(), TaskRunner(), []
    bridge.eventsReceived.connect(lambda batch: delivered.extend(e.id for e in batch))
    bridge.attach(client, runner)
    return bridge, runner, delivered


def test_events_published_while_catching_up_come_once_in_order(qtbot, fake_client):
    for i in range(CATCH_UP_PAGE + 500):  # more than a page to catch up on
        fake_client.publish("test:old", {"i": i})
    bridge, runner, delivered = follow(qtbot, fake_client)
    for i in range(20):  # live, and in the journal the catch-up reads: both ways at once
        fake_client.publish("test:new", {"i": i})
    total = len(fake_client.journal)
    qtbot.waitUntil(lambda: len(delivered) >= total and not bridge.is_catching_up(), timeout=5000)
    qtbot.wait(120)  # two more drains: nothing else may come
    assert delivered == list(range(1, total + 1))
    assert bridge.last_id == total and bridge.received == total
    bridge.detach()
    runner.shutdown()


def test_reattach_resumes_after_the_last_id_delivered(qtbot, fake_client):
    bridge, runner, delivered = follow(qtbot, fake_client)
    qtbot.waitUntil(lambda: delivered == [1], timeout=5000)
    bridge.detach()
    for i in range(5):
        fake_client.publish("test:missed", {"i": i})
    bridge.attach(fake_client, runner)
    fake_client.publish("test:live", {})
    qtbot.waitUntil(lambda: len(delivered) == 7, timeout=5000)
    qtbot.wait(120)
    assert delivered == list(range(1, 8))
    bridge.detach()
    runner.shutdown()


def test_detaching_while_catching_up_loses_nothing_on_resume(qtbot, fake_client):
    for i in range(50):
        fake_client.publish("test:old", {"i": i})
    bridge, runner, delivered = follow(qtbot, fake_client)
    fake_client.publish("test:live", {})
    bridge.detach()  # before the catch-up answer was handled
    assert delivered == []
    bridge.attach(fake_client, runner)
    qtbot.waitUntil(lambda: len(delivered) == 52, timeout=5000)
    assert delivered == list(range(1, 53))
    bridge.detach()
    runner.shutdown()


def test_a_storm_goes_out_in_slices_with_the_event_loop_running_between(qtbot, fake_client):
    """A tick's batch of thousands is emitted MAX_EMIT at a time, in order; the window's
    timers fire between the slices instead of after one long stall."""
    from PySide6.QtCore import QTimer

    bridge, runner, delivered = follow(qtbot, fake_client)
    qtbot.waitUntil(lambda: not bridge.is_catching_up(), timeout=5000)
    first = len(fake_client.journal)
    sizes, ticks_between = [], []
    bridge.eventsReceived.connect(lambda batch: sizes.append(len(batch)))
    other = QTimer()
    other.timeout.connect(lambda: ticks_between.append(len(sizes)))
    other.start(0)  # a window's own work, due all the time
    count = 5 * MAX_EMIT + 7
    for i in range(count):  # faster than a drain: all in one tick's batch
        fake_client.publish("test:storm", {"i": i})
    qtbot.waitUntil(lambda: len(delivered) == first + count, timeout=5000)
    other.stop()
    assert delivered == list(range(1, first + count + 1)) and bridge.pending() == 0
    assert max(sizes) == MAX_EMIT and len(sizes) == 6
    # The window's own timer fired while slices were still to go (Qt may run two zero
    # timers in one pass, so not necessarily between every two).
    assert len({1, 2, 3, 4, 5} & set(ticks_between)) >= 3, ticks_between
    for i in range(3 * MAX_EMIT):  # drain(): everything at once (shutdown, tests)
        fake_client.publish("test:flush", {"i": i})
    sizes.clear()
    assert bridge.drain() == 3 * MAX_EMIT and sizes == [3 * MAX_EMIT]
    bridge.detach()
    runner.shutdown()
