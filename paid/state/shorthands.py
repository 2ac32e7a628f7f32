"""Ports, volumes and resources: their string shorthands and the models they become."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from paid.state.basics import MIN_MEMORY_BYTES, Model, parse_cpus, parse_memory

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class PortProtocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class PortMapping(Model):
    """One published port, parsed from ``[ip:]host:container[/tcp|udp]``."""

    host_ip: str = "0.0.0.0"  # noqa: S104 -- Podman's own default for -p
    host_port: int = Field(ge=1, le=65535)
    container_port: int = Field(ge=1, le=65535)
    protocol: PortProtocol = PortProtocol.TCP

    def __str__(self) -> str:
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{ip}:{self.host_port}:{self.container_port}/{self.protocol}"

    @field_validator("host_ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value

    def overlaps(self, other: PortMapping) -> bool:
        """Whether both would bind the same host socket."""
        if (self.protocol, self.host_port) != (other.protocol, other.host_port):
            return False
        wildcard = {"0.0.0.0", "::"}  # noqa: S104
        return self.host_ip == other.host_ip or bool({self.host_ip, other.host_ip} & wildcard)


def _parse_port(value: Any) -> Any:
    if not isinstance(value, str):
        if isinstance(value, int):
            raise ValueError(f"write ports as 'host:container', got the bare number {value}")
        return value
    text, _, proto = value.partition("/")
    proto = proto or "tcp"
    if text.startswith("["):
        ip, sep, rest = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"bad IPv6 address in port {value!r}")
        parts = [ip, *rest.split(":")]
    else:
        parts = text.split(":")
    if len(parts) == 2:
        parts.insert(0, "0.0.0.0")  # noqa: S104
    if len(parts) != 3:
        raise ValueError(f"port {value!r} is not '[ip:]host:container[/tcp|udp]'")
    ip, host, container = parts
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError(f"port {value!r}: {ip!r} is not an IP address") from None
    if not (host.isdigit() and container.isdigit()):
        raise ValueError(f"port {value!r}: host and container ports must be numbers")
    if not (1 <= int(host) <= 65535 and 1 <= int(container) <= 65535):
        raise ValueError(f"port {value!r}: port numbers run from 1 to 65535")
    if proto not in ("tcp", "udp"):
        raise ValueError(f"port {value!r}: protocol must be tcp or udp")
    return {
        "host_ip": ip,
        "host_port": int(host),
        "container_port": int(container),
        "protocol": proto,
    }


Port = Annotated[PortMapping, BeforeValidator(_parse_port), PlainSerializer(str)]

_RANGE = re.compile(r"^(?P<head>.*?)(?P<host>\d+-\d+):(?P<container>\d+(?:-\d+)?)(?P<proto>/\w+)?$")


def expand_port_ranges(value: Any) -> Any:
    """``8000-8002:9000-9002`` as the ports it publishes, one each, as ``podman run -p``.

    Both ranges must be the same length. Compose's ``8000-8002:9000`` (any
    one free port of the range) is refused: a port that moves between
    starts is not a declared state.
    """
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        match = _RANGE.match(item) if isinstance(item, str) else None
        if match is None:
            out.append(item)
            continue
        first, _, last = match["host"].partition("-")
        c_first, _, c_last = match["container"].partition("-")
        hosts = range(int(first), int(last) + 1)
        if not hosts or len(hosts) > 1024:
            raise ValueError(f"port {item!r}: a host range runs low to high, 1024 ports at most")
        if not c_last or int(c_last) - int(c_first) != int(last) - int(first):
            raise ValueError(
                f"port {item!r}: give a container range of the same length (8000-8002:9000-9002)"
            )
        proto = match["proto"] or ""
        for offset, host in enumerate(hosts):
            out.append(f"{match['head']}{host}:{int(c_first) + offset}{proto}")
    return out


class VolumeMount(Model):
    """One mount, parsed from ``source:/dest[:ro|rw]``.

    A source starting with ``/`` is a host path (subject to the host-path
    allow-list, checked by the loader, which knows the host's policy); any
    other source is a named Podman volume.
    """

    source: str
    destination: str
    read_only: bool = False

    @property
    def is_host_path(self) -> bool:
        return self.source.startswith("/")

    def __str__(self) -> str:
        return f"{self.source}:{self.destination}:{'ro' if self.read_only else 'rw'}"

    @model_validator(mode="after")
    def _checked(self) -> Self:
        """The mapping form gets the checks of the string form: one set of rules."""
        _check_volume(self.source, self.destination, f"{self.source}:{self.destination}")
        return self


def _parse_volume(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"volume {value!r} is not 'source:/destination[:ro|rw]'")
    source, destination = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ValueError(f"volume {value!r}: mode must be ro or rw, not {mode!r}")
    _check_volume(source, destination, value)
    if source.startswith("/"):
        source = posixpath.normpath(source)
    return {
        "source": source,
        "destination": posixpath.normpath(destination),
        "read_only": mode == "ro",
    }


def _check_volume(source: str, destination: str, value: str) -> None:
    if not destination.startswith("/"):
        raise ValueError(f"volume {value!r}: the destination must be an absolute path")
    if "\x00" in source or "\x00" in destination:
        raise ValueError(f"volume {value!r}: contains a NUL byte")
    if source.startswith("/"):
        if ".." in source.split("/"):
            raise ValueError(f"volume {value!r}: host paths may not contain '..'")
    elif not _VOLUME_NAME.fullmatch(source):
        raise ValueError(f"volume {value!r}: {source!r} is neither a volume name nor a host path")


Volume = Annotated[VolumeMount, BeforeValidator(_parse_volume), PlainSerializer(str)]


class Resources(Model):
    memory: Annotated[int, BeforeValidator(parse_memory), Field(ge=MIN_MEMORY_BYTES)] | None = None
    cpus: Annotated[float, BeforeValidator(parse_cpus), Field(gt=0, le=1024)] | None = None
