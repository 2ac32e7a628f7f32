"""Images from a real registry: Debian's docker-registry on loopback, and the pull policies.

The suite's Podman reaches the registry through its own registries.conf
(plain HTTP on 127.0.0.1). A moved tag is made by pushing a second,
different image under the same name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paid.cli import main
from tests.harness import (
    IMAGE,
    MUTATING_EVENTS,
    PodmanService,
    Registry,
    free_port,
    service_doc,
    use_registry,
    write_services,
)


@pytest.fixture(scope="module")
def registry(
    podman_session: PodmanService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    started = Registry.start(tmp_path_factory.mktemp("registry"))
    use_registry(podman_session, started)
    try:
        yield started
    finally:
        started.stop()


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def push(podman: PodmanService, local: str, remote: str) -> str:
    """Push ``local`` as ``remote``; the image ID pushed."""
    podman.podman("push", "--tls-verify=false", local, remote)
    return podman.podman("image", "inspect", "--format", "{{.Id}}", local).strip()


def other_image(podman: PodmanService, tag: str) -> str:
    """A second image, different from IMAGE by one file."""
    podman.podman("rm", "--force", "--time", "0", "make-other", check=False)
    podman.podman("run", "--name", "make-other", IMAGE, "sh", "-c", f"echo {tag} > /edition")
    podman.podman("commit", "--quiet", "make-other", tag)
    podman.podman("rm", "--force", "--time", "0", "make-other")
    return tag


def test_always_fetches_a_moved_tag_at_the_next_create(
    registry: Registry, podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Always: the tag's new image is pulled before the container is made again."""
    remote = f"{registry.host}/paid-test/app:stable"
    first = push(podman, IMAGE, remote)
    write_services(desired_dir, service_doc("web", image=remote, imagePullPolicy="Always"))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert first == podman.inspect("web")["Image"]

    second = push(podman, other_image(podman, "localhost/paid-test/other:2"), remote)
    podman.podman("rm", "--force", "--time", "0", "web")  # the next create
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert second != first
    assert second == podman.inspect("web")["Image"]
    assert "localhost/paid-test/other:2\n" == podman.podman("exec", "web", "cat", "/edition")


def test_if_not_present_keeps_the_image_it_has(
    registry: Registry, podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """The default: a present image is used as it is, though its tag moved in the registry."""
    remote = f"{registry.host}/paid-test/app:pinned"
    first = push(podman, IMAGE, remote)
    podman.podman("pull", "--tls-verify=false", remote)
    write_services(desired_dir, service_doc("web", image=remote))
    push(podman, other_image(podman, "localhost/paid-test/other:3"), remote)

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert first == podman.inspect("web")["Image"]


def test_never_and_failed_pulls_say_why_and_touch_nothing(
    registry: Registry, podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """Never with an absent image, a missing tag, a registry that is not there: clear reasons."""
    write_services(desired_dir, service_doc("web"))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    running = podman.inspect("web")["Id"]
    cases = {
        f"{registry.host}/paid-test/never:1": ("Never", "it is not on this host"),
        f"{registry.host}/paid-test/missing:1": ("IfNotPresent", "has no such image or tag"),
        f"127.0.0.1:{free_port()}/paid-test/app:1": ("IfNotPresent", "cannot be reached"),
    }
    for image, (policy, words) in cases.items():
        write_services(desired_dir, service_doc("web", image=image, imagePullPolicy=policy))
        mark = podman.event_mark()
        capsys.readouterr()

        assert 1 == paid(podman, state_dir, "apply", str(desired_dir))

        said = capsys.readouterr()
        assert words in said.out + said.err, (image, said.out + said.err)
        touched = [e for e in podman.container_events_since(mark) if e[0] in MUTATING_EVENTS]
        assert [] == touched, image  # the running container was never stopped
        assert running == podman.inspect("web")["Id"]


def test_a_rollback_runs_the_image_its_revision_ran_though_the_tag_moved(
    registry: Registry, podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """Revision 1 ran image A of app:stable; the tag moved to B; rollback to 1 runs A again."""
    remote = f"{registry.host}/paid-test/app:moving"
    first = push(podman, IMAGE, remote)
    write_services(desired_dir, service_doc("web", image=remote, imagePullPolicy="Always"))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    second = push(podman, other_image(podman, "localhost/paid-test/other:4"), remote)
    write_services(
        desired_dir,
        service_doc("web", image=remote, imagePullPolicy="Always", env={"EDITION": "2"}),
    )
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert second == podman.inspect("web")["Image"]

    assert 0 == paid(podman, state_dir, "rollback", "web", str(desired_dir), "--to-revision", "1")
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert first == podman.inspect("web")["Image"]
    assert "1" == podman.inspect("web")["Config"]["Labels"]["paid.revision"]
    capsys.readouterr()
    assert 0 == paid(podman, state_dir, "history", "web", "--output", "json")
    recorded = {
        r["revision"]: r["imageId"] for r in json.loads(capsys.readouterr().out)["revisions"]
    }
    assert (first, second) == (recorded[1], recorded[2])
