"""One writer per state: an flock on ``<state dir>/paid.lock``.

``paid run`` holds it for its whole life, ``paid apply`` for its run. Two
writers at once raced each other's renames and creates (services left
with no container, false quarantines); with the lock the second one
learns who holds it — pid, role, directory — from the file, and either
hands its work to the daemon, waits (``--wait``) or stops.

The kernel drops an flock when its process dies, kill -9 included: a
stale lock file never blocks anyone, and what it says is only believed
while someone holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILENAME = "paid.lock"


POLL = 0.1  # seconds between tries while waiting with a timeout


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    role: str  # "daemon" or "apply"
    directory: str
    since: float

    def __str__(self) -> str:
        return f"paid {self.role} (pid {self.pid}, {self.directory})"


class LockHeld(Exception):
    """Another process holds the lock."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        who = str(holder) if holder is not None else "another paid"
        super().__init__(f"{who} holds {path}")
        self.path, self.holder = path, holder


class WriterLock:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / FILENAME
        self._fd: int | None = None

    def acquire(
        self, *, role: str, directory: str, wait: bool = False, timeout: float | None = None
    ) -> None:
        """Take the lock, or raise ``LockHeld`` naming the holder.

        ``wait``: block until it is free, or, with ``timeout``, for at most
        that many seconds before raising ``LockHeld``.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    blocking = wait and deadline is None
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                    break
                except BlockingIOError:
                    if not wait or (deadline is not None and time.monotonic() >= deadline):
                        raise LockHeld(self.path, self.holder()) from None
                    time.sleep(min(POLL, max(0.0, (deadline or 0) - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
        record = {
            "pid": os.getpid(),
            "role": role,
            "directory": os.path.realpath(directory),
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def holder(self) -> Holder | None:
        """Who the lock file says holds it (believed only while it is held)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                raw: Any = json.loads(handle.read(4096) or "null")
            return Holder(
                int(raw["pid"]), str(raw["role"]), str(raw["directory"]), float(raw["since"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
