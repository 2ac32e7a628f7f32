"""An in-memory runtime for fast unit tests, shipped with paid.

It keeps containers as ``ActualContainer`` values and records every call,
so a test can count the mutating ones. It is a model of Podman's
behaviour as paid relies on it, not a mock: tests drive it through the
same ``Runtime`` protocol, and ``tests/integration/test_runtime_contract.py``
runs one suite against it and against real Podman. Modelled:

- names are unique (``NameInUse``); a missing image fails create;
- a container runs its image's ID; host ports are published on start and
  one taken by a running container refuses the start;
- Podman's refusals: exec in, kill or pause a container that is not
  running, unpause one that is not paused;
- networks: a create on a network that does not exist is refused; a
  network with containers on it cannot be removed; a container on the
  host's network is on none;
- the event stream (``events()``): died, remove, stop, kill, pause,
  rename, as Podman emits them, including for the test helpers that
  break containers behind paid's back.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from paid.runtime.base import (
    BuildRequest,
    ContainerMissing,
    ContainerRequest,
    ImageUnavailable,
    NameInUse,
    RequestRejected,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.state.actual import ActualContainer
from paid.state.images import LocalImage
from paid.state.labels import DEFAULT_INSTANCE, INSTANCE
from paid.state.networks import ActualNetwork, NetworkSpec
from paid.state.podman_host import PodmanHost

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
        "build",
        "create_network",
        "remove_network",
        "remove_image",
        "connect_network",
        "disconnect_network",
    }
)


class FakeEventStream:
    """Events as the fake emits them, until ``close()``."""

    def __init__(self) -> None:
        self._events: queue.Queue[RuntimeEvent | None] = queue.Queue()

    def put(self, event: RuntimeEvent) -> None:
        self._events.put(event)

    def __iter__(self) -> Iterator[RuntimeEvent]:
        while True:
            event = self._events.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        self._events.put(None)


def image_id(image: str) -> str:
    """The fake's image ID for a reference: stable, like a digest."""
    return hashlib.sha256(image.encode()).hexdigest()


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
    volume_label_sets: dict[str, dict[str, str]] = field(default_factory=dict)
    image_volumes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # image -> VOLUMEs
    failing_builds: set[str] = field(default_factory=set)  # tags whose build fails
    streams: list[FakeEventStream] = field(default_factory=list)
    same_as: dict[str, str] = field(default_factory=dict)  # a second tag -> the image it names
    instance: str = DEFAULT_INSTANCE
    podman_host: PodmanHost = field(default_factory=lambda: PodmanHost(graph_root="/"))
    networks: dict[str, ActualNetwork] = field(default_factory=dict)
    network_specs: dict[str, NetworkSpec] = field(default_factory=dict)
    aliases: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # net, ctr
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def mutating_calls(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in MUTATING_CALLS]

    def _call(self, op: str, subject: str = "") -> None:
        if not self.available:
            raise RuntimeUnavailable("fake runtime is down")
        self.calls.append((op, subject))

    def events(self) -> FakeEventStream:
        self._call("events")
        stream = FakeEventStream()
        self.streams.append(stream)
        return stream

    def _emit(self, action: str, container: ActualContainer) -> None:
        for stream in self.streams:
            stream.put(RuntimeEvent(action, container.name, dict(container.labels)))

    def _name(self, ref: str) -> str:
        """Podman takes a container's ID wherever it takes its name."""
        if ref in self.containers:
            return ref
        return next((c.name for c in self.containers.values() if c.id == ref), ref)

    def inspect_container(self, name: str) -> ActualContainer | None:
        self._call("inspect", name)
        found = self.containers.get(self._name(name))
        return None if found is None else found.seen_by(self.instance)

    def _get(self, name: str) -> ActualContainer:
        try:
            return self.containers[name]
        except KeyError:
            raise ContainerMissing(f"no container named {name}") from None

    def list_containers(self) -> list[ActualContainer]:
        self._call("list")
        listed = sorted(self.containers.values(), key=lambda c: c.name)
        return [c.seen_by(self.instance) for c in listed]

    def version(self) -> str:
        self._call("version")
        return "fake"

    def host(self) -> PodmanHost:
        self._call("info")
        return self.podman_host

    def image_present(self, image: str) -> bool:
        self._call("image_exists", image)
        return image in self.images or image in {self._id(i) for i in self.images}

    def pull_image(self, image: str, *, always: bool = False) -> None:
        self._call("pull", image + (" (always)" if always else ""))
        if image not in self.pullable:
            raise ImageUnavailable(image, "manifest unknown")
        self.images.add(image)

    def build_image(self, request: BuildRequest) -> list[str]:
        self._call("build", request.tag)
        if request.tag in self.failing_builds:
            raise ImageUnavailable(
                request.tag, "the build failed: RUN false", reason="build_failed"
            )
        self.images.add(request.tag)
        return [f"STEP 1/1: built {request.tag}"]

    def inspect_image(self, image: str) -> LocalImage | None:
        self._call("inspect_image", image)
        for ref in sorted(self.images):
            if image in (ref, self._id(ref)):
                return self._local(ref)
        return None

    def list_images(self) -> list[LocalImage]:
        self._call("list_images")
        first: dict[str, str] = {}
        for ref in sorted(self.images):
            first.setdefault(self._id(ref), ref)
        return [self._local(ref) for ref in first.values()]

    def remove_image(self, image_id_: str) -> None:
        """By ID: the image, unless it has several tags (Podman asks for force); by name:
        that tag, and the image with its last one."""
        self._call("remove_image", image_id_)
        if image_id_ in self.images:
            refs, the_id = [image_id_], self._id(image_id_)
        else:
            refs, the_id = [r for r in self.images if self._id(r) == image_id_], image_id_
        if not refs:
            raise ContainerMissing(f"image {image_id_[:12]} is gone")
        last = all(self._id(r) != the_id for r in self.images - set(refs))
        if last and any(c.image_id == the_id for c in self.containers.values()):
            raise RequestRejected(f"image {image_id_[:12]} is in use by a container")
        tags = [r for r in refs if "@" not in r]
        if len(tags) > 1:
            raise RequestRejected(
                f"remove image {image_id_[:12]}: unable to delete image by ID with more than "
                f"one tag ({tags}): please force removal"
            )
        self.images.difference_update(refs)

    def tag_image(self, image: str, tag: str) -> None:
        """The fake's ``podman tag``: ``tag`` names the same image as ``image``."""
        self.images.add(tag)
        self.same_as[tag] = self.same_as.get(image, image)

    def _id(self, ref: str) -> str:
        return image_id(self.same_as.get(ref, ref))

    def _local(self, ref: str) -> LocalImage:
        """A reference ``name@digest`` has that digest; others, the fake's digest of the name."""
        name, _, digest = ref.partition("@")
        digests = (ref,) if digest else (f"{name.rsplit(':', 1)[0]}@sha256:{self._id(ref)}",)
        same = sorted(r for r in self.images if "@" not in r and self._id(r) == self._id(ref))
        return LocalImage(
            id=self._id(ref),
            tags=() if digest else tuple(same),
            repo_digests=digests,
            volumes=self.image_volumes.get(ref, ()),
        )

    def create_container(self, request: ContainerRequest) -> str:
        self._call("create", request.name)
        if request.image not in self.images and request.image not in map(self._id, self.images):
            raise ImageUnavailable(request.image, "image not known")
        if request.name in self.containers:
            raise NameInUse(f"the container name {request.name!r} is already in use")
        for network in request.networks:
            if network not in self.networks:
                raise RequestRejected(f"unable to find network with name or ID {network}")
        container_id = f"{next(self._ids):064x}"
        self.containers[request.name] = ActualContainer(
            id=container_id,
            name=request.name,
            image=request.image,
            state="created",
            labels={**request.labels, INSTANCE: self.instance},
            image_id=self._id(request.image),
            networks=() if request.host_network else tuple(sorted(request.networks)),
            created_at=time.time(),
        )
        for network, aliases in request.networks.items():
            self.aliases[(network, container_id)] = tuple(aliases)
        self.requests[request.name] = request
        return container_id

    def start_container(self, name: str) -> None:
        self._call("start", name)
        name = self._name(name)
        container = self._get(name)
        if container.state == "running":
            return
        ports = tuple(self.requests[name].ports) if name in self.requests else ()
        for other in self.containers.values():
            if other.name != name and other.state == "running":
                for port in ports:
                    if any(p.overlaps(port) for p in other.published):
                        raise RequestRejected(
                            f"start {name}: cannot listen on the TCP port: listen tcp4 "
                            f"{port.host_ip}:{port.host_port}: bind: address already in use"
                        )
        self._set(name, state="running", exit_code=0, published=ports, started_at=time.time())

    def unpause_container(self, name: str) -> None:
        self._call("unpause", name)
        name = self._name(name)
        if self._get(name).state != "paused":
            raise RequestRejected(f"unpause {name}: container is not paused")
        self._set(name, state="running")

    def stop_container(self, name: str, *, timeout: int) -> None:
        self._call("stop", name)
        name = self._name(name)
        container = self._get(name)
        if container.state in ("running", "paused"):
            self._set(name, state="exited", exit_code=143, published=())
            self._emit("died", container)
            self._emit("stop", container)

    def remove_container(self, name: str) -> None:
        self._call("remove", name)
        name = self._name(name)
        container = self._get(name)
        del self.containers[name]
        self.requests.pop(name, None)
        self._emit("remove", container)

    def rename_container(self, name: str, new_name: str) -> None:
        self._call("rename", name)
        name = self._name(name)
        if new_name in self.containers:
            raise NameInUse(f"the container name {new_name!r} is already in use")
        container = self.containers.pop(self._get(name).name)
        self.containers[new_name] = replace(container, name=new_name)
        if name in self.requests:
            self.requests[new_name] = self.requests.pop(name)
        self._emit("rename", self.containers[new_name])

    def container_address(self, name: str) -> str | None:
        self._call("inspect", name)
        name = self._name(name)
        self._get(name)
        return self.addresses.get(name)

    def exec_in(self, name: str, command: Sequence[str], *, timeout: float) -> int:
        self._call("exec", name)
        name = self._name(name)
        if self._get(name).state != "running":
            raise RuntimeFailure(f"exec in {name}: container is not running")
        return self.exec_codes.get(name, 0)

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        self._call("logs", name)
        name = self._name(name)
        self._get(name)
        return self.logs.get(name, [])[-lines:]

    def kill_container(self, name: str, *, signal: str = "SIGKILL") -> None:
        self._call("kill", name)
        name = self._name(name)
        container = self._get(name)
        if container.state != "running":
            raise RequestRejected(f"kill {name}: can only kill running containers")
        self._set(name, state="exited", exit_code=137, published=())
        self._emit("kill", container)
        self._emit("died", container)

    def pause_container(self, name: str) -> None:
        self._call("pause", name)
        name = self._name(name)
        if self._get(name).state != "running":
            raise RequestRejected(f"pause {name}: container is not running")
        self._set(name, state="paused")
        self._emit("pause", self._get(name))

    def volume_mountpoint(self, name: str) -> str:
        self._call("volume", name)
        try:
            return self.volumes[name]
        except KeyError:
            raise ContainerMissing(f"no volume named {name}") from None

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        self._call("create_volume", name)
        self.volumes.setdefault(name, f"/fake/volumes/{name}/_data")
        owned = {**labels, INSTANCE: self.instance} if labels is not None else {}
        self.volume_label_sets.setdefault(name, owned)

    def volume_users(self, name: str) -> list[ActualContainer]:
        self._call("volume_users", name)
        return [
            c.seen_by(self.instance)
            for n, c in sorted(self.containers.items())
            if n in self.requests and any(v.source == name for v in self.requests[n].volumes)
        ]

    def volume_labels(self, name: str) -> dict[str, str] | None:
        self._call("volume_labels", name)
        if name not in self.volumes:
            return None
        return dict(self.volume_label_sets.get(name, {}))

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

    def list_networks(self) -> list[ActualNetwork]:
        self._call("list_networks")
        return [self.networks[n].seen_by(self.instance) for n in sorted(self.networks)]

    def create_network(self, name: str, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        self._call("create_network", name)
        if name in self.networks:
            raise RequestRejected(f"network name {name} already used: network already exists")
        network_id = f"{next(self._ids):064x}"
        self.networks[name] = ActualNetwork(network_id, name, {**labels, INSTANCE: self.instance})
        self.network_specs[name] = spec
        return network_id

    def _network(self, ref: str) -> str:
        name = next((n.name for n in self.networks.values() if ref in (n.name, n.id)), None)
        if name is None:
            raise ContainerMissing(f"unable to find network with name or ID {ref}")
        return name

    def remove_network(self, name: str) -> None:
        self._call("remove_network", name)
        name = self._network(name)
        users = [c.name for c in self.containers.values() if name in (c.networks or ())]
        if users:
            raise RequestRejected(f'"{name}" has associated containers with it: {users}')
        del self.networks[name]

    def connect_network(
        self,
        network: str,
        container: str,
        *,
        aliases: Sequence[str],
        addresses: Sequence[str] = (),
    ) -> None:
        self._call("connect_network", container)
        network = self._network(network)
        name = self._name(container)
        found = self._get(name)
        if network in (found.networks or ()):
            raise RequestRejected(f"container {name} is already connected to network {network}")
        self._set(name, networks=tuple(sorted({*(found.networks or ()), network})))
        self.aliases[(network, found.id)] = tuple(aliases)

    def disconnect_network(self, network: str, container: str) -> None:
        self._call("disconnect_network", container)
        network = self._network(network)
        name = self._name(container)
        found = self._get(name)
        if network not in (found.networks or ()):
            raise RequestRejected(f"container {name} is not connected to network {network}")
        self._set(name, networks=tuple(n for n in found.networks or () if n != network))
        self.aliases.pop((network, found.id), None)

    # -- test helpers: things that happen to containers behind paid's back --

    def add(self, container: ActualContainer) -> None:
        self.containers[container.name] = container

    def add_network(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """A network made by someone: paid's when ``labels`` say so."""
        network_id = f"{next(self._ids):064x}"
        self.networks[name] = ActualNetwork(network_id, name, dict(labels or {}))
        self.network_specs[name] = NetworkSpec()

    def crash(self, name: str, exit_code: int = 1) -> None:
        self._set(name, state="exited", exit_code=exit_code, published=())
        self._emit("died", self._get(name))

    def vanish(self, name: str) -> None:
        """``podman rm -f`` behind paid's back."""
        container = self._get(name)
        del self.containers[name]
        self._emit("remove", container)

    def _set(self, name: str, **changes: object) -> None:
        self.containers[name] = replace(self._get(name), **changes)  # type: ignore[arg-type]
