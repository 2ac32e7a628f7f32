"""imagePullPolicy and what a failed pull says, on the fake runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from paid.controllers.converging import converge
from paid.runtime.base import ImageUnavailable, pull_failure
from paid.runtime.fake import FakeRuntime
from paid.storage.store import Store
from tests.unit.builders import FAST, desired, desired_service

IMAGE = "localhost/app:1"


def _apply(tmp_path: Path, runtime: FakeRuntime, **spec: object) -> bool:
    spec.setdefault("rollout", {"minReadySeconds": 0})
    state = desired(desired_service("web", image=IMAGE, **spec))
    with Store.open(tmp_path / "state") as store:
        return converge(state, runtime=runtime, store=store, timings=FAST).converged


def test_if_not_present_pulls_only_what_is_missing(tmp_path: Path) -> None:
    """The default: an image on the host is used as it is."""
    runtime = FakeRuntime(images={IMAGE})

    assert _apply(tmp_path, runtime)
    assert [] == [c for c in runtime.calls if c[0] == "pull"]


def test_always_pulls_before_every_create(tmp_path: Path) -> None:
    """Always: pulled although present, so a moved tag is fetched."""
    runtime = FakeRuntime(images={IMAGE}, pullable={IMAGE})

    assert _apply(tmp_path, runtime, imagePullPolicy="Always")
    assert [("pull", f"{IMAGE} (always)")] == [c for c in runtime.calls if c[0] == "pull"]


def test_never_refuses_an_absent_image_and_touches_nothing(tmp_path: Path) -> None:
    """Never: no pull is tried; the service fails with the reason; nothing is created."""
    runtime = FakeRuntime(pullable={IMAGE})

    assert not _apply(tmp_path, runtime, imagePullPolicy="Never")
    assert [] == [c for c in runtime.calls if c[0] in ("pull", "create")]


def test_the_pull_policy_steers_paid_and_replaces_no_container() -> None:
    """Changing imagePullPolicy keeps the spec hash: it says when to pull, not what runs."""
    plain = desired_service("web", image=IMAGE)
    always = desired_service("web", image=IMAGE, imagePullPolicy="Always")
    assert plain.spec_hash == always.spec_hash


@pytest.mark.parametrize(
    ("detail", "reason", "transient"),
    [
        ("reading manifest 9 in 127.0.0.1:5000/app: manifest unknown", "not_found", False),
        ("initializing source docker://x: requested access to the resource is denied",
         "unauthorized", False),
        ("unable to retrieve auth token: invalid username/password: unauthorized",
         "unauthorized", False),
        ('pinging container registry 127.0.0.1:9: Get "http://127.0.0.1:9/v2/": dial tcp '
         "127.0.0.1:9: connect: connection refused", "unreachable", True),
        ("lookup registry.invalid: no such host", "unreachable", True),
        # A port with 401 or 404 in it is not a status code (port 40163 was "unauthorized").
        ('pinging container registry 127.0.0.1:40163: Get "https://127.0.0.1:40163/v2/": '
         "dial tcp 127.0.0.1:40163: connect: connection refused", "unreachable", True),
        ("reading manifest 1 in 127.0.0.1:40444/app: StatusCode: 404, 404 page not found",
         "not_found", False),
        ("received unexpected HTTP status: 401 Unauthorized", "unauthorized", False),
    ],
)  # fmt: skip
def test_pull_errors_say_not_found_unauthorized_or_unreachable(
    detail: str, reason: str, transient: bool
) -> None:
    """Podman's pull errors, sorted into the three a user acts on differently."""
    error = ImageUnavailable("127.0.0.1:5000/app:9", detail)

    assert (reason, transient) == (error.reason, error.transient)
    assert pull_failure(detail) == reason


def test_a_rollback_runs_the_image_its_revision_ran_not_what_the_tag_is_now(
    tmp_path: Path,
) -> None:
    """Pinned back to revision 1: its recorded image ID is created, never pulled; if that
    image is gone, the rollback fails and the running revision stays."""
    from paid.runtime.fake import image_id  # noqa: PLC0415

    runtime = FakeRuntime(images={IMAGE, "localhost/app:2"})
    v1 = desired_service("web", image=IMAGE, rollout={"minReadySeconds": 0})
    v2 = desired_service("web", image="localhost/app:2", rollout={"minReadySeconds": 0})
    with Store.open(tmp_path / "state") as store:
        assert converge(desired(v1), runtime=runtime, store=store, timings=FAST).converged
        assert image_id(IMAGE) == store.revision("web", 1).image_id  # type: ignore[union-attr]
        assert converge(desired(v2), runtime=runtime, store=store, timings=FAST).converged
        store.pin("web", revision=1, desired_hash=v2.spec_hash, reason="test")

        assert converge(desired(v2), runtime=runtime, store=store, timings=FAST).converged

        request = runtime.requests["web"]
        assert (image_id(IMAGE), True) == (request.image, request.exact_image)
        assert not [c for c in runtime.calls if c[0] == "pull"]

        runtime.images.discard(IMAGE)  # revision 1's image is gone from the host
        store.pin("web", revision=2, desired_hash=v2.spec_hash, reason="test")
        assert converge(desired(v2), runtime=runtime, store=store, timings=FAST).converged
        running = runtime.containers["web"].id
        store.pin("web", revision=1, desired_hash=v2.spec_hash, reason="test")

        report = converge(desired(v2), runtime=runtime, store=store, timings=FAST)

        assert not report.converged
        assert running == runtime.containers["web"].id  # revision 2 still runs


class RegistryCanGoDown(FakeRuntime):
    """Pulls as the fake does, until ``down``: then the registry does not answer."""

    down: bool = False

    def pull_image(self, image: str, *, always: bool = False) -> None:
        if self.down:
            self._call("pull", image)
            raise ImageUnavailable(image, "dial tcp: connection refused", reason="unreachable")
        super().pull_image(image, always=always)


def test_a_registry_outage_never_stops_a_heal_but_stops_a_new_revision(tmp_path: Path) -> None:
    """Always, registry down: a crash is healed from the image here; a new spec waits for it."""
    runtime = RegistryCanGoDown(images={IMAGE}, pullable={IMAGE})
    assert _apply(tmp_path, runtime, imagePullPolicy="Always")
    runtime.down = True
    runtime.kill_container("web")

    assert _apply(tmp_path, runtime, imagePullPolicy="Always")
    assert "running" == runtime.containers["web"].state
    assert not _apply(tmp_path, runtime, imagePullPolicy="Always", env={"NEW": "1"})
