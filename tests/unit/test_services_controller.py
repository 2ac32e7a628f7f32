"""The service controller on the shipped fake runtime and a real SQLite store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid.controllers.services import Outcome, ServiceController
from paid.runtime.fake import FakeRuntime
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.diffing import diff
from paid.state.secrets import SecretSource
from paid.state.specs import ServiceDocument
from paid.state.store import Store
from tests.unit.builders import desired, desired_service, running, unmanaged

DB = desired_service("db")
API = desired_service("api", dependsOn=["db"])
WEB = desired_service("web", dependsOn=["api"])
IMAGES = {"localhost/app:1", "localhost/app:2"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


def controller(runtime: FakeRuntime, store: Store) -> ServiceController:
    return ServiceController(runtime=runtime, journal=store)


def test_converges_from_empty_in_dependency_order(store: Store) -> None:
    """Creates follow dependsOn: db before api before web; all end running."""
    runtime = FakeRuntime(images=set(IMAGES))

    report = controller(runtime, store).reconcile(desired(WEB, API, DB))

    assert report.converged
    assert ["db", "api", "web"] == [n for op, n in runtime.calls if op == "create"]
    assert {"running"} == {c.state for c in runtime.containers.values()}


def test_second_pass_makes_no_mutating_call(store: Store) -> None:
    """Idempotence: a converged host costs one list call and nothing else."""
    runtime = FakeRuntime(images=set(IMAGES))
    ctl = controller(runtime, store)
    ctl.reconcile(desired(WEB, API, DB))
    runtime.calls.clear()

    report = ctl.reconcile(desired(WEB, API, DB))

    assert report.results == ()
    assert [("list", "")] == runtime.calls


def test_missing_image_fails_that_service_and_its_dependents_only(store: Store) -> None:
    """One bad image does not stop unrelated services; dependents wait."""
    runtime = FakeRuntime(images=set(IMAGES))
    broken_db = desired_service("db", image="localhost/missing:1")
    other = desired_service("other")

    report = controller(runtime, store).reconcile(desired(broken_db, API, other))

    outcomes = {r.action.service: r.outcome for r in report.results}
    assert {"db": Outcome.FAILED, "api": Outcome.SKIPPED, "other": Outcome.DONE} == outcomes
    assert (
        "image localhost/missing:1 is not present and could not be pulled"
        in report.results[0].detail
    )
    assert not report.converged


def test_recreate_with_missing_image_leaves_the_old_container_running(store: Store) -> None:
    """The image is made present before the old container is touched."""
    runtime = FakeRuntime(images=set(IMAGES))
    runtime.add(running(DB))
    bad = desired_service("db", image="localhost/missing:1")

    report = controller(runtime, store).reconcile(desired(bad))

    assert Outcome.FAILED == report.results[0].outcome
    assert "running" == runtime.containers["db"].state
    assert [] == [c for c in runtime.mutating_calls if c[0] in ("stop", "remove")]


def test_pullable_image_is_pulled_then_used(store: Store) -> None:
    """An image that is not present but pullable is fetched first."""
    runtime = FakeRuntime(images=set(), pullable={"localhost/app:1"})

    report = controller(runtime, store).reconcile(desired(DB))

    assert report.converged
    assert ("pull", "localhost/app:1") in runtime.calls


def test_conflict_is_reported_and_left_alone(store: Store) -> None:
    """An unmanaged container holding a desired name is never touched."""
    runtime = FakeRuntime(images=set(IMAGES))
    runtime.add(unmanaged("db"))

    report = controller(runtime, store).reconcile(desired(DB, API))

    assert [Outcome.CONFLICT, Outcome.SKIPPED] == [r.outcome for r in report.results]
    assert [] == runtime.mutating_calls
    assert not runtime.containers["db"].managed


def test_runtime_going_away_skips_the_rest(store: Store) -> None:
    """When Podman vanishes mid-pass the remaining actions are skipped, not hammered."""
    runtime = FakeRuntime(images=set(IMAGES))
    ctl = controller(runtime, store)
    plan = ctl.plan(desired(DB, API))
    runtime.available = False

    report = ctl.apply(desired(DB, API), plan)

    assert [Outcome.FAILED, Outcome.SKIPPED] == [r.outcome for r in report.results]
    assert "Podman unreachable" in report.results[1].detail


def test_revision_numbers_come_from_the_store(store: Store) -> None:
    """A new spec gets the next revision; going back to an old spec reuses its number."""
    runtime = FakeRuntime(images=set(IMAGES))
    ctl = controller(runtime, store)
    v2 = desired_service("db", image="localhost/app:2")

    revisions = []
    for svc in (DB, v2, DB):
        ctl.reconcile(desired(svc))
        revisions.append(runtime.containers["db"].revision)

    assert [1, 2, 1] == revisions
    assert ["action_done"] * 3 == [e.kind for e in store.events(service="db")]


def test_removed_container_is_recreated_with_the_same_revision(store: Store) -> None:
    """`podman rm -f` behind paid's back is healed with the same revision number."""
    runtime = FakeRuntime(images=set(IMAGES))
    ctl = controller(runtime, store)
    ctl.reconcile(desired(desired_service("db", image="localhost/app:2")))
    first = runtime.containers["db"].revision
    del runtime.containers["db"]

    ctl.reconcile(desired(desired_service("db", image="localhost/app:2")))

    assert first == runtime.containers["db"].revision == 1


# -- property: apply the plan to the fake, diff again: nothing left ----------

_names = st.sampled_from(["a", "b", "c", "d", "e"])
_services = st.builds(
    lambda name, image, policy: desired_service(name, image=image, restartPolicy=policy),
    _names,
    st.sampled_from(sorted(IMAGES)),
    st.sampled_from(["Always", "OnFailure", "Never"]),
)
_states = st.sampled_from(["running", "exited", "created", "paused"])


@st.composite
def _worlds(draw: st.DrawFn) -> tuple[list, list[ActualContainer]]:  # type: ignore[type-arg]
    wanted = {s.name: s for s in draw(st.lists(_services, max_size=5))}
    actual: list[ActualContainer] = []
    for name in draw(st.sets(_names)):
        template = draw(_services.filter(lambda s, n=name: s.name == n))  # type: ignore[misc]
        state = draw(_states)
        code = draw(st.sampled_from([0, 1, 137]))
        actual.append(running(template, state=state, exit_code=code))
    return list(wanted.values()), actual


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=_worlds())
def test_applying_a_plan_leaves_nothing_to_do(
    world: tuple[list, list[ActualContainer]], tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """Property: after applying diff's plan to the fake, diff is empty (mass prune allowed)."""
    wanted, actual = world
    runtime = FakeRuntime(images=set(IMAGES))
    for container in actual:
        runtime.add(container)
    with Store.open(tmp_path / f"s{len(runtime.containers)}{len(wanted)}") as store:
        ctl = controller(runtime, store)

        report = ctl.reconcile(desired(*wanted), allow_mass_prune=True)

        assert report.converged
        assert diff(desired(*wanted), runtime.list_containers(), allow_mass_prune=True).empty


def _with_secret(tmp_path: Path, value: bytes) -> tuple[SecretSource, DesiredService]:
    (tmp_path / "token").write_bytes(value)
    source = SecretSource(tmp_path, key=b"host key")
    doc = ServiceDocument.model_validate(
        {
            "apiVersion": "paid/v1",
            "kind": "Service",
            "metadata": {"name": "api"},
            "spec": {"image": "localhost/app:1", "secretEnv": {"TOKEN": {"file": "token"}}},
        }
    )
    fingerprint = source.read("token")[1]
    return source, DesiredService.of(doc, secret_fingerprints={"TOKEN": fingerprint})


def test_secret_is_made_before_the_container_that_mounts_it(store: Store, tmp_path: Path) -> None:
    """The Podman secret holds the file's bytes; the container gets only its name and path."""
    source, api = _with_secret(tmp_path, b"hunter2")
    runtime = FakeRuntime(images=set(IMAGES))

    report = ServiceController(runtime=runtime, journal=store, secrets=source).reconcile(
        desired(api)
    )

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
    ServiceController(runtime=runtime, journal=store, secrets=source).reconcile(desired(api))
    _, api_new = _with_secret(tmp_path, b"new")
    (tmp_path / "token").write_bytes(b"newer still")  # changed again before the create
    runtime.calls.clear()

    report = ServiceController(runtime=runtime, journal=store, secrets=source).reconcile(
        desired(api_new)
    )

    (result,) = report.results
    assert Outcome.FAILED is result.outcome
    assert "changed since the desired state was loaded" in result.detail
    assert [] == runtime.mutating_calls
    assert "running" == runtime.containers["api"].state


def test_unused_secrets_are_collected_once_nothing_can_need_them(
    store: Store, tmp_path: Path
) -> None:
    """Kept: named by a container, by the desired state, young, or not paid's."""
    source, api = _with_secret(tmp_path, b"v1")
    runtime = FakeRuntime(images=set(IMAGES))
    controller = ServiceController(runtime=runtime, journal=store, secrets=source)
    controller.reconcile(desired(api))
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

    removed, kept = controller.collect_secrets(
        desired(api), runtime.list_containers(), now=1000.0 + 60
    )

    assert ["paid.api.TOKEN.0000000000000000"] == removed
    assert {current, "paid.api.TOKEN.1111111111111111", "someone-elses"} == set(runtime.secrets)
    assert 2 == kept

    removed, _ = controller.collect_secrets(desired(), [], now=time.time() + 3600)
    assert {current, "paid.api.TOKEN.1111111111111111"} == set(removed)
