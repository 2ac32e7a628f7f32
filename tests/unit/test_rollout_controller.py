"""The rollout controller on the fake runtime, a real store and a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paid.controllers.effective import effective_state
from paid.controllers.requests import container_request
from paid.controllers.rollouts import RolloutController
from paid.controllers.services import ServiceController
from paid.runtime.fake import FakeRuntime
from paid.state.desired import DesiredService
from paid.state.labels import aside_name
from paid.storage.flags import Flags
from paid.storage.store import Store
from tests.unit.builders import desired, desired_service, paid_network

V1 = desired_service(
    "web", image="localhost/app:1", rollout={"minReadySeconds": 10, "progressDeadlineSeconds": 60}
)
V2 = desired_service(
    "web", image="localhost/app:2", rollout={"minReadySeconds": 10, "progressDeadlineSeconds": 60}
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


def make(
    store: Store,
    ready: set[str],
    *,
    runtime: FakeRuntime | None = None,
    flags: Flags | None = None,
    backup: Callable[[DesiredService], str | None] | None = None,
) -> tuple[FakeRuntime, RolloutController, Clock]:
    runtime = paid_network(runtime or FakeRuntime(images={"localhost/app:1", "localhost/app:2"}))
    clock = Clock()
    controller = RolloutController(
        runtime=runtime,
        store=store,
        services=ServiceController(runtime=runtime, journal=store),
        ready=lambda name: name in ready,
        flags=lambda: flags or Flags(),
        clock=clock,
        backup=backup,
    )
    return runtime, controller, clock


def roll(
    runtime: FakeRuntime, controller: RolloutController, clock: Clock, svc: object, *, seconds: int
) -> None:
    """Step the rollout once a second for ``seconds`` (or until it finishes)."""
    for _ in range(seconds):
        if svc.name not in controller.active:  # type: ignore[attr-defined]
            return
        clock.now += 1
        controller.step(svc, runtime.containers.get(svc.name))  # type: ignore[arg-type, attr-defined]


def test_first_deploy_then_a_healthy_rollout(store: Store) -> None:
    """v1 bakes 10 s and succeeds; v2 replaces it, v1 is superseded, nothing is kept aside."""
    ready = {"web"}
    runtime, controller, clock = make(store, ready)
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)

    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=15)

    assert [(1, "superseded"), (2, "succeeded")] == [
        (r.number, r.outcome) for r in store.revisions("web")
    ]
    assert ["web"] == list(runtime.containers)
    assert "localhost/app:2" == runtime.containers["web"].image


def test_never_ready_rolls_back_to_the_same_container_and_quarantines(store: Store) -> None:
    """At the deadline v2 is removed, v1's container is renamed back and started, v2 quarantined."""
    ready = {"web"}
    runtime, controller, clock = make(store, ready)
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)
    v1_id = runtime.containers["web"].id
    ready.clear()

    controller.begin(V2, runtime.containers["web"])
    assert aside_name("web") in runtime.containers  # kept aside, stopped
    roll(runtime, controller, clock, V2, seconds=70)

    assert (v1_id, "running") == (runtime.containers["web"].id, runtime.containers["web"].state)
    assert aside_name("web") not in runtime.containers
    (bad,) = [r for r in store.revisions("web") if r.number == 2]
    assert ("rolled_back", True) == (bad.outcome, bad.quarantined)
    assert "not ready within progressDeadlineSeconds (60 s)" in bad.reason
    assert V1.spec_hash == effective_state(desired(V2), store).state.services["web"].spec_hash  # type: ignore[index]


def test_missing_image_fails_without_touching_anything(store: Store) -> None:
    """The image check comes first: no stop, no rename, no create."""
    runtime, controller, clock = make(store, {"web"})
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)
    runtime.calls.clear()
    v3 = desired_service("web", image="localhost/absent:3")

    controller.begin(v3, runtime.containers["web"])

    assert [] == [c for c in runtime.mutating_calls if c[0] != "pull"]
    assert "web" not in controller.active


def test_revision_history_limit_keeps_the_last_good(store: Store) -> None:
    """Pruning keeps the newest `revisionHistoryLimit` and the last good one, whatever its age."""
    for i in range(1, 6):
        store.revision_for(service="s", spec_hash=f"h{i}", spec={}, image="i", document={"x": i})
    store.set_outcome("s", 1, "succeeded")
    for i in range(2, 6):
        store.set_outcome("s", i, "rolled_back")

    store.prune_revisions("s", keep=2, protect=set())

    assert [1, 4, 5] == [r.number for r in store.revisions("s")]


def test_a_late_create_by_a_killed_paid_is_adopted_not_quarantined(store: Store) -> None:
    """Podman finished a dead paid's create: the right spec holds the name; the gate judges it."""

    @dataclass
    class LateCreate(FakeRuntime):
        def rename_container(self, name: str, new_name: str) -> None:
            super().rename_container(name, new_name)
            if new_name == aside_name("web"):  # ... and the dead paid's create lands now
                FakeRuntime.create_container(self, container_request(V2, revision=2))

    runtime, controller, clock = make(
        store, {"web"}, runtime=LateCreate(images={"localhost/app:1", "localhost/app:2"})
    )
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)

    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=15)

    assert [(1, "superseded", False), (2, "succeeded", False)] == [
        (r.number, r.outcome, r.quarantined) for r in store.revisions("web")
    ]
    assert ["web"] == list(runtime.containers)


def test_auto_rollback_flag_off_leaves_the_failed_revision(store: Store) -> None:
    """autoRollback flag off: a failed rollout stays, unquarantined; the old container goes."""
    ready = {"web"}
    runtime, controller, clock = make(store, ready, flags=Flags(auto_rollback=False))
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)
    ready.clear()

    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=70)

    assert ["web"] == list(runtime.containers)
    assert "localhost/app:2" == runtime.containers["web"].image
    (bad,) = [r for r in store.revisions("web") if r.number == 2]
    assert ("failed", False) == (bad.outcome, bad.quarantined)


def _with_backup(image: str) -> DesiredService:
    return desired_service(
        "web",
        image=image,
        volumes=["data:/data"],
        backup={"beforeRollout": True},
        rollout={"minReadySeconds": 10, "progressDeadlineSeconds": 60},
    )


def test_before_rollout_backup_is_taken_first_and_named_by_the_rollback(store: Store) -> None:
    """The backup is taken before the old container stops; a rollback says how to restore it."""
    taken: list[str] = []
    ready = {"web"}
    runtime, controller, clock = make(
        store, ready, backup=lambda svc: taken.append(svc.name) or "B1"
    )
    w1, w2 = _with_backup("localhost/app:1"), _with_backup("localhost/app:2")
    controller.begin(w1, None)  # nothing to back up yet
    roll(runtime, controller, clock, w1, seconds=15)
    assert [] == taken
    ready.clear()

    runtime.calls.clear()
    controller.begin(w2, runtime.containers["web"])
    roll(runtime, controller, clock, w2, seconds=70)

    assert ["web"] == taken
    (event,) = [e for e in store.events() if e.kind == "rollout_rolled_back"]
    assert "backup B1 (paid restore web --backup B1)" in event.message


def test_a_failed_backup_stops_the_rollout_before_anything_is_touched(store: Store) -> None:
    """No backup, no rollout: the old container keeps serving; the flag turns backups off."""
    runtime, controller, clock = make(store, {"web"}, backup=lambda svc: None)
    w1 = _with_backup("localhost/app:1")
    controller.begin(w1, None)
    roll(runtime, controller, clock, w1, seconds=15)
    runtime.calls.clear()

    controller.begin(_with_backup("localhost/app:2"), runtime.containers["web"])

    assert [] == runtime.mutating_calls
    assert "web" not in controller.active
    (failed,) = [r for r in store.revisions("web") if r.number == 2]
    assert "backup before rollout failed" == failed.reason

    off = Flags(backups=False)
    runtime, controller, clock = make(
        store, {"web"}, runtime=runtime, flags=off, backup=lambda s: None
    )
    controller.begin(_with_backup("localhost/app:2"), runtime.containers["web"])
    assert "web" in controller.active  # backups off: the rollout goes ahead without one


def test_recreate_creates_the_new_container_before_it_stops_the_old(store: Store) -> None:
    """The gap is one stop, renames and one start: the create happens while v1 still serves."""
    runtime, controller, clock = make(store, {"web"})
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)
    v1 = runtime.containers["web"].id
    runtime.calls.clear()

    controller.begin(V2, runtime.containers["web"])

    order = [op for op, _ in runtime.mutating_calls]
    assert order.index("create") < order.index("stop") < order.index("start")
    assert ("stop", v1) in runtime.mutating_calls
    roll(runtime, controller, clock, V2, seconds=15)
    assert ["web"] == list(runtime.containers)
    assert "localhost/app:2" == runtime.containers["web"].image


def test_a_desired_change_during_the_gate_abandons_the_rollout_without_blame(store: Store) -> None:
    """v2 bakes; the desired state moves to v3: v2 is abandoned, not failed nor quarantined,
    the container v1 kept aside goes, and v3 rolls out from v2's running container."""
    v3 = desired_service(
        "web", image="localhost/app:1", env={"V": "3"}, rollout={"minReadySeconds": 10}
    )
    runtime, controller, clock = make(store, {"web"})
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)
    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=3)  # ready, baking: not yet judged
    assert "web" in controller.active

    wait = controller.step(v3, runtime.containers["web"])

    assert 0.0 == wait  # look again at once: the next pass rolls v3 out
    assert "web" not in controller.active
    assert aside_name("web") not in runtime.containers
    assert "localhost/app:2" == runtime.containers["web"].image  # still serving meanwhile
    (v2,) = [r for r in store.revisions("web") if r.number == 2]
    assert ("abandoned", False) == (v2.outcome, v2.quarantined)
    assert ["rollout_abandoned"] == [
        e.kind for e in store.events(service="web") if e.kind == "rollout_abandoned"
    ]
    controller.begin(v3, runtime.containers["web"])
    roll(runtime, controller, clock, v3, seconds=15)
    assert v3.spec_hash == runtime.containers["web"].spec_hash
    assert "succeeded" == store.revisions("web")[-1].outcome
