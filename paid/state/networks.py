"""Networks: the ``Network`` kind, a service's attachments, and their pure diff.

A service that names no network joins the default network (``paid``,
``--default-network``) with DNS on, so services reach each other by
``metadata.name`` out of the box, as in a compose project. A service on
``backend`` only is reachable from services on ``backend`` only: Podman's
netavark keeps bridges apart, and its DNS answers per network.

A network's spec is recorded on the network as its ``paid.spec-hash``
label; a network whose label differs is recreated (its members are
reconnected, with their aliases). Membership is part of the service's
own spec, so a changed membership is a rollout like any other change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from paid.state import labels
from paid.state.basics import Model

DEFAULT_NETWORK = "paid"


def default_network_of(instance: str) -> str:
    """The default network of a paid instance: ``paid``, or ``paid-<instance>`` for the others.

    Each instance keeps its own: two desired states on one Podman never
    share (or fight over) a network.
    """
    return DEFAULT_NETWORK if instance == labels.DEFAULT_INSTANCE else f"paid-{instance}"


NETWORK_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_ALIAS = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Podman's own networks: never paid's to create, change or remove.
RESERVED = frozenset({"podman", "host", "none", "bridge", "container", "ns", "slirp4netns"})


class NetworkSpec(Model):
    """What a ``Network`` document may say; all optional."""

    internal: bool = False  # no route out of the host
    subnet: str | None = None  # chosen by Podman when unset
    dns: bool = True

    @field_validator("subnet")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as err:
            raise ValueError(
                f"subnet {value!r} is not a CIDR such as 10.89.7.0/24: {err}"
            ) from None
        if network.num_addresses < 4:
            raise ValueError(f"subnet {value!r} leaves no room for a gateway and containers")
        return str(network)


class NetworkMetadata(Model):
    name: Annotated[str, Field(pattern=NETWORK_NAME)]
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED:
            raise ValueError(f"{value!r} is one of Podman's own network names")
        return value


class NetworkDocument(Model):
    api_version: Literal["paid/v1"]
    kind: Literal["Network"]
    metadata: NetworkMetadata
    spec: NetworkSpec = Field(default_factory=NetworkSpec)


def _attachment(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class Attachment(Model):
    """A service's place on one network: ``backend`` or ``{name: backend, aliases: [db]}``.

    ``ipv4Address`` / ``ipv6Address``: a fixed address on it (compose's
    ``ipv4_address``), which must lie in the network's declared subnet.
    """

    name: Annotated[str, Field(pattern=NETWORK_NAME)]
    aliases: list[str] = Field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None

    @field_validator("ipv4_address", "ipv6_address")
    @classmethod
    def _an_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        version = 4 if info.field_name == "ipv4_address" else 6
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if address.version != version:
            raise ValueError(f"{value!r} is not an IPv{version} address")
        return str(address)

    @model_serializer(mode="wrap")
    def _set_fields_only(self, handler: SerializerFunctionWrapHandler) -> Any:
        """No address keys when none is given: existing specs keep their hash."""
        out = handler(self)
        if isinstance(out, dict):
            for key in ("ipv4Address", "ipv6Address", "ipv4_address", "ipv6_address"):
                if key in out and out[key] is None:
                    del out[key]
        return out

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a for a in (self.ipv4_address, self.ipv6_address) if a is not None)

    @field_validator("aliases")
    @classmethod
    def _dns_labels(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not _ALIAS.fullmatch(alias):
                raise ValueError(f"alias {alias!r} is not a DNS label (a-z, 0-9, '-')")
        if len(value) != len(set(value)):
            raise ValueError("an alias is given twice")
        return value


AttachmentField = Annotated[Attachment, BeforeValidator(_attachment)]


@dataclass(frozen=True, slots=True)
class DesiredNetwork:
    """One network paid keeps: declared in a document, or the default one."""

    name: str
    spec: NetworkSpec
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # "file:line"; empty for the default network

    @property
    def spec_hash(self) -> str:
        shape = {"labels": dict(sorted(self.labels.items())), **self.spec.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()

    def to_document(self) -> dict[str, Any]:
        return {
            "apiVersion": "paid/v1",
            "kind": "Network",
            "metadata": {"name": self.name, "labels": dict(self.labels)},
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }


@dataclass(frozen=True, slots=True)
class ActualNetwork:
    """One network as Podman lists it."""

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    foreign: bool = False  # paid's, but another instance's

    @property
    def managed(self) -> bool:
        return self.labels.get(labels.MANAGED) == "true" and not self.foreign

    @property
    def spec_hash(self) -> str | None:
        return self.labels.get(labels.SPEC_HASH)

    def seen_by(self, instance: str) -> ActualNetwork:
        if self.labels.get(labels.MANAGED) != "true":
            return self
        theirs = (self.labels.get(labels.INSTANCE) or labels.DEFAULT_INSTANCE) != instance
        return ActualNetwork(self.id, self.name, self.labels, foreign=theirs)


class NetworkActionKind(StrEnum):
    CREATE = "create"
    RECREATE = "recreate"  # its spec changed: members are reconnected to the new one
    REMOVE = "remove"  # paid's, not desired, no container on it
    CONFLICT = "conflict"  # a network that is not paid's holds a desired name


@dataclass(frozen=True, slots=True)
class NetworkAction:
    kind: NetworkActionKind
    network: str
    reason: str
    members: tuple[str, ...] = ()  # containers on it (for recreate: reconnected)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": str(self.kind), "network": self.network}
        out["reason"] = self.reason
        if self.members:
            out["members"] = list(self.members)
        return out


@dataclass(frozen=True, slots=True)
class Member:
    """A container on a network, as the container list says."""

    container_id: str
    name: str
    managed: bool


def network_plan(
    desired: Mapping[str, DesiredNetwork],
    actual: Iterable[ActualNetwork],
    members: Mapping[str, Sequence[Member]],
    *,
    prune: bool = True,
) -> tuple[NetworkAction, ...]:
    """What it takes to make the networks match: creates and recreates, then removals.

    ``members`` maps a network name to the containers on it. A network
    that is not paid's is never changed: holding a desired name it is a
    conflict; a managed network with a container that is not paid's on
    it is never recreated or removed.
    """
    by_name = {n.name: n for n in actual}
    actions: list[NetworkAction] = []
    for name in sorted(desired):
        wanted, found = desired[name], by_name.get(name)
        on_it = tuple(sorted(m.name for m in members.get(name, ())))
        strangers = [m.name for m in members.get(name, ()) if not m.managed]
        if found is None:
            actions.append(NetworkAction(NetworkActionKind.CREATE, name, "no network"))
        elif not found.managed:
            whose = "another paid instance's" if found.foreign else "not paid's"
            actions.append(
                NetworkAction(
                    NetworkActionKind.CONFLICT,
                    name,
                    f"network {found.id[:12]} holds the name and is {whose}: left alone",
                )
            )
        elif found.spec_hash != wanted.spec_hash:
            if strangers:
                actions.append(
                    NetworkAction(
                        NetworkActionKind.CONFLICT,
                        name,
                        "spec changed, but containers that are not paid's use it "
                        f"({', '.join(sorted(strangers))}): left as it is",
                    )
                )
            else:
                actions.append(
                    NetworkAction(NetworkActionKind.RECREATE, name, "spec changed", on_it)
                )
    if prune:
        for name in sorted(by_name):
            found = by_name[name]
            if found.managed and name not in desired and not members.get(name):
                actions.append(
                    NetworkAction(NetworkActionKind.REMOVE, name, "no longer desired, unused")
                )
    return tuple(actions)


def members_of(containers: Iterable[Any]) -> dict[str, list[Member]]:
    """Containers by the networks they are on (``ActualContainer.networks``)."""
    out: dict[str, list[Member]] = {}
    for container in containers:
        for network in container.networks or ():
            out.setdefault(network, []).append(
                Member(container.id, container.name, bool(container.managed))
            )
    return out


__all__ = [
    "DEFAULT_NETWORK",
    "RESERVED",
    "ActualNetwork",
    "Attachment",
    "AttachmentField",
    "DesiredNetwork",
    "Member",
    "NetworkAction",
    "NetworkActionKind",
    "NetworkDocument",
    "NetworkSpec",
    "default_network_of",
    "members_of",
    "network_plan",
]  # fmt: skip
