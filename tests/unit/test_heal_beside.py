"""A crash heal on the fake runtime: beside the dead copy, or in place when it cannot be."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paid.controllers.services import Outcome, ServiceController
from paid.runtime.fake import FakeRuntime
from paid.state.plans import Action, ActionKind
from paid.storage.store import Store
from tests.unit.builders import desired_service, paid_network, running

IMAGE = "localhost/app:1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


def _heal(store: Store, **spec: object) -> tuple[FakeRuntime, str]:
    """``web`` exited with 137; the executor's RESTART. Returns the runtime and the dead ID."""
    service = desired_service("web", image=IMAGE, **spec)
    runtime = paid_network(FakeRuntime(images={IMAGE}))
    dead = running(service, state="exited", exit_code=137)
    runtime.add(dead)
    runtime.logs["web"] = ["panic: out of memory"]
    runtime.calls.clear()
    controller = ServiceController(runtime=runtime, journal=store)
    result = controller.execute(Action(ActionKind.RESTART, "web", "exited with code 137"), service)
    assert Outcome.DONE == result.outcome, result.detail
    return runtime, dead.id


def test_a_dead_container_is_replaced_beside_then_renamed(store: Store) -> None:
    """Create and start as web.paid-next, keep the dead copy's words, remove it, take the name."""
    runtime, dead = _heal(store)

    fresh = runtime.containers["web"].id
    assert [
        ("create", "web.paid-next"),
        ("start", fresh),
        ("remove", dead),
        ("rename", fresh),
    ] == runtime.mutating_calls
    assert ["web"] == list(runtime.containers)
    assert dead != fresh
    assert "running" == runtime.containers["web"].state
    (replaced,) = [e for e in store.events(service="web") if e.kind == "container_replaced"]
    assert ["panic: out of memory"] == replaced.data["last_log_lines"]


def test_a_service_with_a_host_port_is_replaced_in_place(store: Store) -> None:
    """One container holds a host port at a time: the dead one goes first, nothing beside."""
    runtime, dead = _heal(store, ports=["8080:80"])

    assert ["web"] == [s for op, s in runtime.mutating_calls if op == "create"]
    assert "rename" not in [op for op, _ in runtime.mutating_calls]
    assert dead != runtime.containers["web"].id
    assert ["web"] == list(runtime.containers)
