"""``paid apply``'s driver (the reconciler under workers) on the fake runtime and a real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid.controllers import wiring
from paid.controllers.collecting import unused_secrets
from paid.controllers.converging import ConvergeReport, converge
from paid.controllers.queue import WorkQueue
from paid.controllers.reconciling import FULL, StepKind
from paid.controllers.services import Outcome
from paid.controllers.wiring import Mode
from paid.controllers.working import Workers
from paid.controllers.worlds import Wants
from paid.runtime.base import ContainerRequest
from paid.runtime.fake import FakeRuntime
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService, DesiredState
from paid.state.diffing import diff
from paid.state.plans import ActionKind
from paid.state.specs import ServiceDocument
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store
from tests.unit.builders import FAST, desired, networks_made, running, unmanaged
from tests.unit.builders import desired_service as _service

IMAGES = {"localhost/app:1", "localhost/app:2"}


def desired_service(name: str, **spec: Any) -> DesiredService:
    spec.setdefault("rollout", {"minReadySeconds": 0, "progressDeadlineSeconds": 30})
    return _service(name, **spec)


DB = desired_service("db")
API = desired_service("api", dependsOn=["db"])
WEB = desired_service("web", dependsOn=["api"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


def apply(
    runtime: FakeRuntime, store: Store, state: DesiredState, **options: Any
) -> ConvergeReport:
    options.setdefault("timings", FAST)
    return converge(state, runtime=runtime, store=store, **options)


def test_converges_from_empty_in_dependency_order(store: Store) -> None:
    """Creates follow dependsOn: db before api before web; all end running."""
    runtime = FakeRuntime(images=set(IMAGES))

    report = apply(runtime, store, desired(WEB, API, DB))

    assert report.converged, report
    assert ["db", "api", "web"] == [n for op, n in runtime.calls if op == "create"]
    assert {"running"} == {c.state for c in runtime.containers.values()}
    assert {"db": "succeeded", "api": "succeeded", "web": "succeeded"} == report.rollouts


def test_second_pass_makes_no_mutating_call(store: Store) -> None:
    """Idempotence: a converged host costs one container list, one network list, nothing else."""
    runtime = FakeRuntime(images=set(IMAGES))
    apply(runtime, store, desired(WEB, API, DB))
    runtime.calls.clear()

    report = apply(runtime, store, desired(WEB, API, DB))

    assert ([], {}) == (report.results, report.rollouts)
    assert [("list", ""), ("list_networks", "")] == runtime.calls


def test_missing_image_fails_that_service_and_its_dependents_only(store: Store) -> None:
    """One bad image does not stop unrelated services; dependents wait and are reported."""
    runtime = FakeRuntime(images=set(IMAGES))
    broken_db = desired_service("db", image="localhost/missing:1")
    other = desired_service("other")

    report = apply(runtime, store, desired(broken_db, API, other))

    assert {"db": "failed", "other": "succeeded"} == report.rollouts
    assert (
        "image localhost/missing:1 is not present and could not be pulled" in (report.reasons["db"])
    )
    assert {"api": "dependency db failed its rollout"} == report.unfinished
    assert not report.converged
    assert {"other"} == set(runtime.containers)


def test_recreate_with_missing_image_leaves_the_old_container_running(store: Store) -> None:
    """The image is made present before the old container is touched."""
    runtime = FakeRuntime(images=set(IMAGES))
    runtime.add(running(DB))
    bad = desired_service("db", image="localhost/missing:1")

    report = apply(runtime, store, desired(bad))

    assert not report.converged
    assert "not present" in report.reasons["db"]
    assert "running" == runtime.containers["db"].state
    assert [] == [c for c in runtime.mutating_calls if c[0] in ("stop", "remove", "rename")]


def test_pullable_image_is_pulled_then_used(store: Store) -> None:
    """An image that is not present but pullable is fetched first."""
    runtime = FakeRuntime(images=set(), pullable={"localhost/app:1"})

    report = apply(runtime, store, desired(DB))

    assert report.converged
    assert ("pull", "localhost/app:1") in runtime.calls


def test_conflict_is_reported_and_left_alone(store: Store) -> None:
    """An unmanaged container holding a desired name is never touched; dependents wait."""
    runtime = networks_made(FakeRuntime(images=set(IMAGES)), desired(DB, API))
    runtime.add(unmanaged("db"))

    report = apply(runtime, store, desired(DB, API))

    assert [("db", Outcome.CONFLICT)] == [(r.action.service, r.outcome) for r in report.results]
    assert {"api": "dependency db did not converge"} == report.unfinished
    assert [] == runtime.mutating_calls
    assert not runtime.containers["db"].managed


def test_a_conflict_is_parked_until_the_name_or_the_spec_changes(store: Store) -> None:
    """Not retried on every pass (journal and log quiet); a freed name is taken at once."""
    state = desired(DB)
    runtime = networks_made(FakeRuntime(images=set(IMAGES)), state)
    runtime.add(unmanaged("db"))
    reconciler = wiring.build(runtime, store, Wants(desired=lambda: state), timings=FAST)
    queue = WorkQueue()
    workers = Workers(reconciler, queue, count=1, timings=FAST)

    def conflicts() -> int:
        return sum(e.kind == "action_conflict" for e in store.events(service="db"))

    def drain() -> None:
        while (key := queue.get(timeout=0)) is not None:
            workers.process(key)
            queue.done(key)

    workers.process(FULL)
    drain()
    first = (conflicts(), queue.pending())
    for _ in range(3):  # resyncs: the same stranger holds the name
        workers.process(FULL)
        drain()
    after_resyncs = (conflicts(), queue.pending())
    del runtime.containers["db"]  # the stranger leaves
    workers.process(FULL)
    freed = queue.pending()

    assert (1, set()) == first
    assert (1, set()) == after_resyncs
    assert {"db"} == freed
    reconciler.close()


class _GoesAway(FakeRuntime):
    """Podman answers the first listing, then is gone."""

    def list_containers(self) -> list[ActualContainer]:
        listed = super().list_containers()
        self.available = False
        return listed


def test_runtime_going_away_is_reported_not_hammered(store: Store) -> None:
    """When Podman vanishes, each key is tried a few times, then reported."""
    runtime = _GoesAway(images=set(IMAGES))

    started = time.monotonic()
    report = apply(runtime, store, desired(DB, API))

    assert not report.converged
    assert time.monotonic() - started < 20  # settled, not at the deadline
    assert [] == runtime.mutating_calls
    assert 1 == len([c for c in runtime.calls if c[0] == "list"])


def test_revision_numbers_come_from_the_store(store: Store) -> None:
    """A new spec gets the next revision; going back to an old spec reuses its number."""
    runtime = FakeRuntime(images=set(IMAGES))
    v2 = desired_service("db", image="localhost/app:2")

    revisions = []
    for svc in (DB, v2, DB):
        assert apply(runtime, store, desired(svc)).converged
        revisions.append(runtime.containers["db"].revision)

    assert [1, 2, 1] == revisions
    assert 3 == [e.kind for e in store.events(service="db")].count("rollout_succeeded")


def test_removed_container_is_recreated_with_the_same_revision(store: Store) -> None:
    """`podman rm -f` behind paid's back is healed with the same revision number."""
    runtime = FakeRuntime(images=set(IMAGES))
    v2 = desired(desired_service("db", image="localhost/app:2"))
    apply(runtime, store, v2)
    first = runtime.containers["db"].revision
    del runtime.containers["db"]

    report = apply(runtime, store, v2)

    assert first == runtime.containers["db"].revision == 1
    assert [("create", "db")] == [(str(r.action.kind), r.action.service) for r in report.results]


class _SlowStart(FakeRuntime):
    """Each start takes a while; counts how many run at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.Lock()
        self.now = self.most = 0

    def create_container(self, request: ContainerRequest) -> str:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.1)
        with self.lock:
            self.now -= 1
            return super().create_container(request)


def test_independent_services_converge_in_parallel_within_the_worker_bound(store: Store) -> None:
    """Six independent services, three workers: creates overlap, never more than three."""
    runtime = _SlowStart(images=set(IMAGES))
    services = [desired_service(f"s{i}") for i in range(6)]

    report = apply(runtime, store, desired(*services), workers=3)

    assert report.converged
    assert 2 <= runtime.most <= 3


def test_a_held_service_is_left_alone_and_reported(store: Store) -> None:
    """A backup's hold keeps apply off the service; the others converge."""
    runtime = FakeRuntime(images=set(IMAGES))
    store.hold("db", reason="backup")

    report = apply(runtime, store, desired(DB, desired_service("other")))

    assert "held by pid" in report.unfinished["db"]
    assert {"other"} == set(runtime.containers)


# -- property: apply to the fake, diff again: nothing left ---------------------

_names = st.sampled_from(["a", "b", "c", "d", "e"])
_services = st.builds(
    lambda name, image, policy: desired_service(name, image=image, restartPolicy=policy),
    _names,
    st.sampled_from(sorted(IMAGES)),
    st.sampled_from(["Always", "OnFailure", "Never"]),
)
_states = st.sampled_from(["running", "exited", "created", "paused"])


@st.composite
def _worlds(draw: st.DrawFn) -> tuple[list[DesiredService], list[ActualContainer]]:
    wanted = {s.name: s for s in draw(st.lists(_services, max_size=5))}
    actual: list[ActualContainer] = []
    for name in draw(st.sets(_names)):
        template = draw(_services.filter(lambda s, n=name: s.name == n))  # type: ignore[misc]
        state = draw(_states)
        code = draw(st.sampled_from([0, 1, 137]))
        actual.append(running(template, state=state, exit_code=code))
    return list(wanted.values()), actual


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=_worlds())
def test_applying_leaves_nothing_to_do(
    world: tuple[list[DesiredService], list[ActualContainer]], tmp_path: Path
) -> None:
    """Property: after apply on the fake, diff is empty (mass prune allowed)."""
    wanted, actual = world
    runtime = FakeRuntime(images=set(IMAGES))
    for container in actual:
        runtime.add(container)
    with Store.open(tmp_path / f"s{time.monotonic_ns()}") as store:
        report = apply(runtime, store, desired(*wanted), allow_mass_prune=True)

        assert report.converged, report
        assert diff(desired(*wanted), runtime.list_containers(), allow_mass_prune=True).empty


# -- secrets ------------------------------------------------------------------


def _with_secret(tmp_path: Path, value: bytes) -> tuple[SecretSource, DesiredService]:
    (tmp_path / "token").write_bytes(value)
    source = SecretSource(tmp_path, key=b"host key")
    doc = ServiceDocument.model_validate(
        {
            "apiVersion": "paid/v1",
            "kind": "Service",
            "metadata": {"name": "api"},
            "spec": {
                "image": "localhost/app:1",
                "secretEnv": {"TOKEN": {"file": "token"}},
                "rollout": {"minReadySeconds": 0},
            },
        }
    )
    fingerprint = source.read("token")[1]
    return source, DesiredService.of(doc, secret_fingerprints={"TOKEN": fingerprint})


def test_secret_is_made_before_the_container_that_mounts_it(store: Store, tmp_path: Path) -> None:
    """The Podman secret holds the file's bytes; the container gets only its name and path."""
    source, api = _with_secret(tmp_path, b"hunter2")
    runtime = FakeRuntime(images=set(IMAGES))

    report = apply(runtime, store, desired(api), secrets=source)

    assert report.converged
    (name,) = runtime.secrets
    assert b"hunter2" == runtime.secrets[name][0]
    request = runtime.requests["api"]
    assert [name] == [m.podman_name for m in request.secrets]
    assert "/run/secrets/TOKEN" == request.env["TOKEN_FILE"]
    assert "hunter2" not in repr(request.env) + repr(dict(request.labels))


def test_secret_file_changed_since_loading_costs_the_running_container_nothing(
    store: Store, tmp_path: Path
) -> None:
    """The value must match the planned fingerprint; otherwise fail before stopping anything."""
    source, api = _with_secret(tmp_path, b"old")
    runtime = FakeRuntime(images=set(IMAGES))
    apply(runtime, store, desired(api), secrets=source)
    _, api_new = _with_secret(tmp_path, b"new")
    (tmp_path / "token").write_bytes(b"newer still")  # changed again before the create
    runtime.calls.clear()

    reconciler = wiring.build(
        runtime, store, Wants(desired=lambda: desired(api_new)), secrets=source
    )
    world = reconciler.observe()
    assert world is not None
    result = reconciler.reconcile("api", world)  # begins the rollout of the new revision
    reconciler.close()

    assert StepKind.ROLL_OUT is (result.step.kind if result.step else None)
    (failed,) = [r for r in store.revisions("api") if r.number == 2]
    assert "changed since the desired state was loaded" in (failed.reason or "")
    assert [] == runtime.mutating_calls
    assert "running" == runtime.containers["api"].state


def test_unused_secrets_are_collected_once_nothing_can_need_them(
    store: Store, tmp_path: Path
) -> None:
    """Kept: named by a container, by the desired state, young, or not paid's."""
    source, api = _with_secret(tmp_path, b"v1")
    runtime = FakeRuntime(images=set(IMAGES))
    apply(runtime, store, desired(api), secrets=source)
    (current,) = runtime.secrets
    runtime.secrets.update(
        {
            "paid.api.TOKEN.0000000000000000": (b"stale", 0.0),
            "paid.api.TOKEN.1111111111111111": (b"just made", 1000.0),
            "someone-elses": (b"x", 0.0),
        }
    )
    old_container = replace(runtime.containers["api"], name="api.paid-prev", id="old")
    runtime.add(old_container)

    removed, kept = unused_secrets(
        runtime, desired(api), runtime.list_containers(), now=1000.0 + 60
    )

    assert ["paid.api.TOKEN.0000000000000000"] == removed
    assert {current, "paid.api.TOKEN.1111111111111111", "someone-elses"} == set(runtime.secrets)
    assert 2 == kept

    removed, _ = unused_secrets(runtime, desired(), [], now=time.time() + 3600)
    assert {current, "paid.api.TOKEN.1111111111111111"} == set(removed)


def test_another_instance_is_never_pruned_and_its_names_are_conflicts(store: Store) -> None:
    """Two desired states on one Podman: each prunes only its own, and names clash openly."""
    podman = FakeRuntime(images=set(IMAGES), instance="blue")
    apply(podman, store, desired(desired_service("shared"), desired_service("blue-only")))
    podman.instance = "green"  # the same Podman, as a paid with --instance green sees it
    podman.calls.clear()

    report = apply(podman, store, desired(desired_service("shared")), allow_mass_prune=True)

    assert [("shared", Outcome.CONFLICT)] == [(r.action.service, r.outcome) for r in report.results]
    assert "belongs to paid instance 'blue'" in report.results[0].action.reason
    assert {"shared", "blue-only"} == set(podman.containers)
    assert [] == podman.mutating_calls


def _left_progressing(store: Store, service: DesiredService) -> int:
    """What a paid killed mid-rollout leaves in the store."""
    number = store.revision_for(
        service=service.name, spec_hash=service.spec_hash, spec=service.shape, image="x"
    )
    store.set_outcome(service.name, number, "progressing", "rollout started")
    return number


def test_a_revision_left_progressing_with_its_container_running_is_judged(store: Store) -> None:
    """kill -9 mid-gate: the next apply puts the running revision through the gate."""
    runtime = networks_made(FakeRuntime(images=set(IMAGES)), desired(DB))
    number = _left_progressing(store, DB)
    runtime.add(running(DB))  # revision 1, running

    report = apply(runtime, store, desired(DB))

    assert report.converged
    assert [("succeeded", number)] == [(r.outcome, r.number) for r in store.revisions("db")]
    assert [] == runtime.mutating_calls
    assert "rollout_resumed" in [e.kind for e in store.events(service="db")]


def test_a_revision_left_progressing_without_a_container_is_ended_then_tried(
    store: Store,
) -> None:
    """kill -9 before the create: the revision is settled as failed, then rolled out afresh."""
    runtime = FakeRuntime(images=set(IMAGES))
    _left_progressing(store, DB)

    report = apply(runtime, store, desired(DB))

    assert report.converged
    assert ["succeeded"] == [r.outcome for r in store.revisions("db")]
    reasons = [e.message for e in store.events(service="db") if e.kind == "rollout_failed"]
    assert any("interrupted" in m for m in reasons)


def test_an_unmanaged_container_named_like_an_aside_is_never_removed(store: Store) -> None:
    """`web.paid-prev` that paid did not make: kept on a first deploy; a rollout touches nothing."""
    runtime = FakeRuntime(images=set(IMAGES))
    runtime.add(unmanaged("web.paid-prev"))
    stranger = runtime.containers["web.paid-prev"].id

    first = apply(runtime, store, desired(desired_service("web")))
    second = apply(runtime, store, desired(desired_service("web", image="localhost/app:2")))

    assert (True, False) == (first.converged, second.converged)
    assert "not paid's: nothing was stopped" in second.reasons["web"]
    assert ("running", "localhost/app:1") == (
        runtime.containers["web"].state,
        runtime.containers["web"].image,
    )
    assert stranger == runtime.containers["web.paid-prev"].id
    assert [] == [c for c in runtime.mutating_calls if c[1] in ("web.paid-prev", stranger)]
    assert "not_owned_left_alone" in [e.kind for e in store.events(service="web")]


def test_an_unmanaged_container_named_like_a_canary_is_never_touched(store: Store) -> None:
    """`bar-canary` that paid did not make: the canary cannot start, bar keeps v1, it stays."""
    canary = {"strategy": "Canary", "minReadySeconds": 0, "canary": {"durationSeconds": 1}}
    runtime = FakeRuntime(images=set(IMAGES))
    apply(runtime, store, desired(desired_service("bar", rollout=canary)))
    runtime.add(unmanaged("bar-canary"))
    stranger = runtime.containers["bar-canary"].id

    report = apply(
        runtime, store, desired(desired_service("bar", image="localhost/app:2", rollout=canary))
    )

    assert not report.converged
    assert "canary" in report.reasons["bar"]
    assert ("running", stranger) == (
        runtime.containers["bar-canary"].state,
        runtime.containers["bar-canary"].id,
    )
    assert "localhost/app:1" == runtime.containers["bar"].image


def _plan(runtime: FakeRuntime, store: Store, state: DesiredState) -> Any:
    reconciler = wiring.build(runtime, store, Wants(desired=lambda: state), mode=Mode.PLAN)
    try:
        world = reconciler.observe()
        assert world is not None
        return reconciler.plan(world)
    finally:
        reconciler.close()


def test_a_plan_shows_each_changed_field_old_and_new(store: Store) -> None:
    """`spec.image: 1 → 2` and `spec.env.LOG: info → debug`, not just "spec changed"."""
    runtime = FakeRuntime(images=set(IMAGES))
    apply(runtime, store, desired(desired_service("web", env={"LOG": "info"})))

    plan = _plan(
        runtime,
        store,
        desired(desired_service("web", image="localhost/app:2", env={"LOG": "debug"})),
    )

    (action,) = plan.actions
    assert [
        ("spec.env.LOG", "info", "debug"),
        ("spec.image", "localhost/app:1", "localhost/app:2"),
    ] == [(c.path, c.old, c.new) for c in action.changes]
    assert {"path": "spec.image", "old": "localhost/app:1", "new": "localhost/app:2"} in (
        action.to_json()["changes"]
    )


def test_a_probe_change_is_an_update_that_replaces_no_container(store: Store) -> None:
    """livenessProbe path / → /health: plan says update; apply records it; then nothing."""
    runtime = FakeRuntime(images=set(IMAGES))
    probe = {"httpGet": {"port": 80, "path": "/"}, "periodSeconds": 60}
    apply(runtime, store, desired(desired_service("web", livenessProbe=probe)))
    changed = desired(
        desired_service("web", livenessProbe={**probe, "httpGet": {"port": 80, "path": "/health"}})
    )

    before = _plan(runtime, store, changed)
    runtime.calls.clear()
    report = apply(runtime, store, changed)
    after = _plan(runtime, store, changed)

    (action,) = before.actions
    assert ActionKind.UPDATE is action.kind
    assert [("spec.livenessProbe.httpGet.path", "/", "/health")] == [
        (c.path, c.old, c.new) for c in action.changes
    ]
    assert report.converged
    assert [] == runtime.mutating_calls
    assert () == after.actions


def test_a_plan_reads_each_service_s_health_once(store: Store) -> None:
    """A plan of N services asks the health controller N times, not N² (it was 250,000
    look-ups at 500 services): each service's facts are about that service alone."""
    runtime = FakeRuntime(images=set(IMAGES))
    state = desired(*(_service(f"s{i:02d}") for i in range(8)))
    reconciler = wiring.build(runtime, store, Wants(desired=lambda: state), mode=Mode.PLAN)
    asked: list[str] = []
    failed = reconciler.health.failed

    def counted(service: str) -> str | None:
        asked.append(service)
        return failed(service)

    reconciler.health.failed = counted  # type: ignore[method-assign]
    try:
        world = reconciler.observe()
        assert world is not None
        assert 8 == len(reconciler.plan(world).actions)  # eight creates
    finally:
        reconciler.close()
    assert sorted(asked) == sorted(f"s{i:02d}" for i in range(8))
