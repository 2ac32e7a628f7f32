"""Retries and the circuit breaker around the runtime, on the fake runtime."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from paid.metrics import Metrics
from paid.runtime.base import ImageUnavailable, ObjectFault, RuntimeUnavailable
from paid.runtime.fake import FakeRuntime
from paid.runtime.resilient import CircuitOpen, ResilientRuntime
from paid.state.actual import ActualContainer


@dataclass
class FlakyRuntime(FakeRuntime):
    """Unreachable for the next ``failures`` calls, then fine."""

    failures: int = 0

    def list_containers(self) -> list[ActualContainer]:
        if self.failures > 0:
            self.failures -= 1
            self.calls.append(("list", "failed"))
            raise RuntimeUnavailable("connection refused")
        return super().list_containers()


def resilient(inner: FakeRuntime, metrics: Metrics | None = None, **kw: float) -> ResilientRuntime:
    return ResilientRuntime(inner, metrics=metrics, sleep=lambda s: None, **kw)  # type: ignore[arg-type]


def test_transient_failures_are_retried_and_counted() -> None:
    """Two refusals then success: the caller sees success; metrics see two retries."""
    metrics = Metrics()
    inner = FlakyRuntime(failures=2)

    assert [] == resilient(inner, metrics).list_containers()

    assert 3 == len([c for c in inner.calls if c[0] == "list"])
    assert 2.0 == metrics.runtime_retries.labels("list")._value.get()
    assert 1.0 == metrics.runtime_requests.labels("list", "ok")._value.get()


def test_retries_are_bounded() -> None:
    """A Podman that stays away is given up on after the attempt limit."""
    inner = FlakyRuntime(failures=100)

    with pytest.raises(RuntimeUnavailable):
        resilient(inner, attempts=3).list_containers()

    assert 3 == len(inner.calls)


def test_breaker_opens_fails_fast_then_half_opens() -> None:
    """After fail_max failures calls stop reaching Podman; after the timeout one probe goes."""
    metrics = Metrics()
    inner = FlakyRuntime(failures=100)
    runtime = resilient(inner, metrics, attempts=1, fail_max=3, reset_timeout=0.2)
    for _ in range(3):
        with pytest.raises(RuntimeUnavailable):
            runtime.list_containers()
    calls = len(inner.calls)

    with pytest.raises(CircuitOpen):
        runtime.list_containers()
    assert calls == len(inner.calls)  # did not even try
    assert ("open", 1.0) == (
        runtime.breaker_state,
        metrics.breaker_state.labels("open")._value.get(),
    )

    inner.failures = 0
    time.sleep(0.25)
    assert [] == runtime.list_containers()  # the half-open probe succeeds
    assert "closed" == runtime.breaker_state


def test_answers_are_not_outages() -> None:
    """A missing image is an answer: it neither opens the breaker nor is retried."""
    inner = FakeRuntime()
    runtime = resilient(inner, fail_max=2)

    for _ in range(5):
        with pytest.raises(ImageUnavailable):
            runtime.pull_image("localhost/nope:1")

    assert "closed" == runtime.breaker_state
    assert 5 == len(inner.calls)


def test_a_slow_call_does_not_hold_up_the_others() -> None:
    """Calls go through the breaker side by side: one blocked call, another completes."""
    release = threading.Event()

    @dataclass
    class SlowStop(FakeRuntime):
        def stop_container(self, name: str, *, timeout: int) -> None:
            release.wait(10)

    runtime = resilient(SlowStop())
    slow = threading.Thread(target=lambda: runtime.stop_container("slow", timeout=30))
    slow.start()
    time.sleep(0.05)

    done = threading.Event()
    threading.Thread(target=lambda: (runtime.list_containers(), done.set())).start()

    assert done.wait(2), "list_containers waited for the slow stop"
    release.set()
    slow.join(5)


@dataclass
class OneBrokenContainer(FakeRuntime):
    """Podman answers ``container not known`` for ``web``; every other call is fine."""

    def start_container(self, name: str) -> None:
        if name == "web":
            self.calls.append(("start", "broken"))
            raise ObjectFault(f'start {name}: getting container from store "3f2a": not known')
        super().start_container(name)


def test_one_broken_container_never_opens_the_breaker() -> None:
    """An error about one object is that object's: the breaker stays closed for everyone else."""
    inner = OneBrokenContainer()
    metrics = Metrics(CollectorRegistry())
    runtime = resilient(inner, metrics, fail_max=2)

    for _ in range(5):
        with pytest.raises(ObjectFault):
            runtime.start_container("web")

    assert "closed" == runtime.breaker_state
    assert 5 == len([c for c in inner.calls if c == ("start", "broken")])  # not retried either
    assert [] == runtime.list_containers()
    assert 5 == metrics.runtime_requests.labels("start", "object")._value.get()


@dataclass
class BrokenRecord(FakeRuntime):
    """``web``'s storage is gone: inspecting or stopping it says ``container not known``."""

    broken: set[str] = field(default_factory=set)

    def inspect_container(self, name: str) -> ActualContainer | None:
        found = self.containers.get(name)
        if found is not None and found.id in self.broken:
            raise ObjectFault(f'inspect {name}: getting container from store "{found.id}"')
        return super().inspect_container(name)


def test_a_container_podman_cannot_read_is_repaired_and_made_anew(tmp_path: Path) -> None:
    """The broken record is found in the listing, checked to be paid's, removed, recreated."""
    from paid.controllers.converging import converge  # noqa: PLC0415
    from paid.storage.store import Store  # noqa: PLC0415
    from tests.unit.builders import FAST, desired, desired_service  # noqa: PLC0415

    runtime = BrokenRecord(images={"localhost/app:1"})
    state = desired(desired_service("web", image="localhost/app:1", rollout={"minReadySeconds": 0}))
    with Store.open(tmp_path) as store:
        assert converge(state, runtime=runtime, store=store, timings=FAST).converged
        broken = runtime.containers["web"].id
        runtime.broken.add(broken)
        runtime.kill_container("web")  # crashed, and its record unreadable

        report = converge(state, runtime=runtime, store=store, timings=FAST)
        repaired = [e.kind for e in store.events(service="web") if e.kind == "container_repaired"]

    assert report.converged, report
    assert broken != runtime.containers["web"].id
    assert "running" == runtime.containers["web"].state
    assert ["container_repaired"] == repaired
