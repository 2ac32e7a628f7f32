"""One suite, two runtimes: the shipped fake behaves as real Podman does where paid relies on it.

Every test runs against ``FakeRuntime`` and against ``PodmanRuntime`` on the
suite's own Podman. A difference is a bug in the fake (or a Podman change
the rest of paid must hear about).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from paid.runtime.base import (
    ContainerMissing,
    ContainerRequest,
    ImageUnavailable,
    NameInUse,
    RequestRejected,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
)
from paid.runtime.fake import FakeRuntime
from paid.runtime.podman import PodmanRuntime
from paid.state.networks import NetworkSpec
from paid.state.specs import PortMapping, VolumeMount
from tests.harness import IMAGE, PodmanService, free_port

LABELS = {"paid.managed": "true", "paid.service": "svc"}


@pytest.fixture(params=["fake", "podman"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeRuntime(images={IMAGE})
        return
    podman: PodmanService = request.getfixturevalue("podman")
    real = PodmanRuntime(podman.url)
    try:
        yield real
    finally:
        real.close()


def _request(name: str, **fields: Any) -> ContainerRequest:
    fields.setdefault("command", ["sleep", "3600"])
    return ContainerRequest(name=name, image=IMAGE, labels=LABELS, init=True, **fields)


def _state(runtime: Runtime, name: str) -> str | None:
    return next((c.state for c in runtime.list_containers() if c.name == name), None)


def test_create_then_start_lists_a_running_labelled_container(runtime: Runtime) -> None:
    """Created is not started; started is running, with its labels and its image's ID."""
    runtime.create_container(_request("svc"))
    assert _state(runtime, "svc") in ("created", "configured")

    runtime.start_container("svc")

    (listed,) = [c for c in runtime.list_containers() if c.name == "svc"]
    assert ("running", True, "svc") == (listed.state, listed.managed, listed.labels["paid.service"])
    assert listed.image_id


def test_a_taken_name_is_name_in_use(runtime: Runtime) -> None:
    """Creating under a name that exists is refused as NameInUse, and so is a rename onto it."""
    runtime.create_container(_request("svc"))
    runtime.create_container(_request("other"))

    with pytest.raises(NameInUse):
        runtime.create_container(_request("svc"))
    with pytest.raises(NameInUse):
        runtime.rename_container("other", "svc")


def test_a_taken_host_port_is_rejected_and_is_not_name_in_use(runtime: Runtime) -> None:
    """Two containers on one host port: the second start is a RequestRejected, never NameInUse."""
    port = PortMapping(host_ip="127.0.0.1", host_port=free_port(), container_port=80)
    runtime.create_container(_request("first", ports=(port,)))
    runtime.start_container("first")
    runtime.create_container(_request("second", ports=(port,)))

    with pytest.raises(RequestRejected) as refused:
        runtime.start_container("second")

    assert not isinstance(refused.value, NameInUse)
    assert "address already in use" in str(refused.value)
    assert not refused.value.transient


@pytest.mark.parametrize("operation", ["start", "stop", "remove", "rename", "logs"])
def test_operations_on_a_missing_container_are_container_missing(
    runtime: Runtime, operation: str
) -> None:
    """A container that is not there is ContainerMissing, whatever was asked of it."""
    calls = {
        "start": lambda: runtime.start_container("ghost"),
        "stop": lambda: runtime.stop_container("ghost", timeout=1),
        "remove": lambda: runtime.remove_container("ghost"),
        "rename": lambda: runtime.rename_container("ghost", "phantom"),
        "logs": lambda: runtime.logs_tail("ghost", lines=5),
    }
    with pytest.raises(ContainerMissing):
        calls[operation]()


def test_a_container_that_is_not_running_refuses_exec_kill_and_pause(runtime: Runtime) -> None:
    """Podman's refusals: exec in, kill and pause need a running container."""
    runtime.create_container(_request("svc"))

    with pytest.raises(RuntimeFailure):
        runtime.exec_in("svc", ["true"], timeout=5)
    with pytest.raises(RequestRejected):
        runtime.kill_container("svc")
    with pytest.raises(RequestRejected):
        runtime.pause_container("svc")


def test_an_absent_image_that_cannot_be_pulled_is_image_unavailable(runtime: Runtime) -> None:
    """No such image here, and no registry to pull it from."""
    absent = "localhost/paid-test/absent:9.9"

    assert not runtime.image_present(absent)
    with pytest.raises(ImageUnavailable):
        runtime.pull_image(absent)
    with pytest.raises(ImageUnavailable):
        runtime.create_container(ContainerRequest(name="svc", image=absent, labels=LABELS))


def test_a_killed_container_is_reported_on_the_event_stream(runtime: Any) -> None:
    """The stream names the container that died, with its labels."""
    runtime.create_container(_request("svc"))
    runtime.start_container("svc")
    stream = runtime.events()
    seen: list[RuntimeEvent] = []

    def read() -> None:
        for event in stream:
            seen.append(event)
            if event.action == "died":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    runtime.kill_container("svc")
    reader.join(timeout=20)
    stream.close()

    died = [e for e in seen if e.action == "died"]
    assert ["svc"] == [e.name for e in died]
    assert "svc" == died[0].service


def test_networks_are_made_listed_joined_left_and_removed_alike(runtime: Runtime) -> None:
    """A network paid made is listed as its own; containers on it say so; in use, it stays."""
    runtime.create_network("contract-net", NetworkSpec(), {"paid.managed": "true"})
    (made,) = [n for n in runtime.list_networks() if n.name == "contract-net"]
    assert made.managed

    runtime.create_container(_request("svc", networks={"contract-net": ("alias-1",)}))
    (listed,) = [c for c in runtime.list_containers() if c.name == "svc"]
    assert ("contract-net",) == listed.networks
    inspected = runtime.inspect_container("svc")
    assert inspected is not None
    assert ("contract-net",) == inspected.networks
    with pytest.raises(RequestRejected):
        runtime.remove_network("contract-net")

    runtime.disconnect_network("contract-net", listed.id)
    assert () == next(c.networks for c in runtime.list_containers() if c.name == "svc")
    runtime.connect_network("contract-net", listed.id, aliases=["alias-2"])
    assert ("contract-net",) == next(
        c.networks for c in runtime.list_containers() if c.name == "svc"
    )
    runtime.remove_container("svc")
    runtime.remove_network(made.id)
    assert "contract-net" not in {n.name for n in runtime.list_networks()}


def test_a_network_that_is_not_there_refuses_the_container(runtime: Runtime) -> None:
    """Creating on a missing network fails, and is not taken for a missing container."""
    with pytest.raises(RequestRejected) as refused:
        runtime.create_container(_request("svc", networks={"nowhere": ()}))
    assert not isinstance(refused.value, NameInUse)
    assert not refused.value.transient
    assert "nowhere" in str(refused.value)
    assert "svc" not in {c.name for c in runtime.list_containers()}


def test_an_image_with_two_tags_is_removed_tag_by_tag(
    runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """By ID Podman wants force (an answer: RequestRejected); by name, one tag goes."""
    second = "localhost/paid-test/second-tag:1"
    if isinstance(runtime, FakeRuntime):
        runtime.tag_image(IMAGE, second)
    else:
        request.getfixturevalue("podman").podman("tag", IMAGE, second)
    try:
        image = runtime.inspect_image(second)
        assert image is not None
        assert {IMAGE, second} <= set(image.tags)

        with pytest.raises(RequestRejected):
            runtime.remove_image(image.id)
        runtime.remove_image(second)

        assert runtime.inspect_image(second) is None
        kept = runtime.inspect_image(IMAGE)
        assert kept is not None
        assert image.id == kept.id  # the other tag keeps the image
    finally:
        with contextlib.suppress(ContainerMissing):
            runtime.remove_image(second)


def test_version_and_host_are_answered(runtime: Runtime) -> None:
    """A version, and the host's storage path; the suite's Podman is rootful."""
    host = runtime.host()

    assert runtime.version()
    assert host.graph_root.startswith("/")
    assert host.rootless is False


def test_secrets_are_made_idempotently_listed_and_removed(runtime: Runtime) -> None:
    """Made twice is made once (a retry); listed with a time; removed; gone is ContainerMissing."""
    runtime.create_secret("paid-contract-s1", b"value")
    runtime.create_secret("paid-contract-s1", b"value")

    listed = runtime.list_secrets()
    assert listed["paid-contract-s1"] > 0
    runtime.remove_secret("paid-contract-s1")
    assert "paid-contract-s1" not in runtime.list_secrets()
    with pytest.raises(ContainerMissing):
        runtime.remove_secret("paid-contract-s1")


def test_volumes_carry_paid_s_labels_a_mountpoint_and_their_users(runtime: Runtime) -> None:
    """Labels (with the instance), a mountpoint, the containers using it; a missing one is None."""
    runtime.create_volume("paid-contract-v1", labels={"paid.managed": "true"})
    runtime.create_container(
        _request("svc", volumes=[VolumeMount(source="paid-contract-v1", destination="/data")])
    )
    try:
        labels_ = runtime.volume_labels("paid-contract-v1")
        assert labels_ is not None
        assert "true" == labels_["paid.managed"]
        assert "default" == labels_["paid.instance"]
        assert runtime.volume_mountpoint("paid-contract-v1").startswith("/")
        assert ["svc"] == [c.name for c in runtime.volume_users("paid-contract-v1")]
        assert runtime.volume_labels("paid-contract-nothing") is None
        with pytest.raises(ContainerMissing):
            runtime.volume_mountpoint("paid-contract-nothing")
    finally:
        runtime.remove_container("svc")


def test_rename_pause_unpause_exec_and_logs(runtime: Runtime) -> None:
    """The operations rollouts, backups and probes use, with the same answers on both sides."""
    runtime.create_container(
        _request("svc", command=["sh", "-c", "echo one; echo two; sleep 3600"])
    )
    runtime.create_container(_request("other"))
    runtime.start_container("svc")
    if isinstance(runtime, FakeRuntime):  # the fake runs nothing: it is told what would happen
        runtime.exec_codes["svc"] = 3
        runtime.logs["svc"] = ["one", "two"]

    assert 3 == runtime.exec_in("svc", ["sh", "-c", "exit 3"], timeout=30)
    assert ["two"] == _eventually(lambda: runtime.logs_tail("svc", lines=1), ["two"])
    runtime.pause_container("svc")
    assert "paused" == _state(runtime, "svc")
    runtime.unpause_container("svc")
    assert "running" == _state(runtime, "svc")
    with pytest.raises(RequestRejected):
        runtime.unpause_container("svc")
    with pytest.raises(NameInUse):
        runtime.rename_container("svc", "other")
    runtime.rename_container("svc", "svc-renamed")
    assert "running" == _state(runtime, "svc-renamed")
    assert _state(runtime, "svc") is None


def _eventually(read: Any, wanted: Any, seconds: float = 10.0) -> Any:
    """What ``read()`` gives once it gives ``wanted`` (a container's output takes a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        got = read()
        if got == wanted or time.monotonic() > deadline:
            return got
        time.sleep(0.1)
