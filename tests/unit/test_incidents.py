"""Postmortem drafting from a real SQLite store with a known history."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from paid.state.incidents import parse_time, postmortem
from paid.storage.store import Store


def test_a_daemon_that_died_without_stopping_is_called_lost(tmp_path: Path) -> None:
    """Run 1 ends on a heartbeat with no daemon_stopped; run 2 starts later: 'paid lost'.
    Downtime and unknown time come from the readiness record."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Store.open(tmp_path) as store:
        first = store.begin_watch(at=1000, pid=dead.pid)
        store.mark_readiness("web", True, at=1000)
        store.mark_readiness("web", False, at=1010)
        store.mark_readiness("web", True, at=1025)
        store.heartbeat(first, at=1050)
        second = store.begin_watch(at=1100, pid=dead.pid)
        store.mark_readiness("web", True, at=1100)
        store.heartbeat(second, at=1200)

        text = postmortem(store, since=1000, until=1200, services=["web"])

    timeline = text.split("## Timeline")[1].split("## Revisions involved")[0]
    assert "| 1970-01-01 00:17:30.000 | - | paid lost |" in timeline
    assert "| web | 15.0 s | 1 | 15.0 s | 50.0 s |" in text  # down 1010-1025; 1050-1100 unknown
    assert "outage ends after 15.0 s" in timeline


def test_times_are_ages_or_iso() -> None:
    """'2h' is two hours before now; an ISO time with a zone is taken as written."""
    assert 10_000 - 7200 == parse_time("2h", now=10_000)
    assert 0.0 == parse_time("1970-01-01T00:00:00+00:00", now=10_000)
    with pytest.raises(ValueError, match="neither an ISO time nor an age"):
        parse_time("yesterday", now=10_000)
