"""One back-off type: every "wait longer each time" in paid is a ``Backoff``.

The requeue of a reconcile that failed, the restarts of a crashing
container, the retries of a failed first deploy and the reconnects of
Podman's event stream each count attempts per key under a
``BackoffPolicy`` from ``paid.settings.Timings``: after ``n`` attempts,
the next may happen ``base * 2 ** (n - 1)`` seconds after the last one, at
most ``maximum`` (the first attempt is free), and the count starts over
after ``reset_after`` seconds without an attempt. (A Podman call retried
within itself, by tenacity in ``paid.runtime.resilient``, waits by the
same rule under ``Timings.podman_retry``.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from paid.settings import BackoffPolicy

K = TypeVar("K", bound=Hashable)


@dataclass
class Backoff(Generic[K]):
    """Attempts per key under one policy. Thread-safe; the clock is injectable."""

    policy: BackoffPolicy
    clock: Callable[[], float] = time.monotonic
    _attempts: dict[K, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self, key: K) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            attempts, last = self._current(key)
            if attempts == 0:
                return 0.0
            return max(0.0, last + self.policy.delay(attempts) - self.clock())

    def attempt(self, key: K) -> float:
        """Count an attempt now; return the wait before the next one."""
        with self._lock:
            attempts, _ = self._current(key)
            self._attempts[key] = (attempts + 1, self.clock())
            return self.policy.delay(attempts + 1)

    def attempts(self, key: K) -> int:
        with self._lock:
            return self._current(key)[0]

    def reset(self, key: K) -> None:
        with self._lock:
            self._attempts.pop(key, None)

    def backing_off(self) -> Mapping[K, float]:
        """Every key that must still wait, with its seconds left."""
        with self._lock:
            now = self.clock()
            out: dict[K, float] = {}
            for key in list(self._attempts):
                attempts, last = self._current(key)
                left = last + self.policy.delay(attempts) - now if attempts else 0.0
                if left > 0:
                    out[key] = left
            return out

    def _current(self, key: K) -> tuple[int, float]:
        attempts, last = self._attempts.get(key, (0, 0.0))
        reset = self.policy.reset_after
        if attempts and reset is not None and self.clock() - last > reset:
            self._attempts.pop(key, None)
            return 0, 0.0
        return attempts, last
