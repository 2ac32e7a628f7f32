"""What a rootless Podman cannot do for a desired state, said before anything fails."""

from __future__ import annotations

from paid.state.checks import Check, Status
from paid.state.desired import DesiredState
from paid.state.podman_host import PodmanHost
from paid.state.specs import ServiceSpec


def unprivileged_port_start() -> int | None:
    """The lowest port an unprivileged process may bind here (Linux's sysctl), if known."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


LIMITS = ("memory", "cpu", "pids")


def rootless_checks(
    desired: DesiredState, host: PodmanHost, *, port_start: int | None
) -> list[Check]:
    """What a rootless Podman cannot do for this desired state, said before anything fails.

    - Host ports below ``net.ipv4.ip_unprivileged_port_start``: refused (FAIL).
    - Memory, CPU and PID limits: ignored on cgroup v1, and on v2 unless the
      controller is delegated to the user (WARN: the service runs unlimited).
    - No subordinate UID range: images with files of other owners cannot be
      unpacked (WARN).
    """
    out: list[Check] = []
    for svc in desired:
        for port in svc.spec.ports:
            if port_start is not None and port.host_port < port_start:
                out.append(
                    Check(
                        "rootless",
                        f"{svc.name}:{port}",
                        Status.FAIL,
                        f"a rootless Podman cannot publish port {port.host_port} (below "
                        f"net.ipv4.ip_unprivileged_port_start={port_start}): publish one of "
                        f"{port_start} or above (8080:{port.container_port}), or run `sysctl "
                        f"net.ipv4.ip_unprivileged_port_start={port.host_port}` as root",
                    )
                )
        wanted = _limits_of(svc.spec)
        if not wanted:
            continue
        if host.cgroup_version == "v1":
            out.append(
                Check(
                    "rootless",
                    f"{svc.name}:resources",
                    Status.WARN,
                    f"{', '.join(wanted)} limits are not applied by a rootless Podman on cgroup "
                    "v1: the service runs without them (boot with cgroup v2: "
                    "systemd.unified_cgroup_hierarchy=1)",
                )
            )
            continue
        missing = [c for c in wanted if c not in (host.cgroup_controllers or LIMITS)]
        if missing:
            out.append(
                Check(
                    "rootless",
                    f"{svc.name}:resources",
                    Status.WARN,
                    f"the {', '.join(missing)} cgroup controller is not delegated to this user: "
                    "those limits are not applied (systemd: Delegate=memory pids cpu in "
                    "user@.service)",
                )
            )
    if host.subordinate_uids == 0:
        out.append(
            Check(
                "rootless",
                "subuid",
                Status.WARN,
                "no subordinate UID range for this user: images with files of other owners "
                "cannot be unpacked (usermod --add-subuids 100000-165535 --add-subgids "
                "100000-165535 USER, then podman system migrate)",
            )
        )
    return out


def _limits_of(spec: ServiceSpec) -> list[str]:
    wanted = []
    if spec.resources.memory is not None:
        wanted.append("memory")
    if spec.resources.cpus is not None:
        wanted.append("cpu")
    if spec.pids_limit is not None:
        wanted.append("pids")
    return wanted
