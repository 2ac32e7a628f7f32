"""StartFirst rollouts on the fake runtime, a real store and a fake clock.

The new copy starts beside the old one under the service's DNS names; the
old one is stopped only after the new one passed its gate and the drain;
a failed new copy is removed and the old one is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from paid.controllers.rollouts import RolloutController
from paid.controllers.services import ServiceController
from paid.runtime.fake import FakeRuntime
from paid.state.desired import DesiredService
from paid.state.labels import next_name
from paid.storage.store import Store
from tests.unit.builders import desired_service, paid_network

ROLLOUT = {
    "strategy": "StartFirst",
    "minReadySeconds": 10,
    "progressDeadlineSeconds": 60,
    "drainSeconds": 5,
}
V1 = desired_service("web", image="localhost/app:1", rollout=ROLLOUT)
V2 = desired_service("web", image="localhost/app:2", rollout=ROLLOUT)
NEXT = next_name("web")


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
    store: Store, ready: set[str], runtime: FakeRuntime | None = None
) -> tuple[FakeRuntime, RolloutController, Clock]:
    runtime = paid_network(runtime or FakeRuntime(images={"localhost/app:1", "localhost/app:2"}))
    clock = Clock()
    controller = RolloutController(
        runtime=runtime,
        store=store,
        services=ServiceController(runtime=runtime, journal=store),
        ready=lambda name: name in ready,
        clock=clock,
    )
    return runtime, controller, clock


def roll(
    runtime: FakeRuntime,
    controller: RolloutController,
    clock: Clock,
    svc: DesiredService,
    *,
    seconds: int,
    watch: list[tuple[float, str, str]] | None = None,
) -> None:
    """Step once a second for ``seconds`` (or until it ends), noting who holds ``web``."""
    for _ in range(seconds):
        if svc.name not in controller.active:
            return
        clock.now += 1
        controller.step(svc, runtime.containers.get("web"), None, runtime.containers.get(NEXT))
        if watch is not None and "web" in runtime.containers:
            held = runtime.containers["web"]
            watch.append((clock.now, held.id, held.state))


def deployed(store: Store, ready: set[str]) -> tuple[FakeRuntime, RolloutController, Clock, str]:
    runtime, controller, clock = make(store, ready)
    controller.begin(V1, None)  # a first deploy: nothing to start beside
    roll(runtime, controller, clock, V1, seconds=15)
    assert ["web"] == list(runtime.containers)
    return runtime, controller, clock, runtime.containers["web"].id


def test_the_new_copy_serves_beside_the_old_until_it_is_ready_and_drained(store: Store) -> None:
    """v2 starts as web.paid-next with the alias web; v1 runs through the gate and the drain."""
    ready = {"web", NEXT}
    runtime, controller, clock, v1 = deployed(store, ready)
    started = clock.now

    controller.begin(V2, runtime.containers["web"])
    assert {"web", NEXT} == set(runtime.containers)
    assert "web" in runtime.requests[NEXT].networks["paid"]  # the service's DNS name
    watch: list[tuple[float, str, str]] = []
    roll(runtime, controller, clock, V2, seconds=30, watch=watch)

    # v1 served, running, through the 10 s bake and the 5 s drain; then v2 holds the name.
    served = [t - started for t, cid, state in watch if cid == v1 and state == "running"]
    assert max(served) >= 15
    assert ["web"] == list(runtime.containers)
    assert "localhost/app:2" == runtime.containers["web"].image
    assert [(1, "superseded"), (2, "succeeded")] == [
        (r.number, r.outcome) for r in store.revisions("web")
    ]
    kinds = [e.kind for e in store.events(service="web")]
    assert ["rollout_beside", "rollout_draining", "rollout_succeeded"] == kinds[-3:]


def test_a_new_copy_that_never_gets_ready_goes_and_the_old_is_never_touched(store: Store) -> None:
    """No stop, rename or restart of v1 at all; v2 is removed and quarantined."""
    ready = {"web"}
    runtime, controller, clock, v1 = deployed(store, ready)
    runtime.calls.clear()

    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=70)

    assert ["web"] == list(runtime.containers)
    assert (v1, "running") == (runtime.containers["web"].id, runtime.containers["web"].state)
    assert [] == [c for c in runtime.mutating_calls if c[1] in ("web", v1)]
    (bad,) = [r for r in store.revisions("web") if r.number == 2]
    assert ("rolled_back", True) == (bad.outcome, bad.quarantined)
    assert "progressDeadlineSeconds" in bad.reason


def test_a_new_copy_that_dies_while_the_old_drains_is_removed(store: Store) -> None:
    """Ready, then dead during the drain: the old copy stays, the revision fails."""
    ready = {"web", NEXT}
    runtime, controller, clock, v1 = deployed(store, ready)
    controller.begin(V2, runtime.containers["web"])
    roll(runtime, controller, clock, V2, seconds=12)  # past the bake, draining
    assert NEXT in runtime.containers
    assert V2.name in controller.active
    runtime.containers[NEXT] = replace(runtime.containers[NEXT], state="exited", exit_code=1)

    roll(runtime, controller, clock, V2, seconds=10)

    assert ["web"] == list(runtime.containers)
    assert v1 == runtime.containers["web"].id
    assert "succeeded" != store.revisions("web")[-1].outcome


def test_an_image_that_declares_a_volume_is_rolled_out_by_recreate(store: Store) -> None:
    """Two copies would share the image's data volume: this rollout is a Recreate, and says so."""
    runtime = FakeRuntime(
        images={"localhost/app:1", "localhost/app:2"},
        image_volumes={"localhost/app:2": ("/var/lib/data",)},
    )
    ready = {"web", NEXT}
    runtime, controller, clock = make(store, ready, runtime)
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)

    controller.begin(V2, runtime.containers["web"])

    assert NEXT not in runtime.containers
    (note,) = [e for e in store.events(service="web") if e.kind == "rollout_recreate"]
    assert "VOLUME /var/lib/data" in note.message
    roll(runtime, controller, clock, V2, seconds=15)
    assert "localhost/app:2" == runtime.containers["web"].image


def test_shared_volumes_lets_two_copies_share_the_image_s_volume(store: Store) -> None:
    """sharedVolumes: true: the new copy starts beside the old one all the same."""
    shared = {**ROLLOUT, "sharedVolumes": True}
    v2 = desired_service("web", image="localhost/app:2", rollout=shared)
    runtime = FakeRuntime(
        images={"localhost/app:1", "localhost/app:2"},
        image_volumes={"localhost/app:2": ("/var/lib/data",)},
    )
    runtime, controller, clock = make(store, {"web", NEXT}, runtime)
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=15)

    controller.begin(v2, runtime.containers["web"])

    assert {"web", NEXT} == set(runtime.containers)


def test_a_copy_left_beside_a_serving_old_one_goes(store: Store) -> None:
    """paid killed mid-gate: the next pass removes the new copy; v1 keeps serving, untouched."""
    ready = {"web", NEXT}
    runtime, controller, _clock, v1 = deployed(store, ready)
    controller.begin(V2, runtime.containers["web"])
    controller.active.clear()  # what a kill -9 forgets

    controller.resume_beside(V2, runtime.containers["web"], runtime.containers[NEXT])

    assert ["web"] == list(runtime.containers)
    assert (v1, "running") == (runtime.containers["web"].id, runtime.containers["web"].state)
    assert "rollout_interrupted" in [e.kind for e in store.events(service="web")]


def test_a_ready_copy_left_when_the_old_one_was_being_retired_takes_over(store: Store) -> None:
    """paid killed between stopping v1 and the rename: v2 takes the name and is judged again."""
    ready = {"web", NEXT}
    runtime, controller, _clock, v1 = deployed(store, ready)
    controller.begin(V2, runtime.containers["web"])
    next_id = runtime.containers[NEXT].id
    controller.active.clear()
    runtime.stop_container(v1, timeout=0)

    controller.resume_beside(V2, runtime.containers["web"], runtime.containers[NEXT])

    assert ["web"] == list(runtime.containers)
    assert next_id == runtime.containers["web"].id
    assert "web" in controller.active  # the gate judges it under its name
