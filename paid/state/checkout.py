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
