"""``paid apply``: the reconciler, driven until the host is converged or a deadline.

The same ``Reconciler`` and worker loop as the daemon, with bounded
concurrency (``workers``): services independent in the ``dependsOn``
graph are created, started and health-gated at the same time, and a
service waiting for a dependency is woken when that dependency becomes
ready or finishes its rollout. Probes tick on a thread of their own.

The drive ends when every key the work queue still holds has *settled*:
done, held, backing off (a failed first deploy or a crash loop: the
daemon would retry later, ``apply`` reports it), in conflict, failing
past ``ERROR_ATTEMPTS``, or waiting on a dependency that settled without
converging. What did not converge is in the report, and ``apply`` exits 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paid.controllers import wiring
from paid.controllers.images import Registry
from paid.controllers.networks import NetworkResult
from paid.controllers.queue import WorkQueue
from paid.controllers.reconciling import FULL, PRUNE, Hooks, Reconciler, Result, StepKind, World
from paid.controllers.services import ActionResult, Outcome
from paid.controllers.wiring import Mode
from paid.controllers.working import Workers
from paid.controllers.worlds import Wants
from paid.runtime.base import Runtime
from paid.settings import Timings
from paid.state.desired import DesiredService, DesiredState
from paid.state.images import Update
from paid.state.plans import ActionKind, Plan
from paid.storage.checkout import Checkout
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store

Progress = Callable[[str], None]

ERROR_ATTEMPTS = 3  # a key that failed this many times in a row is reported, not retried
DEFAULT_WORKERS = 4


@dataclass
class ConvergeReport:
    plan: Plan
    results: list[ActionResult] = field(default_factory=list)
    rollouts: dict[str, str] = field(default_factory=dict)  # service -> result
    unfinished: dict[str, str] = field(default_factory=dict)  # service -> why not
    reasons: dict[str, str] = field(default_factory=dict)  # service -> why its rollout ended so
    refused: bool = False  # the gate (pre-flight) said no: nothing was touched
    networks: list[NetworkResult] = field(default_factory=list)  # network actions taken

    @property
    def converged(self) -> bool:
        return (
            not self.refused
            and all(r.error is None for r in self.networks)
            and all(r.outcome is Outcome.DONE for r in self.results)
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
    backup: Callable[[DesiredService], str | None] | None = None,
    workers: int = DEFAULT_WORKERS,
    timings: Timings | None = None,
    clock: Callable[[], float] = time.monotonic,
    gate: Callable[[World], bool] | None = None,
    allowed_host_paths: tuple[str, ...] = (),
    registry: Registry | None = None,
    updates: Sequence[Update] = (),
) -> ConvergeReport:
    """Drive ``desired`` to convergence once; the report says what happened.

    ``gate`` (the pre-flight checks) sees the first observation before
    anything is done; when it says no, nothing is touched. ``updates`` (from
    ``paid update``) become their services' targets first; with a
    ``registry``, following services' tags are resolved as the daemon does.
    """
    drive = _Drive(progress)
    reconciler = wiring.build(
        runtime,
        store,
        Wants(
            desired=lambda: desired,
            checkout=lambda: checkout,
            allow_mass_prune=allow_mass_prune,
            allowed_host_paths=allowed_host_paths,
        ),
        secrets=secrets,
        registry=registry,
        timings=timings,
        hooks=Hooks(
            action=drive.on_action,
            rollout_finished=drive.on_rollout_finished,
            network=drive.report.networks.append,
            probe_transition=drive.on_probe_transition,
        ),
        backup=backup,
        clock=clock,
        mode=Mode.APPLY,
    )
    try:
        if updates and reconciler.images is not None:
            reconciler.images.apply(list(updates))
        return drive.run(reconciler, workers=workers, clock=clock, gate=gate)
    finally:
        reconciler.close()


class _Drive:
    """What one ``paid apply`` saw: results, rollouts, and what each key last asked."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.report = ConvergeReport(plan=Plan())
        self.last: dict[str, Result] = {}
        self.phases: dict[str, str] = {}
        self.changed = threading.Condition()
        self.queue: WorkQueue | None = None
        self.pool: Workers | None = None

    # -- hooks (called from worker and probe threads) ---------------------------

    def on_action(self, result: ActionResult) -> None:
        self.report.results.append(result)

    def on_rollout_finished(self, name: str, result: str, reason: str) -> None:
        self.report.rollouts[name] = result
        self.report.reasons[name] = reason

    def on_probe_transition(self, name: str, kind: str, passing: bool, detail: str) -> None:
        if self.pool is not None:
            self.pool.wake(self.pool.reconciler.woken_by_probe(name, kind, passing))

    def on_result(self, key: str, result: Result, seconds: float) -> None:
        step = result.step
        if step is not None:
            self._say(key, step.kind, result)
        with self.changed:
            self.last[key] = result
            self.changed.notify_all()

    # -- the drive ---------------------------------------------------------------

    def run(
        self,
        reconciler: Reconciler,
        *,
        workers: int,
        clock: Callable[[], float],
        gate: Callable[[World], bool] | None,
    ) -> ConvergeReport:
        world = reconciler.observe()
        assert world is not None  # noqa: S101 -- desired is given
        if gate is not None and not gate(world):
            self.report.refused = True
            return self.report
        self.report.plan = reconciler.plan(world)
        for note in world.notes.values():
            self.progress(f"note: {note}")
        for action in self.report.plan.withheld:
            if action.kind is ActionKind.REMOVE:
                self.report.results.append(
                    ActionResult(action, Outcome.WITHHELD, "; ".join(self.report.plan.notes))
                )
        self.queue = WorkQueue(clock=clock)
        pool = self.pool = Workers(
            reconciler,
            self.queue,
            count=workers,
            timings=reconciler.timings,
            on_result=self.on_result,
            clock=clock,
        )
        stop = threading.Event()
        ticker = threading.Thread(
            target=_tick, args=(reconciler, stop), name="paid-probes", daemon=True
        )
        deadline = clock() + _horizon(world)
        pool.process(FULL, world)  # the plan's own observation: a no-op apply lists once
        pool.start()
        ticker.start()
        try:
            with self.changed:
                while not self._settled(pool) and clock() < deadline:
                    self.changed.wait(0.1)
        finally:
            stop.set()
            pool.stop()
            ticker.join(timeout=5)
        self._report_unfinished(pool)
        if self.report.converged and (self.report.results or self.report.rollouts):
            final = reconciler.observe()
            if final is not None:
                reconciler.collector.secrets(final)
        return self.report

    def _settled(self, pool: Workers) -> bool:
        queue = self.queue
        assert queue is not None  # noqa: S101 -- set by run()
        if not queue.idle() or FULL not in self.last:
            return False
        return all(self._why_settled(key, pool) is not None for key in queue.pending())

    def _why_settled(self, key: str, pool: Workers) -> str | None:
        """Why ``key`` will not converge without outside help, or None while it may."""
        result = self.last.get(key)
        if result is None:
            return None
        step = result.step
        if result.error is not None:
            if step is not None and step.action and step.action.kind is ActionKind.CONFLICT:
                return step.action.reason
            return result.error if pool.errors.attempts(key) >= ERROR_ATTEMPTS else None
        if step is None:
            return "done" if result.requeue_after is None else None
        if step.kind in (StepKind.HELD, StepKind.QUARANTINED):
            return step.reason
        if step.kind is StepKind.BACK_OFF:
            return f"backing off ({step.reason}); the daemon retries in {step.wait:.0f} s"
        if step.kind is StepKind.WAIT:
            for dependency in step.waiting_on:
                if self.report.rollouts.get(dependency) in ("failed", "rolled_back"):
                    return f"dependency {dependency} failed its rollout"
                if self._why_settled(dependency, pool) not in (None, "done"):
                    return f"dependency {dependency} did not converge"
            return None
        return "done" if result.requeue_after is None else None

    def _report_unfinished(self, pool: Workers) -> None:
        assert self.queue is not None  # noqa: S101 -- set by run()
        reported = {r.action.service for r in self.report.results if r.outcome is not Outcome.DONE}
        full = self.last.get(FULL)
        if full is not None and full.error is not None:
            self.report.unfinished["(full pass)"] = full.error  # a network paid could not make
        for key in sorted(self.queue.pending() | set(self.last)):
            if key in (FULL, PRUNE) or key in reported:
                continue
            why = self._why_settled(key, pool)
            step = self.last[key].step if key in self.last else None
            if why is None:
                if key in self.queue.pending() or (step and step.kind is StepKind.ROLLOUT):
                    self.report.unfinished[key] = "not converged before the deadline"
            elif why != "done" and key not in self.report.rollouts:
                self.report.unfinished[key] = why

    def _say(self, name: str, kind: StepKind, result: Result) -> None:
        step = result.step
        assert step is not None  # noqa: S101 -- only called with a step
        line = {
            StepKind.ROLL_OUT: f"rolling out ({step.reason})",
            StepKind.WAIT: step.reason,
            StepKind.HELD: step.reason,
            StepKind.BACK_OFF: f"backing off: {step.reason}",
            StepKind.RESUME: "finishing an interrupted rollout",
            StepKind.RESUME_BESIDE: "settling an interrupted StartFirst rollout",
            StepKind.CANARY_CLEANUP: "removing a canary nobody judges",
        }.get(kind)
        if kind is StepKind.ROLLOUT:
            line = None if step.reason == "finished" else step.reason.replace("_", " ")
        if line is not None and self.phases.get(name) != line:
            self.phases[name] = line
            self.progress(f"{name}: {line}")


def _tick(reconciler: Reconciler, stop: threading.Event) -> None:
    while not stop.wait(reconciler.timings.probe_tick):
        reconciler.health.tick()


def _horizon(world: World) -> float:
    """How long ``apply`` may take: every gate's worst case, one after another, and slack."""
    gates = [
        s.spec.rollout.progress_deadline_seconds + s.spec.rollout.min_ready_seconds
        for s in world.desired
    ]
    return float(sum(gates) + 30) if gates else 30.0
