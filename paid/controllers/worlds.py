"""The values of the reconcile contract: requests' keys, the world, steps and results.

See ``paid.controllers.reconciling`` for the contract itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from paid.state.actual import ActualContainer
from paid.state.desired import DesiredState
from paid.state.images import ImageTarget
from paid.state.plans import Action
from paid.storage.flags import Flags

if TYPE_CHECKING:  # types only: the values stay free of the controllers and the store
    from paid.controllers.networks import NetworkResult
    from paid.controllers.services import ActionResult
    from paid.storage.checkout import Checkout
    from paid.storage.store import Hold

FULL = "*"  # the key of a full pass
PRUNE = "*prune"  # the key of the guarded removal of orphans


class StepKind(StrEnum):
    HELD = "held"
    ROLLOUT = "rollout"
    CANARY_CLEANUP = "canary_cleanup"
    RESUME_BESIDE = "resume_beside"
    RESUME = "resume"
    WAIT = "wait"
    BACK_OFF = "back_off"
    QUARANTINED = "quarantined"
    ROLL_OUT = "roll_out"
    EXECUTE = "execute"
    ORPHAN = "orphan"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Step:
    """What a reconcile of one service does now, and why."""

    kind: StepKind
    service: str
    action: Action | None = None  # the change it makes (or will, once unblocked)
    reason: str = ""
    wait: float = 0.0  # BACK_OFF: seconds left
    waiting_on: tuple[str, ...] = ()  # WAIT: the dependencies not ready yet

    @property
    def withheld(self) -> bool:
        """A change is due but held back (by a hold or a back-off)."""
        held_back = (StepKind.HELD, StepKind.BACK_OFF, StepKind.QUARANTINED)
        return self.action is not None and self.kind in held_back


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks of its driver (see the module docstring)."""

    requeue_after: float | None = None
    error: str | None = None
    step: Step | None = None  # service keys: the step taken
    enqueue: tuple[str, ...] = ()  # FULL: keys that need work
    notes: tuple[str, ...] = ()  # FULL: guards that held something back
    # An error only a change mends (a stranger's container holds the name): not retried
    # until the world or the desired state changes, which ``fingerprints`` tell.
    terminal: bool = False
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # key -> what it hinges on


@dataclass(frozen=True, slots=True)
class World:
    """One observation, read fresh for every request."""

    desired: DesiredState  # enforced: desired with pins and quarantines applied
    requested: DesiredState  # as the directory says
    actual: tuple[ActualContainer, ...]
    holds: Mapping[str, Hold] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)  # service -> pinned / quarantined
    expired_pins: tuple[str, ...] = ()
    frozen: frozenset[str] = frozenset()  # quarantined, nothing good to go back to: hands off
    prune: bool = True  # removals allowed: the directory is valid and the flag on
    by_name: Mapping[str, ActualContainer] = field(default_factory=dict)
    looked_up: frozenset[str] | None = None  # a partial view: the names looked up; None: all
    scope: frozenset[str] | None = None  # a partial view: the services it is about; None: all
    unresolved: Mapping[str, str] = field(default_factory=dict)  # service -> why no digest
    # Following services' tags whose digest this observation learnt: a full pass records them.
    learnt: Mapping[str, ImageTarget] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        desired: DesiredState,
        actual: Sequence[ActualContainer],
        *,
        requested: DesiredState | None = None,
        holds: Mapping[str, Hold] | None = None,
        notes: Mapping[str, str] | None = None,
        expired_pins: tuple[str, ...] = (),
        frozen: frozenset[str] = frozenset(),
        prune: bool = True,
        looked_up: frozenset[str] | None = None,
        scope: frozenset[str] | None = None,
        unresolved: Mapping[str, str] | None = None,
        learnt: Mapping[str, ImageTarget] | None = None,
    ) -> World:
        by_name: dict[str, ActualContainer] = {}
        for container in actual:
            by_name.setdefault(container.name, container)
        return cls(
            desired=desired,
            requested=requested or desired,
            actual=tuple(actual),
            holds=dict(holds or {}),
            notes=dict(notes or {}),
            expired_pins=expired_pins,
            frozen=frozen,
            prune=prune,
            by_name=by_name,
            looked_up=looked_up,
            scope=scope,
            unresolved=dict(unresolved or {}),
            learnt=dict(learnt or {}),
        )


@dataclass
class Hooks:
    """What the drivers hear about; every hook is optional."""

    action: Callable[[ActionResult], None] = lambda result: None
    rollout_finished: Callable[[str, str, str], None] = lambda service, result, why: None
    restarted: Callable[[str, str], None] = lambda service, why: None  # why: crash | liveness
    observed: Callable[[World], None] = lambda world: None
    network: Callable[[NetworkResult], None] = lambda result: None  # a network action taken
    # A probe's verdict changed: (service, kind, passing, detail), from the probe threads.
    probe_transition: Callable[[str, str, bool, str], None] = lambda *args: None
    probe: Callable[[str, float], None] = lambda kind, seconds: None  # a probe took so long
    image_result: Callable[[str, str], None] = lambda service, result: None  # updated, ...
    analysis: Callable[[str, str], None] = lambda service, judgement: None  # a canary query


@dataclass(frozen=True, slots=True)
class Wants:
    """What the reconciler enforces, read afresh at every observation, and what it may do."""

    desired: Callable[[], DesiredState | None]
    checkout: Callable[[], Checkout | None] = lambda: None
    flags: Callable[[], Flags] = Flags
    prune_allowed: Callable[[], bool] = lambda: True
    allow_mass_prune: bool = False
    allowed_host_paths: tuple[str, ...] = ()
