"""Handlers: what happened → which keys to reconcile.

Each handler turns one kind of happening (a Podman event, a probe
transition, the event stream coming back) into keys the workers wake,
and counts the trigger. Level-based: a key says only
*which* service to look at, never what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from paid.controllers.reconciling import FULL
from paid.metrics import Metrics
from paid.runtime.base import RuntimeEvent
from paid.state.desired import DesiredState
from paid.storage.flags import Flags

log = structlog.get_logger("paid.daemon")


class Handlers:
    def __init__(
        self,
        wake: Callable[[Iterable[str]], None],
        *,
        metrics: Metrics,
        desired: Callable[[], DesiredState | None],
        flags: Callable[[], Flags],
        woken_by_probe: Callable[[str, str, bool], Iterable[str]],
    ) -> None:
        self._wake = wake  # the workers': only they touch the queue
        self.metrics = metrics
        self._desired = desired
        self._flags = flags
        self._woken_by_probe = woken_by_probe

    def trigger(self, key: str, why: str) -> None:
        """Ask for a reconcile of ``key``, counted once under ``why``."""
        self.metrics.triggers.labels(why).inc()
        self._wake((key,))

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
        self.metrics.triggers.labels("probe").inc()
        self._wake(self._woken_by_probe(service, kind, passing))
