"""The desired side after loading: validated services in dependency order, and networks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paid.state.builds import BuildContext
from paid.state.configs import ConfigContent
from paid.state.networks import DEFAULT_NETWORK, Attachment, DesiredNetwork, NetworkSpec
from paid.state.notifiers import DesiredNotifier
from paid.state.shapes import shape_of, spec_hash
from paid.state.specs import ServiceDocument, ServiceName, ServiceSpec


@dataclass(frozen=True, slots=True)
class DesiredService:
    """One valid ``Service`` document, with its hash and where it came from."""

    name: ServiceName
    labels: Mapping[str, str]
    spec: ServiceSpec
    spec_hash: str
    shape: Mapping[str, Any]
    source: str = ""  # "file:line", for messages
    secret_fingerprints: Mapping[str, str] = field(default_factory=dict)
    configs: tuple[ConfigContent, ...] = ()  # by spec.configs' order
    image_id: str | None = None  # a rebuilt revision's image as it ran: that, not the tag
    image_digest: str | None = None  # imageUpdate: the digest it runs (in the shape)
    cause: str = ""  # why its revision is new, when paid made it so (an image update)
    build: BuildContext | None = None  # spec.build as loaded: where the image is built from

    def with_digest(self, digest: str | None, *, cause: str = "") -> DesiredService:
        """This service running exactly ``digest`` of its image: its shape and hash say so."""
        if digest is None or digest == self.image_digest:
            return replace(self, cause=cause) if cause != self.cause else self
        shape = {**self.shape, "imageDigest": digest}
        return replace(
            self, image_digest=digest, shape=shape, spec_hash=spec_hash(shape), cause=cause
        )

    @classmethod
    def of(
        cls,
        document: ServiceDocument,
        *,
        source: str = "",
        secret_fingerprints: Mapping[str, str] | None = None,
        default_network: str = DEFAULT_NETWORK,
        configs: tuple[ConfigContent, ...] = (),
        build: BuildContext | None = None,
    ) -> DesiredService:
        """A validated document, with its shape and hash worked out once.

        A spec that names no network (and is not on the host's) is put on
        ``default_network`` here, so its membership is part of its shape.
        """
        name = ServiceName(document.metadata.name)
        fingerprints = dict(secret_fingerprints or {})
        spec = document.spec
        if not spec.networks and not spec.host_network:
            spec = spec.model_copy(update={"networks": [Attachment(name=default_network)]})
        shape = shape_of(
            name=name,
            labels=document.metadata.labels,
            spec=spec,
            secret_fingerprints=fingerprints,
            config_digests={c.target: c.digest for c in configs},
        )
        return cls(
            name=name,
            labels=document.metadata.labels,
            spec=spec,
            spec_hash=spec_hash(shape),
            shape=shape,
            source=source,
            secret_fingerprints=fingerprints,
            configs=configs,
            build=build,
        )


@dataclass(frozen=True, slots=True)
class DesiredState:
    """All desired services, iterated in dependency order (then by name), and their networks."""

    services: Mapping[ServiceName, DesiredService] = field(default_factory=dict)
    order: tuple[ServiceName, ...] = ()
    networks: Mapping[str, DesiredNetwork] = field(default_factory=dict)
    default_network: str = DEFAULT_NETWORK
    notifiers: Mapping[str, DesiredNotifier] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        services: Mapping[ServiceName, DesiredService],
        networks: Mapping[str, DesiredNetwork] | None = None,
        *,
        default_network: str = DEFAULT_NETWORK,
        notifiers: Mapping[str, DesiredNotifier] | None = None,
    ) -> DesiredState:
        """Build from an acyclic set of services (the loader checks cycles).

        The default network is desired when a service is on it and no
        document declares it.
        """
        wanted = dict(networks or {})
        if default_network not in wanted and any(
            a.name == default_network for svc in services.values() for a in svc.spec.networks
        ):
            wanted[default_network] = DesiredNetwork(default_network, NetworkSpec())
        return cls(
            services=dict(services),
            order=dependency_order(services),
            networks=wanted,
            default_network=default_network,
            notifiers=dict(notifiers or {}),
        )

    def __iter__(self) -> Iterator[DesiredService]:
        return (self.services[name] for name in self.order)

    def __len__(self) -> int:
        return len(self.services)

    def __contains__(self, name: object) -> bool:
        return name in self.services

    def dependents(self, name: ServiceName) -> frozenset[ServiceName]:
        """Every service that needs ``name``, directly or through others."""
        found: set[ServiceName] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for svc in self.services.values():
                if current in svc.spec.depends_on and svc.name not in found:
                    found.add(svc.name)
                    frontier.append(svc.name)
        return frozenset(found)


def dependency_order(services: Mapping[ServiceName, DesiredService]) -> tuple[ServiceName, ...]:
    """Kahn's algorithm with names as the tie-break: deterministic.

    Dependencies on names outside ``services`` are ignored here (the loader
    reports them); members of a cycle come last, in name order.
    """
    pending = {
        name: {ServiceName(d) for d in svc.spec.depends_on if d in services}
        for name, svc in services.items()
    }
    order: list[ServiceName] = []
    while pending:
        ready = sorted(name for name, deps in pending.items() if not deps)
        if not ready:
            order.extend(sorted(pending))
            break
        for name in ready:
            order.append(name)
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return tuple(order)
