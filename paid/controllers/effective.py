"""The effective desired state: what paid enforces, from what is desired and what happened.

Desired, with ``paid rollback``'s pins and the quarantines of revisions
that failed their gate applied, and each following service on its image
target's digest. A read of the store: expired pins are returned, for a
writer (the reconcile) to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from paid.state.desired import DesiredService, DesiredState
from paid.state.images import ImageTarget
from paid.storage.documents import from_documents
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store


@dataclass(frozen=True, slots=True)
class Effective:
    """The state paid enforces: desired, with pins and quarantines applied."""

    state: DesiredState
    notes: dict[str, str]  # service -> why it does not run its desired spec
    expired_pins: tuple[str, ...] = ()  # pins whose desired spec moved on: a writer ends them
    frozen: frozenset[str] = frozenset()  # quarantined with nothing good to go back to


def effective_state(
    desired: DesiredState,
    store: Store,
    secrets: SecretSource | None = None,
    *,
    only: frozenset[str] | None = None,
    targets: Mapping[str, ImageTarget] | None = None,
) -> Effective:
    """Apply `paid rollback` pins and failed-revision quarantines to ``desired``.

    A pure read: a pin whose desired spec has moved on no longer applies and
    is returned in ``expired_pins``; only a reconcile removes it. ``targets``
    adds image targets not (yet) in the store: the digests ``paid plan``
    learnt, as apply would learn and record them.
    """
    pins = store.pins()
    targets = {**store.image_targets(), **(targets or {})}
    services = dict(desired.services)
    notes: dict[str, str] = {}
    expired: list[str] = []
    frozen: set[str] = set()
    for name, svc in desired.services.items():
        if only is not None and name not in only:
            continue  # a targeted reconcile judges these services, no others
        target = None
        pin = pins.get(name)
        if pin is not None and pin.desired_hash != svc.spec_hash:
            expired.append(name)  # the desired spec moved on: the pin ends
            pin = None
        if pin is not None:
            target = store.revision(name, pin.revision)
            if target is not None:
                notes[name] = f"pinned to revision {pin.revision} by paid rollback ({pin.reason})"
        else:
            followed = services[name] = following(svc, targets.get(name))
            number = store.find_revision(service=name, spec_hash=followed.spec_hash)
            revision = store.revision(name, number) if number is not None else None
            if revision is not None and revision.quarantined:
                target = store.last_good(name, excluding=number)
                if target is not None:
                    notes[name] = (
                        f"revision {number} is quarantined ({revision.reason}); "
                        f"running revision {target.number}; "
                        f"`paid rollout retry {name}` to try again"
                    )
                else:
                    frozen.add(name)
                    notes[name] = (
                        f"revision {number} is quarantined ({revision.reason}) and no earlier "
                        "revision is known good: what runs is left as it is; "
                        f"`paid rollout retry {name}` to try again"
                    )
        if target is not None and target.document is not None:
            rebuilt = from_documents(
                [target.document],
                origin=f"revision {target.number}",
                secrets=secrets,
                default_network=desired.default_network,
            )
            if rebuilt.desired is not None:
                # Exactly the image that revision ran, never what its tag points at now.
                again = rebuilt.desired.services[name].with_digest(target.spec.get("imageDigest"))
                services[name] = replace(again, image_id=target.image_id)
    state = DesiredState.of(services, desired.networks, default_network=desired.default_network)
    return Effective(state, notes, tuple(expired), frozenset(frozen))


def following(service: DesiredService, target: ImageTarget | None) -> DesiredService:
    """A service with ``imageUpdate`` runs its target digest; an unsettled one says why."""
    if service.spec.image_update is None or target is None:
        return service
    if not target.applies_to(service.spec.image):
        return service  # its tag changed: the next full pass resolves the new one
    cause = target.reason if not target.settled and target.previous is not None else ""
    return service.with_digest(target.digest, cause=cause)
