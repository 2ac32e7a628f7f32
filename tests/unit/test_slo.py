"""SLO arithmetic against a hand computation, and the readiness record in SQLite."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from paid.state.slo import Mark, Objective, Watch, report, tally
from paid.storage.store import Store

# Two daemon runs: the first killed (last heartbeat at 600), the second from 700.
WATCHES = [Watch(0, 600), Watch(700, 1000)]
MARKS = [
    Mark(0, True),
    Mark(100, False),  # down 4 s
    Mark(104, True),
    Mark(500, False),  # down 30 s
    Mark(530, True),
    Mark(650, False),  # nobody was watching: not counted
    Mark(710, True),  # the second run's first look: 700-710 unknown
    Mark(900, False),  # down 3 s
    Mark(903, True),
]


def test_availability_and_budget_match_the_hand_computation() -> None:
    """Run 1: up 100+396+70, down 4+30; run 2: up 190+97, down 3; unknown 100+10.

    Availability 853/890; budget 1 % of 1000 s = 10 s, 37 s spent, overspent
    by 27 s; burn rate (37/890)/0.01.
    """
    objective = Objective("web", target=0.99, window_seconds=1000)

    found = report(objective, MARKS, WATCHES, now=1000)

    assert (853.0, 37.0, 110.0) == (found.tally.up, found.tally.down, found.tally.unknown)
    assert found.tally.availability == pytest.approx(853 / 890)
    assert found.budget_seconds == pytest.approx(10.0)
    assert found.budget_remaining_seconds == pytest.approx(-27.0)
    assert found.budget_remaining_ratio == pytest.approx(-2.7)
    assert found.burn_rates[3600.0] == pytest.approx((37 / 890) / 0.01)


def test_a_window_starting_mid_outage_counts_from_its_start() -> None:
    """The state at the window's start is the last mark before it, in the same run."""
    part = tally(MARKS, WATCHES, start=520, end=1000)
    # 520-530 down (from the mark at 500), 530-600 up, 600-710 unknown, then run 2.
    assert (70.0 + 190 + 97, 10.0 + 3, 110.0) == (part.up, part.down, part.unknown)


def test_a_disabled_service_is_neither_up_nor_down() -> None:
    """A None mark (enabled: false) stops the count until the next mark."""
    marks = [Mark(0, True), Mark(10, None), Mark(50, False), Mark(60, True)]

    found = tally(marks, [Watch(0, 100)], start=0, end=100)

    assert (50.0, 10.0, 40.0) == (found.up, found.down, found.unknown)


def test_no_known_time_has_no_availability_and_no_burn_rate() -> None:
    """A service never watched is unknown, not 100 % and not 0 %."""
    found = report(Objective("x", 0.999, 3600), [], [], now=10_000)

    assert found.tally.availability is None
    assert found.burn_rates[3600.0] is None
    assert 3600.0 == found.tally.unknown


def test_the_store_keeps_the_record_and_the_mark_before_the_window(tmp_path: Path) -> None:
    """readiness(since=T) includes the last mark before T: the state T starts in."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Store.open(tmp_path) as store:
        watch = store.begin_watch(at=0, pid=dead.pid)
        for mark in MARKS[:5]:
            store.mark_readiness("web", mark.ready, at=mark.at)
        store.heartbeat(watch, at=600)

        assert [Mark(500, False), Mark(530, True)] == store.readiness("web", since=520)
        assert [Watch(0, 600)] == store.watches(since=100)
        assert [] == store.watches(since=601)
        store.begin_watch(at=700)  # this process: a live daemon, watching until now
        assert [Watch(0, 600), Watch(700, 5000)] == store.watches(since=100, now=5000)
