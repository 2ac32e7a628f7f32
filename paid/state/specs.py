"""The desired side: what a ``Service`` document may say, and its normal form.

Field names and defaults follow Kubernetes where Kubernetes has the concept
(``livenessProbe``, ``periodSeconds: 10``, ``restartPolicy: Always``,
``revisionHistoryLimit: 10``) so that users bring their habits. Every model
is frozen and rejects unknown fields: a typo is an error, never a silently
ignored setting.

Short-hand strings (ports, volumes, memory sizes) are parsed into structured
values here, once, so that ``"18080:8080"`` and ``"0.0.0.0:18080:8080/tcp"``
are the same port and hash the same.

The *spec hash* covers exactly the fields that shape the container Podman
runs (image, command, env, ports, ...). Fields that only steer the
controller (probes, rollout, restart policy, dependencies) are left out:
tuning a probe takes effect without replacing a running container.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import posixpath
import re
import signal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, NewType, Self

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

ServiceName = NewType("ServiceName", str)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Reference grammar after distribution/reference, simplified: an optional
# registry host[:port], path components, then ``:tag`` and/or ``@sha256:...``.
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_MEMORY = re.compile(r"^(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGT]i?|[kmgt]|[KMGT]B|B)?$")
_MEMORY_UNITS = {
    None: 1,
    "B": 1,
    # Lowercase is Docker's and Podman's: 512m is 512 MiB. Uppercase
    # without i is Kubernetes' decimal: 512M is 512 MB.
    "k": 1024,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "m": 1024**2,
    "MB": 1000**2,
    "G": 1000**3,
    "g": 1024**3,
    "GB": 1000**3,
    "T": 1000**4,
    "t": 1024**4,
    "TB": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # runc refuses less than 6 MiB


class _Model(BaseModel):
    """Base of every desired-state model: frozen, camelCase, strict about keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


# -- short-hand values ------------------------------------------------------


class PortProtocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class PortMapping(_Model):
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


class VolumeMount(_Model):
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


def parse_memory(value: Any) -> Any:
    """Turn ``256Mi`` / ``512M`` / ``1G`` / bytes into a byte count."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 256Mi")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return value
    match = _MEMORY.fullmatch(value.strip())
    if not match:
        raise ValueError(f"memory {value!r} is not a size such as 256Mi, 512M or 1G")
    return int(float(match["value"]) * _MEMORY_UNITS[match["unit"]])


def parse_cpus(value: Any) -> Any:
    """Accept ``0.5``, ``2`` or the Kubernetes millicore form ``500m``."""
    if isinstance(value, str) and value.endswith("m") and value[:-1].isdigit():
        return int(value[:-1]) / 1000
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"cpus {value!r} is not a number such as 0.5 or 500m") from None
    return value


class Resources(_Model):
    memory: Annotated[int, BeforeValidator(parse_memory), Field(ge=MIN_MEMORY_BYTES)] | None = None
    cpus: Annotated[float, BeforeValidator(parse_cpus), Field(gt=0, le=1024)] | None = None


# -- the container fields real images need (each optional, each in the hash) ----

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?")
_HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_SYSCTL = re.compile(r"[a-z0-9_]+(\.[a-z0-9_*-]+)+")
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


class Capabilities(_Model):
    add: list[Capability] = Field(default_factory=list)
    drop: list[Capability] = Field(default_factory=list)


def _absolute(value: str, what: str) -> str:
    if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
        raise ValueError(f"{what} {value!r} must be an absolute path without '..'")
    return posixpath.normpath(value)


class TmpfsMount(_Model):
    path: str
    size: Annotated[int, BeforeValidator(parse_memory), Field(ge=4096)] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _absolute(value, "tmpfs path")


def _parse_tmpfs(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


Tmpfs = Annotated[TmpfsMount, BeforeValidator(_parse_tmpfs)]


class Ulimit(_Model):
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


class Logging(_Model):
    """Container logs; the default is bounded (k8s-file, 10Mi) so no service fills the disk."""

    driver: LogDriver = LogDriver.K8S_FILE
    max_size: Annotated[int, BeforeValidator(parse_memory), Field(ge=4096)] = DEFAULT_LOG_MAX_SIZE


class Dns(_Model):
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
    if not sep or not _HOSTNAME.fullmatch(name):
        raise ValueError(f"extra host {value!r} is not 'name:ip'")
    return value


ExtraHost = Annotated[str, BeforeValidator(_extra_host)]
SECURITY_OPTS = ("label=", "apparmor=", "seccomp=", "mask=", "unmask=")


# -- probes and rollout (acted on by the health controller) ------------------


class HttpGetAction(_Model):
    port: int = Field(ge=1, le=65535)
    path: str = "/"
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value


class TcpSocketAction(_Model):
    port: int = Field(ge=1, le=65535)
    host: str | None = None


class ExecAction(_Model):
    command: list[str] = Field(min_length=1)


class Probe(_Model):
    """A Kubernetes-style probe: exactly one handler plus its timing."""

    http_get: HttpGetAction | None = None
    tcp_socket: TcpSocketAction | None = None
    exec: ExecAction | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Self:
        handlers = [h for h in (self.http_get, self.tcp_socket, self.exec) if h is not None]
        if len(handlers) != 1:
            raise ValueError("a probe needs exactly one of httpGet, tcpSocket, exec")
        return self


class RestartPolicy(StrEnum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class RolloutStrategy(StrEnum):
    RECREATE = "Recreate"
    CANARY = "Canary"


class Canary(_Model):
    ports: list[Port] = Field(default_factory=list)
    duration_seconds: int = Field(default=60, ge=1)


class Rollout(_Model):
    strategy: RolloutStrategy = RolloutStrategy.RECREATE
    min_ready_seconds: int = Field(default=10, ge=0)
    progress_deadline_seconds: int = Field(default=600, ge=1)
    auto_rollback: bool = True
    canary: Canary | None = None

    @model_validator(mode="after")
    def _canary_settings(self) -> Self:
        if self.canary is not None and self.strategy is not RolloutStrategy.CANARY:
            raise ValueError("canary settings need strategy: Canary")
        return self


# -- backups (acted on by the backup controller) ------------------------------


class BackupConsistency(StrEnum):
    STOP = "stop"  # stop the container for the copy: consistent, costs downtime
    PAUSE = "pause"  # freeze its processes: consistent on disk, no restart
    LIVE = "live"  # copy while it runs: for data that tolerates it


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_fields(value: str) -> dict[str, str]:
    """A cron expression as APScheduler ``CronTrigger`` keywords, checked.

    Five fields (minute hour day month weekday) as in crontab(5), or six
    with seconds first. Weekday numbers are cron's (0 and 7 are Sunday),
    translated to names because APScheduler counts from Monday.
    """
    fields = value.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"schedule {value!r} is not a cron expression (minute hour day month weekday)"
        )
    if len(fields) == 5:
        fields.insert(0, "0")
    second, minute, hour, day, month, weekday = fields
    keywords = {
        "second": second,
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": _weekday_names(weekday, value),
    }
    try:
        CronTrigger(**keywords)
    except ValueError as err:
        raise ValueError(f"schedule {value!r}: {err}") from None
    return keywords


def _weekday_names(field: str, whole: str) -> str:
    if not any(ch.isdigit() for ch in field.replace("*/", "")):
        return field.lower()
    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if span == "*":
            low, high = 0, 6
        else:
            first, _, last = span.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise ValueError(f"schedule {whole!r}: weekday {item!r} mixes names and numbers")
            low, high = int(first), int(last or first)
            if not (0 <= low <= high <= 7):
                raise ValueError(f"schedule {whole!r}: weekdays run from 0 to 7")
            if not last and step_text:
                high = 6
        days.update(range(low, high + 1, step))
    return ",".join(dict.fromkeys(_WEEKDAYS[d] for d in sorted(days)))


class Backup(_Model):
    schedule: str | None = None  # cron; none: only on demand and before rollouts
    keep: int = Field(default=7, ge=1, le=1000)
    before_rollout: bool = False
    consistency: BackupConsistency = BackupConsistency.STOP

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_fields(value)
        return value


class Slo(_Model):
    """An availability objective, measured from the readiness record."""

    availability: float = Field(gt=0, lt=100)  # percent: 99.9
    window_days: int = Field(default=30, ge=1, le=365)


# -- the service ------------------------------------------------------------


def signal_number(name: str) -> int | None:
    """The number of a signal named ``SIGTERM``, ``term`` or ``15``; None if there is none."""
    if name.isascii() and name.isdigit():
        number = int(name)
        return number if 1 <= number <= signal.SIGRTMAX else None
    upper = name.upper()
    try:
        return int(signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"])
    except KeyError:
        return None


def _no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL byte")
    return value


def _check_image(value: str) -> str:
    match = _IMAGE.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not an image reference")
    if match["digest"] is None and match["tag"] is None:
        raise ValueError(f"{value!r} is not pinned: add a tag other than 'latest' or a digest")
    if match["digest"] is None and match["tag"] == "latest":
        raise ValueError(f"{value!r} is not pinned: 'latest' moves; use a version tag or digest")
    return value


_SECRET_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


class SecretFile(_Model):
    """A secret read from a file in the secrets directory (``--secrets-dir``)."""

    file: str

    @field_validator("file")
    @classmethod
    def _inside_directory(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError(
                f"{value!r}: secret files are named relative to the secrets directory "
                "(--secrets-dir), not by absolute path"
            )
        if not _SECRET_FILE.fullmatch(value) or ".." in value.split("/"):
            raise ValueError(f"{value!r} is not a file name inside the secrets directory")
        return value


class Metadata(_Model):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"label key {key!r} is not valid")
            if key.startswith("paid."):
                raise ValueError(f"label key {key!r}: the paid. prefix is reserved")
        for key, item in value.items():
            _no_nul(item, f"label {key}")
        return value


class ServiceSpec(_Model):
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretFile] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    depends_on: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list)
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    resources: Resources = Field(default_factory=Resources)
    stop_signal: str | None = None
    termination_grace_period_seconds: int = Field(default=10, ge=0, le=3600)
    init: bool = False
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    rollout: Rollout = Field(default_factory=Rollout)
    revision_history_limit: int = Field(default=10, ge=1)
    backup: Backup | None = None
    slo: Slo | None = None
    enabled: bool = True  # false: stop the service, keep its container and data
    # Identity, filesystem, security, limits, logging, name resolution:
    user: str | None = None
    group_add: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    hostname: str | None = None
    read_only_root_filesystem: bool = False
    tmpfs: list[Tmpfs] = Field(default_factory=list)
    capabilities: Capabilities | None = None
    privileged: bool = False
    no_new_privileges: bool = False
    security_opt: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    ulimits: dict[str, Annotated[Ulimit, BeforeValidator(_parse_ulimit)]] = Field(
        default_factory=dict
    )
    sysctls: dict[str, str] = Field(default_factory=dict)
    shm_size: Annotated[int, BeforeValidator(parse_memory), Field(ge=4096)] | None = None
    pids_limit: int | None = Field(default=None, ge=1, le=4_194_304)
    logging: Logging | None = None  # None: the bounded default
    extra_hosts: list[ExtraHost] = Field(default_factory=list)
    dns: Dns | None = None
    userns: str | None = None
    timezone: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not _USER.fullmatch(value):
            raise ValueError(f"user {value!r} is not 'name', 'uid' or 'uid:gid'")
        return value

    @field_validator("working_dir")
    @classmethod
    def _working_dir(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "workingDir")

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _HOSTNAME.fullmatch(value)):
            raise ValueError(f"hostname {value!r} is not a host name")
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[str]) -> list[str]:
        for device in value:
            if not device.startswith("/dev/") or ".." in device.split("/"):
                raise ValueError(f"device {device!r} is not a path under /dev")
        return value

    @field_validator("ulimits")
    @classmethod
    def _ulimit_names(cls, value: dict[str, Ulimit]) -> dict[str, Ulimit]:
        for name in value:
            if name not in ULIMITS:
                raise ValueError(f"{name!r} is not a ulimit (one of {', '.join(sorted(ULIMITS))})")
        return value

    @field_validator("sysctls")
    @classmethod
    def _sysctl_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, setting in value.items():
            if not _SYSCTL.fullmatch(name):
                raise ValueError(f"{name!r} is not a sysctl name such as net.core.somaxconn")
            _no_nul(setting, f"sysctl {name}")
        return value

    @field_validator("security_opt")
    @classmethod
    def _security_opts(cls, value: list[str]) -> list[str]:
        for option in value:
            if not option.startswith(SECURITY_OPTS):
                raise ValueError(
                    f"security option {option!r}: one of {', '.join(SECURITY_OPTS)}... "
                    "(privileged and noNewPrivileges have fields of their own)"
                )
        return value

    @field_validator("userns")
    @classmethod
    def _userns(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0] not in ("auto", "host", "keep-id", "nomap"):
            raise ValueError(f"userns {value!r}: one of auto, host, keep-id, nomap")
        return value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return _check_image(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"environment variable name {key!r} is not valid")
            _no_nul(item, f"the value of {key}")
        return value

    @field_validator("command", "args")
    @classmethod
    def _no_nul_in_argv(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            _no_nul(item, "an argument")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_names(cls, value: dict[str, SecretFile]) -> dict[str, SecretFile]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"secret name {key!r} is not a valid environment variable name")
        return value

    @model_validator(mode="after")
    def _backup_needs_a_volume(self) -> Self:
        if self.backup is not None and not self.named_volumes():
            raise ValueError("backup: the service has no named volume to back up")
        return self

    def named_volumes(self) -> list[str]:
        """The Podman volumes (not host paths) the service mounts, in order."""
        return [v.source for v in self.volumes if not v.is_host_path]

    @model_validator(mode="after")
    def _secrets_apart_from_env(self) -> Self:
        for key in self.secret_env:
            for taken in (key, f"{key}_FILE"):
                if taken in self.env:
                    raise ValueError(f"env {taken!r} collides with secretEnv {key!r}")
        return self

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, value: str | None) -> str | None:
        if value is not None and signal_number(value) is None:
            raise ValueError(f"{value!r} is not a signal of this system (such as SIGTERM or 15)")
        return value

    @model_validator(mode="after")
    def _unique_mounts(self) -> Self:
        # Ports published twice are the loader's: it can point at spec.ports[i].
        destinations = [v.destination for v in self.volumes]
        if len(destinations) != len(set(destinations)):
            raise ValueError("two volumes mount on the same destination")
        return self

    # Fields that steer paid, not the container: changing them never
    # replaces a running container.
    CONTROLLER_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "depends_on",
            "restart_policy",
            "liveness_probe",
            "readiness_probe",
            "startup_probe",
            "rollout",
            "revision_history_limit",
            "backup",
            "slo",
            "enabled",
        }
    )

    # Container fields added after the first release: left out of the shape
    # while unset, so that a spec that does not use them keeps its hash (and
    # its container) across an upgrade.
    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "secretEnv", "user", "groupAdd", "workingDir", "hostname",
            "readOnlyRootFilesystem", "tmpfs", "capabilities", "privileged",
            "noNewPrivileges", "securityOpt", "devices", "ulimits", "sysctls", "shmSize",
            "pidsLimit", "logging", "extraHosts", "dns", "userns", "timezone", "annotations",
        }
    )  # fmt: skip

    def container_shape(self) -> dict[str, Any]:
        """The normalized, JSON-ready fields that define the container."""
        shape = self.model_dump(mode="json", by_alias=True, exclude=set(self.CONTROLLER_FIELDS))
        for name in self.ADDED_FIELDS:
            if shape.get(name) in (None, False, [], {}):
                shape.pop(name, None)
        return shape


class ServiceDocument(_Model):
    api_version: Literal["paid/v1"]
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec


def spec_hash(shape: dict[str, Any]) -> str:
    """sha256 of a normalized container shape: the ``paid.spec-hash`` label."""
    return hashlib.sha256(canonical_json(shape)).hexdigest()


def shape_of(
    *,
    name: str,
    labels: dict[str, str],
    spec: ServiceSpec,
    secret_fingerprints: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything that defines the container, as one JSON-ready mapping.

    Secrets enter as their keyed fingerprints (never their values), so a
    changed secret file is drift like any other.
    """
    shape = {"name": name, "labels": dict(sorted(labels.items())), **spec.container_shape()}
    fingerprints = secret_fingerprints or {}
    for key, entry in shape.get("secretEnv", {}).items():
        entry["fingerprint"] = fingerprints.get(key, "")
    return shape


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
