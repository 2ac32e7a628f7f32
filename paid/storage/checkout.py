"""Which git commit the desired state came from, when it is a checkout.

Recorded with every revision so that ``paid history`` can say which
commit a deploy was made from, and whether the tree had local changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Checkout:
    commit: str
    dirty: bool


def describe(directory: str | os.PathLike[str]) -> Checkout | None:
    """The HEAD commit of the checkout holding ``directory``; None if it is not one."""
    git = shutil.which("git")
    if git is None:
        return None
    if os.path.isfile(directory):  # one desired-state file: its directory's checkout
        directory = os.path.dirname(os.path.abspath(directory))
    try:
        head = subprocess.run(
            [git, "-C", str(directory), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            [git, "-C", str(directory), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Checkout(commit=head.stdout.strip(), dirty=bool(status.stdout.strip()))


@dataclass(frozen=True, slots=True)
class PullResult:
    ok: bool
    before: str | None
    after: str | None
    message: str

    @property
    def changed(self) -> bool:
        return self.ok and self.before != self.after


class _GitFailed(Exception):
    pass


def pull(directory: str | os.PathLike[str], *, timeout: float = 60.0) -> PullResult:
    """Fetch the checkout's upstream and fast-forward to it; never merge, never rewind.

    A checkout with commits the upstream lacks (a force-push upstream, or
    local commits) is left as it is and reported, as is any failure to
    fetch: the desired state stays what it was.
    """
    git = shutil.which("git")
    if git is None:
        return PullResult(False, None, None, "git is not installed")

    def run(*args: str) -> str:
        try:
            done = subprocess.run(
                [git, "-C", str(directory), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise _GitFailed(f"git {args[0]}: {err}") from None
        if done.returncode != 0:
            raise _GitFailed(f"git {args[0]}: {(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout.strip()

    before = None
    try:
        before = run("rev-parse", "--verify", "HEAD")
        upstream = run("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
        run("fetch", "--quiet", "--no-tags")
        target = run("rev-parse", "--verify", "@{upstream}")
        if target == before:
            return PullResult(True, before, before, f"up to date with {upstream}")
        try:
            run("merge-base", "--is-ancestor", "HEAD", "@{upstream}")
        except _GitFailed:
            return PullResult(
                False,
                before,
                before,
                f"not a fast-forward: {upstream} is at {target[:12]}, which does not contain "
                f"the checkout's {before[:12]}; keeping {before[:12]}",
            )
        run("merge", "--ff-only", "--quiet", "@{upstream}")
        after = run("rev-parse", "--verify", "HEAD")
    except _GitFailed as err:
        return PullResult(False, before, before, str(err))
    return PullResult(True, before, after, f"fast-forwarded to {upstream} at {after[:12]}")
