"""What the daemon publishes: metrics, the readiness record, SLO gauges.

Observers only watch: each is called with what the reconciler observed
or did (a ``World``, a ``Result``, an ``ActionResult``, a probe
transition) and writes metrics, ``Knowledge`` and the store's readiness
record. None of them decides anything or touches a queue.
"""

from __future__ import annotations

import time

import structlog

from paid.controllers.health import HealthController
from paid.controllers.reconciling import FULL, Result, StepKind, World
from paid.controllers.services import ActionResult
from paid.daemon.status import Knowledge
from paid.metrics import Metrics
from paid.state import actual as states
from paid.state.checks import Check, Status
from paid.state.slo import FAST_BURN_CHECK, SloReport, fast_burn, measure
from paid.storage.flags import FLAG_NAMES, Flags
from paid.storage.store import Store

log = structlog.get_logger("paid.daemon")


class Observers:
    def __init__(
        self,
        *,
        knowledge: Knowledge,
        metrics: Metrics,
        store: Store,
        health: HealthController,
        slo_default: float | None,
    ) -> None:
        self.knowledge = knowledge
        self.metrics = metrics
        self.store = store
        self.health = health
        self.slo_default = slo_default
        self._published: set[str] = set()
        self._readiness: dict[str, bool | None] = {}  # the last mark made, per service
        self._burning: set[str] = set()  # services told of as burning fast, until they stop

    # -- what the reconciler saw and did ---------------------------------------

    def observed(self, world: World) -> None:
        if world.looked_up is not None:  # a few containers: merge them into what is known
            kept = [c for c in self.knowledge.observed if c.name not in world.looked_up]
            actual = tuple(sorted([*kept, *world.actual], key=lambda c: c.name))
            notes = {
                **{n: v for n, v in self.knowledge.notes.items() if n not in world.looked_up},
                **world.notes,
            }
            self.knowledge.update(observed=actual, podman_error=None, notes=notes)
            self.publish(World.of(world.desired, actual, requested=world.requested))
            return
        self.knowledge.update(
            observed=world.actual,
            observed_at=time.time(),
            podman_error=None,
            notes=dict(world.notes),
        )
        self.publish(world)

    def podman_failed(self, error: str) -> None:
        self.knowledge.update(podman_error=error)

    def action(self, result: ActionResult) -> None:
        self.metrics.actions.labels(str(result.action.kind), str(result.outcome)).inc()

    def restarted(self, service: str, why: str) -> None:
        self.metrics.restarts.labels(service, why).inc()

    def rollout_finished(self, service: str, result: str, reason: str) -> None:
        self.metrics.rollouts.labels(result).inc()
        if result == "succeeded":
            self.metrics.last_rollout.labels(service).set(time.time())
        elif result == "rolled_back":
            self.metrics.rollbacks.labels(service).inc()

    def reconciled(self, key: str, result: Result, seconds: float) -> None:
        """One reconcile finished: pass metrics, and what /status shows of its step."""
        scope = "full" if key == FULL else "service"
        failed = result.error is not None or (key == FULL and bool(result.notes))
        outcome = "failure" if failed else "success"
        self.metrics.passes.labels(scope, outcome).inc()
        self.metrics.pass_duration.labels(scope, outcome).observe(seconds)
        step = result.step
        if step is not None:
            self.knowledge.set_step(step)
            if key in (self.knowledge.desired.services if self.knowledge.desired else {}):
                backing_off = step.kind is StepKind.BACK_OFF
                self.metrics.crash_loop.labels(key).set(1 if backing_off else 0)
        if key == FULL:
            self._full_pass(result)

    def _full_pass(self, result: Result) -> None:
        if result.error is not None:
            # A failed first pass is still done: READY goes out and /readyz
            # explains, rather than systemd timing us out.
            self.knowledge.update(last_pass_error=result.error, first_pass_done=True)
            return
        converged = not result.enqueue
        changes: dict[str, object] = {"last_pass_error": "; ".join(result.notes) or None}
        if converged:
            changes["last_pass_ok_at"] = time.time()
            changes["first_pass_done"] = True
            self.metrics.last_pass_success.set(time.time())
        self.knowledge.update(**changes)

    # -- probes and readiness --------------------------------------------------

    def probe_transition(self, service: str, kind: str, passing: bool, detail: str) -> None:
        self.store.record(
            "probe_transition",
            f"{service}: {kind} probe {'passing' if passing else 'failing'} ({detail})",
            service=service,
            probe=kind,
            passing=passing,
        )
        if not passing:
            self.metrics.probe_failures.labels(kind).inc()
        desired = self.knowledge.desired
        svc = desired.services.get(service) if desired else None  # type: ignore[call-overload]
        if svc is not None and svc.spec.enabled:
            # The readiness record follows the probes, not only the reconciles.
            ready = self.health.ready(service)
            self.metrics.service_ready.labels(service).set(1 if ready else 0)
            self._mark(service, ready)

    def publish(self, world: World) -> None:
        desired = world.desired
        running = converged = 0
        for svc in desired:
            container = world.by_name.get(svc.name)
            is_running = (
                container is not None and container.managed and container.state == states.RUNNING
            )
            is_converged = (
                is_running and container is not None and container.spec_hash == svc.spec_hash
            )
            running += is_running
            converged += is_converged
            self.metrics.service_up.labels(svc.name).set(1 if is_converged else 0)
            ready = self.health.ready(svc.name)
            self.metrics.service_ready.labels(svc.name).set(1 if ready else 0)
            self._mark(svc.name, ready if svc.spec.enabled else None)
        for gone in self._published - set(desired.services):
            self._mark(gone, None)
            self.metrics.service_up.remove(gone)
            self.metrics.service_ready.remove(gone)
            self.metrics.crash_loop.remove(gone)
        self._published = set(desired.services)
        self.metrics.services_desired.set(len(desired))
        self.metrics.services_running.set(running)
        self.metrics.services_converged.set(converged)

    def _mark(self, service: str, ready: bool | None) -> None:
        """Add to the readiness record when the service's readiness changed."""
        if service in self._readiness and self._readiness[service] == ready:
            return
        self._readiness[service] = ready
        self.store.mark_readiness(service, ready)

    def publish_slos(self) -> None:
        desired = self.knowledge.desired
        if desired is None:
            return
        now = time.time()  # the store counts a live daemon's watch until now
        for found in measure(self.store, desired, default_percent=self.slo_default, now=now):
            service, target = found.objective.service, found.objective.target
            self.metrics.slo_objective.labels(service).set(target)
            if found.tally.availability is not None:
                self.metrics.slo_availability.labels(service).set(found.tally.availability)
            self.metrics.slo_budget_remaining.labels(service).set(found.budget_remaining_ratio)
            self._burn(found, now)

    def _burn(self, found: SloReport, now: float) -> None:
        """Journal ``slo_burn`` once when a service starts burning its budget fast."""
        service = found.objective.service
        marks = self.store.readiness(service, since=now - FAST_BURN_CHECK)
        rate = fast_burn(found, marks, self.store.watches(since=now - FAST_BURN_CHECK), now=now)
        if rate is None:
            self._burning.discard(service)
            return
        if service in self._burning:
            return
        self._burning.add(service)
        self.store.record(
            "slo_burn",
            f"{service}: burns its error budget {rate:.1f} times too fast (the last hour and the "
            f"last 5 minutes; objective {found.objective.target * 100:g} %); "
            f"{found.budget_remaining_ratio:.0%} of the budget is left",
            service=service,
            rate=round(rate, 2),
            remaining=round(found.budget_remaining_ratio, 4),
        )

    def record_lost(self) -> None:
        """Journal ``daemon_lost`` when the last daemon ended without stopping (kill -9, crash)."""
        last = self.store.last_event(("daemon_started", "daemon_stopped"))
        if last is None or last.kind != "daemon_started":
            return
        watches = self.store.watches(since=last.at)
        seen = max((w.end for w in watches), default=last.at)
        gap = max(0.0, time.time() - seen)
        pid = last.data.get("pid")
        self.store.record(
            "daemon_lost",
            f"paid (pid {pid}) ended without stopping (killed, or crashed): nothing watched or "
            f"healed the services for {gap:.0f} s, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(seen))}",
            pid=pid,
            last_seen=seen,
            seconds=round(gap, 1),
        )

    # -- start-up ----------------------------------------------------------------

    def flags(self, flags: Flags) -> None:
        for name in FLAG_NAMES:
            self.metrics.feature_flag.labels(name).set(1 if getattr(flags, name) else 0)

    def preflight(self, checks: list[Check]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for check in checks:
            key = (check.check, str(check.status))
            counts[key] = counts.get(key, 0) + 1
            if check.status is not Status.OK:
                log.warning(
                    "preflight",
                    check=check.check,
                    subject=check.subject,
                    status=str(check.status),
                    reason=check.reason,
                )
        for (check_name, status), count in counts.items():
            self.metrics.preflight.labels(check_name, status).set(count)
