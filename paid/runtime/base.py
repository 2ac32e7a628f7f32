"""What paid needs from a container runtime, and how it fails.

Upper layers see only these types. Podman's own exceptions are translated
into them in ``paid.runtime.podman`` and never travel further.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from paid.state.actual import ActualContainer
from paid.state.configs import ConfigContent
from paid.state.container_fields import TmpfsMount
from paid.state.images import LocalImage
from paid.state.networks import ActualNetwork, NetworkSpec
from paid.state.podman_host import PodmanHost
from paid.state.secrets import SecretMount
from paid.state.specs import PortMapping, VolumeMount


class RuntimeFailure(Exception):
    """A runtime operation failed. ``transient`` says whether retrying may help."""

    transient: bool = False


class RuntimeUnavailable(RuntimeFailure):
    """The runtime cannot be reached (socket missing, refused, timed out)."""

    transient = True


class ImageUnavailable(RuntimeFailure):
    """The image is neither present nor pullable; ``reason`` says which way.

    ``not_found`` (the registry has no such image or tag), ``unauthorized``
    (the registry wants credentials, or others), ``unreachable`` (no
    answer: transient, retried), ``absent`` (not on the host, and paid may
    not pull it), ``build_failed`` (``spec.build`` did not build), or
    ``failed`` (anything else).
    """

    def __init__(self, image: str, detail: str, *, reason: str | None = None) -> None:
        self.reason = reason or pull_failure(detail)
        words = {
            "not_found": "the registry has no such image or tag",
            "unauthorized": "the registry refused the credentials (see --authfile)",
            "unreachable": "the registry cannot be reached",
            "absent": "it is not on this host",
        }.get(self.reason)
        what = f"{words}: {detail}" if words else detail
        if self.reason == "build_failed":
            super().__init__(f"image {image} could not be built: {detail}")
        else:
            super().__init__(f"image {image} is not present and could not be pulled: {what}")
        self.image = image
        self.transient = self.reason == "unreachable"


_PULL_FAILURES = (
    ("unauthorized", ("unauthorized", "authentication required", "denied", "http 401")),
    ("not_found", ("manifest unknown", "name unknown", "not found", "http 404", "image not known")),
    (
        "unreachable",
        ("connection refused", "no such host", "i/o timeout", "dial tcp", "network is unreachable",
         "tls handshake", "connection reset", "timeout"),
    ),
)  # fmt: skip


_STATUS = re.compile(r"(?<![\w:./-])(40[14])(?![\w:.])")


def pull_failure(detail: str) -> str:
    """Podman's pull error, as one of ``ImageUnavailable``'s reasons."""
    # A status code is a word of its own ("status 401", "401 Unauthorized"), never part of
    # a port or an address (a registry at 127.0.0.1:40163 is not an authentication error).
    text = _STATUS.sub(r"http \1", detail.lower())
    for reason, words in _PULL_FAILURES:
        if any(w in text for w in words):
            return reason
    return "failed"


class ContainerMissing(RuntimeFailure):
    """The container named in the request does not exist (any more)."""


class RequestRejected(RuntimeFailure):
    """The runtime refused the request (bad spec, name or port in use, ...)."""


class NameInUse(RequestRejected):
    """Another container already holds the name."""


class ObjectFault(RuntimeFailure):
    """Podman answered, about one object's state: that object is broken, Podman is not.

    ``container not known`` from Podman's store, ``no such file or
    directory`` under one container's storage, an OCI runtime refusing one
    container's settings. Retried for that service with back-off; never
    counted by the breaker, which is for Podman itself failing.
    """


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    """The container fields beyond the basics; defaults are Podman's own, logs excepted."""

    user: str | None = None
    group_add: Sequence[str] = ()
    working_dir: str | None = None
    hostname: str | None = None
    read_only: bool = False
    tmpfs: Sequence[TmpfsMount] = ()
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    security_opt: Sequence[str] = ()
    devices: Sequence[str] = ()
    ulimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # soft, hard
    sysctls: Mapping[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    pids_limit: int | None = None
    log_driver: str = "k8s-file"
    log_max_size: int | None = None
    extra_hosts: Sequence[str] = ()  # name:ip
    dns_servers: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    userns: str | None = None
    timezone: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConfigBind:
    """A config's kept copy (``host_path``), bound read-only at its target."""

    content: ConfigContent
    host_path: str

    @property
    def target(self) -> str:
        return self.content.target


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """An image to build: a context directory on this host, and the tag it gets."""

    context: str
    containerfile: str  # relative to the context
    tag: str
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerRequest:
    """Everything needed to create one container."""

    name: str
    image: str
    labels: Mapping[str, str]
    entrypoint: Sequence[str] | None = None
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[PortMapping] = ()
    volumes: Sequence[VolumeMount] = ()
    memory_bytes: int | None = None
    cpus: float | None = None
    stop_signal: str | None = None
    stop_timeout: int = 10
    init: bool = False
    secrets: Sequence[SecretMount] = ()
    options: ContainerOptions = field(default_factory=ContainerOptions)
    networks: Mapping[str, Sequence[str]] = field(default_factory=dict)  # name -> aliases
    addresses: Mapping[str, Sequence[str]] = field(default_factory=dict)  # name -> fixed IPs
    host_network: bool = False
    configs: Sequence[ConfigBind] = ()
    pull_policy: str = "IfNotPresent"  # IfNotPresent | Always | Never
    exact_image: bool = False  # ``image`` is an image ID a revision ran: never pulled
    build: BuildRequest | None = None  # ``image`` is built from this when it is not here


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """Something happened to a container. Says *which*, never what to do."""

    action: str  # Podman's event status: died, oom, remove, health_status, ...
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    health: str | None = None

    @property
    def service(self) -> str | None:
        """The paid service this concerns, when the container is managed."""
        if self.labels.get("paid.managed") == "true":
            return self.labels.get("paid.service") or self.name
        return None


class EventStream(Protocol):
    """A blocking iterator of events; ``close()`` from another thread ends it."""

    def __iter__(self) -> Iterator[RuntimeEvent]: ...

    def close(self) -> None: ...


class Runtime(Protocol):
    """The operations a reconcile needs. Each may raise ``RuntimeFailure``.

    Every ``name`` may also be a container ID; paid acts on IDs once it has
    checked whose a container is.
    """

    def list_containers(self) -> list[ActualContainer]:
        """Every container, running or not: one call."""
        ...

    def version(self) -> str: ...

    def host(self) -> PodmanHost:
        """Podman's storage directory and its rootless facts (Podman's /info)."""
        ...

    def image_present(self, image: str) -> bool: ...

    def pull_image(self, image: str, *, always: bool = False) -> None:
        """Fetch ``image`` (``always``: even when present); ``ImageUnavailable`` when that fails."""
        ...

    def build_image(self, request: BuildRequest) -> list[str]:
        """Build and tag an image; its output's lines. ``ImageUnavailable`` if the build fails."""

    def inspect_image(self, image: str) -> LocalImage | None:
        """The image ``image`` (a reference or an ID) names here, with its digests; None if none."""
        ...

    def list_images(self) -> list[LocalImage]:
        """Every image in the runtime's store: one call."""
        ...

    def remove_image(self, image_id: str) -> None:
        """Remove an image no container uses (never forced); ``RequestRejected`` if one does."""
        ...

    def create_container(self, request: ContainerRequest) -> str:
        """Create (not start) a container; return its ID."""
        ...

    def inspect_container(self, name: str) -> ActualContainer | None:
        """The container ``name`` (or ID) refers to now, labels and ID included; None if none.

        For checking ownership on the object itself before changing it.
        """
        ...

    def start_container(self, name: str) -> None: ...

    def unpause_container(self, name: str) -> None: ...

    def stop_container(self, name: str, *, timeout: int) -> None: ...

    def remove_container(self, name: str) -> None: ...

    def rename_container(self, name: str, new_name: str) -> None: ...

    def container_address(self, name: str) -> str | None:
        """The container's IP address on its network (for probes), if it has one."""
        ...

    def exec_in(self, name: str, command: Sequence[str], *, timeout: float) -> int:
        """Run ``command`` in the container; its exit code. ``RuntimeFailure`` on timeout."""
        ...

    def pause_container(self, name: str) -> None: ...

    def kill_container(self, name: str, *, signal: str = "SIGKILL") -> None: ...

    def volume_mountpoint(self, name: str) -> str:
        """Where the named volume's files are on this host; ``ContainerMissing`` if none."""
        ...

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        """Make a named volume; with ``labels``, stamped paid's (and this instance's)."""

    def volume_users(self, name: str) -> list[ActualContainer]:
        """Every container, running or not, that mounts the named volume."""

    def volume_labels(self, name: str) -> dict[str, str] | None:
        """The named volume's labels, as the runtime sees them; None if there is none."""

    def list_secrets(self) -> dict[str, float]:
        """Every Podman secret: its name and when it was created (epoch seconds)."""
        ...

    def create_secret(self, name: str, value: bytes) -> None:
        """Create the secret ``name``; one that exists already is left as it is."""
        ...

    def remove_secret(self, name: str) -> None: ...

    def list_networks(self) -> list[ActualNetwork]:
        """Every network: one call."""
        ...

    def create_network(self, name: str, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """Create the network ``name``; return its ID."""
        ...

    def remove_network(self, name: str) -> None:
        """Remove a network (by name or ID) no container is on; ``RequestRejected`` if in use."""
        ...

    def connect_network(
        self,
        network: str,
        container: str,
        *,
        aliases: Sequence[str],
        addresses: Sequence[str] = (),
    ) -> None: ...

    def disconnect_network(self, network: str, container: str) -> None: ...

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        """The last ``lines`` lines the container wrote (stdout and stderr)."""
        ...
