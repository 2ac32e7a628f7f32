"""Handlers: what happened → which keys to reconcile.

Each handler turns one kind of happening (a Podman event, a probe
transition, a finished rollout, the event stream coming back) into keys
for the work queue, and counts the trigger. Level-based: a key says only
*which* service to look at, never what to do.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from paid.controllers.queue import WorkQueue
from paid.controllers.reconciling import FULL
from paid.metrics import Metrics
from paid.runtime.base import RuntimeEvent
from paid.state.desired import DesiredState
from paid.state.flags import Flags

log = structlog.get_logger("paid.daemon")


class Handlers:
    def __init__(
        self,
        queue: WorkQueue,
        *,
        metrics: Metrics,
        desired: Callable[[], DesiredState | None],
        flags: Callable[[], Flags],
    ) -> None:
        self.queue = queue
        self.metrics = metrics
        self._desired = desired
        self._flags = flags

    def trigger(self, key: str, why: str) -> None:
        """Ask for a reconcile of ``key``, counted once under ``why``."""
        self.metrics.triggers.labels(why).inc()
        self.queue.add(key)

    def event(self, event: RuntimeEvent) -> None:
        if not self._flags().event_watch:
            return
        desired = self._desired()
        key = event.service or (event.name if desired and event.name in desired else None)
        if key is None:
            return
        log.debug("podman_event", service=key, podman_action=event.action)
        self.trigger(key, "podman_event")

    def reconnected(self) -> None:
        self.trigger(FULL, "resync")  # events may have been missed while away

    def probe_transition(self, service: str, kind: str, passing: bool) -> None:
        self.trigger(service, "probe")
        if kind == "readiness" and passing:
            self._wake_dependents(service)

    def rollout_finished(self, service: str) -> None:
        self._wake_dependents(service)

    def _wake_dependents(self, service: str) -> None:
        desired = self._desired()
        if desired is not None:
            for other in desired.dependents(service):  # type: ignore[arg-type]
                self.queue.add(other)
