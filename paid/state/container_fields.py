"""The container fields real images need: identity, filesystem, security, limits, logs, DNS.

Each is optional; a field left out is not part of the spec hash (see
``ServiceSpec.ADDED_FIELDS``), so services that do not use it keep their
containers across an upgrade.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator

from paid.state.basics import Model, absolute_path, parse_memory

USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?")
HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
SYSCTL = re.compile(r"[a-z0-9_]+(\.[a-z0-9_*-]+)+")
CAPABILITIES = frozenset(
    [
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
        "ALL",
    ]
)
ULIMITS = frozenset(
    [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ]
)
DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024


def _capability(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = value.upper().removeprefix("CAP_")
    if name not in CAPABILITIES:
        raise ValueError(f"{value!r} is not a Linux capability (such as NET_BIND_SERVICE)")
    return name


Capability = Annotated[str, BeforeValidator(_capability)]


class Capabilities(Model):
    add: list[Capability] = Field(default_factory=list)
    drop: list[Capability] = Field(default_factory=list)


class TmpfsMount(Model):
    """A tmpfs: world-writable with the sticky bit (``1777``) unless ``mode`` says otherwise.

    ``1777`` is what ``docker run --tmpfs`` and ``podman run --tmpfs`` give,
    so a service that runs as a non-root user can write its own ``/tmp``.
    """

    path: str
    size: Annotated[int, BeforeValidator(parse_memory), Field(ge=4096)] | None = None
    mode: Annotated[str, Field(pattern=r"^[0-7]{3,4}$")] = "1777"
    uid: int | None = Field(default=None, ge=0, le=2**32 - 2)
    gid: int | None = Field(default=None, ge=0, le=2**32 - 2)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return absolute_path(value, "tmpfs path")


def _parse_tmpfs(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


Tmpfs = Annotated[TmpfsMount, BeforeValidator(_parse_tmpfs)]


class Ulimit(Model):
    soft: int = Field(ge=-1, le=2**63 - 1)
    hard: int = Field(ge=-1, le=2**63 - 1)

    @model_validator(mode="after")
    def _soft_below_hard(self) -> Self:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"soft limit {self.soft} is above the hard limit {self.hard}")
        return self


def _parse_ulimit(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"soft": value, "hard": value}
    return value


class LogDriver(StrEnum):
    K8S_FILE = "k8s-file"
    JOURNALD = "journald"
    NONE = "none"


class Logging(Model):
    """Container logs; the default is bounded (k8s-file, 10Mi) so no service fills the disk."""

    driver: LogDriver = LogDriver.K8S_FILE
    max_size: Annotated[int, BeforeValidator(parse_memory), Field(ge=4096)] = DEFAULT_LOG_MAX_SIZE


class Dns(Model):
    servers: list[str] = Field(default_factory=list)
    search: list[str] = Field(default_factory=list)
    options: list[str] = Field(default_factory=list)

    @field_validator("servers")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for server in value:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"DNS server {server!r} is not an IP address") from None
        return value


def _extra_host(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name, sep, ip = value.partition(":")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        sep = ""
    if not sep or not HOSTNAME.fullmatch(name):
        raise ValueError(f"extra host {value!r} is not 'name:ip'")
    return value


ExtraHost = Annotated[str, BeforeValidator(_extra_host)]
SECURITY_OPTS = ("label=", "apparmor=", "seccomp=", "mask=", "unmask=")
