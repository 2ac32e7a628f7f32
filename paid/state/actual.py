"""The actual side: what Podman reports, reduced to what a diff needs.

Built from one list call. Nothing here asks Podman for more: a field that
would need an inspect per container does not belong in this model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paid.state import labels
from paid.state.specs import PortMapping

# Podman's container states, as the list endpoint spells them.
RUNNING = "running"
PAUSED = "paused"
NOT_STARTED = frozenset({"created", "configured", "initialized"})
EXITED = frozenset({"exited", "stopped"})


@dataclass(frozen=True, slots=True)
class ActualContainer:
    """One container as Podman lists it."""

    id: str
    name: str
    image: str
    state: str
    exit_code: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    image_id: str = ""
    published: tuple[PortMapping, ...] = ()  # host ports, as the list call reports them
    foreign: bool = False  # paid's, but another instance's: as good as unmanaged here
    networks: tuple[str, ...] | None = None  # the networks it is on; None: not reported
    created_at: float | None = None  # epoch seconds, when Podman reports it
    started_at: float | None = None  # epoch seconds of the last start; None: never started
    pid: int | None = None  # its main process on Podman's host, while it runs

    @property
    def managed(self) -> bool:
        """Paid's and this instance's: the only containers paid may change."""
        return self.labels.get(labels.MANAGED) == "true" and not self.foreign

    @property
    def instance(self) -> str:
        return self.labels.get(labels.INSTANCE) or labels.DEFAULT_INSTANCE

    def seen_by(self, instance: str) -> ActualContainer:
        """This container as the paid of ``instance`` sees it (foreign if another's)."""
        mine = self.labels.get(labels.MANAGED) != "true" or self.instance == instance
        return self if mine == (not self.foreign) else replace(self, foreign=not mine)

    @property
    def spec_hash(self) -> str | None:
        return self.labels.get(labels.SPEC_HASH)

    @property
    def revision(self) -> int | None:
        value = self.labels.get(labels.REVISION, "")
        return int(value) if value.isdigit() else None

    @property
    def shape(self) -> Mapping[str, Any] | None:
        """The container shape recorded at creation, when readable."""
        try:
            value = json.loads(self.labels.get(labels.SPEC, ""))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
