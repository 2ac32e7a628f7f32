"""The reliability trials, short: kill -9 at random moments and two writers at once.

``PAID_RELIABILITY_TRIALS`` (default 1: the suite's 20 minutes) and ``PAID_RELIABILITY_SEED`` set
how many and which; ``bench/reliability.py`` runs the long version and
writes docs/reliability.md. Each test asserts that nothing was lost.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import reliability
from tests.harness import PodmanService

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("PAID_RELIABILITY_TRIALS", "1"))
SEED = int(os.environ.get("PAID_RELIABILITY_SEED", "7"))


@pytest.mark.parametrize(
    "trial",
    [
        pytest.param(reliability.kill_during_cold_apply, id="kill-cold-apply"),
        pytest.param(reliability.kill_during_rollout, id="kill-rollout"),
        pytest.param(reliability.kill_during_start_first_rollout, id="kill-start-first"),
        pytest.param(reliability.kill_during_canary_rollout, id="kill-canary"),
        pytest.param(reliability.kill_during_restore, id="kill-restore"),
        pytest.param(reliability.concurrent_applies, id="two-writers"),
    ],
)
def test_faults_lose_nothing(
    podman: PodmanService,
    tmp_path: Path,
    trial: Callable[[PodmanService, Path, random.Random, int], reliability.Tally],
) -> None:
    """After each fault the next apply converges: one container each, settled, intact."""
    tally = trial(podman, tmp_path, random.Random(SEED), TRIALS)

    assert TRIALS == tally.trials
    assert [] == tally.lost
