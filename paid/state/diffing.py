"""``diff(desired, actual) -> Plan``: the pure heart of paid.

No Podman, no clock, no logging, no randomness: the same inputs give the
same plan, in the same order, every time. Reconciliation is level-based:
whatever woke the controller, the plan is computed from the whole of both
sides.

Drift is judged from the ``paid.spec-hash`` label, never from inspect
fields that Podman fills with its own defaults. The ``paid.spec`` label
only serves to name the fields that changed.

Ordering: removals first (an orphan may hold a port a new service needs),
then the desired services in dependency order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from paid.state import actual as states
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService, DesiredState
from paid.state.plans import Action, ActionKind, Change, Plan, ServiceDecision
from paid.state.specs import RestartPolicy

MASS_PRUNE_OVERRIDE = "--allow-mass-prune"


def diff(
    desired: DesiredState,
    actual: Iterable[ActualContainer],
    *,
    allow_mass_prune: bool = False,
) -> Plan:
    """Compute the plan that converges ``actual`` to ``desired``.

    A plan that would remove half of the managed services or more (an
    emptied or broken checkout) keeps those removals in ``withheld`` and
    says why, unless ``allow_mass_prune`` is set.
    """
    by_name: dict[str, ActualContainer] = {}
    for container in actual:
        by_name.setdefault(container.name, container)

    # A container kept aside by a rollout, or started beside, belongs to its service's rollout,
    # unless the service itself is gone.
    managed = sorted(
        name
        for name, c in by_name.items()
        if c.managed
        and not any(
            name.endswith(suffix) and name.removesuffix(suffix) in desired
            for suffix in (labels.ASIDE_SUFFIX, labels.NEXT_SUFFIX)
        )
        and not (c.labels.get(labels.CANARY) == "true" and c.labels.get(labels.SERVICE) in desired)
    )
    removals = tuple(
        Action(ActionKind.REMOVE, name, "no longer in the desired state")
        for name in managed
        if name not in desired
    )
    notes: list[str] = []
    withheld: tuple[Action, ...] = ()
    if removals and not allow_mass_prune and len(removals) * 2 >= len(managed):
        withheld, removals = removals, ()
        notes.append(
            f"mass-prune guard: {len(withheld)} of {len(managed)} managed services would be "
            f"removed; nothing removed (pass {MASS_PRUNE_OVERRIDE} if this is intended)"
        )

    actions = list(removals)
    for service in desired:
        action = _diff_service(service, by_name.get(service.name))
        if action is not None:
            actions.append(action)
    return Plan(actions=tuple(actions), withheld=withheld, notes=tuple(notes))


_STARTS = frozenset({ActionKind.CREATE, ActionKind.RECREATE, ActionKind.START, ActionKind.RESTART})


def decide(
    desired: DesiredState,
    name: str,
    actual: Iterable[ActualContainer] | Mapping[str, ActualContainer],
    *,
    ready: Callable[[str], bool] | None = None,
    unhealthy: Mapping[str, str] | None = None,
) -> ServiceDecision:
    """The decision for one service, as the daemon's targeted reconcile needs it.

    Removal is never decided here: whether an orphan may go depends on all
    the others (the mass-prune guard), so it is left to a full diff. A
    running container in ``unhealthy`` (its liveness or startup probe
    failed) is restarted. Anything that would start the service waits
    until the services it depends on are ready (per ``ready``; running,
    without it). ``actual`` may be the listing or a mapping of it by name.
    """
    by_name = actual if isinstance(actual, Mapping) else {c.name: c for c in actual}
    service = desired.services.get(name)  # type: ignore[call-overload]
    if service is None:
        container = by_name.get(name)
        return ServiceDecision(orphan=container is not None and container.managed)
    container = by_name.get(name)
    action = _diff_service(service, container)
    if action is None and unhealthy and name in unhealthy and container is not None:
        action = Action(ActionKind.RESTART, name, unhealthy[name])
    if action is None or action.kind not in _STARTS:
        return ServiceDecision(action=action)

    def is_ready(dep: str) -> bool:
        return _runs_desired(by_name.get(dep)) and (ready is None or ready(dep))

    waiting = tuple(dep for dep in service.spec.depends_on if not is_ready(dep))
    return ServiceDecision(action=action, waiting_on=waiting)


def _runs_desired(container: ActualContainer | None) -> bool:
    return container is not None and container.managed and container.state == states.RUNNING


def _diff_service(service: DesiredService, container: ActualContainer | None) -> Action | None:
    name = service.name
    if container is None:
        if not service.spec.enabled:
            return None
        return Action(ActionKind.CREATE, name, "no container")
    if not container.managed:
        whose = (
            f"belongs to paid instance {container.instance!r}"
            if container.foreign
            else "is not managed by paid"
        )
        return Action(
            ActionKind.CONFLICT, name, f"container {container.id[:12]} holds the name and {whose}"
        )
    if not service.spec.enabled:
        if container.state in (states.RUNNING, states.PAUSED):
            return Action(ActionKind.STOP, name, "disabled (enabled: false)")
        return None
    if container.spec_hash != service.spec_hash:
        changed = changed_fields(container.shape, service.shape)
        changes = field_changes(container.shape, service.shape)
        return Action(
            ActionKind.RECREATE, name, _drift_reason(changed, container), changed, changes
        )
    wanted = tuple(sorted(a.name for a in service.spec.networks))
    if container.networks is not None and container.networks != wanted:
        return Action(
            ActionKind.RECREATE,
            name,
            f"on networks {', '.join(container.networks) or '(none)'}, not "
            f"{', '.join(wanted) or '(none)'} (changed outside paid)",
            ("networks",),
        )
    return _diff_running_state(service, container)


def _diff_running_state(service: DesiredService, container: ActualContainer) -> Action | None:
    state = container.state
    if state == states.RUNNING:
        return None
    if state == states.PAUSED:
        return Action(ActionKind.START, service.name, "paused")
    if state in states.NOT_STARTED:
        return Action(ActionKind.START, service.name, f"{state}, never started")
    if state in states.EXITED:
        policy = service.spec.restart_policy
        failed = container.exit_code != 0
        if policy is RestartPolicy.ALWAYS or (policy is RestartPolicy.ON_FAILURE and failed):
            # As the kubelet does: a fresh container of the same revision,
            # not the old writable layer started again.
            return Action(
                ActionKind.RESTART, service.name, f"exited with code {container.exit_code}"
            )
    # Other states (stopping, removing) are transitions: look again next pass.
    return None


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level fields whose values differ, sorted; empty when unknowable."""
    if old is None:
        return ()
    keys = set(old) | set(new)
    return tuple(sorted(k for k in keys if old.get(k) != new.get(k)))


HIDDEN = "(changed)"  # what a plan shows of a secret


def field_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], *, prefix: str = ""
) -> tuple[Change, ...]:
    """Every leaf that differs between two container shapes, as ``spec.env.LOG: a -> b``.

    A secret's fingerprint is shown as ``(changed)``, never as a value.
    """
    if old is None:
        return ()
    out: list[Change] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        path = _path(prefix, key)
        if isinstance(before, dict) and isinstance(after, dict):
            out.extend(field_changes(before, after, prefix=path))
        elif "secretEnv" in path or path == "spec.secrets":
            out.append(Change(path, HIDDEN if before is not None else None, HIDDEN))
        else:
            out.append(Change(path, before, after))
    return tuple(out)


def _path(prefix: str, key: str) -> str:
    if prefix:
        return f"{prefix}.{key}"
    if key == "name":
        return "metadata.name"
    if key == "labels":
        return "metadata.labels"
    return f"spec.{key}"


def _drift_reason(changed: tuple[str, ...], container: ActualContainer) -> str:
    if not changed:
        return "spec hash differs (created by another paid version or by hand)"
    return "spec changed: " + ", ".join(changed)
