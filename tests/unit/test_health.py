"""The probes' timing on a fake clock: startPeriodSeconds as compose's start_period means it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paid.controllers.health import HealthController, ProbeKind
from paid.runtime.base import ContainerRequest
from paid.runtime.fake import FakeRuntime
from paid.state.specs import ServiceSpec


class Inline:
    """An executor that runs each probe at once, so a test reads its result after tick()."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def shutdown(self, **kwargs: Any) -> None:
        pass


def _controller(exit_codes: list[int]) -> tuple[HealthController, list[float], list[bool]]:
    runtime = FakeRuntime(images={"localhost/db:1"})
    _running(runtime)
    codes = iter(exit_codes)
    runtime.exec_in = lambda name, command, *, timeout: next(codes)  # type: ignore[method-assign]
    now = [0.0]
    transitions: list[bool] = []
    controller = HealthController(
        runtime,
        on_transition=lambda service, kind, passing, detail: transitions.append(passing),
        clock=lambda: now[0],
    )
    controller._pool = Inline()  # type: ignore[assignment]
    spec = ServiceSpec(
        image="localhost/db:1",
        livenessProbe={
            "exec": {"command": ["true"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
            "startPeriodSeconds": 5,
        },
    )
    controller.watch("db", container_id="id-db", name="db", spec=spec)
    return controller, now, transitions


def _running(runtime: FakeRuntime) -> None:
    runtime.create_container(ContainerRequest(name="db", image="localhost/db:1", labels={}))
    runtime.start_container("db")


def _probe_at(controller: HealthController, now: list[float], *times: float) -> None:
    for t in times:
        now[0] = t
        controller.tick()


def test_failures_inside_the_start_period_do_not_count() -> None:
    """A database failing its probe for its first 4 s is not restarted; it passes at 4 s."""
    controller, now, transitions = _controller([1, 1, 1, 1, 0])

    _probe_at(controller, now, 0, 1, 2, 3, 4)

    assert [True] == transitions
    assert controller.failed("db") is None


def test_after_the_start_period_failures_count() -> None:
    """Never passing: once the 5 s are over, failureThreshold failures fail the probe."""
    controller, now, transitions = _controller([1] * 8)

    _probe_at(controller, now, 0, 1, 2, 3, 4, 5, 6)

    assert [False] == transitions
    assert "liveness probe failed 2 times" in (controller.failed("db") or "")


def test_the_first_success_ends_the_start_period() -> None:
    """Passed once at 1 s, a failure at 2 s and 3 s counts at once: the period is over."""
    controller, now, transitions = _controller([1, 0, 1, 1])

    _probe_at(controller, now, 0, 1, 2, 3)

    assert [True, False] == transitions
    assert str(ProbeKind.LIVENESS) in (controller.failed("db") or "")
