"""``kind: Notifier``: which events, for which services, go to which targets.

A target's URL (an Apprise URL: ``slack://``, ``ntfy://``, ``json://`` ...)
carries a token, so the desired state names only the file that holds it:
a file of the secrets directory (``urlFile``) or an age-encrypted file of
the repository (``urlEncrypted``). The URL itself is read when a message
is sent and nowhere else: never in plans, status, logs or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, field_validator, model_validator

from paid.state.basics import Model
from paid.state.secrets import SecretFile, repository_path, secret_file_name
from paid.state.specs import NAME_PATTERN

NotifyEvent = Literal[
    "rollout_failed",
    "rolled_back",
    "quarantined",
    "image_updated",
    "image_update_rolled_back",
    "service_down",
    "slo_burn",
    "desired_state_invalid",
    "daemon_lost",
    "backup_failed",
]
DOWN_FOR_SECONDS: Final = 60
MAX_DOWN_FOR_SECONDS: Final = 7 * 86400


class NotifyTarget(Model):
    """Where messages go: the file holding one Apprise URL."""

    url_file: str | None = None
    url_encrypted: str | None = None

    @field_validator("url_file")
    @classmethod
    def _in_secrets(cls, value: str | None) -> str | None:
        return None if value is None else secret_file_name(value)

    @field_validator("url_encrypted")
    @classmethod
    def _in_repository(cls, value: str | None) -> str | None:
        return None if value is None else repository_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url_file is None) == (self.url_encrypted is None):
            raise ValueError("give exactly one of urlFile (secrets directory) or urlEncrypted")
        return self

    @property
    def secret(self) -> SecretFile:
        """Where its URL is read, as a secret is."""
        if self.url_file is not None:
            return SecretFile(file=self.url_file)
        return SecretFile(encrypted=self.url_encrypted)


class ServiceSelector(Model):
    match_labels: dict[str, str] = Field(default_factory=dict)


class NotifierSpec(Model):
    events: list[NotifyEvent] = Field(default_factory=list)  # none: every event
    services: ServiceSelector | None = None  # none: every service
    targets: Annotated[list[NotifyTarget], Field(min_length=1, max_length=20)]
    down_for_seconds: int = Field(default=DOWN_FOR_SECONDS, ge=1, le=MAX_DOWN_FOR_SECONDS)

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[NotifyEvent]) -> list[NotifyEvent]:
        twice = sorted({e for e in value if value.count(e) > 1})
        if twice:
            raise ValueError(f"events listed twice: {', '.join(twice)}")
        return value


class NotifierMetadata(Model):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    labels: dict[str, str] = Field(default_factory=dict)


class NotifierDocument(Model):
    api_version: Literal["paid/v1"]
    kind: Literal["Notifier"]
    metadata: NotifierMetadata
    spec: NotifierSpec


@dataclass(frozen=True, slots=True)
class DesiredNotifier:
    """One valid ``Notifier`` document."""

    name: str
    spec: NotifierSpec
    source: str = ""  # "file:line"
    labels: Mapping[str, str] = field(default_factory=dict)

    def wants(self, event: str, service_labels: Mapping[str, str] | None) -> bool:
        """Whether ``event`` (of a service with ``service_labels``, or of none) is for it.

        An event of no service (the desired state, the daemon) goes to every
        notifier that lists it, whatever its service selector.
        """
        if self.spec.events and event not in self.spec.events:
            return False
        selector = self.spec.services
        if selector is None or not selector.match_labels or service_labels is None:
            return True
        return all(service_labels.get(k) == v for k, v in selector.match_labels.items())

    def target_names(self) -> dict[str, NotifyTarget]:
        """Each target by a name that is safe to show: the notifier and the URL's file."""
        return {f"{self.name}/{t.secret.source}": t for t in self.spec.targets}

    def to_document(self) -> dict[str, Any]:
        return {
            "apiVersion": "paid/v1",
            "kind": "Notifier",
            "metadata": {"name": self.name, "labels": dict(self.labels)},
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
