"""A plan: what it takes to move the actual state to the desired one.

Plans are values. They say what to do and why; the executor in
``paid.controllers.services`` does it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from paid.state.networks import NetworkAction, NetworkActionKind


class ActionKind(StrEnum):
    CREATE = "create"  # no container holds the name
    RECREATE = "recreate"  # the container's spec hash differs: replace it, stop-first
    START = "start"  # the right container, not running
    RESTART = "restart"  # the right container, running but unhealthy
    REMOVE = "remove"  # a managed container no longer desired
    STOP = "stop"  # the service is disabled (enabled: false): stopped, kept
    CONFLICT = "conflict"  # an unmanaged container holds a desired name: left alone
    UPDATE = "update"  # only fields that steer paid changed: recorded, no container replaced


MUTATING = frozenset(
    {
        ActionKind.CREATE,
        ActionKind.RECREATE,
        ActionKind.START,
        ActionKind.RESTART,
        ActionKind.REMOVE,
        ActionKind.STOP,
        ActionKind.UPDATE,
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs: its dotted path, and its old and new values."""

    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    service: str
    reason: str
    changed: tuple[str, ...] = ()  # for recreate: the top-level fields that differ
    changes: tuple[Change, ...] = ()  # field by field, old -> new (secrets never shown)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": str(self.kind), "service": self.service}
        out["reason"] = self.reason
        if self.changed:
            out["changed"] = list(self.changed)
        if self.changes:
            out["changes"] = [c.to_json() for c in self.changes]
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    """Actions in the order to apply them, and what a guard held back."""

    actions: tuple[Action, ...] = ()
    withheld: tuple[Action, ...] = ()  # not to be applied; see ``notes``
    notes: tuple[str, ...] = field(default=())
    networks: tuple[NetworkAction, ...] = ()  # applied before any container action

    @property
    def empty(self) -> bool:
        """True when the host already matches: nothing to do, nothing held back."""
        return not self.actions and not self.withheld and not self.networks

    @property
    def mutating(self) -> tuple[Action | NetworkAction, ...]:
        changes = tuple(n for n in self.networks if n.kind is not NetworkActionKind.CONFLICT)
        return changes + tuple(a for a in self.actions if a.kind in MUTATING)

    @property
    def conflicts(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind is ActionKind.CONFLICT)

    def to_json(self) -> dict[str, Any]:
        return {
            "networks": [n.to_json() for n in self.networks],
            "actions": [a.to_json() for a in self.actions],
            "withheld": [a.to_json() for a in self.withheld],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class ServiceDecision:
    """What one service needs now, for a targeted reconcile."""

    action: Action | None = None
    waiting_on: tuple[str, ...] = ()  # dependencies not running yet: act later
    orphan: bool = False  # managed but not desired: the (guarded) prune decides
