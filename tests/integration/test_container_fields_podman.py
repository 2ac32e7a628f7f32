"""The container fields real images need, each observed from inside a real container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import PodmanService, service_doc, write_services

pytestmark = pytest.mark.slow

FIELDS: dict[str, Any] = {
    "user": "1000:1000",
    "groupAdd": ["2000"],
    "workingDir": "/tmp/work",
    "hostname": "app-1",
    "readOnlyRootFilesystem": True,
    "tmpfs": ["/tmp", {"path": "/run/cache", "size": "8Mi"}],
    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    "noNewPrivileges": True,
    "devices": ["/dev/zero"],
    # Podman 4.3 puts nproc at 1048576 when it is not given, above this host's limit.
    "ulimits": {"nofile": {"soft": 512, "hard": 512}, "nproc": 4096},
    "sysctls": {"net.core.somaxconn": "1024"},
    "shmSize": "16m",
    "pidsLimit": 100,
    "extraHosts": ["db.internal:10.1.2.3"],
    "dns": {"servers": ["10.9.9.9"], "search": ["example.test"]},
    "timezone": "Europe/Berlin",
    "annotations": {"team": "payments"},
}


def _paid(podman: PodmanService, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PAID_PODMAN_URL": podman.url,
        "PAID_STATE_DIR": str(state_dir),
        # paid reads the containers.conf Podman reads, as on a host where both see /etc.
        "CONTAINERS_CONF": str(podman.base / "containers.conf"),
    }
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _in(podman: PodmanService, script: str) -> str:
    return podman.podman("exec", "app", "sh", "-c", script).strip()


@pytest.fixture
def app(podman: PodmanService, desired_dir: Path, state_dir: Path) -> dict[str, Any]:
    command = ["sh", "-c", "mkdir -p /tmp/work && exec sleep 3600"]
    write_services(desired_dir, service_doc("app", command=command, **FIELDS))
    result = _paid(podman, state_dir, "apply", str(desired_dir), "--allow-device", "/dev/zero")
    assert 0 == result.returncode, result.stdout + result.stderr
    return podman.inspect("app")


def test_identity_fields(podman: PodmanService, app: dict[str, Any]) -> None:
    """user, groupAdd, workingDir and hostname, as the process sees them."""
    assert "1000" == _in(podman, "id -u")
    assert "2000" in _in(podman, "id -G").split()
    assert "/tmp/work" == _in(podman, "pwd")
    assert "app-1" == _in(podman, "hostname")


def test_filesystem_fields(podman: PodmanService, app: dict[str, Any]) -> None:
    """The root is read-only, the tmpfs mounts are writable, /dev/shm has its size."""
    refused = _in(podman, "touch /root-file 2>&1; echo rc=$?")
    assert "Read-only file system" in refused
    assert refused.endswith("rc=1")
    assert "ok" == _in(podman, "touch /tmp/x /run/cache/y && echo ok")
    assert "tmpfs" in _in(podman, "grep ' /run/cache ' /proc/mounts")
    assert "size=8192k" in _in(podman, "grep ' /run/cache ' /proc/mounts")
    assert "size=16384k" in _in(podman, "grep ' /dev/shm ' /proc/mounts")


def test_security_and_limit_fields(podman: PodmanService, app: dict[str, Any]) -> None:
    """Only NET_BIND_SERVICE (bit 10) is effective; no new privileges; nofile 512; pids 100."""
    assert "0000000000000400" == _in(podman, "grep CapEff /proc/self/status").split()[1]
    assert "1" == _in(podman, "grep NoNewPrivs /proc/self/status").split()[1]
    assert "512" == _in(podman, "ulimit -n")
    assert "1024" == _in(podman, "cat /proc/sys/net/core/somaxconn")
    assert 100 == app["HostConfig"]["PidsLimit"]
    assert ["/dev/zero"] == [d["PathOnHost"] for d in app["HostConfig"]["Devices"]]


def test_name_resolution_and_metadata_fields(podman: PodmanService, app: dict[str, Any]) -> None:
    """/etc/hosts and /etc/resolv.conf carry the extra host and the DNS settings."""
    assert "10.1.2.3" in _in(podman, "grep db.internal /etc/hosts")
    resolv = _in(podman, "cat /etc/resolv.conf")
    assert "nameserver 10.9.9.9" in resolv
    assert "example.test" in resolv
    assert "Europe/Berlin" == app["Config"]["Timezone"]
    assert "payments" == app["Config"]["Annotations"]["team"]


def test_logs_are_bounded_by_default(podman: PodmanService, app: dict[str, Any]) -> None:
    """No logging section: k8s-file capped at 10Mi, so a chatty service cannot fill the disk."""
    log = app["HostConfig"]["LogConfig"]
    assert "k8s-file" == log["Type"]
    assert log["Size"] in ("10MiB", "10.49MB"), log  # 10 * 1024 * 1024 bytes, as Podman shows it


def test_a_device_not_allowed_is_a_validation_error(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Devices are host access: without --allow-device, validate fails and nothing runs."""
    write_services(desired_dir, service_doc("app", devices=["/dev/fuse"]))

    result = _paid(podman, state_dir, "apply", str(desired_dir))

    assert 1 == result.returncode
    assert "spec.devices[0]: device /dev/fuse is host access and not allowed" in result.stderr
    assert [] == json.loads(podman.podman("ps", "-a", "--format", "json") or "[]")


def test_a_non_root_service_writes_its_tmpfs_on_a_read_only_root(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`tmpfs: [/tmp]` is 1777, as `podman run --tmpfs` makes it; mode and owner when given."""
    spec = {
        "user": "1000:1000",
        "readOnlyRootFilesystem": True,
        "tmpfs": ["/tmp", {"path": "/run/app", "mode": "0700", "uid": 1000, "gid": 1000}],
    }
    write_services(desired_dir, service_doc("app", **spec))
    result = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "ok" == _in(podman, "touch /tmp/mine /run/app/mine && echo ok")
    assert "1777 700 1000:1000" == _in(
        podman, "stat -c %a /tmp | tr '\\n' ' '; stat -c '%a %u:%g' /run/app"
    )


def test_nofile_alone_starts_as_compose_files_write_it(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`ulimits: {nofile: N}` alone starts: nproc is filled from the host, not Podman's 1048576."""
    write_services(desired_dir, service_doc("app", ulimits={"nofile": 2048}))
    result = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "2048" == _in(podman, "ulimit -n")
