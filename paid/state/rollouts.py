"""The health gate of a rollout, as a pure state machine.

A new revision *progresses* from the moment its container is started. It
*bakes* once it is ready, and succeeds once it has stayed ready for
``minReadySeconds`` — all within ``progressDeadlineSeconds`` of the start.
It fails when its container exits or disappears, when it is not ready by
the deadline, or when it loses readiness while baking (a flapping
revision is not a good one). Like Kubernetes' Deployment conditions, with
Nomad's ``min_healthy_time`` semantics for the bake.

``advance`` takes the rollout and one observation and returns the next
rollout: no clock, no I/O. The controller feeds it what it sees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"  # started, not ready yet
    BAKING = "Baking"  # ready, must stay ready for minReadySeconds
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        return self in (RolloutPhase.SUCCEEDED, RolloutPhase.FAILED)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the controller saw of the new revision's container at ``now``."""

    now: float
    running: bool
    ready: bool  # readiness probe passing (running, when there is no probe)
    exit_code: int | None = None  # when not running


@dataclass(frozen=True, slots=True)
class RolloutGate:
    service: str
    revision: int
    started_at: float
    min_ready_seconds: float
    progress_deadline_seconds: float
    phase: RolloutPhase = RolloutPhase.PROGRESSING
    ready_since: float | None = None
    reason: str = ""

    @property
    def deadline(self) -> float:
        return self.started_at + self.progress_deadline_seconds


def advance(gate: RolloutGate, seen: Observation) -> RolloutGate:
    """The gate after one more observation. Finished gates do not move."""
    if gate.phase.finished:
        return gate
    if not seen.running:
        code = "" if seen.exit_code is None else f" with code {seen.exit_code}"
        return _fail(gate, f"revision {gate.revision} exited{code} during its rollout")
    if not seen.ready:
        if gate.phase is RolloutPhase.BAKING:
            return _fail(
                gate,
                f"revision {gate.revision} lost readiness after "
                f"{seen.now - (gate.ready_since or seen.now):.0f} s of "
                f"{gate.min_ready_seconds:.0f} s minReadySeconds",
            )
        if seen.now >= gate.deadline:
            return _fail(
                gate,
                f"revision {gate.revision} not ready within "
                f"progressDeadlineSeconds ({gate.progress_deadline_seconds:.0f} s)",
            )
        return gate
    ready_since = gate.ready_since if gate.ready_since is not None else seen.now
    if seen.now - ready_since >= gate.min_ready_seconds:
        return replace(
            gate,
            phase=RolloutPhase.SUCCEEDED,
            ready_since=ready_since,
            reason=f"ready for {gate.min_ready_seconds:.0f} s",
        )
    if seen.now >= gate.deadline:
        return _fail(
            gate,
            f"revision {gate.revision} did not stay ready for minReadySeconds within "
            f"progressDeadlineSeconds ({gate.progress_deadline_seconds:.0f} s)",
        )
    return replace(gate, phase=RolloutPhase.BAKING, ready_since=ready_since)


def _fail(gate: RolloutGate, reason: str) -> RolloutGate:
    return replace(gate, phase=RolloutPhase.FAILED, reason=reason)


def next_wake(gate: RolloutGate, now: float) -> float:
    """Seconds until the gate could change without a new event (for requeueing)."""
    if gate.phase.finished:
        return 0.0
    if gate.phase is RolloutPhase.BAKING and gate.ready_since is not None:
        return max(0.0, min(gate.ready_since + gate.min_ready_seconds, gate.deadline) - now)
    return max(0.0, gate.deadline - now)
