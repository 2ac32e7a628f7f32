"""The reconciler: every rule a service is subject to, in one place.

``paid run``, ``paid apply`` and ``paid plan`` all go through
``Reconciler``. Its contract, in the manner of controller-runtime's
``Reconcile(ctx, Request) (Result, error)``:

    reconcile(key, world) -> Result

- A request is only a key: a service name, ``FULL`` (look at everything
  and say which keys need work) or ``PRUNE`` (the guarded removal of
  services no longer desired). Reconciliation is level-based: ``world``
  is a fresh observation (``observe()``: one list call, the store's pins,
  quarantines and holds), never the payload of an event.
- ``Result.requeue_after`` asks to be looked at again after that many
  seconds (0: at once, to confirm what was done); ``None`` means done
  until something changes. ``Result.error`` says the reconcile failed
  and is retried with the requeue back-off. ``Result.enqueue`` (``FULL``
  only) names the keys that need work. Raising ``RuntimeFailure`` is an
  error too. The reconciler never touches a queue: the driver's worker
  loop (``paid.controllers.working``) alone turns results into requeues.
- ``step(key, world)`` is what ``reconcile`` *would* do, computed by the
  same code without doing it; ``plan(world)`` is that step for every
  service, so ``paid plan`` shows exactly what ``paid apply`` does.

A service's rules, in the order they are tried (``step``):

1. **held** — a backup or restore has it stopped on purpose: look later;
2. **rollout** — a rollout under way: advance its gate;
3. **canary cleanup** — a canary nobody judges (paid restarted): remove it;
   a StartFirst copy nobody judges takes over or goes (``RESUME_BESIDE``);
4. **resume** — a container kept aside: finish or undo that rollout;
5. the pure ``decide`` (diff of one service, failed liveness included):
   nothing to do, or an action, which
6. is **quarantined** when it would replace what runs by a revision that
   failed and nothing earlier is known good (else the effective state
   already runs that good revision),
7. **waits** while its dependencies are not ready,
8. **rolls out** through the health gate when it changes the spec or
   first deploys a revision (a failed first deploy **backs off**),
9. **backs off** when it restarts a crashing container too soon,
10. else is **executed**.

Removal of orphans is judged over all services at once (the mass-prune
guard), so it is the ``PRUNE`` key's, and never from an invalid
directory or with the ``prune`` flag off (``World.prune``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from paid.controllers import planning, rules
from paid.controllers.backoff import Backoff
from paid.controllers.collecting import Collector
from paid.controllers.health import HealthController
from paid.controllers.images import ImageController
from paid.controllers.networks import NetworkController
from paid.controllers.observing import Observer
from paid.controllers.rollouts import RolloutController
from paid.controllers.rules import Facts
from paid.controllers.services import Outcome, ServiceController
from paid.controllers.worlds import FULL, PRUNE, Hooks, Result, Step, StepKind, Wants, World
from paid.runtime.base import Runtime, RuntimeFailure
from paid.settings import Timings
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.diffing import diff
from paid.state.labels import aside_name, canary_name, next_name
from paid.state.plans import ActionKind, Plan
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store

log = structlog.get_logger("paid.reconciler")

__all__ = ["FULL", "PRUNE", "Hooks", "Reconciler", "Result", "Step", "StepKind", "World"]


class Reconciler:
    """The one reconcile of paid; see the module docstring for its contract."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        store: Store,
        wants: Wants,
        services: ServiceController,
        health: HealthController,
        rollouts: RolloutController,
        networks: NetworkController,
        images: ImageController | None = None,
        secrets: SecretSource | None = None,
        timings: Timings | None = None,
        hooks: Hooks | None = None,
        clock: Callable[[], float] = time.monotonic,
        sweep_secrets: bool = False,
    ) -> None:
        """Parts connected by ``paid.controllers.wiring.build``, which every driver calls."""
        self.runtime = runtime
        self.store = store
        self.wants = wants
        self.secrets = secrets
        self.timings = timings or Timings()
        self.hooks = hooks or Hooks()
        self.allow_mass_prune = wants.allow_mass_prune
        self._clock = clock
        self.services = services
        self.health = health
        self.rollouts = rollouts
        self.networks = networks
        self.images = images  # None: tags are not resolved
        self.crashes: Backoff[str] = Backoff(self.timings.crash, clock)
        self.observer = Observer(runtime, store, wants, secrets=secrets, images=images)
        self.collector = Collector(runtime, store, services.configs, sweep_secrets=sweep_secrets)
        self._settled = False  # interrupted revisions are settled on the first full pass
        self._configs_collected: tuple[int, frozenset[str]] | None = None

    def close(self) -> None:
        self.health.close()

    # -- observing -----------------------------------------------------------

    def observe(self, key: str | None = None) -> World | None:
        """A fresh observation for ``key`` (``Observer.observe``); the probes follow it."""
        world = self.observer.observe(key)
        if world is not None:
            self.health.sync(world.desired, list(world.actual), only=world.scope)
            self.hooks.observed(world)
        return world

    # -- the contract ----------------------------------------------------------

    def reconcile(self, key: str, world: World) -> Result:
        """One reconcile of ``key`` against ``world``; see the module docstring."""
        for name in world.expired_pins:
            if key in (FULL, name):
                self.store.unpin(name)  # the desired spec moved on: the pin ends
        if key == FULL:
            if self.images is not None:
                self.images.record(world.learnt)  # what this observation learnt of tags
            return self._full(world)
        if key == PRUNE:
            return self._prune(world)
        step = self.step(key, world)
        return self._take(step, world)

    def step(self, name: str, world: World) -> Step:
        """What ``reconcile(name, world)`` would do now, without doing any of it (``rules``)."""
        return rules.step(name, world, self.facts(world, (name,)))

    def facts(self, world: World, names: Iterable[str]) -> Facts:
        """What the controllers and the store know now about ``names``: the rules' other input.

        Only reads, and only what the rules can use for these names: the
        rollouts in progress, the readiness of their dependencies, health,
        back-off remainders; from the store, whether a revision with no
        container yet once succeeded, and the spec a running revision recorded.
        """
        wanted = [world.desired.services[n] for n in names if n in world.desired.services]  # type: ignore[index]
        proven: set[str] = set()
        recorded: dict[str, Mapping[str, Any]] = {}
        for service in wanted:
            container = world.by_name.get(service.name)
            if container is None and not self.rollouts.needs_gate(service):  # a CREATE
                proven.add(service.name)
            document = self._recorded(service, container)
            if document is not None:
                recorded[service.name] = document
        dependencies = {d for s in wanted for d in s.spec.depends_on}
        return Facts(
            rolling_out={n: str(a.gate.phase) for n, a in self.rollouts.active.items()},
            ready=frozenset(d for d in dependencies if self.health.ready(d)),
            unhealthy={s.name: f for s in wanted if (f := self.health.failed(s.name))},
            first_deploy_wait={s.name: self.rollouts.backoff(s) for s in wanted},
            crash_wait={s.name: self.crashes.remaining(s.name) for s in wanted},
            proven=frozenset(proven),
            recorded=recorded,
        )

    def _recorded(
        self, service: DesiredService, container: ActualContainer | None
    ) -> Mapping[str, Any] | None:
        """The spec the running revision recorded, when the container runs the desired spec."""
        if container is None or not container.managed or container.revision is None:
            return None
        if container.spec_hash != service.spec_hash:
            return None  # a recreate is due: steering fields do not matter
        revision = self.store.revision(service.name, container.revision)
        if revision is None or revision.document is None:
            return None
        spec = revision.document.get("spec")
        return spec if isinstance(spec, dict) else {}

    def woken_by_probe(self, service: str, kind: str, passing: bool) -> tuple[str, ...]:
        """The keys a probe's changed verdict wakes: the service, and its dependents once ready."""
        if kind == "readiness" and passing:
            return (service, *self._dependents(service))
        return (service,)

    def _dependents(self, service: str) -> tuple[str, ...]:
        desired = self.wants.desired()
        return () if desired is None else tuple(sorted(desired.dependents(service)))  # type: ignore[arg-type]

    def plan(self, world: World) -> Plan:
        """What ``paid apply`` would do from ``world`` (see ``paid.controllers.planning``)."""
        return planning.plan(self, world)

    # -- taking a step ---------------------------------------------------------

    def _take(self, step: Step, world: World) -> Result:
        name = step.service
        service = world.desired.services.get(name)  # type: ignore[call-overload]
        current = world.by_name.get(name)
        t = self.timings
        match step.kind:
            case StepKind.IDLE | StepKind.ORPHAN | StepKind.QUARANTINED:
                return Result(step=step)
            case StepKind.HELD:
                log.info("service_held", service=name, reason=step.reason)
                return Result(t.hold_poll, step=step)
            case StepKind.WAIT:
                log.info("service_waiting", service=name, waiting_on=list(step.waiting_on))
                return Result(t.dependency_poll, step=step)
            case StepKind.BACK_OFF:
                log.info(
                    "service_backoff", service=name, wait=round(step.wait, 1), reason=step.reason
                )
                return Result(step.wait, step=step)
        assert service is not None  # noqa: S101 -- the remaining steps are of desired services
        match step.kind:
            case StepKind.ROLLOUT:
                wait = self.rollouts.step(
                    service,
                    current,
                    world.by_name.get(canary_name(name)),
                    world.by_name.get(next_name(name)),
                )
                active = self.rollouts.active.get(name)
                phase = str(active.gate.phase) if active is not None else "finished"
                after = Step(StepKind.ROLLOUT, name, reason=phase)
                # A finished rollout wakes the services that wait on this one.
                woken = () if active is not None else self._dependents(name)
                return Result(0.0 if wait is None else wait, step=after, enqueue=woken)
            case StepKind.CANARY_CLEANUP:
                self.rollouts.canaries.clean(service, world.by_name[canary_name(name)])
                return Result(0.0, step=step)
            case StepKind.RESUME_BESIDE:
                self.rollouts.resume_beside(service, current, world.by_name[next_name(name)])
                return Result(t.rollout_poll, step=step)
            case StepKind.RESUME:
                self.rollouts.resume_or_restore(service, current, world.by_name[aside_name(name)])
                return Result(t.rollout_poll, step=step)
            case StepKind.ROLL_OUT:
                self.rollouts.begin(service, current)
                return Result(t.rollout_poll, step=step)
        action = step.action
        assert action is not None  # noqa: S101 -- EXECUTE always carries its action
        if action.kind is ActionKind.RESTART:
            why = "liveness" if self.health.failed(name) else "crash"
            self.crashes.attempt(name)
            self.hooks.restarted(name, why)
            self.health.forget(name)
        result = self.services.execute(action, service)
        if result.outcome is Outcome.DONE:
            return Result(0.0, step=step)  # level-based: look again to confirm
        if result.outcome is Outcome.CONFLICT:
            mark = {name: conflict_fingerprint(service, current)}
            return Result(error=action.reason, step=step, terminal=True, fingerprints=mark)
        return Result(error=result.detail, step=step)

    def _full(self, world: World) -> Result:
        """Networks first; then every service that needs work, and the prune if anything goes."""
        if not self._settled:
            self._settle_interrupted(world)
            self._settled = True
        try:
            networks = self.networks.reconcile(world.desired, world.actual, prune=world.prune)
            unlisted = None
        except RuntimeFailure as err:  # the services are still judged: each says what it lacks
            networks, unlisted = [], f"networks: {err}"
        for result in networks:
            self.hooks.network(result)
        plan = diff(world.desired, world.actual, allow_mass_prune=self.allow_mass_prune)
        if plan.actions:
            self.networks.forget()  # containers come and go: their networks may follow
        keys: list[str] = [
            name
            for name, service in world.desired.services.items()
            if name in self.rollouts.active
            or self.health.failed(name)
            or self._left_behind(name, world)
            or rules.steering_update(
                service, world, self._recorded(service, world.by_name.get(name))
            )
            is not None
        ]
        for note in plan.notes:
            log.warning("prune_withheld", reason=note)
        for action in plan.actions:
            key = PRUNE if action.kind is ActionKind.REMOVE else action.service
            if (key != PRUNE or world.prune) and key not in keys:
                keys.append(key)
        if not plan.actions:
            self.collector.secrets(world)
            self.collector.configs(world)
        conflicts = tuple(str(r) for r in networks if r.conflict)
        failed = [str(r) for r in networks if r.error is not None and not r.conflict]
        error = unlisted or (failed[0] if failed else None)
        services = world.desired.services
        marks = {
            a.service: conflict_fingerprint(
                services.get(a.service),  # type: ignore[call-overload]
                world.by_name.get(a.service),
            )
            for a in plan.actions
            if a.kind is ActionKind.CONFLICT
        }
        return Result(
            enqueue=tuple(keys), notes=plan.notes + conflicts, error=error, fingerprints=marks
        )

    def _left_behind(self, name: str, world: World) -> bool:
        """A container kept aside or a canary of ``name``: an interrupted rollout to settle."""
        for other in (aside_name(name), next_name(name), canary_name(name)):
            container = world.by_name.get(other)
            if container is not None and container.managed and rules.owned_by(container, name):
                return True
        return False

    def _settle_interrupted(self, world: World) -> None:
        """Revisions a killed paid left ``progressing``: judge them now, or end them.

        One whose container runs (or was created and not started) goes back
        through the gate; one with a container kept aside is the RESUME
        step's; any other never got its container and has failed.
        """
        for name, number in self.store.progressing():
            service = world.desired.services.get(name)  # type: ignore[call-overload]
            current = world.by_name.get(name)
            left = (world.by_name.get(aside_name(name)), world.by_name.get(next_name(name)))
            if name in self.rollouts.active or left != (None, None):
                continue
            runs_it = (
                service is not None
                and current is not None
                and current.managed
                and current.revision == number
                and current.spec_hash == service.spec_hash
                and current.state in ("running", "created", "configured", "initialized")
            )
            if runs_it and service is not None and current is not None:
                if current.state != "running":
                    self.services.start(current.id)
                self.rollouts.adopt(service, current)
                continue
            reason = "interrupted: paid stopped before the health gate judged it"
            self.store.set_outcome(name, number, "failed", reason)
            self.store.record("rollout_failed", f"{name}: revision {number} {reason}", service=name)

    def _prune(self, world: World) -> Result:
        if not world.prune:
            return Result()  # never prune from an invalid directory (or with prune off)
        plan = diff(world.desired, world.actual, allow_mass_prune=self.allow_mass_prune)
        failed = [
            result.detail
            for action in plan.actions
            if action.kind is ActionKind.REMOVE
            for result in [self.services.execute(action, None)]
            if result.outcome is not Outcome.DONE
        ]
        if failed:
            return Result(error=failed[0])
        removed = any(a.kind is ActionKind.REMOVE for a in plan.actions)
        # A network whose last member just left goes in this same pass, not the next apply.
        return Result(notes=plan.notes, enqueue=(FULL,) if removed else ())


def conflict_fingerprint(service: DesiredService | None, holder: ActualContainer | None) -> str:
    """What a conflict hinges on: the desired spec, and which container holds the name."""
    spec = service.spec_hash if service is not None else "-"
    return f"{spec}:{holder.id if holder is not None else '-'}"
