"""The worker loop: the one place that turns reconcile results into requeues.

Both drivers run it: the daemon's controller workers and ``paid apply``.
Each worker takes a key from the ``WorkQueue``, observes the world afresh,
calls ``Reconciler.reconcile`` and acts on the ``Result``:

- ``error`` (or a raised ``RuntimeFailure``): requeue after the requeue
  back-off (1 s, doubling to 60 s), reset by the next success;
- ``requeue_after``: look again after that long (0: at once);
- ``enqueue``: add those keys now (a full pass's work, the dependents a
  finished rollout wakes); ``wake`` adds what a driver heard;
- ``terminal`` (a conflict): not retried; a FULL pass enqueues the key
  again only when its ``fingerprint`` (the desired spec, the container
  holding the name) has changed, while an event or a direct request for
  the key always runs it;
- otherwise the key is done until something asks again.

A bug in one reconcile is logged with its traceback and treated as an
error: it never kills the worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import structlog

from paid.controllers.backoff import Backoff
from paid.controllers.queue import ShutDown, WorkQueue
from paid.controllers.reconciling import Reconciler, Result, World
from paid.runtime.base import RuntimeFailure
from paid.settings import Timings

log = structlog.get_logger("paid.workers")

Finished = Callable[[str, Result, float], None]  # key, result, seconds it took


class Workers:
    def __init__(
        self,
        reconciler: Reconciler,
        queue: WorkQueue,
        *,
        count: int,
        timings: Timings | None = None,
        on_result: Finished = lambda key, result, seconds: None,
        on_failure: Callable[[RuntimeFailure], None] = lambda err: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reconciler = reconciler
        self.queue = queue
        self.errors: Backoff[str] = Backoff((timings or Timings()).requeue, clock)
        self.parked: dict[str, str] = {}  # key -> the fingerprint of its terminal error
        self.inflight: dict[str, float] = {}  # key -> when its reconcile began
        self._on_result = on_result
        self._on_failure = on_failure
        self._clock = clock
        self._threads = [
            threading.Thread(target=self._work, name=f"paid-worker-{i}", daemon=True)
            for i in range(max(1, count))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        """No new work; wait for the reconciles in flight to finish."""
        self.queue.shut_down()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=timeout)

    def wake(self, keys: Iterable[str]) -> None:
        """Reconcile ``keys`` soon: a driver heard something (an event, a probe, a signal)."""
        for key in keys:
            self.queue.add(key)

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            if key is None:
                continue
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def process(self, key: str, world: World | None = None) -> Result:
        """Reconcile ``key`` once (observing afresh unless given ``world``) and requeue."""
        self.inflight[key] = self._clock()
        start = time.perf_counter()
        try:
            result = self._reconcile(key, world)
            self._requeue(key, result)
            self._on_result(key, result, time.perf_counter() - start)
            return result
        finally:
            self.inflight.pop(key, None)

    def _reconcile(self, key: str, world: World | None) -> Result:
        try:
            world = world or self.reconciler.observe(key)
            if world is None:
                return Result()  # nothing valid to enforce; a load will ask again
            return self.reconciler.reconcile(key, world)
        except RuntimeFailure as err:
            log.warning("reconcile_failed", key=key, error=str(err))
            self._on_failure(err)
            return Result(error=str(err))
        except Exception as err:  # a bug in one reconcile must not kill the worker
            log.exception("reconcile_crashed", key=key, error=str(err))
            return Result(error=f"reconcile crashed: {err}")

    def _requeue(self, key: str, result: Result) -> None:
        for other in result.enqueue:
            parked = self.parked.get(other)
            if parked is not None and parked == result.fingerprints.get(other):
                continue  # nothing it hinges on has changed: the same answer again
            self.queue.add(other)
        if result.terminal:
            self.parked[key] = result.fingerprints.get(key, "")
            self.errors.reset(key)
            log.warning("reconcile_parked", key=key, error=result.error)
            return
        self.parked.pop(key, None)
        if result.error is not None:
            self.queue.add_after(key, self.errors.attempt(key))
            return
        self.errors.reset(key)
        if result.requeue_after is None:
            return
        if result.requeue_after <= 0:
            self.queue.add(key)
        else:
            self.queue.add_after(key, result.requeue_after)
