"""Chaos rounds: break one managed service, time how long until it is back.

Each round picks a service (seeded, so a run can be repeated), breaks its
container — ``kill`` (SIGKILL from outside), ``rm`` (force-remove) or
``stop`` — and measures the time from the break until the *daemon* reports
a different container of that service ready, as Podman shows it running.
Only paid-managed containers of desired services are touched. Before each
round every chosen service must be ready again, so rounds never stack.
Rounds and their results go into the journal.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import structlog

from paid.runtime.base import ContainerMissing, Runtime, RuntimeFailure
from paid.state import actual as states
from paid.storage.store import Store

log = structlog.get_logger("paid.chaos")


class Breakage(StrEnum):
    KILL = "kill"
    RM = "rm"
    STOP = "stop"
    RANDOM = "random"


class DaemonView(Protocol):
    def ready_container(self, service: str) -> str | None:
        """The container ID the daemon currently finds ready for ``service``, if any."""
        ...


@dataclass(frozen=True, slots=True)
class Round:
    number: int
    service: str
    action: str
    seconds: float | None  # None: not back within the deadline
    detail: str = ""

    @property
    def recovered(self) -> bool:
        return self.seconds is not None


@dataclass(frozen=True, slots=True)
class ChaosReport:
    rounds: tuple[Round, ...]
    deadline: float

    @property
    def recovered(self) -> list[float]:
        return [r.seconds for r in self.rounds if r.seconds is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.recovered) if self.recovered else None

    @property
    def maximum(self) -> float | None:
        return max(self.recovered) if self.recovered else None

    @property
    def missed(self) -> list[Round]:
        return [r for r in self.rounds if not r.recovered]


class Chaos:
    def __init__(
        self,
        *,
        runtime: Runtime,
        daemon: DaemonView,
        store: Store,
        seed: int | None = None,
        poll: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime = runtime
        self.daemon = daemon
        self.store = store
        self.rng = random.Random(seed)  # noqa: S311 -- reproducible choices, not secrets
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def run(
        self,
        services: Sequence[str],
        *,
        rounds: int,
        action: Breakage,
        deadline: float,
        grace: Callable[[str], int] = lambda service: 10,
        progress: Callable[[Round], None] = lambda r: None,
    ) -> ChaosReport:
        self.store.record(
            "chaos_started",
            f"chaos: {rounds} rounds of {action} over {', '.join(services)}",
            rounds=rounds,
            action=str(action),
            services=list(services),
        )
        done: list[Round] = []
        for number in range(1, rounds + 1):
            settled = self._wait(lambda: all(self._ready_id(s) for s in services), deadline)
            if not settled:
                missing = [s for s in services if not self._ready_id(s)]
                done.append(
                    Round(number, ",".join(missing), "-", None, "not ready before the round")
                )
                break
            service = self.rng.choice(list(services))
            kind = self.rng.choice([Breakage.KILL, Breakage.RM, Breakage.STOP])
            kind = kind if action is Breakage.RANDOM else action
            result = self._round(number, service, kind, deadline, grace(service))
            done.append(result)
            self.store.record(
                "chaos_round",
                f"{service}: {kind}, "
                + (
                    f"ready again in {result.seconds:.2f} s"
                    if result.recovered
                    else f"not ready within {deadline:g} s"
                ),
                service=service,
                action=str(kind),
                seconds=result.seconds,
                round=number,
            )
            progress(result)
        report = ChaosReport(tuple(done), deadline)
        self.store.record(
            "chaos_finished",
            f"chaos: {len(report.recovered)}/{len(done)} rounds recovered"
            + (
                f", median {report.median:.2f} s, max {report.maximum:.2f} s"
                if report.recovered
                else ""
            ),
            missed=len(report.missed),
        )
        return report

    def _round(
        self, number: int, service: str, kind: Breakage, deadline: float, grace: int
    ) -> Round:
        before = self._ready_id(service)
        target = before or self._owned_id(service)
        if target is None:
            return Round(number, service, str(kind), None, "no container of paid's to break")
        self.store.record(
            "chaos_break", f"{service}: {kind} (round {number})", service=service, action=str(kind)
        )
        started = self.clock()
        try:
            # By ID: the container checked as paid's, never a stranger that took the name.
            if kind is Breakage.KILL:
                self.runtime.kill_container(target)
            elif kind is Breakage.RM:
                self.runtime.stop_container(target, timeout=0)
                # Gone already: paid replaced the stopped container first. It was broken.
                with contextlib.suppress(ContainerMissing):
                    self.runtime.remove_container(target)
            else:
                self.runtime.stop_container(target, timeout=grace)
        except RuntimeFailure as err:
            return Round(number, service, str(kind), None, f"could not break it: {err}")
        log.info("chaos_break", service=service, action=str(kind), round=number)

        def back() -> bool:
            current = self._ready_id(service)
            return current is not None and current != before

        if not self._wait(back, deadline, since=started):
            return Round(number, service, str(kind), None, "not ready again in time")
        return Round(number, service, str(kind), self.clock() - started)

    def _owned_id(self, service: str) -> str | None:
        """The ID of the container holding ``service``'s name, when it is paid's."""
        for container in self.runtime.list_containers():
            if container.name == service and container.managed:
                return container.id
        return None

    def _ready_id(self, service: str) -> str | None:
        """The service's container, when Podman runs it and the daemon finds it ready."""
        ready = self.daemon.ready_container(service)
        if ready is None:
            return None
        for container in self.runtime.list_containers():
            if container.name == service and container.id == ready:
                return ready if container.state == states.RUNNING else None
        return None

    def _wait(
        self, done: Callable[[], bool], deadline: float, *, since: float | None = None
    ) -> bool:
        start = self.clock() if since is None else since
        while self.clock() - start < deadline:
            if done():
                return True
            self.sleep(self.poll)
        return done()
