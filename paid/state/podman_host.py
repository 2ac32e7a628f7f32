"""What Podman says about the host it runs on: the facts pre-flight judges."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PodmanHost:
    """From Podman's /info: storage, and what a rootless Podman can and cannot do."""

    graph_root: str  # where images and containers are stored
    rootless: bool = False
    cgroup_version: str = "v2"  # "v1" or "v2"
    cgroup_controllers: tuple[str, ...] | None = None  # delegated ones; None: not reported
    subordinate_uids: int = 0  # IDs mapped beyond the user's own (rootless), from /etc/subuid

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PodmanHost:
        controllers = data.get("cgroup_controllers")
        return cls(
            graph_root=str(data["graph_root"]),
            rootless=bool(data.get("rootless", False)),
            cgroup_version=str(data.get("cgroup_version", "v2")),
            cgroup_controllers=None if controllers is None else tuple(map(str, controllers)),
            subordinate_uids=int(data.get("subordinate_uids", 0)),
        )
