"""StartFirst: the new copy starts beside the old one; the old goes once the new is ready.

The new revision is created as ``<name>.paid-next`` on the service's
networks, answering to the service's name (and its aliases) as a DNS
alias, so clients on those networks reach both copies. The health gate
judges it: ready, then ``minReadySeconds``, within
``progressDeadlineSeconds``.

- **It fails**: it is removed. The old copy was never touched: no downtime
  and nothing to roll back; the revision is quarantined as any other.
- **It passes**: the old copy keeps serving for ``drainSeconds`` while
  resolvers and proxies pick up the new address (it has been in DNS since
  it started), then is stopped with its own stop signal and grace period —
  it refuses new connections, which a proxy retries on the other address,
  and finishes what it has — and removed. The new copy is renamed to the
  service's name.

On Podman 4.3 a container leaves a network's DNS names only by leaving the
network, which drops its open connections; and a rename does not change
what DNS answers. So the old copy is not taken out of DNS before its stop:
its stop signal is the drain.

A paid killed at any point leaves one serving copy after the next pass
(``resume``): a new copy that runs the desired spec while the old one no
longer serves wins; otherwise the new copy is removed and the old one
keeps serving, and the rollout starts over.
"""

from __future__ import annotations

import contextlib

import structlog

from paid.controllers.health import HealthController
from paid.controllers.services import ServiceController
from paid.controllers.verdicts import MAX_GATE_POLL, ActiveRollout, Verdicts
from paid.runtime.base import RuntimeFailure
from paid.state import actual as states
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.labels import next_name
from paid.state.rollouts import RolloutPhase
from paid.storage.store import Store

log = structlog.get_logger("paid.rollouts")


class StartFirst:
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

    def refused(self, service: DesiredService, revision: int) -> str | None:
        """Why this revision cannot run beside the old one (checked at run time), or None.

        Validation refuses ports, fixed addresses and writable volumes; what
        it cannot see is a ``VOLUME`` the image declares, which paid keeps
        in a named volume: two copies would share it.
        """
        if service.spec.rollout.shared_volumes:
            return None
        request = self.services.request_for(service, revision=revision, beside=True)
        declared = self.services.preparer.declared_volumes(request, service.spec)
        if declared:
            return (
                f"the image declares VOLUME {declared[0]}, which two copies would share; "
                "this rollout is a Recreate (set rollout.sharedVolumes: true if the "
                "application allows two copies on it)"
            )
        return None

    def start(self, service: DesiredService, revision: int) -> str | None:
        """Create, start and watch the new copy beside the old; why it could not, or None."""
        name = service.name
        self.store.record(
            "rollout_beside",
            f"{name}: revision {revision} starts as {next_name(name)}, beside the running one",
            service=name,
            revision=revision,
        )
        try:
            container_id = self.services.create(
                self.services.request_for(service, revision=revision, beside=True), service.spec
            )
            self.services.start(container_id)
        except RuntimeFailure as err:
            return f"revision {revision} could not start beside the running one: {err}"
        if self.health is not None:
            self.health.watch(
                next_name(name), container_id=container_id, name=next_name(name), spec=service.spec
            )
        return None

    def end(self, service: DesiredService, active: ActiveRollout, failed: str) -> None:
        """Remove the new copy; the old one was never touched (quarantined as any failure)."""
        name = service.name
        if self.health is not None:
            self.health.unwatch(next_name(name))
        with contextlib.suppress(RuntimeFailure):
            grace = service.spec.termination_grace_period_seconds
            self.services.retire(next_name(name), service=name, timeout=grace)
        self.verdicts.finish(
            name, active.gate.revision, active.previous_revision, failed=failed, restore=None
        )

    def finish(
        self,
        service: DesiredService,
        active: ActiveRollout,
        old: ActualContainer | None,
        new: ActualContainer | None,
        *,
        now: float,
    ) -> float | None:
        """The gate has ended: drain and promote, or remove the new copy.

        Seconds until the next look while the old copy drains (or Podman
        refused a step of the promotion); None once the rollout is over.
        """
        name, gate = service.name, active.gate
        running = new is not None and new.state == states.RUNNING
        if gate.phase is not RolloutPhase.SUCCEEDED or new is None or not running:
            why = gate.reason if gate.phase is RolloutPhase.FAILED else "stopped while draining"
            self.end(service, active, why)
            return None
        if active.drain_until is None:
            drain = service.spec.rollout.drain_seconds
            active.drain_until = now + drain
            self.store.record(
                "rollout_draining",
                f"{name}: revision {gate.revision} is ready; the old copy serves {drain} s more",
                service=name,
                revision=gate.revision,
            )
        if now < active.drain_until:
            return min(MAX_GATE_POLL, active.drain_until - now)
        try:
            self.promote(service, old, new)
        except RuntimeFailure as err:
            log.warning("rollout_promote_retry", service=name, error=str(err))
            return MAX_GATE_POLL
        if new.image_id:
            self.verdicts.record_image(service, gate.revision, new.image_id)
        self.verdicts.succeed(service, active)
        return None

    def promote(
        self, service: DesiredService, old: ActualContainer | None, new: ActualContainer
    ) -> None:
        """The old copy stops (its signal, its grace) and goes; the new takes the name.

        Both by ID: the containers observed, never whatever holds a name now.
        Raises ``RuntimeFailure`` when Podman refuses a step: the caller tries
        again at its next look, from where this one stopped.
        """
        name = service.name
        if old is not None and old.managed:
            grace = service.spec.termination_grace_period_seconds
            self.services.retire(old.id, service=name, timeout=grace)
        self.services.rename(new.id, name)
        if self.health is not None:
            self.health.unwatch(next_name(name))
        log.info("rollout_promoted", service=name, container=new.id[:12])

    def resume(
        self, service: DesiredService, current: ActualContainer | None, beside: ActualContainer
    ) -> bool:
        """A new copy a killed paid left beside: True if it won (and now holds the name).

        It wins when it runs the desired spec and the old copy no longer
        serves (paid was killed while retiring it); otherwise it goes and the
        old one keeps serving.
        """
        name = service.name
        runs_desired = beside.state == states.RUNNING and beside.spec_hash == service.spec_hash
        old_serves = current is not None and current.state == states.RUNNING
        if runs_desired and not old_serves:
            self.promote(service, current, beside)
            self.store.record(
                "rollout_resumed",
                f"{name}: the copy started beside the old one takes over; the gate judges it",
                service=name,
            )
            return True
        grace = service.spec.termination_grace_period_seconds
        self.services.retire(beside.id, service=name, timeout=grace)
        self.store.record(
            "rollout_interrupted",
            f"{name}: the copy started beside the running one was removed; the rollout starts over",
            service=name,
        )
        return False
