"""The rollout controller: health-gated replacement with automatic rollback.

A changed spec becomes a new revision. Its rollout:

1. makes the new image present — if it cannot, the rollout fails before
   anything is touched;
2. stops the running container and renames it aside (``<name>.paid-prev``:
   a dot cannot occur in a service name) — so two instances never run on
   one volume at once;
3. creates and starts the new revision under the service's name;
4. lets the health gate (``paid.state.rollouts``) judge it: ready, and
   ready for ``minReadySeconds``, within ``progressDeadlineSeconds``.

Success removes the container kept aside. Failure — create error, crash,
never ready, flapping during the bake — removes the new container, puts
the old one back and starts it (the health controller then checks it
ready again), and *quarantines* the failed revision: the effective
desired state (``effective_state``) keeps the service on its last good
revision until the desired spec changes or someone runs ``paid rollout
retry``. A first deploy has nothing to roll back to: it backs off (10 s,
doubling to 300 s) instead of looping.

A rollout interrupted by a crash of paid is recognised by the container
kept aside: it is resumed when the new revision is in place, otherwise
the old one is put back and the rollout starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from paid.controllers.backoff import Backoff
from paid.controllers.canaries import Canaries
from paid.controllers.health import HealthController
from paid.controllers.recreate import Recreate
from paid.controllers.requests import runs_beside
from paid.controllers.services import ServiceController
from paid.controllers.start_first import StartFirst
from paid.controllers.verdicts import MAX_GATE_POLL, ActiveRollout, Verdicts
from paid.runtime.base import Runtime, RuntimeFailure
from paid.runtime.prometheus import PrometheusClient
from paid.settings import Timings
from paid.state import actual as states
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.labels import canary_name, next_name
from paid.state.rollouts import Observation, RolloutGate, RolloutPhase, advance, next_wake
from paid.state.secrets import SecretUnavailable
from paid.state.specs import RolloutStrategy
from paid.storage.flags import Flags
from paid.storage.store import Store

log = structlog.get_logger("paid.rollouts")

ASIDE_SUFFIX = labels.ASIDE_SUFFIX


class RolloutController:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: Store,
        services: ServiceController,
        ready: Callable[[str], bool],
        health: HealthController | None = None,
        flags: Callable[[], Flags] = Flags,
        clock: Callable[[], float] = time.monotonic,
        on_finished: Callable[[str, str, str], None] = lambda service, result, why: None,
        backup: Callable[[DesiredService], str | None] | None = None,
        timings: Timings | None = None,
        prometheus: PrometheusClient | None = None,
        on_analysis: Callable[[str, str], None] = lambda service, judgement: None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.services = services
        self._ready = ready
        self._health = health
        self._flags = flags
        self._clock = clock
        self._backup = backup  # takes a backup, returns its ID (None: it failed)
        self.active: dict[str, ActiveRollout] = {}
        # A failed first deploy has nothing to roll back to: its spec backs off.
        self.timings = timings or Timings()
        self.first_deploy: Backoff[tuple[str, str]] = Backoff(self.timings.first_deploy, clock)
        self.verdicts = Verdicts(
            runtime=runtime,
            store=store,
            services=services,
            health=health,
            flags=flags,
            first_deploy=self.first_deploy,
            on_finished=on_finished,
        )
        self.canaries = Canaries(
            store, services, health, self.verdicts, prometheus=prometheus, on_analysis=on_analysis
        )
        self.start_first = StartFirst(store, services, health, self.verdicts)
        self.recreate = Recreate(
            runtime, services, self.verdicts, gated=self._gated, fail=self._fail
        )

    def now(self) -> float:
        """The clock gates are timed by (monotonic): for their progress, shown."""
        return self._clock()

    def needs_gate(self, service: DesiredService) -> bool:
        """A revision that never succeeded is rolled out through the gate."""
        number = self.store.find_revision(service=service.name, spec_hash=service.spec_hash)
        revision = self.store.revision(service.name, number) if number is not None else None
        return revision is None or revision.outcome not in ("succeeded", "superseded")

    def backoff(self, service: DesiredService) -> float:
        """Seconds before a failed first deploy of this spec may be tried again."""
        return self.first_deploy.remaining((service.name, service.spec_hash))

    def _gate(
        self, service: DesiredService, revision: int, *, bake: float | None = None
    ) -> RolloutGate:
        """A gate starting now; ``bake`` (a canary's duration) replaces minReadySeconds."""
        rollout = service.spec.rollout
        return RolloutGate(
            service=service.name,
            revision=revision,
            started_at=self._clock(),
            min_ready_seconds=rollout.min_ready_seconds if bake is None else bake,
            progress_deadline_seconds=rollout.progress_deadline_seconds + (bake or 0),
        )

    # -- a rollout's life ----------------------------------------------------

    def begin(self, service: DesiredService, current: ActualContainer | None) -> None:
        name = service.name
        revision = self.services.record(service)
        previous_revision = current.revision if current is not None and current.managed else None
        self.store.set_outcome(name, revision, "progressing", service.cause or "rollout started")
        self.store.record(
            "rollout_started",
            f"{name}: revision {revision} rolling out"
            + (f" (replacing {previous_revision})" if previous_revision else "")
            + (f": {service.cause}" if service.cause else ""),
            service=name,
            revision=revision,
            previous=previous_revision,
        )
        log.info("rollout_started", service=name, revision=revision, previous=previous_revision)
        try:
            self.services.prepare(self.services.request_for(service, revision=revision))
        except (RuntimeFailure, SecretUnavailable) as err:
            # Nothing touched yet: the old container keeps serving. The world is at
            # fault (an image not pushed yet, a registry away, a secret file missing),
            # not the revision: it backs off and is tried again, never quarantined.
            self.verdicts.finish(
                name, revision, previous_revision, failed=str(err), restore=None, blocked=True
            )
            self.verdicts.count_first_failure(service)
            return
        if current is not None and current.managed and self._wants_backup(service):
            assert self._backup is not None  # noqa: S101 -- checked by _wants_backup
            backup_id = self._backup(service)
            if backup_id is None:
                # Nothing touched yet: the old container keeps serving.
                self.verdicts.finish(
                    name,
                    revision,
                    previous_revision,
                    failed="backup before rollout failed",
                    restore=None,
                )
                return
            self.verdicts.backups_before[name] = backup_id
        strategy = service.spec.rollout.strategy
        serving = current is not None and current.managed and current.state == states.RUNNING
        canary = strategy is RolloutStrategy.CANARY and self._flags().canary
        if canary and current is not None and current.managed and self._health is not None:
            self._begin_beside(service, revision, previous_revision, canary=True)
            return
        if strategy is RolloutStrategy.START_FIRST and serving:
            refused = self.start_first.refused(service, revision)
            if refused is None:
                self._begin_beside(service, revision, previous_revision, canary=False)
                return
            self.store.record("rollout_recreate", f"{name}: {refused}", service=name)
        self.recreate.replace(service, current, revision, previous_revision)

    def _begin_beside(
        self, service: DesiredService, revision: int, previous: int | None, *, canary: bool
    ) -> None:
        """The new revision beside the old: a canary (its own ports, for its duration) or
        StartFirst's copy (under the service's names, judged by the usual gate)."""
        settings = service.spec.rollout.canary
        bake = (settings.duration_seconds if settings else 60) if canary else None
        gate = self._gate(service, revision, bake=bake)
        self.active[service.name] = ActiveRollout(
            gate, None, previous, canary=canary, beside=not canary
        )
        part: Canaries | StartFirst = self.canaries if canary else self.start_first
        failed = part.start(service, revision)
        if failed is not None:
            part.end(service, self.active.pop(service.name), failed)

    def resume_or_restore(
        self, service: DesiredService, current: ActualContainer | None, aside: ActualContainer
    ) -> None:
        """After a crash of paid mid-rollout: carry on, or put the old container back."""
        name = service.name
        resumable = (
            current is not None
            and current.managed
            and current.spec_hash == service.spec_hash
            and (current.state == states.RUNNING or current.state in states.NOT_STARTED)
        )
        if resumable and current is not None:
            if current.state in states.NOT_STARTED:  # killed between create and start
                self.services.start(current.id)
            revision = current.revision or self.services.record(service)
            log.warning("rollout_resumed", service=name, revision=revision)
            self.active[name] = ActiveRollout(
                self._gate(service, revision),
                aside.name,
                aside.revision,
            )
            return
        log.warning("rollout_interrupted", service=name, restoring=aside.revision)
        if current is not None and current.managed:
            grace = service.spec.termination_grace_period_seconds
            self.services.retire(current.id, service=name, timeout=grace)
        self.services.rename(aside.id, name)
        self.services.start(aside.id)  # a rename keeps the ID: the one checked
        self.store.record(
            "rollout_interrupted",
            f"{name}: an interrupted rollout was undone; revision {aside.revision} restored",
            service=name,
        )

    def adopt(self, service: DesiredService, current: ActualContainer) -> None:
        """A revision a killed paid began and never judged, running now: judge it."""
        revision = current.revision or self.services.record(service)
        log.warning("rollout_resumed", service=service.name, revision=revision)
        self.store.record(
            "rollout_resumed",
            f"{service.name}: revision {revision} was never judged; the gate judges it now",
            service=service.name,
        )
        self.active[service.name] = ActiveRollout(self._gate(service, revision), None, None)

    def step(
        self,
        service: DesiredService,
        current: ActualContainer | None,
        canary: ActualContainer | None = None,
        beside: ActualContainer | None = None,
    ) -> float | None:
        """Advance the gate; seconds until the next look, or None when finished."""
        active = self.active[service.name]
        judged, key = current, str(service.name)
        if active.canary:
            judged, key = (canary, canary_name(service.name))
        elif active.beside:
            judged, key = (beside, next_name(service.name))
        if (
            judged is not None
            and judged.state == states.RUNNING
            and judged.revision == active.gate.revision
            and judged.spec_hash != service.spec_hash
        ):
            del self.active[service.name]
            self.verdicts.abandon(service, active, judged)
            return 0.0
        running = (
            judged is not None
            and judged.state == states.RUNNING
            and judged.spec_hash == service.spec_hash
        )
        seen = Observation(
            now=self._clock(),
            running=running,
            ready=running and self._ready(key),
            exit_code=judged.exit_code if judged is not None and not running else None,
        )
        gate = advance(active.gate, seen)
        active.gate = gate
        if active.canary:
            return self._step_canary(service, active, current, seen.now)
        if active.beside and gate.phase.finished:
            wait = self.start_first.finish(service, active, current, judged, now=seen.now)
            if wait is None:
                del self.active[service.name]
            return wait
        if gate.phase is RolloutPhase.SUCCEEDED:
            if judged is not None and judged.image_id:
                self.verdicts.record_image(service, gate.revision, judged.image_id)
            del self.active[service.name]
            self.verdicts.succeed(service, active)
            return None
        if gate.phase is RolloutPhase.FAILED:
            self._fail(service, gate.reason)
            return None
        return max(self.timings.rollout_poll, min(MAX_GATE_POLL, next_wake(gate, seen.now)))

    def _step_canary(
        self,
        service: DesiredService,
        active: ActiveRollout,
        current: ActualContainer | None,
        now: float,
    ) -> float | None:
        """The canary's gate and its analysis; once it passes, the promotion begins.

        Promotion is StartFirst where the service allows it (the stable copy
        serves until the promoted one is ready), else Recreate.
        """
        gate, settings = active.gate, service.spec.rollout.canary
        analysed = settings is not None and bool(settings.analysis)
        failed: str | None = None
        if gate.phase is RolloutPhase.FAILED:
            failed = gate.reason
        elif analysed and (gate.phase is RolloutPhase.SUCCEEDED or now >= active.analysis_due):
            final = gate.phase is RolloutPhase.SUCCEEDED
            failed = self.canaries.analyse(service, final=final)
            active.analysis_due = now + (settings.interval_seconds if settings else 10)
        if failed is None and not gate.phase.finished:
            wait = max(self.timings.rollout_poll, min(MAX_GATE_POLL, next_wake(gate, now)))
            return min(wait, max(0.0, active.analysis_due - now)) if analysed else wait
        del self.active[service.name]
        self.canaries.end(service, active, failed)
        if failed is not None:
            return None
        spec = service.spec
        serving = current is not None and current.managed and current.state == states.RUNNING
        beside = runs_beside(spec)
        if serving and beside and self.start_first.refused(service, gate.revision) is None:
            self._begin_beside(service, gate.revision, active.previous_revision, canary=False)
        else:
            self.recreate.replace(service, current, gate.revision, active.previous_revision)
        return self.timings.rollout_poll

    def resume_beside(
        self, service: DesiredService, current: ActualContainer | None, beside: ActualContainer
    ) -> None:
        """A StartFirst copy a killed paid left: it takes over (judged again) or goes."""
        if self.start_first.resume(service, current, beside):
            self.adopt(service, beside)

    def _gated(
        self, service: DesiredService, revision: int, aside: str | None, previous: int | None
    ) -> None:
        self.active[service.name] = ActiveRollout(self._gate(service, revision), aside, previous)

    def _fail(self, service: DesiredService, reason: str) -> None:
        self.verdicts.fail(service, self.active.pop(service.name), reason)

    def _wants_backup(self, service: DesiredService) -> bool:
        backup, wanted = service.spec.backup, self._backup is not None and self._flags().backups
        return wanted and backup is not None and backup.before_rollout
