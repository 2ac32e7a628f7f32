"""A work queue of reconcile requests, in the manner of client-go's.

A request is only a key (a service name, or a pass over everything);
the reconcile reads the actual state afresh, so requests carry no payload
and duplicates can be merged:

- a key already waiting is not queued twice (bursts coalesce);
- a key being processed is never handed to a second worker; if it is
  added meanwhile it is marked dirty and queued again when the first
  worker is done (no overlap, no lost request);
- ``add_after`` delays a key (requeue with backoff) without holding a
  worker.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable


class ShutDown(Exception):
    """The queue is shutting down: no more work."""


class WorkQueue:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._waiting: set[str] = set()  # in _queue
        self._processing: set[str] = set()
        self._dirty: set[str] = set()  # added while processing
        self._delayed: list[tuple[float, str]] = []
        self._shutdown = False

    def add(self, key: str) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._shutdown:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._waiting:
            return
        self._waiting.add(key)
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._delayed, (self._clock() + delay, key))
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to work on (mark it done after); None on timeout."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    raise ShutDown
                self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._waiting.discard(key)
                    self._processing.add(key)
                    return key
                wait = None if deadline is None else deadline - self._clock()
                if self._delayed:
                    due = self._delayed[0][0] - self._clock()
                    wait = due if wait is None else min(wait, due)
                if wait is not None and wait <= 0:
                    if deadline is not None and self._clock() >= deadline:
                        return None
                    continue
                self._cond.wait(wait)

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, key = heapq.heappop(self._delayed)
            self._add_locked(key)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key)
            self._cond.notify_all()

    def pending(self) -> set[str]:
        """Every key waiting, being processed or delayed."""
        with self._cond:
            return (
                set(self._waiting)
                | set(self._processing)
                | self._dirty
                | {key for _, key in self._delayed}
            )

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def idle(self) -> bool:
        """Nothing waiting and nothing being processed (delayed keys aside)."""
        with self._cond:
            return not self._queue and not self._processing

    def wait_idle(self, timeout: float) -> bool:
        deadline = self._clock() + timeout
        with self._cond:
            while self._queue or self._processing:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def shut_down(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()
