"""Pre-flight says what a rootless Podman cannot do, from what Podman's /info reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from paid.controllers.preflight import preflight
from paid.controllers.rootless import rootless_checks
from paid.runtime.fake import FakeRuntime
from paid.state.checks import Status
from paid.state.podman_host import PodmanHost
from tests.unit.builders import desired, desired_service

IMAGE = "localhost/app:1"


def _state() -> object:
    return desired(
        desired_service("web", image=IMAGE, ports=["80:8080", "8443:443"]),
        desired_service("db", image=IMAGE, resources={"memory": "256Mi"}, pidsLimit=100),
        desired_service("plain", image=IMAGE),
    )


def _shown(checks: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(c.subject, str(c.status), c.reason) for c in checks]


def test_cgroup_v1_low_ports_and_no_subuids() -> None:
    """Port 80 FAILs with the sysctl; limits WARN on cgroup v1; no subuid range WARNs."""
    host = PodmanHost(graph_root="/", rootless=True, cgroup_version="v1", subordinate_uids=0)

    shown = _shown(rootless_checks(_state(), host, port_start=1024))  # type: ignore[arg-type]

    assert [s for s, _, _ in shown] == ["db:resources", "web:0.0.0.0:80:8080/tcp", "subuid"]
    (limits, port, subuid) = shown
    assert "FAIL" == port[1]
    assert "ip_unprivileged_port_start=80" in port[2]
    assert ("WARN", True) == (limits[1], "memory, pids limits are not applied" in limits[2])
    assert "WARN" == subuid[1]
    assert "usermod --add-subuids" in subuid[2]


def test_cgroup_v2_names_the_controllers_not_delegated() -> None:
    """On v2, only the limits whose controller the user lacks are named."""
    host = PodmanHost(
        graph_root="/",
        rootless=True,
        cgroup_version="v2",
        cgroup_controllers=("memory", "cpu"),
        subordinate_uids=65536,
    )

    shown = _shown(rootless_checks(_state(), host, port_start=80))  # type: ignore[arg-type]

    assert [("db:resources", "WARN")] == [(s, st) for s, st, _ in shown]
    assert "the pids cgroup controller is not delegated" in shown[0][2]


@pytest.mark.parametrize("rootless", [True, False])
def test_preflight_asks_only_a_rootless_podman(tmp_path: Path, rootless: bool) -> None:
    """A rootful Podman gets no rootless checks; the host facts come from one /info, cached."""
    runtime = FakeRuntime(images={IMAGE})
    runtime.podman_host = PodmanHost(
        graph_root=str(tmp_path), rootless=rootless, cgroup_version="v1"
    )

    first = preflight(_state(), runtime=runtime, state_dir=str(tmp_path / "state"))  # type: ignore[arg-type]
    preflight(_state(), runtime=runtime, state_dir=str(tmp_path / "state"))  # type: ignore[arg-type]

    rootless_found = [c for c in first if c.check == "rootless"]
    assert bool(rootless_found) == rootless
    assert any(c.status is Status.FAIL for c in rootless_found) == rootless
    assert 1 == [name for name, _ in runtime.calls].count("info")
