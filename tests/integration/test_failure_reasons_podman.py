"""A failed rollout says why, on real Podman: its last output and its probe's answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import PodmanService, run_paid, service_doc, write_services

pytestmark = pytest.mark.slow


def _paid(podman: PodmanService, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=120)


def test_a_crashing_revision_shows_its_last_output(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`exited with code 1` comes with what the program said, in apply and in history."""
    command = ["sh", "-c", "echo starting; echo 'FATAL: cannot reach db:5432'; exit 1"]
    write_services(desired_dir, service_doc("app", command=command))

    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    history = _paid(podman, state_dir, "history", "app")

    assert 1 == applied.returncode
    assert "FATAL: cannot reach db:5432" in applied.stdout
    assert "FATAL: cannot reach db:5432" in history.stdout, history.stdout + history.stderr


def test_a_revision_never_ready_shows_its_probe_s_answer(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """A readiness probe that never passes: the failure names the probe and what it answered."""
    spec = {
        "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 1},
        "rollout": {"minReadySeconds": 0, "progressDeadlineSeconds": 4},
    }
    write_services(desired_dir, service_doc("app", **spec))

    applied = _paid(podman, state_dir, "apply", str(desired_dir))

    assert 1 == applied.returncode
    assert "readiness probe: exec exited 1" in applied.stdout, applied.stdout
