"""The work queue: coalescing, no overlap per key, delayed requeue."""

from __future__ import annotations

import threading
import time

import pytest

from paid.controllers.queue import ShutDown, WorkQueue


def test_a_burst_of_the_same_key_coalesces() -> None:
    """Ten adds of one key while it waits are one piece of work."""
    q = WorkQueue()
    for _ in range(10):
        q.add("web")
    q.add("db")

    assert ["web", "db"] == [q.get(timeout=0), q.get(timeout=0)]
    assert q.get(timeout=0) is None


def test_a_key_in_progress_is_not_handed_out_twice_but_not_lost() -> None:
    """Added while processing: held back, then queued again once done."""
    q = WorkQueue()
    q.add("web")
    first = q.get(timeout=0)
    q.add("web")

    assert q.get(timeout=0) is None  # no second worker on web
    q.done("web")
    assert ("web", "web") == (first, q.get(timeout=0))


def test_add_after_delays_without_blocking_other_keys() -> None:
    """A delayed key comes later; others are served meanwhile."""
    q = WorkQueue()
    q.add_after("slow", 0.2)
    q.add("fast")

    got = [q.get(timeout=1)]
    q.done("fast")
    got.append(q.get(timeout=1))

    assert ["fast", "slow"] == got


def test_shutdown_wakes_waiting_workers() -> None:
    """Workers blocked in get() leave when the queue shuts down."""
    q = WorkQueue()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            q.get()
        except ShutDown as err:
            errors.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    q.shut_down()
    thread.join(timeout=5)

    assert 1 == len(errors)
    with pytest.raises(ShutDown):
        q.get(timeout=0)


def test_wait_idle_waits_for_work_in_progress() -> None:
    """Idle means nothing queued and nothing being processed."""
    q = WorkQueue()
    q.add("web")
    key = q.get(timeout=0)

    assert not q.wait_idle(0.05)
    q.done(key or "")
    assert q.wait_idle(0.05)
