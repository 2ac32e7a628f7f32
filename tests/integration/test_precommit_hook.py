"""The pre-commit hook, run by a real `pre-commit try-repo`, and `validate --offline`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import service_doc, write_services

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_validate_offline_needs_no_secret_files_or_host_policy(tmp_path: Path) -> None:
    """secretEnv, host paths and devices validate offline; a typo still fails."""
    directory = tmp_path / "desired-state"
    write_services(
        directory,
        service_doc(
            "web",
            secretEnv={"TOKEN": {"file": "token"}},
            volumes=["/srv/web:/srv:ro"],
            devices=["/dev/fuse"],
        ),
    )
    run = [sys.executable, "-m", "paid", "validate", str(directory), "--secrets-dir", "/nope"]

    online = subprocess.run(run, capture_output=True, text=True, check=False)
    offline = subprocess.run([*run, "--offline"], capture_output=True, text=True, check=False)

    assert 1 == online.returncode
    assert 0 == offline.returncode, offline.stderr


def test_the_hook_passes_a_good_file_and_names_a_typo(tmp_path: Path) -> None:
    """`pre-commit try-repo` of this repository in a fresh git repo: exit codes and file:line."""
    tool = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    repo = tmp_path / "app"
    repo.mkdir()
    _git(repo, "init", "-q")
    write_services(repo / "desired-state", service_doc("web"))
    _git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    try_repo = [tool, "try-repo", str(ROOT), "paid-validate", "--all-files"]

    good = subprocess.run(
        try_repo, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    write_services(repo / "desired-state", service_doc("web", restartPolicyy="Always"))
    _git(repo, "add", "-A")
    bad = subprocess.run(
        try_repo, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    assert 0 == good.returncode, good.stdout + good.stderr
    assert 1 == bad.returncode, bad.stdout + bad.stderr
    assert "services.yaml:14: spec.restartPolicyy: unknown field" in bad.stdout
