"""``paid plan``: the reconciler's own steps, taken by nobody.

A plan is what ``paid apply`` would do from one observation: the network
changes, the guarded removals, and for every service the step
``Reconciler.step`` would take.
What a guard holds back is listed apart, with its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid.controllers.worlds import World
from paid.runtime.base import RuntimeFailure
from paid.state.diffing import decide, diff
from paid.state.plans import Action, ActionKind, Plan

if TYPE_CHECKING:
    from paid.controllers.reconciling import Reconciler


def plan(reconciler: Reconciler, world: World) -> Plan:
    """What ``paid apply`` would do from ``world``: every service's step, and the prune.

    ``withheld`` holds what a guard keeps back: removals past the
    mass-prune guard, and changes of services that are held, backing
    off, or kept on another revision (quarantined, pinned).
    """
    full = diff(world.desired, world.actual, allow_mass_prune=reconciler.allow_mass_prune)
    removals = tuple(a for a in full.actions if a.kind is ActionKind.REMOVE)
    actions: list[Action] = list(removals) if world.prune else []
    withheld: list[Action] = list(full.withheld) if world.prune else []
    notes = list(full.notes) if world.prune else []
    if removals and not world.prune:
        notes.append("removals are off (invalid desired state or the prune flag)")
        withheld.extend(removals)
    for service in world.desired:
        step = reconciler.step(service.name, world)
        if step.action is None:
            pass
        elif step.withheld:
            withheld.append(_because(step.action, step.reason))
        else:
            actions.append(step.action)
        note = world.notes.get(service.name)
        if note is not None:
            wanted = decide(world.requested, service.name, world.by_name).action
            if wanted is not None and wanted != step.action:
                withheld.append(_because(wanted, note))
    for name, why in sorted(world.unresolved.items()):
        notes.append(
            f"{name}: the digest its tag points at is not known ({why}); it is shown by tag"
        )
    try:
        networks = reconciler.networks.plan(world.desired, world.actual, prune=world.prune)
    except RuntimeFailure as err:
        networks = ()
        notes.append(f"networks could not be listed: {err}")
    return Plan(
        actions=tuple(actions), withheld=tuple(withheld), notes=tuple(notes), networks=networks
    )


def _because(action: Action, reason: str) -> Action:
    return Action(action.kind, action.service, reason, action.changed)
