"""An in-memory runtime for fast unit tests, shipped with paid.

It keeps containers as ``ActualContainer`` values and records every call,
so a test can count the mutating ones. It is a model of Podman's
behaviour as paid relies on it (names are unique, a missing image fails
create), not a mock: tests drive it through the same ``Runtime`` protocol.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from paid.runtime.base import (
    ContainerMissing,
    ContainerRequest,
    ImageUnavailable,
    RequestRejected,
    RuntimeUnavailable,
)
from paid.state.actual import ActualContainer

MUTATING_CALLS = frozenset({"pull", "create", "start", "unpause", "stop", "remove"})


@dataclass
class FakeRuntime:
    images: set[str] = field(default_factory=set)
    pullable: set[str] = field(default_factory=set)
    containers: dict[str, ActualContainer] = field(default_factory=dict)
    requests: dict[str, ContainerRequest] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    available: bool = True
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
            raise RequestRejected(f"the container name {request.name!r} is already in use")
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

    # -- test helpers: things that happen to containers behind paid's back --

    def add(self, container: ActualContainer) -> None:
        self.containers[container.name] = container

    def crash(self, name: str, exit_code: int = 1) -> None:
        self._set(name, state="exited", exit_code=exit_code)

    def _set(self, name: str, **changes: object) -> None:
        self.containers[name] = replace(self._get(name), **changes)  # type: ignore[arg-type]
