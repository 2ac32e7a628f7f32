"""The rollout health gate, driven by a fake clock."""

from __future__ import annotations

import pytest

from paid.state.rollouts import Observation, RolloutGate, RolloutPhase, advance, next_wake


def gate(min_ready: float = 10, deadline: float = 60) -> RolloutGate:
    return RolloutGate(
        service="web",
        revision=2,
        started_at=100.0,
        min_ready_seconds=min_ready,
        progress_deadline_seconds=deadline,
    )


def run(g: RolloutGate, *steps: tuple[float, bool, bool]) -> RolloutGate:
    for now, running, ready in steps:
        g = advance(
            g, Observation(now=now, running=running, ready=ready, exit_code=None if running else 1)
        )
    return g


@pytest.mark.parametrize(
    ("steps", "phase", "reason"),
    [
        pytest.param([(101, True, False)], RolloutPhase.PROGRESSING, "", id="starting"),
        pytest.param([(101, True, True)], RolloutPhase.BAKING, "", id="ready-starts-the-bake"),
        pytest.param(
            [(101, True, True), (111, True, True)],
            RolloutPhase.SUCCEEDED,
            "ready for 10 s",
            id="baked",
        ),
        pytest.param(
            [(101, True, True), (105, True, True)], RolloutPhase.BAKING, "", id="still-baking"
        ),
        pytest.param(
            [(101, True, True), (105, True, False)],
            RolloutPhase.FAILED,
            "revision 2 lost readiness after 4 s of 10 s minReadySeconds",
            id="flapping-during-bake",
        ),
        pytest.param(
            [(101, False, False)],
            RolloutPhase.FAILED,
            "revision 2 exited with code 1 during its rollout",
            id="crash",
        ),
        pytest.param(
            [(130, True, False), (160, True, False)],
            RolloutPhase.FAILED,
            "revision 2 not ready within progressDeadlineSeconds (60 s)",
            id="never-ready",
        ),
        pytest.param(
            [(155, True, True), (160, True, True)],
            RolloutPhase.FAILED,
            "revision 2 did not stay ready for minReadySeconds within "
            "progressDeadlineSeconds (60 s)",
            id="ready-too-late-to-bake",
        ),
    ],
)
def test_gate(steps: list[tuple[float, bool, bool]], phase: RolloutPhase, reason: str) -> None:
    """Each sequence of observations ends in the listed phase, with the listed reason."""
    result = run(gate(), *steps)

    assert (phase, reason) == (result.phase, result.reason)


def test_finished_gates_do_not_move() -> None:
    """A failed rollout stays failed whatever comes after."""
    failed = run(gate(), (101, False, False))

    assert failed == run(failed, (102, True, True), (200, True, True))


def test_zero_min_ready_succeeds_on_first_ready() -> None:
    """minReadySeconds: 0 means ready once is enough (Kubernetes' default)."""
    assert RolloutPhase.SUCCEEDED == run(gate(min_ready=0), (101, True, True)).phase


def test_next_wake_points_at_the_next_possible_change() -> None:
    """While baking: when the bake ends; before that: the deadline."""
    baking = run(gate(), (101, True, True))

    assert (9.0, 57.0) == (next_wake(baking, 102), next_wake(gate(), 103))
