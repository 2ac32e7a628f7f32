"""One back-off type, and every interval of the control loop in one place.

Every "wait longer each time" in paid is a ``Backoff`` under a
``BackoffPolicy``: the requeue of a reconcile that failed, the restarts
of a crashing container, the retries of a failed first deploy and the
reconnects of Podman's event stream. They all follow one rule: after
``n`` attempts, the next may happen ``base * 2 ** (n - 1)`` seconds after
the last one, at most ``maximum`` (the first attempt is free), and the
count starts over after ``reset_after`` seconds without an attempt.

``Timings`` gathers the policies and the polling intervals into one
settings object (kopf's idea): the daemon and ``paid apply`` take the
same defaults, and tests shorten them instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimingsError(ValueError):
    """A ``Timings.parse`` entry that is not a known timing or not a sane number."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait after ``n`` attempts: ``base * 2**(n-1)``, at most ``maximum``."""

    base: float
    """Seconds after the first attempt before the second."""
    maximum: float
    """The longest wait between two attempts."""
    reset_after: float | None = None
    """Forget the attempts after this many quiet seconds (None: only ``reset`` does)."""

    def delay(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return float(min(self.base * 2 ** min(attempts - 1, 62), self.maximum))


@dataclass(frozen=True, slots=True)
class Timings:
    """Every interval of the control loop. Defaults are the documented ones."""

    requeue: BackoffPolicy = BackoffPolicy(1.0, 60.0, reset_after=600.0)
    """A reconcile that failed (Podman unreachable, a request refused)."""
    crash: BackoffPolicy = BackoffPolicy(10.0, 300.0, reset_after=600.0)
    """Restarts of a crashed or unhealthy container (the kubelet's numbers)."""
    first_deploy: BackoffPolicy = BackoffPolicy(10.0, 300.0)
    """A first deploy that failed its gate has nothing to roll back to: retries."""
    events: BackoffPolicy = BackoffPolicy(0.25, 10.0, reset_after=60.0)
    """Reconnecting to Podman's event stream."""
    dependency_poll: float = 1.0
    """Look again at a service waiting for its dependencies (sooner when one gets ready)."""
    hold_poll: float = 1.0
    """Look again at a service a backup or restore holds."""
    rollout_poll: float = 0.2
    """The shortest wait between two steps of a rollout (the longest is 1 s)."""
    probe_tick: float = 0.25
    """How often due probes are started."""
    registry_retry: float = 30.0
    """Ask a registry again for a tag's digest it did not give."""

    @classmethod
    def parse(cls, text: str) -> Timings:
        """``crash=1,first_deploy=2,dependency_poll=0.5``: base seconds of a policy, or a poll.

        For tests and tuning (``PAID_TIMINGS``); raises ``TimingsError`` on a bad entry.
        """
        timings = cls()
        known = {f.name for f in fields(cls)}
        changes: dict[str, object] = {}
        for entry in filter(None, (e.strip() for e in text.split(","))):
            name, sep, raw = entry.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise TimingsError(f"unknown timing {name!r} (known: {', '.join(sorted(known))})")
            try:
                value = float(raw)
            except ValueError:
                raise TimingsError(f"timing {name}={raw}: not a number of seconds") from None
            if not 0 < value < 86400:
                raise TimingsError(f"timing {name}={raw}: must be between 0 and 86400 seconds")
            current = getattr(timings, name)
            if isinstance(current, BackoffPolicy):
                changes[name] = replace(
                    current, base=value, maximum=max(value, current.maximum * value / current.base)
                )
            else:
                changes[name] = value
        return replace(timings, **changes)  # type: ignore[arg-type]


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
