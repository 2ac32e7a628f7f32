"""``paid apply``: converge once, through the same health gate as the daemon.

One synchronous loop: observe (one list call), run the probes that are
due, start what may start (dependencies ready), step the rollouts under
way, and report progress — until nothing is left or the deadline passes.
Removals and conflicts are settled first, as in the plan.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paid.controllers.health import HealthController
from paid.controllers.rollouts import (
    RolloutController,
    aside_name,
    canary_name,
    effective_state,
)
from paid.controllers.services import ActionResult, Outcome, ServiceController, uses_secrets
from paid.runtime.base import Runtime, RuntimeFailure
from paid.state.actual import ActualContainer
from paid.state.checkout import Checkout
from paid.state.desired import DesiredService, DesiredState
from paid.state.diffing import decide, diff
from paid.state.plans import Action, ActionKind, Plan
from paid.state.secrets import SecretSource
from paid.state.store import Store

Progress = Callable[[str], None]


@dataclass
class ConvergeReport:
    plan: Plan
    results: list[ActionResult] = field(default_factory=list)
    rollouts: dict[str, str] = field(default_factory=dict)  # service -> result
    unfinished: dict[str, str] = field(default_factory=dict)  # service -> why not
    reasons: dict[str, str] = field(default_factory=dict)  # service -> why its rollout ended so

    @property
    def converged(self) -> bool:
        return (
            all(r.outcome is Outcome.DONE for r in self.results)
            and all(result == "succeeded" for result in self.rollouts.values())
            and not self.unfinished
        )


def converge(
    desired: DesiredState,
    *,
    runtime: Runtime,
    store: Store,
    checkout: Checkout | None = None,
    secrets: SecretSource | None = None,
    allow_mass_prune: bool = False,
    progress: Progress = lambda line: None,
    poll: float = 0.25,
    backup: Callable[[DesiredService], str | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ConvergeReport:
    converger = _Converger(
        runtime, store, checkout, progress, clock, secrets=secrets, backup=backup
    )
    try:
        return converger.run(desired, allow_mass_prune=allow_mass_prune, poll=poll)
    finally:
        converger.health.close()


class _Converger:
    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        checkout: Checkout | None,
        progress: Progress,
        clock: Callable[[], float],
        *,
        secrets: SecretSource | None,
        backup: Callable[[DesiredService], str | None] | None,
    ) -> None:
        self.runtime, self.store, self.progress, self.clock = runtime, store, progress, clock
        self.secrets = secrets
        self.report = ConvergeReport(plan=Plan())
        self.services = ServiceController(
            runtime=runtime,
            journal=store,
            checkout=checkout,
            secrets=secrets,
            on_result=self.report.results.append,
        )
        self.health = HealthController(
            runtime, on_transition=lambda *a: None, clock=clock, workers=8
        )
        self.rollouts = RolloutController(
            runtime=runtime,
            store=store,
            services=self.services,
            ready=self.health.ready,
            health=self.health,
            clock=clock,
            on_finished=self._finished,
            backup=backup,
        )
        self.phases: dict[str, str] = {}
        self.attempts: dict[str, int] = {}

    def run(self, desired: DesiredState, *, allow_mass_prune: bool, poll: float) -> ConvergeReport:
        effective = effective_state(desired, self.store, self.secrets)
        state = effective.state
        actual = self.runtime.list_containers()
        plan = diff(state, actual, allow_mass_prune=allow_mass_prune)
        self.report.plan = plan
        for note in effective.notes.values():
            self.progress(f"note: {note}")
        for action in plan.actions:
            if action.kind in (ActionKind.REMOVE, ActionKind.CONFLICT):
                self.services.execute(action, None)
        for action in plan.withheld:
            self.report.results.append(
                ActionResult(action, Outcome.WITHHELD, "; ".join(plan.notes))
            )
        pending = [
            a for a in plan.actions if a.kind not in (ActionKind.REMOVE, ActionKind.CONFLICT)
        ]
        horizon = max(
            (
                s.spec.rollout.progress_deadline_seconds + s.spec.rollout.min_ready_seconds
                for s in state
            ),
            default=0,
        )
        deadline = self.clock() + horizon * max(1, len(pending)) + 30
        while (pending or self.rollouts.active) and self.clock() < deadline:
            actual = self.runtime.list_containers()
            self.health.sync(state, actual)
            self.health.tick()
            # Asides can appear late (Podman finishing a killed paid's last
            # request). Each service is acted on once per listing: what was
            # resumed, stepped or begun is looked at again on the next one.
            touched = self._resume_interrupted(state, actual, pending)
            touched |= self._step_rollouts(state, actual, skip=touched)
            self._start_what_may_start(state, actual, pending, skip=touched)
            time.sleep(poll)
        for action in pending:
            self.report.unfinished[action.service] = "not converged before the deadline"
        for name in self.rollouts.active:
            self.report.unfinished[name] = "rollout still in progress at the deadline"
        if self.report.converged and uses_secrets(state, actual):
            with contextlib.suppress(RuntimeFailure):
                self.services.collect_secrets(state, actual, now=time.time())
        return self.report

    def _resume_interrupted(
        self, state: DesiredState, actual: list[ActualContainer], pending: list[Action]
    ) -> set[str]:
        """Services with a container kept aside were interrupted mid-rollout."""
        by_name = {c.name: c for c in actual}
        touched: set[str] = set()
        for svc in state:
            aside = by_name.get(aside_name(svc.name))
            if aside is None or not aside.managed or svc.name in self.rollouts.active:
                continue
            touched.add(svc.name)
            self.progress(f"{svc.name}: finishing an interrupted rollout")
            self.rollouts.resume_or_restore(svc, by_name.get(svc.name), aside)
            pending[:] = [a for a in pending if a.service != svc.name]
            if svc.name not in self.rollouts.active:  # undone: roll out afresh
                pending.append(Action(ActionKind.RECREATE, svc.name, "interrupted rollout"))
        return touched

    def _start_what_may_start(
        self,
        state: DesiredState,
        actual: list[ActualContainer],
        pending: list[Action],
        *,
        skip: set[str],
    ) -> None:
        by_name = {c.name: c for c in actual}
        for action in list(pending):
            name = action.service
            if name in skip:
                continue
            decision = decide(state, name, actual, ready=self.health.ready)
            failed = [
                d
                for d in decision.waiting_on
                if self.report.rollouts.get(d) in ("failed", "rolled_back")
            ]
            if failed:
                pending.remove(action)
                self.report.unfinished[name] = f"dependency {failed[0]} failed its rollout"
                continue
            if decision.waiting_on:
                self._say(
                    name, "waiting", f"waiting for {', '.join(decision.waiting_on)} to be ready"
                )
                continue
            pending.remove(action)
            if decision.action is None:
                continue
            svc = state.services[name]  # type: ignore[index]
            gated = decision.action.kind is ActionKind.RECREATE or (
                decision.action.kind is ActionKind.CREATE and self.rollouts.needs_gate(svc)
            )
            try:
                if gated:
                    self.progress(f"{name}: rolling out ({decision.action.reason})")
                    self.rollouts.begin(svc, by_name.get(name))
                else:
                    self.services.execute(decision.action, svc)
            except RuntimeFailure as err:
                # The state moved under us (a late rename, a vanished container):
                # decide again on the next, fresh listing, a few times at most.
                self.attempts[name] = self.attempts.get(name, 0) + 1
                if self.attempts[name] < 3:
                    pending.append(action)
                else:
                    self.report.unfinished[name] = str(err)

    def _step_rollouts(
        self, state: DesiredState, actual: list[ActualContainer], *, skip: set[str]
    ) -> set[str]:
        by_name = {c.name: c for c in actual}
        stepped: set[str] = set()
        for name in list(self.rollouts.active):
            if name in skip:
                continue
            stepped.add(name)
            self.rollouts.step(
                state.services[name],  # type: ignore[index]
                by_name.get(name),
                by_name.get(canary_name(name)),
            )
            active = self.rollouts.active.get(name)
            phase = str(active.gate.phase) if active else self.report.rollouts.get(name, "")
            self._say(name, phase, phase.replace("_", " "))
        return stepped

    def _finished(self, name: str, result: str, reason: str) -> None:
        self.report.rollouts[name] = result
        self.report.reasons[name] = reason

    def _say(self, name: str, phase: str, line: str) -> None:
        if self.phases.get(name) != phase:
            self.phases[name] = phase
            self.progress(f"{name}: {line}")
