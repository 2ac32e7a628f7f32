"""An in-memory runtime for fast unit tests, shipped with paid.

It keeps containers as ``ActualContainer`` values and records every call,
so a test can count the mutating ones. It is a model of Podman's
behaviour as paid relies on it (names are unique, a missing image fails
create), not a mock: tests drive it through the same ``Runtime`` protocol.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from paid.runtime.base import (
    ContainerMissing,
    ContainerRequest,
    ImageUnavailable,
    NameInUse,
    RuntimeUnavailable,
)
from paid.state.actual import ActualContainer

MUTATING_CALLS = frozenset(
    {
        "pull",
        "create",
        "start",
        "unpause",
        "stop",
        "remove",
        "rename",
        "create_secret",
        "remove_secret",
        "pause",
        "kill",
        "create_volume",
    }
)


@dataclass
class FakeRuntime:
    images: set[str] = field(default_factory=set)
    pullable: set[str] = field(default_factory=set)
    containers: dict[str, ActualContainer] = field(default_factory=dict)
    requests: dict[str, ContainerRequest] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    available: bool = True
    addresses: dict[str, str] = field(default_factory=dict)
    exec_codes: dict[str, int] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    secrets: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # value, created
    volumes: dict[str, str] = field(default_factory=dict)  # name -> a directory
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def mutating_calls(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in MUTATING_CALLS]

    def _call(self, op: str, subject: str = "") -> None:
        if not self.available:
            raise RuntimeUnavailable("fake runtime is down")
        self.calls.append((op, subject))

    def _get(self, name: str) -> ActualContainer:
        try:
            return self.containers[name]
        except KeyError:
            raise ContainerMissing(f"no container named {name}") from None

    def list_containers(self) -> list[ActualContainer]:
        self._call("list")
        return sorted(self.containers.values(), key=lambda c: c.name)

    def version(self) -> str:
        self._call("version")
        return "fake"

    def storage_path(self) -> str:
        self._call("info")
        return "/"

    def image_present(self, image: str) -> bool:
        self._call("image_exists", image)
        return image in self.images

    def pull_image(self, image: str) -> None:
        self._call("pull", image)
        if image not in self.pullable:
            raise ImageUnavailable(image, "manifest unknown")
        self.images.add(image)

    def create_container(self, request: ContainerRequest) -> str:
        self._call("create", request.name)
        if request.image not in self.images:
            raise ImageUnavailable(request.image, "image not known")
        if request.name in self.containers:
            raise NameInUse(f"the container name {request.name!r} is already in use")
        container_id = f"{next(self._ids):064x}"
        self.containers[request.name] = ActualContainer(
            id=container_id,
            name=request.name,
            image=request.image,
            state="created",
            labels=dict(request.labels),
        )
        self.requests[request.name] = request
        return container_id

    def start_container(self, name: str) -> None:
        self._call("start", name)
        self._set(name, state="running", exit_code=0)

    def unpause_container(self, name: str) -> None:
        self._call("unpause", name)
        self._set(name, state="running")

    def stop_container(self, name: str, *, timeout: int) -> None:
        self._call("stop", name)
        container = self._get(name)
        if container.state == "running":
            self._set(name, state="exited", exit_code=143)

    def remove_container(self, name: str) -> None:
        self._call("remove", name)
        self._get(name)
        del self.containers[name]
        self.requests.pop(name, None)

    def rename_container(self, name: str, new_name: str) -> None:
        self._call("rename", name)
        if new_name in self.containers:
            raise NameInUse(f"the container name {new_name!r} is already in use")
        container = self.containers.pop(self._get(name).name)
        self.containers[new_name] = replace(container, name=new_name)
        if name in self.requests:
            self.requests[new_name] = self.requests.pop(name)

    def container_address(self, name: str) -> str | None:
        self._call("inspect", name)
        self._get(name)
        return self.addresses.get(name)

    def exec_in(self, name: str, command: Sequence[str], *, timeout: float) -> int:
        self._call("exec", name)
        self._get(name)
        return self.exec_codes.get(name, 0)

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        self._call("logs", name)
        self._get(name)
        return self.logs.get(name, [])[-lines:]

    def kill_container(self, name: str, *, signal: str = "SIGKILL") -> None:
        self._call("kill", name)
        self._set(name, state="exited", exit_code=137)

    def pause_container(self, name: str) -> None:
        self._call("pause", name)
        self._set(name, state="paused")

    def volume_mountpoint(self, name: str) -> str:
        self._call("volume", name)
        try:
            return self.volumes[name]
        except KeyError:
            raise ContainerMissing(f"no volume named {name}") from None

    def create_volume(self, name: str) -> None:
        self._call("create_volume", name)
        self.volumes.setdefault(name, f"/fake/volumes/{name}/_data")

    def list_secrets(self) -> dict[str, float]:
        self._call("list_secrets")
        return {name: created for name, (_, created) in self.secrets.items()}

    def create_secret(self, name: str, value: bytes) -> None:
        self._call("create_secret", name)
        self.secrets.setdefault(name, (value, time.time()))

    def remove_secret(self, name: str) -> None:
        self._call("remove_secret", name)
        if self.secrets.pop(name, None) is None:
            raise ContainerMissing(f"no secret named {name}")

    # -- test helpers: things that happen to containers behind paid's back --

    def add(self, container: ActualContainer) -> None:
        self.containers[container.name] = container

    def crash(self, name: str, exit_code: int = 1) -> None:
        self._set(name, state="exited", exit_code=exit_code)

    def _set(self, name: str, **changes: object) -> None:
        self.containers[name] = replace(self._get(name), **changes)  # type: ignore[arg-type]
