"""Pull mode: the daemon fast-forwards its checkout from a local bare repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, service_doc


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(clone: Path, *names: str, message: str) -> str:
    (clone / "services.yaml").write_text(
        yaml.safe_dump_all([service_doc(n) for n in names], sort_keys=False)
    )
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", message)
    return git(clone, "rev-parse", "HEAD")


def test_pull_mode_follows_fast_forwards_and_refuses_a_rewrite(
    podman: PodmanService, daemon: Daemon, tmp_path: Path
) -> None:
    """A pushed commit is deployed and recorded; a force-pushed rewrite keeps the state."""
    remote, upstream = tmp_path / "remote.git", tmp_path / "upstream"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(tmp_path, "clone", "-q", str(remote), str(upstream))
    git(upstream, "checkout", "-q", "-b", "main")
    first = commit(upstream, "a", message="a")
    git(upstream, "push", "-q", "origin", "main")
    checkout = daemon.directory
    checkout.rmdir()
    git(tmp_path, "clone", "-q", str(remote), str(checkout))
    daemon.extra += ["--git-pull-interval", "0.5"]
    daemon.start()
    wait_until(lambda: podman.inspect("a")["State"]["Running"], 30)

    second = commit(upstream, "a", "b", message="add b")
    git(upstream, "push", "-q", "origin", "main")

    wait_until(lambda: podman.inspect("b")["State"]["Running"], 30)
    assert second == git(checkout, "rev-parse", "HEAD")
    with Store.open(daemon.state_dir) as store:
        assert [second] == [r.git_commit for r in store.revisions("b")]
        assert [first] == [r.git_commit for r in store.revisions("a")]

    # Rewrite history upstream: drop b, force-push. Not a fast-forward: refused.
    git(upstream, "reset", "-q", "--hard", first)
    commit(upstream, "a", "c", message="rewritten")
    git(upstream, "push", "-q", "--force", "origin", "main")

    wait_until(lambda: (daemon.metric("paid_git_pulls_total", 'result="failed"') or 0) >= 1, 20)
    assert second == git(checkout, "rev-parse", "HEAD")
    assert podman.inspect("b")["State"]["Running"]
    assert not [c for c in podman.containers() if c["Names"][0] == "c"]
    with Store.open(daemon.state_dir) as store:
        (failure,) = [e for e in store.events() if e.kind == "git_pull_failed"]
    assert "not a fast-forward" in failure.message
