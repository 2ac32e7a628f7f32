"""The fields that steer paid, not the container: probes, rollout, backups, SLOs.

They are outside the spec hash: changing them never replaces a running
container (``paid plan`` shows such a change as an ``update``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator

from paid.state.basics import Model
from paid.state.shorthands import Port
from paid.state.versions import version_range


class HttpGetAction(Model):
    port: int = Field(ge=1, le=65535)
    path: str = "/"
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"

    @field_validator("path")
    @classmethod
    def absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value


class TcpSocketAction(Model):
    port: int = Field(ge=1, le=65535)
    host: str | None = None


class ExecAction(Model):
    command: list[str] = Field(min_length=1)


class Probe(Model):
    """A Kubernetes-style probe: exactly one handler plus its timing."""

    http_get: HttpGetAction | None = None
    tcp_socket: TcpSocketAction | None = None
    exec: ExecAction | None = None
    initial_delay_seconds: int = Field(default=0, ge=0, le=86_400)
    # Compose's start_period: probes run at once, failures inside it do not
    # count, and the first success ends it (initialDelaySeconds waits instead).
    start_period_seconds: int = Field(default=0, ge=0, le=86_400)
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


class PullPolicy(StrEnum):
    """When paid pulls a service's image, as Kubernetes' imagePullPolicy."""

    IF_NOT_PRESENT = "IfNotPresent"  # pull only when the image is not on the host
    ALWAYS = "Always"  # pull before every create: a moved tag is fetched
    NEVER = "Never"  # never pull: an absent image is an error


_DURATION = re.compile(r"^\s*(?P<value>[0-9]+)\s*(?P<unit>[smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_MINIMUM_AGE = 365 * 86400


def parse_duration(value: object) -> object:
    """``72h``, ``30m``, ``3d``, ``2w``, ``90s`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 72h, 3d or 30m")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return value
    found = _DURATION.fullmatch(value)
    if found is None:
        raise ValueError(f"{value!r} is not a duration such as 72h, 3d or 30m")
    return int(found["value"]) * _SECONDS[found["unit"]]


class ImageUpdate(Model):
    """``imageUpdate``: follow the image in its registry, each new digest health-gated.

    ``registry``: the tag's digest. ``semver``: the highest tag of the
    repository in ``range`` (npm's syntax: ``>=1.4 <2``, ``~1.4``, ``^1.4``).
    ``minimumAge``: a new digest waits until it was published (the image's
    creation time, or when paid first saw it, whichever is later) that long.
    """

    policy: Literal["registry", "semver"] = "registry"
    range: str | None = Field(default=None, min_length=1, max_length=256)
    minimum_age: Annotated[int, BeforeValidator(parse_duration)] | None = Field(
        default=None, ge=0, le=MAX_MINIMUM_AGE
    )

    @field_validator("range")
    @classmethod
    def _npm_range(cls, value: str | None) -> str | None:
        if value is not None:
            version_range(value)  # raises ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _range_for_semver(self) -> Self:
        if self.policy == "semver" and self.range is None:
            raise ValueError(
                'policy semver follows versions in a range: give range, e.g. ">=1.4 <2"'
            )
        if self.policy == "registry" and self.range is not None:
            raise ValueError("range is for policy semver; policy registry follows one tag")
        return self


class RolloutStrategy(StrEnum):
    RECREATE = "Recreate"  # stop the old, then start the new: a short gap, one copy at a time
    START_FIRST = (
        "StartFirst"  # the new beside the old under its DNS names; the old goes once ready
    )
    CANARY = "Canary"


class CanaryAnalysis(Model):
    """One Prometheus query the canary is judged by, with its bounds."""

    prometheus: str = Field(min_length=1, max_length=2048)
    query: str = Field(min_length=1, max_length=8192)
    max: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("prometheus")
    @classmethod
    def _http_url(cls, value: str) -> str:
        scheme, _, rest = value.partition("://")
        if scheme not in ("http", "https") or not rest or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL of a Prometheus server")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.max is None and self.min is None:
            raise ValueError("needs max, min or both: the bounds the query's value must keep")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class Canary(Model):
    ports: list[Port] = Field(default_factory=list)
    duration_seconds: int = Field(default=60, ge=1)
    # How often each analysis query is evaluated while the canary runs.
    interval_seconds: int = Field(default=10, ge=1, le=3600)
    analysis: list[CanaryAnalysis] = Field(default_factory=list, max_length=32)


class Rollout(Model):
    strategy: RolloutStrategy = RolloutStrategy.RECREATE
    min_ready_seconds: int = Field(default=10, ge=0)
    progress_deadline_seconds: int = Field(default=600, ge=1)
    auto_rollback: bool = True
    canary: Canary | None = None
    # StartFirst: how long the old copy keeps serving after the new one is ready.
    drain_seconds: int = Field(default=5, ge=0, le=3600)
    # StartFirst: two copies may use the service's volumes at once.
    shared_volumes: bool = False

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
    # Imported here: APScheduler brings asyncio, which a file without a schedule never needs.
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

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


class Backup(Model):
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


class Slo(Model):
    """An availability objective, measured from the readiness record."""

    availability: float = Field(gt=0, lt=100)  # percent: 99.9
    window_days: int = Field(default=30, ge=1, le=365)
