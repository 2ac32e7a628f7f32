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

import re
import signal
from typing import Annotated, Any, ClassVar, Literal, NewType, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from paid.state.basics import (
    Model,
    absolute_path,
    no_nul,
    parse_memory,
)
from paid.state.builds import Build
from paid.state.configs import ConfigMount, env_file_name
from paid.state.container_fields import (
    HOSTNAME,
    SECURITY_OPTS,
    SYSCTL,
    ULIMITS,
    USER,
    Capabilities,
    Dns,
    ExtraHost,
    Logging,
    Tmpfs,
    Ulimit,
    _parse_ulimit,
)
from paid.state.images import parse_reference
from paid.state.networks import AttachmentField
from paid.state.secrets import SecretFile, SecretFileMount
from paid.state.shorthands import (
    Port,
    PortMapping,
    Resources,
    Volume,
    VolumeMount,
    expand_port_ranges,
)
from paid.state.steering import (
    Backup,
    BackupConsistency,
    ImageUpdate,
    Probe,
    PullPolicy,
    RestartPolicy,
    Rollout,
    RolloutStrategy,
    Slo,
    cron_fields,
)
from paid.state.versions import in_range

ServiceName = NewType("ServiceName", str)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
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


def _check_image(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not an image reference")
    return value


def _moving(image: str) -> str | None:
    """Why ``image`` names no one image (no tag, or ``latest``); None when it is pinned enough."""
    match = _IMAGE.fullmatch(image)
    if match is None or match["digest"] is not None:
        return None
    if match["tag"] is None:
        return "has no tag"
    return "is 'latest', which moves" if match["tag"] == "latest" else None


class Metadata(Model):
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
            no_nul(item, f"label {key}")
        return value


class ServiceSpec(Model):
    # Before image, which is checked against them (the shape's keys are sorted anyway).
    image_update: ImageUpdate | None = None
    build: Build | None = None  # the loader names the image it builds (paid.state.builds)
    image: str = Field(default="", validate_default=True)
    image_pull_policy: PullPolicy | None = None  # see pull_policy
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretFile] = Field(default_factory=dict)
    secrets: list[SecretFileMount] = Field(default_factory=list)
    ports: Annotated[list[Port], BeforeValidator(expand_port_ranges)] = Field(default_factory=list)
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
    # Networks: none named means the default network (``--default-network``).
    networks: list[AttachmentField] = Field(default_factory=list)
    host_network: bool = False
    # Files from the repository (relative to the YAML file's directory):
    configs: list[ConfigMount] = Field(default_factory=list)
    env_files: list[Annotated[str, AfterValidator(env_file_name)]] = Field(default_factory=list)

    @property
    def pull_policy(self) -> PullPolicy:
        """``imagePullPolicy``; unset: Always for a service following its tag, else IfNotPresent."""
        if self.image_pull_policy is not None:
            return self.image_pull_policy
        return PullPolicy.ALWAYS if self.image_update else PullPolicy.IF_NOT_PRESENT

    @model_validator(mode="after")
    def _follows_a_tag(self) -> Self:
        if self.image_update is None:
            return self
        if self.build is not None:
            raise ValueError("imageUpdate: a built image has no registry tag to follow")
        if "@" in self.image:
            raise ValueError(
                "imageUpdate: the image is pinned by digest; there is no tag to follow"
            )
        if self.image_pull_policy is PullPolicy.NEVER:
            raise ValueError("imageUpdate: imagePullPolicy Never cannot fetch a new digest")
        wanted = self.image_update.range
        if self.image_update.policy == "semver" and wanted is not None:
            tag = parse_reference(self.image).tag or ""
            if not in_range(tag, wanted):
                raise ValueError(
                    f"imageUpdate: with policy semver, the image's tag is the version it starts "
                    f"from and must be one in range {wanted!r} ({tag!r} is not)"
                )
        return self

    @model_validator(mode="after")
    def _one_network_mode(self) -> Self:
        names = [n.name for n in self.networks]
        if len(names) != len(set(names)):
            raise ValueError("networks: a network is named twice")
        if self.host_network and self.networks:
            raise ValueError("hostNetwork: a container on the host's network joins no other")
        if self.host_network and self.ports:
            raise ValueError(
                "hostNetwork: the container listens on the host's ports itself; remove ports"
            )
        return self

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not USER.fullmatch(value):
            raise ValueError(f"user {value!r} is not 'name', 'uid' or 'uid:gid'")
        return value

    @field_validator("working_dir")
    @classmethod
    def _working_dir(cls, value: str | None) -> str | None:
        return None if value is None else absolute_path(value, "workingDir")

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not HOSTNAME.fullmatch(value)):
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
            if not SYSCTL.fullmatch(name):
                raise ValueError(f"{name!r} is not a sysctl name such as net.core.somaxconn")
            no_nul(setting, f"sysctl {name}")
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
    def _pinned(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            if info.data.get("build") is None:
                raise ValueError("an image, or a build to make one, is required")
            return value
        _check_image(value)
        why = _moving(value)
        if why is not None and info.data.get("image_update") is None:
            raise ValueError(
                f"{value!r} {why}: pin a version tag or a digest, or follow the tag by "
                "digest through the health gate with imageUpdate: {policy: registry}"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"environment variable name {key!r} is not valid")
            no_nul(item, f"the value of {key}")
        return value

    @field_validator("command", "args")
    @classmethod
    def _no_nul_in_argv(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            no_nul(item, "an argument")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_names(cls, value: dict[str, SecretFile]) -> dict[str, SecretFile]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"secret name {key!r} is not a valid environment variable name")
        return value

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
        targets = [c.target for c in self.configs]
        if len(targets) != len(set(targets)) or set(targets) & set(destinations):
            raise ValueError("configs: two configs, or a config and a volume, share a target")
        paths = [m.path for m in self.secrets] + [f"/run/secrets/{k}" for k in self.secret_env]
        if len(paths) != len(set(paths)) or set(paths) & (set(targets) | set(destinations)):
            raise ValueError("secrets: two secrets, or a secret and a mount, share a target")
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
            "image_pull_policy",  # when to pull, not what runs: no container replaced for it
            "image_update",  # what runs is the digest (``imageDigest`` in the shape)
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
            "hostNetwork", "configs", "envFiles", "secrets", "build",
        }
    )  # fmt: skip

    def container_shape(self) -> dict[str, Any]:
        """The normalized, JSON-ready fields that define the container."""
        shape = self.model_dump(mode="json", by_alias=True, exclude=set(self.CONTROLLER_FIELDS))
        for name in self.ADDED_FIELDS:
            if shape.get(name) in (None, False, [], {}):
                shape.pop(name, None)
        # A secret's source that is not given stays out, as before ``encrypted``
        # existed: a spec's hash does not change with paid's version.
        for entry in [*shape.get("secretEnv", {}).values(), *shape.get("secrets", [])]:
            for key in ("file", "encrypted"):
                if entry.get(key) is None:
                    entry.pop(key, None)
        return shape


class ServiceDocument(Model):
    api_version: Literal["paid/v1"]
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec


__all__ = [  # what other modules import from here, models defined beside included
    "NAME_PATTERN", "Backup", "BackupConsistency", "PortMapping", "Probe", "PullPolicy",
    "RestartPolicy",
    "RolloutStrategy", "ServiceDocument", "ServiceName", "ServiceSpec", "VolumeMount",
    "cron_fields", "parse_memory", "signal_number",
]  # fmt: skip
