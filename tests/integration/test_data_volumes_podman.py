"""Data an image keeps in a declared VOLUME survives every heal, on real Podman.

The image here declares ``VOLUME /data``, as postgres, mariadb, redis and
wordpress images do, and the spec mounts nothing there: the shape that lost
a database's tables on its first crash restart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import IMAGE, PodmanService, run_paid, service_doc, write_services

pytestmark = pytest.mark.slow

VOLUME_IMAGE = "localhost/paid-test/declares-volume:1"
# Appends one row per start, as a database writes on every boot.
WRITER = ["sh", "-c", "echo row >> /data/rows && exec sleep 3600"]


def _paid(podman: PodmanService, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=120)


@pytest.fixture
def volume_image(podman: PodmanService) -> str:
    """The test busybox with ``VOLUME /data`` in its config."""
    if not podman.podman("images", "-q", VOLUME_IMAGE, check=False).strip():
        podman.podman("create", "--name", "volume-image-base", IMAGE, "true")
        podman.podman("commit", "--change", "VOLUME /data", "volume-image-base", VOLUME_IMAGE)
        podman.podman("rm", "volume-image-base")
    return VOLUME_IMAGE


def _rows(podman: PodmanService) -> int:
    return len(podman.podman("exec", "db", "cat", "/data/rows").split())


def _volumes(podman: PodmanService) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(podman.podman("volume", "ls", "--format", "json"))
    return listed


def test_a_crash_heal_keeps_what_the_image_volume_held(
    podman: PodmanService, desired_dir: Path, state_dir: Path, volume_image: str
) -> None:
    """podman kill, then a heal: a new container, the same /data, no orphaned anonymous volume."""
    write_services(desired_dir, service_doc("db", image=volume_image, command=WRITER))
    first = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == first.returncode, first.stdout + first.stderr
    before = podman.inspect("db")["Id"]
    assert 1 == _rows(podman)

    podman.podman("kill", "db")
    healed = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == healed.returncode, healed.stdout + healed.stderr

    assert before != podman.inspect("db")["Id"]  # a fresh container: the writable layer is new
    assert 2 == _rows(podman)  # but /data is the same volume: the first start's row is there
    volumes = _volumes(podman)
    assert 1 == len(volumes), volumes  # one named volume, no anonymous one left behind
    labels = volumes[0]["Labels"]
    assert isinstance(labels, dict)
    assert {"paid.managed": "true", "paid.service": "db", "paid.volume-path": "/data"}.items() <= (
        labels.items()
    )
    mounts = podman.inspect("db")["Mounts"]
    assert [(volumes[0]["Name"], "/data")] == [(m["Name"], m["Destination"]) for m in mounts]


def test_a_rollout_keeps_the_data_volume(
    podman: PodmanService, desired_dir: Path, state_dir: Path, volume_image: str
) -> None:
    """A spec change rolls out a new container that mounts the same data volume."""
    write_services(desired_dir, service_doc("db", image=volume_image, command=WRITER))
    assert 0 == _paid(podman, state_dir, "apply", str(desired_dir)).returncode
    write_services(
        desired_dir, service_doc("db", image=volume_image, command=WRITER, env={"V": "2"})
    )
    rolled = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == rolled.returncode, rolled.stdout + rolled.stderr
    assert "V=2" in podman.podman("exec", "db", "env")
    assert 2 == _rows(podman)


def test_a_spec_mount_at_the_path_is_the_spec_s_choice(
    podman: PodmanService, desired_dir: Path, state_dir: Path, volume_image: str
) -> None:
    """A volume the spec mounts at the declared path is used; paid adds none of its own."""
    spec = {"image": volume_image, "command": WRITER, "volumes": ["mine:/data"]}
    write_services(desired_dir, service_doc("db", **spec))
    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert ["mine"] == [v["Name"] for v in _volumes(podman)]


def test_a_stranger_s_volume_of_the_same_name_is_left_alone(
    podman: PodmanService, desired_dir: Path, state_dir: Path, volume_image: str
) -> None:
    """A volume paid did not make under the data volume's name is refused, never mounted."""
    write_services(desired_dir, service_doc("db", image=volume_image, command=WRITER))
    assert 0 == _paid(podman, state_dir, "apply", str(desired_dir)).returncode
    name = str(_volumes(podman)[0]["Name"])
    podman.podman("rm", "--force", "db")
    podman.podman("volume", "rm", name)
    podman.podman("volume", "create", name)  # someone else's, same name, no labels

    again = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 != again.returncode
    assert f"volume {name} exists and is not paid's" in again.stdout + again.stderr
    assert not podman.podman("ps", "-aq", "--filter", "name=^db$").strip()


def test_a_volume_another_app_uses_is_refused_before_anything_starts(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Someone else's container on `db-data`: pre-flight fails, naming it; nothing is made."""
    podman.podman("run", "-d", "--name", "other-db", "-v", "db-data:/data", IMAGE, "sleep", "600")
    write_services(desired_dir, service_doc("db", volumes=["db-data:/data"]))

    applied = _paid(podman, state_dir, "apply", str(desired_dir))

    assert 0 != applied.returncode
    out = applied.stdout + applied.stderr
    assert "db-data" in out, out
    assert "other-db (not paid's)" in out, out
    assert not podman.podman("ps", "-aq", "--filter", "name=^db$").strip()


def test_another_paid_instance_s_volume_is_refused(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """Two paid instances that both name `shared`: the second is refused at pre-flight."""
    write_services(desired_dir, service_doc("db", volumes=["shared:/data"]))
    first = _paid(podman, state_dir, "apply", str(desired_dir), "--instance", "one")
    assert 0 == first.returncode, first.stdout + first.stderr

    other = tmp_path / "other"
    write_services(other, service_doc("db2", volumes=["shared:/data"]))
    second = _paid(podman, tmp_path / "state2", "apply", str(other), "--instance", "two")

    assert 0 != second.returncode
    assert "db (paid instance one)" in second.stdout + second.stderr


def test_a_second_state_directory_on_one_instance_is_refused(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """Another --state-dir for one instance: apply and run refuse, naming both; nothing moves."""
    write_services(desired_dir, service_doc("web"))
    assert 0 == _paid(podman, state_dir, "apply", str(desired_dir)).returncode
    before = podman.inspect("web")["Id"]
    other = tmp_path / "other-state"

    applied = _paid(podman, other, "apply", str(desired_dir))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(other)}
    run = subprocess.run(
        [sys.executable, "-m", "paid", "run", str(desired_dir), "--listen", "127.0.0.1:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    for result in (applied, run):
        assert 1 == result.returncode, result.stdout + result.stderr
        text = result.stdout + result.stderr
        assert f"managed from the state directory {os.path.realpath(state_dir)}" in text, text
        assert "Traceback" not in text
    assert before == podman.inspect("web")["Id"]
    shutil.rmtree(state_dir)  # that state directory gone: its containers are adopted
    assert 0 == _paid(podman, other, "apply", str(desired_dir)).returncode
