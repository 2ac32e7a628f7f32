"""diff(desired, actual): a table of situations and the plan each must give."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paid.state.diffing import diff
from paid.state.plans import ActionKind
from tests.unit.builders import desired, desired_service, running, unmanaged

WEB = desired_service("web", command=["httpd"], ports=["127.0.0.1:8080:80"])
WEB_V2 = desired_service(
    "web", image="localhost/app:2", command=["httpd"], ports=["127.0.0.1:8080:80"]
)
DB = desired_service("db")
WORKER_ON_FAILURE = desired_service("worker", restartPolicy="OnFailure")
WORKER_NEVER = desired_service("worker", restartPolicy="Never")
API = desired_service("api", dependsOn=["db"])


@pytest.mark.parametrize(
    ("want", "have", "expected"),
    [
        pytest.param([WEB], [], [("create", "web", "no container")], id="create-from-empty"),
        pytest.param([WEB], [running(WEB)], [], id="converged-is-empty"),
        pytest.param(
            [WEB_V2],
            [running(WEB)],
            [("recreate", "web", "spec changed: image")],
            id="image-change-recreates",
        ),
        pytest.param(
            [WEB],
            [running(WEB, state="exited", exit_code=137)],
            [("restart", "web", "exited with code 137")],
            id="exited-is-restarted-fresh",
        ),
        pytest.param(
            [WEB],
            [running(WEB, state="created")],
            [("start", "web", "created, never started")],
            id="created-is-started",
        ),
        pytest.param(
            [WEB],
            [running(WEB, state="paused")],
            [("start", "web", "paused")],
            id="paused-is-unpaused",
        ),
        pytest.param(
            [WORKER_ON_FAILURE],
            [running(WORKER_ON_FAILURE, state="exited", exit_code=0)],
            [],
            id="onfailure-clean-exit-stays",
        ),
        pytest.param(
            [WORKER_ON_FAILURE],
            [running(WORKER_ON_FAILURE, state="exited", exit_code=2)],
            [("restart", "worker", "exited with code 2")],
            id="onfailure-crash-restarts",
        ),
        pytest.param(
            [WORKER_NEVER],
            [running(WORKER_NEVER, state="exited", exit_code=2)],
            [],
            id="never-stays-down",
        ),
        pytest.param([WEB], [running(WEB, state="stopping")], [], id="transition-waits"),
        pytest.param(
            [WEB, DB],
            [running(WEB), running(DB), running(WORKER_NEVER)],
            [("remove", "worker", "no longer in the desired state")],
            id="orphan-removed",
        ),
        pytest.param(
            [WEB], [running(WEB), unmanaged("bystander")], [], id="unmanaged-bystander-ignored"
        ),
        pytest.param(
            [WEB],
            [unmanaged("web")],
            [("conflict", "web", "container id-web holds the name and is not managed by paid")],
            id="unmanaged-name-conflict",
        ),
        pytest.param(
            [API, DB],
            [],
            [("create", "db", "no container"), ("create", "api", "no container")],
            id="dependency-order",
        ),
    ],
)
def test_diff_table(want: list, have: list, expected: list) -> None:  # type: ignore[type-arg]
    """Each situation yields exactly the listed actions, in order."""
    plan = diff(desired(*want), have)

    assert expected == [(str(a.kind), a.service, a.reason) for a in plan.actions]
    assert plan.withheld == ()


def test_recreate_names_every_changed_field() -> None:
    """The reason says which fields drifted, read from the paid.spec label."""
    changed = desired_service(
        "web", image="localhost/app:2", command=["httpd", "-v"], ports=["127.0.0.1:8080:80"]
    )

    (action,) = diff(desired(changed), [running(WEB)]).actions

    assert ("command", "image") == action.changed


def test_recreate_without_readable_spec_label_still_recreates() -> None:
    """A container whose paid.spec label is missing is judged by hash alone."""
    container = running(WEB)
    labels = {k: v for k, v in container.labels.items() if k != "paid.spec"}
    container = replace(container, labels={**labels, "paid.spec-hash": "0" * 64})

    (action,) = diff(desired(WEB), [container]).actions

    assert (ActionKind.RECREATE, ()) == (action.kind, action.changed)


@pytest.mark.parametrize(
    ("managed", "kept", "withheld"),
    [
        pytest.param(4, 3, 0, id="a-quarter-is-allowed"),
        pytest.param(4, 2, 2, id="half-is-withheld"),
        pytest.param(4, 1, 3, id="three-of-four-withheld"),
        pytest.param(3, 0, 3, id="emptied-directory-withheld"),
        pytest.param(1, 0, 1, id="last-service-withheld"),
    ],
)
def test_mass_prune_guard(managed: int, kept: int, withheld: int) -> None:
    """Removing half the managed services or more needs the explicit override."""
    services = [desired_service(f"s{i}") for i in range(managed)]
    actual = [running(s) for s in services]

    plan = diff(desired(*services[:kept]), actual)
    forced = diff(desired(*services[:kept]), actual, allow_mass_prune=True)

    assert withheld == len(plan.withheld)
    assert (withheld == 0) == (not plan.notes)
    assert 0 == len(forced.withheld)
    assert managed - kept == len([a for a in forced.actions if a.kind is ActionKind.REMOVE])


def test_guard_never_blocks_non_removals() -> None:
    """Withheld removals do not stop creates of the same plan."""
    old = [desired_service(f"old{i}") for i in range(3)]

    plan = diff(desired(WEB), [running(s) for s in old])

    assert [("create", "web")] == [(str(a.kind), a.service) for a in plan.actions]
    assert 3 == len(plan.withheld)


def test_diff_is_deterministic_whatever_the_listing_order() -> None:
    """Same inputs, same plan: the order Podman lists containers in does not matter."""
    services = [desired_service(n) for n in ("c", "a", "b")]
    orphans = [running(desired_service(n)) for n in ("z", "y")]
    want = desired(*services)

    first = diff(want, orphans, allow_mass_prune=True)
    second = diff(want, list(reversed(orphans)), allow_mass_prune=True)

    assert first == second
    assert ["y", "z", "a", "b", "c"] == [a.service for a in first.actions]
