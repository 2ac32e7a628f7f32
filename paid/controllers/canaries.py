"""A canary: the new revision beside the stable one, judged for its duration, then removed.

The rollout controller decides when a canary starts and reads its gate;
this module makes it, watches it and takes it away. Its container is
``<name>.paid-canary``, on the canary ports; the stable copy is never
touched, so a failed canary needs no rollback.
"""

from __future__ import annotations

import contextlib

import structlog

from paid.controllers.health import HealthController
from paid.controllers.services import ServiceController
from paid.controllers.verdicts import ActiveRollout, Verdicts
from paid.runtime.base import RuntimeFailure
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.labels import canary_name
from paid.storage.store import Store

log = structlog.get_logger("paid.rollouts")


class Canaries:
    def __init__(
        self,
        store: Store,
        services: ServiceController,
        health: HealthController | None,
        verdicts: Verdicts,
    ) -> None:
        self.store = store
        self.services = services
        self.health = health
        self.verdicts = verdicts

    def start(self, service: DesiredService, revision: int) -> str | None:
        """Create, start and watch the canary; why it could not start, or None."""
        name = service.name
        self.store.record(
            "canary_started", f"{name}: revision {revision} as {canary_name(name)}", service=name
        )
        try:
            container_id = self.services.create(
                self.services.request_for(service, revision=revision, canary=True), service.spec
            )
            self.services.start(canary_name(name))
        except RuntimeFailure as err:
            return f"canary could not start: {err}"
        if self.health is not None:
            self.health.watch(
                canary_name(name),
                container_id=container_id,
                name=canary_name(name),
                spec=service.spec,
            )
        return None

    def end(self, service: DesiredService, active: ActiveRollout, failed: str | None) -> None:
        """Remove the canary; a failed one finishes the rollout (the stable copy untouched)."""
        name = service.name
        if self.health is not None:
            self.health.unwatch(canary_name(name))
        with contextlib.suppress(RuntimeFailure):
            grace = service.spec.termination_grace_period_seconds
            self.services.retire(canary_name(name), service=name, timeout=grace)
        if failed is not None:
            self.verdicts.finish(
                name,
                active.gate.revision,
                active.previous_revision,
                failed=f"canary: {failed}",
                restore=None,
            )
            return
        self.store.record(
            "canary_promoted",
            f"{name}: canary of revision {active.gate.revision} passed",
            service=name,
        )
        log.info("canary_promoted", service=name, revision=active.gate.revision)

    def clean(self, service: DesiredService, canary: ActualContainer) -> None:
        """A canary nobody is judging (paid restarted): abort it; the stable copy is untouched."""
        log.warning("canary_abandoned", service=service.name)
        grace = service.spec.termination_grace_period_seconds
        self.services.retire(canary.id, service=service.name, timeout=grace)
