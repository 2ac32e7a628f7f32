"""What ``paid status`` says about each service, computed from both sides.

Pure: desired state, actual containers and known revision numbers in;
one ``ServiceStatus`` per service out, sorted by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from paid.state import actual as states
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredState
from paid.state.shorthands import PortMapping


class Phase(StrEnum):
    RUNNING = "Running"  # the desired revision runs
    STOPPED = "Stopped"  # the desired revision exists but does not run
    PENDING = "Pending"  # desired, no container yet
    DRIFTED = "Drifted"  # a managed container of another spec holds the name
    CONFLICT = "Conflict"  # an unmanaged container holds the name
    ORPHAN = "Orphan"  # managed, no longer desired
    UNKNOWN = "Unknown"  # no desired state to compare with
    DISABLED = "Disabled"  # enabled: false — stopped on purpose


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    phase: Phase
    desired: bool
    state: str | None  # Podman's container state
    image: str | None  # what runs
    desired_image: str | None
    running_revision: int | None
    desired_revision: int | None
    ports: tuple[str, ...] = ()  # as published: "0.0.0.0:8080->80/tcp"
    created_at: float | None = None  # of the container that holds the name
    started_at: float | None = None
    restarts: int = 0  # paid's starts and restarts of that container

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["phase"] = str(self.phase)
        return {_camel(k): v for k, v in out.items()}


def service_statuses(
    desired: DesiredState | None,
    actual: Iterable[ActualContainer],
    *,
    revisions: Mapping[str, int] | None = None,
    restarts: Mapping[str, int] | None = None,
) -> list[ServiceStatus]:
    """``revisions`` maps a service to the revision number of its desired spec.

    ``restarts`` maps a service to how often paid started or restarted
    the container now holding its name (``restarts_since`` of the store).
    """
    by_name = {c.name: c for c in actual}
    revisions = revisions or {}
    restarts = restarts or {}
    names = set(desired.services if desired else ()) | {n for n, c in by_name.items() if c.managed}
    out: list[ServiceStatus] = []
    for name in sorted(names):
        container = by_name.get(name)
        service = desired.services.get(name) if desired else None  # type: ignore[call-overload]
        if desired is None:
            phase = Phase.UNKNOWN
        elif service is None:
            phase = Phase.ORPHAN
        elif not service.spec.enabled:
            phase = Phase.DISABLED
        elif container is None:
            phase = Phase.PENDING
        elif not container.managed:
            phase = Phase.CONFLICT
        elif container.spec_hash != service.spec_hash:
            phase = Phase.DRIFTED
        elif container.state == states.RUNNING:
            phase = Phase.RUNNING
        else:
            phase = Phase.STOPPED
        out.append(
            ServiceStatus(
                name=name,
                phase=phase,
                desired=service is not None,
                state=container.state if container else None,
                image=container.image if container else None,
                desired_image=service.spec.image if service else None,
                running_revision=container.revision if container and container.managed else None,
                desired_revision=revisions.get(name),
                ports=tuple(_port(p) for p in container.published) if container else (),
                created_at=container.created_at if container else None,
                started_at=container.started_at if container else None,
                restarts=restarts.get(name, 0),
            )
        )
    return out


def _port(mapping: PortMapping) -> str:
    ip = f"[{mapping.host_ip}]" if ":" in mapping.host_ip else mapping.host_ip
    return f"{ip}:{mapping.host_port}->{mapping.container_port}/{mapping.protocol}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
