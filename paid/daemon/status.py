"""What the daemon knows, and the views over it: /healthz, /readyz, /status.

``Knowledge`` is written by the sources and observers (under its lock)
and read by the HTTP handlers, which never call Podman. The views are
computed from a copy taken under the lock, plus the reconciler's own
memory (rollouts under way, probes, the last step of each service).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from paid import __version__
from paid.controllers.effective import following
from paid.controllers.reconciling import FULL, PRUNE, Reconciler, Step, StepKind
from paid.daemon.http import Probe
from paid.runtime.resilient import ResilientRuntime
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredState
from paid.state.images import Update
from paid.state.statuses import service_statuses
from paid.storage.loading import LoadError
from paid.storage.store import Store, StoreError


@dataclass
class Knowledge:
    """What the daemon knows; every field is replaced whole, under ``lock``."""

    desired: DesiredState | None = None
    desired_since: float | None = None  # when the enforced state was loaded or saved
    load_errors: tuple[LoadError, ...] = ()
    observed: tuple[ActualContainer, ...] = ()
    observed_at: float | None = None
    notes: Mapping[str, str] = field(default_factory=dict)  # service -> pinned / quarantined
    podman_error: str | None = None
    last_pass_error: str | None = None
    last_pass_ok_at: float | None = None
    first_pass_done: bool = False
    steps: Mapping[str, Step] = field(default_factory=dict)  # the last step of each service
    image_checks: tuple[Update, ...] = ()  # the last image update check (imageUpdate)
    image_checked_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def copy(self) -> Knowledge:
        with self.lock:
            return replace(self, lock=threading.Lock())

    def set_step(self, step: Step) -> None:
        with self.lock:
            self.steps = {**self.steps, step.service: step}


class StatusViews:
    def __init__(
        self,
        knowledge: Knowledge,
        *,
        reconciler: Reconciler,
        runtime: ResilientRuntime,
        store: Store,
        directory: Path,
        inflight: Callable[[], Mapping[str, float]],
        heartbeat: Callable[[], float],
        tick: Callable[[], float],
        stall_limit: float,
        clock: Callable[[], float],
    ) -> None:
        self.knowledge = knowledge
        self.reconciler = reconciler
        self.runtime = runtime
        self.store = store
        self.directory = directory
        self._inflight = inflight
        self._heartbeat = heartbeat
        self._tick = tick
        self.stall_limit = stall_limit
        self._clock = clock

    def making_progress(self) -> bool:
        now = self._clock()
        return all(now - since < self.stall_limit for since in self._inflight().values())

    def healthz(self) -> Probe:
        age = self._clock() - self._heartbeat()
        if age > max(5.0, 5 * self._tick()):
            return Probe(False, f"control loop has not run for {age:.0f} s")
        if not self.making_progress():
            return Probe(False, f"a reconcile has run for more than {self.stall_limit:.0f} s")
        return Probe(True, "ok")

    def readyz(self) -> Probe:
        s = self.knowledge.copy()
        reasons = []
        if s.desired is None:
            reasons.append("no valid desired state loaded")
        if s.load_errors:
            first = s.load_errors[0]
            reasons.append(
                f"desired state invalid ({len(s.load_errors)} errors, first: {first}); "
                "enforcing the last valid state"
            )
        if s.podman_error:
            reasons.append(f"Podman unreachable: {s.podman_error}")
        if self.runtime.breaker_state != "closed":
            reasons.append(f"circuit breaker {self.runtime.breaker_state}")
        if not s.first_pass_done:
            reasons.append("first reconcile pass not finished")
        if s.last_pass_error:
            reasons.append(f"last pass: {s.last_pass_error}")
        return Probe(not reasons, "; ".join(reasons))

    def status(self) -> dict[str, Any]:
        s = self.knowledge.copy()
        notes = dict(s.notes)
        revisions: dict[str, int] = {}
        restarts: dict[str, int] = {}
        try:
            created = {c.name: c.created_at for c in s.observed if c.managed and c.created_at}
            restarts = self.store.restarts_since(created)
            for name, hold in self.store.holds().items():
                notes[name] = f"held by pid {hold.pid} for a {hold.reason}: paid leaves it alone"
            targets = self.store.image_targets()
            for svc in s.desired or ():
                svc = following(svc, targets.get(svc.name))  # noqa: PLW2901 -- what runs
                number = self.store.find_revision(service=svc.name, spec_hash=svc.spec_hash)
                if number is not None:
                    revisions[svc.name] = number
        except StoreError:
            pass  # the store is busy or gone: show what Podman runs all the same
        statuses = service_statuses(
            s.desired, list(s.observed), revisions=revisions, restarts=restarts
        )
        ready = self.readyz()
        health = self.reconciler.health
        return {
            "version": __version__,
            "ready": ready.ok,
            "reason": ready.reason or None,
            "desiredState": {
                "directory": str(self.directory),
                "valid": not s.load_errors,
                "errors": [str(e) for e in s.load_errors],
                "enforcedSince": s.desired_since,
            },
            "podman": {"reachable": s.podman_error is None, "breaker": self.runtime.breaker_state},
            "observedAt": s.observed_at,
            "reconciling": sorted(k for k in self._inflight() if k not in (FULL, PRUNE)),
            "lastSuccessfulPassAt": s.last_pass_ok_at,
            "imageUpdates": {
                "checkedAt": s.image_checked_at,
                "services": [
                    {
                        "service": u.service,
                        "state": u.state,
                        "current": u.current,
                        "latest": u.latest,
                        "latestTag": u.latest_tag,
                        "waitsUntil": u.waits_until,
                        "detail": u.detail or None,
                    }
                    for u in s.image_checks
                ],
            },
            "services": [
                {
                    **st.to_json(),
                    "waitingFor": list(_step(s, st.name, StepKind.WAIT).waiting_on),
                    "crashLoopBackOff": _step(s, st.name, StepKind.BACK_OFF).kind
                    is StepKind.BACK_OFF,
                    "rollout": self._rollout_json(st.name),
                    "health": health.summary(st.name),
                    "note": notes.get(st.name),
                }
                for st in statuses
            ],
        }

    def _rollout_json(self, name: str) -> dict[str, Any] | None:
        active = self.reconciler.rollouts.active.get(name)
        if active is None:
            return None
        gate, now = active.gate, self.reconciler.rollouts.now()
        return {
            "revision": gate.revision,
            "phase": str(gate.phase),
            "previousRevision": active.previous_revision,
            "readyFor": None if gate.ready_since is None else round(now - gate.ready_since, 1),
            "minReadySeconds": gate.min_ready_seconds,
            "deadlineIn": round(gate.deadline - now, 1),
        }

    def status_line(self) -> str:
        desired = self.knowledge.desired
        count = len(desired) if desired else 0
        ready = self.readyz()
        return f"{count} services; " + ("converged" if ready.ok else ready.reason)[:200]


def _step(knowledge: Knowledge, name: str, kind: StepKind) -> Step:
    """The service's last step if it is of ``kind``, else an idle one."""
    step = knowledge.steps.get(name)
    if step is not None and step.kind is kind:
        return step
    return Step(StepKind.IDLE, name)
