"""The rules: which step a service takes, as a pure function of one observation.

``step(name, world, facts)`` reads nothing but its arguments: the
``World`` (containers, desired state, holds, pins and quarantines) and the
``Facts`` the controllers know at that moment (rollouts in progress,
health, back-off remainders, what revisions recorded). It imports no
store, runtime, registry or clock, so the rules are tested as a table
(``tests/unit/test_rules.py``) and ``paid plan`` takes the same steps as
``paid apply``. The first rule that applies wins, in this order:

1. ``HELD``: a backup or restore holds the service;
2. ``ROLLOUT``: a rollout of it is under way;
3. ``CANARY_CLEANUP``: a canary of it that no rollout judges;
4. ``RESUME_BESIDE``: a StartFirst copy no rollout judges (it takes over or goes);
5. ``RESUME``: a container kept aside by an interrupted rollout;
6. ``ORPHAN``: no longer desired (the prune decides);
7. ``IDLE``: nothing to do (steering fields unchanged);
8. ``QUARANTINED``: a change to a revision that failed, with nothing to go back to;
9. ``WAIT``: its dependencies are not ready;
10. ``BACK_OFF`` / ``ROLL_OUT``: a change through the health gate, unless a
    failed first deploy is still backing off;
11. ``BACK_OFF`` / ``EXECUTE``: a restart waits out the crash back-off;
    anything else is done at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paid.controllers.worlds import Step, StepKind, World
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.diffing import decide, field_changes
from paid.state.plans import Action, ActionKind, Change, ServiceDecision
from paid.state.specs import ServiceSpec
from paid.storage.documents import to_document


@dataclass(frozen=True, slots=True)
class Facts:
    """What the controllers know beside the world, read at one moment (``Reconciler.facts``)."""

    rolling_out: Mapping[str, str] = field(default_factory=dict)  # service -> gate phase
    ready: frozenset[str] = frozenset()  # services whose readiness passes
    unhealthy: Mapping[str, str] = field(default_factory=dict)  # service -> failed probe
    first_deploy_wait: Mapping[str, float] = field(default_factory=dict)  # seconds left
    crash_wait: Mapping[str, float] = field(default_factory=dict)  # seconds left
    proven: frozenset[str] = frozenset()  # services whose desired revision once succeeded
    recorded: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # running spec


def step(name: str, world: World, facts: Facts) -> Step:
    """What a reconcile of ``name`` does now, from ``world`` and ``facts`` alone."""
    hold = world.holds.get(name)
    service = world.desired.services.get(name)  # type: ignore[call-overload]
    if hold is not None:
        return Step(
            StepKind.HELD,
            name,
            _decide(name, world, facts).action,
            f"held by pid {hold.pid} for a {hold.reason}: paid leaves it alone",
        )
    if service is not None:
        if name in facts.rolling_out:
            return Step(StepKind.ROLLOUT, name, reason=facts.rolling_out[name])
        canary = world.by_name.get(labels.canary_name(name))
        if canary is not None and canary.managed and owned_by(canary, name):
            return Step(
                StepKind.CANARY_CLEANUP,
                name,
                Action(ActionKind.REMOVE, canary.name, "a canary nobody judges"),
                "a canary left by a paid that stopped",
            )
        beside = world.by_name.get(labels.next_name(name))
        if beside is not None and beside.managed and owned_by(beside, name):
            return Step(
                StepKind.RESUME_BESIDE,
                name,
                Action(ActionKind.RECREATE, name, "settling an interrupted StartFirst rollout"),
                "a copy started beside the old one by an interrupted rollout",
            )
        aside = world.by_name.get(labels.aside_name(name))
        if aside is not None and aside.managed and owned_by(aside, name):
            return Step(
                StepKind.RESUME,
                name,
                Action(ActionKind.RECREATE, name, "finishing an interrupted rollout"),
                "a container kept aside by an interrupted rollout",
            )
    decision = _decide(name, world, facts)
    if decision.orphan:
        return Step(StepKind.ORPHAN, name, reason="no longer desired: the prune decides")
    action = decision.action
    if action is None and service is not None:
        action = steering_update(service, world, facts.recorded.get(name))
    if action is None:
        return Step(StepKind.IDLE, name)
    if action.kind is ActionKind.RECREATE and name in world.frozen:
        return Step(StepKind.QUARANTINED, name, action, world.notes.get(name, "quarantined"))
    if decision.waiting_on:
        return Step(
            StepKind.WAIT,
            name,
            action,
            f"waiting for {', '.join(decision.waiting_on)} to be ready",
            waiting_on=decision.waiting_on,
        )
    if service is not None and gated(action, name, facts):
        wait = facts.first_deploy_wait.get(name, 0.0)
        if wait > 0:
            return Step(StepKind.BACK_OFF, name, action, "first deploy failed", wait=wait)
        return Step(StepKind.ROLL_OUT, name, action, action.reason)
    if action.kind is ActionKind.RESTART:
        wait = facts.crash_wait.get(name, 0.0)
        if wait > 0:
            return Step(StepKind.BACK_OFF, name, action, action.reason, wait=wait)
    return Step(StepKind.EXECUTE, name, action, action.reason)


def gated(action: Action, name: str, facts: Facts) -> bool:
    """Spec changes, and first deploys of a revision never proven, go through the health gate."""
    if action.kind is ActionKind.RECREATE:
        return True
    return action.kind is ActionKind.CREATE and name not in facts.proven


def steering_update(
    service: DesiredService, world: World, recorded: Mapping[str, Any] | None
) -> Action | None:
    """Fields that steer paid (probes, rollout, dependsOn, ...) changed: record them.

    They are outside the spec hash, so the container stays; the revision's
    stored document (``recorded``, its spec) is brought up to date, which
    is what ``apply`` changes.
    """
    container = world.by_name.get(service.name)
    if container is None or not container.managed or container.revision is None:
        return None
    if container.spec_hash != service.spec_hash or recorded is None:
        return None
    changes = steering_changes(recorded, service)
    if not changes:
        return None
    return Action(
        ActionKind.UPDATE,
        service.name,
        "fields that steer paid changed (no container replaced)",
        tuple(sorted({c.path.split(".")[1] for c in changes})),
        changes,
    )


def steering_changes(recorded: Mapping[str, Any], service: DesiredService) -> tuple[Change, ...]:
    """The controller fields of ``service`` that differ from a revision's recorded spec."""
    now = to_document(service)["spec"]
    fields = ServiceSpec.model_fields
    names = [fields[n].alias or n for n in ServiceSpec.CONTROLLER_FIELDS]
    return field_changes({k: recorded.get(k) for k in names}, {k: now.get(k) for k in names})


def owned_by(container: ActualContainer, service: str) -> bool:
    """A container paid made for ``service`` (its labels say so, not its name)."""
    return container.labels.get(labels.SERVICE) == service


def _decide(name: str, world: World, facts: Facts) -> ServiceDecision:
    return decide(
        world.desired,
        name,
        world.by_name,
        ready=facts.ready.__contains__,
        unhealthy=facts.unhealthy,
    )
