"""Chaos rounds on the fake runtime with a fake clock: timing, deadlines, the journal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from paid.controllers.chaos import Breakage, Chaos
from paid.runtime.fake import FakeRuntime
from paid.storage.store import Store
from tests.unit.builders import desired_service, running


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Healer:
    """The daemon as chaos sees it: replaces a broken container after ``delay`` seconds."""

    def __init__(self, runtime: FakeRuntime, clock: Clock, delay: float | None) -> None:
        self.runtime, self.clock, self.delay = runtime, clock, delay
        self.broken_at: float | None = None
        self.generation = 0

    def ready_container(self, service: str) -> str | None:
        container = self.runtime.containers.get(service)
        if container is not None and container.state == "running":
            return container.id
        if self.broken_at is None:
            self.broken_at = self.clock()
        if self.delay is not None and self.clock() - self.broken_at >= self.delay:
            self.generation += 1
            self.runtime.add(
                replace(running(desired_service(service)), id=f"new-{self.generation}")
            )
            self.broken_at = None
            return f"new-{self.generation}"
        return None


def _chaos(tmp_path: Path, delay: float | None) -> tuple[Chaos, Store]:
    runtime = FakeRuntime()
    runtime.add(running(desired_service("web")))
    clock = Clock()
    store = Store.open(tmp_path)
    chaos = Chaos(
        runtime=runtime,
        daemon=Healer(runtime, clock, delay),
        store=store,
        seed=1,
        poll=0.1,
        clock=clock,
        sleep=clock.sleep,
    )
    return chaos, store


def test_each_round_is_timed_from_the_break_to_a_new_ready_container(tmp_path: Path) -> None:
    """Healed 2 s after each kill: two rounds of 2 s, journalled break and result."""
    chaos, store = _chaos(tmp_path, delay=2.0)

    report = chaos.run(["web"], rounds=2, action=Breakage.KILL, deadline=10)

    assert [2.0, 2.0] == [round(r.seconds or 0, 1) for r in report.rounds]
    assert [] == report.missed
    kinds = [e.kind for e in store.events()]
    assert [
        "chaos_started",
        "chaos_break",
        "chaos_round",
        "chaos_break",
        "chaos_round",
        "chaos_finished",
    ] == kinds
    store.close()


def test_a_round_past_the_deadline_is_missed_and_stops_the_run(tmp_path: Path) -> None:
    """Never healed: the round is missed at the deadline; the next one never starts."""
    chaos, store = _chaos(tmp_path, delay=None)

    report = chaos.run(["web"], rounds=3, action=Breakage.RM, deadline=5)

    assert [None, None] == [r.seconds for r in report.rounds]
    assert "not ready again in time" == report.rounds[0].detail
    assert "not ready before the round" == report.rounds[1].detail
    assert 2 == len(report.missed)
    store.close()
