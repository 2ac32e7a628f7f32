"""Observing: the one place the reconcile reads, into one value, the ``World``.

What the rules look at, read now: the containers (one list call, or for
one service an inspect of each name its rules look at), the effective
desired state (pins, quarantines, image targets applied), holds, and the
digests of tags a following service has no target for yet (learnt, not
recorded: a full pass records them). It writes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from paid.controllers.effective import effective_state
from paid.controllers.images import ImageController
from paid.controllers.worlds import Wants, World
from paid.runtime.base import ObjectFault, Runtime
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService, DesiredState
from paid.state.images import ImageTarget
from paid.state.labels import aside_name, canary_name, next_name
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store


class Observer:
    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        wants: Wants,
        *,
        secrets: SecretSource | None = None,
        images: ImageController | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.wants = wants
        self.secrets = secrets
        self.images = images  # None: tags are not resolved

    def observe(self, key: str | None = None) -> World | None:
        """The world as it is now, for ``key``: the store's pins, quarantines and holds, and

        - for a service: its container, its aside, its canary and its
          dependencies' containers, each looked up by name (an inspect each,
          a few milliseconds: a list call costs ~0.6 ms per container);
        - otherwise (``FULL``, ``PRUNE``, a plan): one list call of everything.

        None while there is no valid desired state to enforce.
        """
        requested = self.wants.desired()
        if requested is None:
            return None
        service = requested.services.get(key) if key else None  # type: ignore[call-overload]
        if service is not None:
            return self._observe_service(requested, service)
        learnt: dict[str, ImageTarget] = {}
        unknown: dict[str, str] = {}
        if self.images is not None:  # a following service runs by digest: learnt, not recorded
            learnt, unknown = self.images.unresolved(requested)
        effective = effective_state(requested, self.store, self.secrets, targets=learnt)
        actual = self.runtime.list_containers()
        return World.of(
            effective.state,
            actual,
            requested=requested,
            holds=self.store.holds(),
            notes=effective.notes,
            expired_pins=effective.expired_pins,
            frozen=effective.frozen,
            prune=self.wants.prune_allowed() and self.wants.flags().prune,
            unresolved=unknown,
            learnt=learnt,
        )

    def _looked_up(self, name: str) -> ActualContainer | None:
        """The container holding ``name``; one Podman cannot read is taken from the listing.

        Its record is broken (``container not known`` from the store): as the
        listing shows it, it is observed as exited, so the rules replace it
        (``ServiceController.retire`` repairs it first).
        """
        try:
            return self.runtime.inspect_container(name)
        except ObjectFault:
            listed = next((c for c in self.runtime.list_containers() if c.name == name), None)
            return None if listed is None else replace(listed, state="exited", exit_code=255)

    def _observe_service(self, requested: DesiredState, service: DesiredService) -> World:
        name = service.name
        scope = frozenset({name, *service.spec.depends_on})
        effective = effective_state(requested, self.store, self.secrets, only=scope)
        looked_up = (
            name,
            aside_name(name),
            next_name(name),
            canary_name(name),
            *service.spec.depends_on,
        )
        # Podman also answers a name with a container whose ID starts with it: only
        # a container that holds the name itself counts.
        found = (self._looked_up(n) for n in looked_up)
        actual = [c for c, n in zip(found, looked_up, strict=True) if c and c.name == n]
        return World.of(
            effective.state,
            actual,
            requested=requested,
            holds=self.store.holds(),
            notes={n: v for n, v in effective.notes.items() if n in scope},
            expired_pins=effective.expired_pins,
            frozen=effective.frozen,
            prune=False,  # a view of a few containers never judges orphans
            looked_up=frozenset(looked_up),
            scope=scope,
        )
