"""The daemon's notifications: a bulkhead of their own, between the journal and the targets.

One thread, one queue (the store's outbox), and nothing shared with the
control loop but the store: a target that is slow, down or wrong costs
this thread its deadline and the message a retry, never a reconcile.

Each turn it
1. reads the journal past its cursor and queues what notifiers want
   (``paid.state.notices``), moving the cursor in the same transaction;
2. queues ``service_down`` for services not ready for a notifier's
   ``downForSeconds`` (once per outage);
3. sends what is due, one target at a time: each target has a breaker,
   each failed send is retried with back-off, and a message older than
   ``MAX_AGE`` is dropped (and counted) rather than kept for ever.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping

import structlog

from paid.metrics import Metrics
from paid.runtime.notify import AppriseSender, DeliveryFailed, redact
from paid.runtime.outbound import Breakers
from paid.settings import BackoffPolicy, Timings
from paid.state.desired import DesiredState
from paid.state.notices import Notice, RevisionFacts, notice_of, route
from paid.state.notifiers import DesiredNotifier, NotifyTarget
from paid.state.secrets import SecretUnavailable
from paid.storage.outbox import Message, Outbox
from paid.storage.secret_files import SecretSource
from paid.storage.store import Event, Store, StoreError

log = structlog.get_logger("paid.notify")

MAX_AGE = 24 * 3600.0  # a message not delivered within a day is dropped
RETRY = Timings().notify_retry
FORGET_EVERY = 3600.0  # how often the outbox drops what it kept long enough


class Notifications:
    def __init__(
        self,
        store: Store,
        *,
        desired: Callable[[], DesiredState | None],
        secrets: SecretSource,
        metrics: Metrics,
        sender: AppriseSender | None = None,
        outbox: Outbox | None = None,
        poll: float = 1.0,
        retry: BackoffPolicy = RETRY,
        host: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox or Outbox(store, clock=clock)
        self._desired = desired
        self._secrets = secrets
        self._metrics = metrics
        self._sender = sender or AppriseSender()
        self._poll = poll
        self._retry = retry
        self._host = host or socket.gethostname()
        self._clock = clock
        self._breakers = Breakers(fail_max=3, reset_timeout=60.0)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._forgot_at = float("-inf")

    def start(self) -> None:
        """Begin at the cursor (the journal's end on a first start) and run until ``stop``."""
        self.outbox.start_cursor()
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look now (something was journalled), not at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.turn()
            except StoreError as err:
                log.warning("notifications_store_failed", error=str(err))
            except Exception:
                log.exception("notifications_turn_failed")
            self._wake.wait(self._poll)
            self._wake.clear()

    def turn(self) -> None:
        """One turn: read the journal, watch outages, send what is due."""
        desired = self._desired()
        notifiers = list(desired.notifiers.values()) if desired is not None else []
        self.read_journal(desired, notifiers)
        if notifiers:
            self.watch_down(desired, notifiers)
        self.send_due(notifiers)
        if self._clock() - self._forgot_at >= FORGET_EVERY:
            self.outbox.forget_old()  # sent, dropped and told entries past their keeping
            self._forgot_at = self._clock()
        waiting = self.outbox.waiting()
        known = {name for n in notifiers for name in n.target_names()} | set(waiting)
        for target in known:  # a target with nothing waiting is 0, not its last count
            self._metrics.notifications_waiting.labels(target).set(waiting.get(target, 0))

    # -- queueing -------------------------------------------------------------------

    def read_journal(self, desired: DesiredState | None, notifiers: list[DesiredNotifier]) -> None:
        while True:
            events = self.outbox.unread()
            if not events:
                return
            queued: list[tuple[str, Notice]] = []
            for event in events:
                notice = self._notice(event)
                if notice is None or not notifiers:
                    continue
                labels = _labels(desired, event.service)
                queued.extend((target, notice) for target in route(notice, notifiers, labels))
            self.outbox.queue(events[-1].id, queued)

    def _notice(self, event: Event) -> Notice | None:
        revisions: dict[int, RevisionFacts] = {}
        if event.service is not None:
            for key in ("revision", "previous"):
                number = event.data.get(key)
                if isinstance(number, int) and not isinstance(number, bool):
                    found = self.store.revision(event.service, number)
                    if found is not None:
                        revisions[number] = RevisionFacts(number, found.image, found.digest)
        return notice_of(
            event.kind,
            service=event.service,
            message=event.message,
            data=event.data,
            at=event.at,
            host=self._host,
            revisions=revisions,
        )

    def watch_down(self, desired: DesiredState | None, notifiers: list[DesiredNotifier]) -> None:
        """Queue ``service_down`` for each outage longer than a notifier's ``downForSeconds``."""
        if desired is None:
            return
        now = self._clock()
        for name, mark in self.store.latest_readiness().items():
            service = desired.services.get(name)  # type: ignore[call-overload]
            if service is None or mark.ready is not False:
                continue
            down_for = now - mark.at
            for notifier in notifiers:
                if down_for < notifier.spec.down_for_seconds:
                    continue
                if not notifier.wants("service_down", service.labels):
                    continue
                notice = Notice(
                    event="service_down",
                    aliases=("service_down",),
                    service=name,
                    title=f"paid: {name}: down",
                    body=(
                        f"{name} has not been ready for {int(down_for)} s (since "
                        f"{time.strftime('%H:%M:%S UTC', time.gmtime(mark.at))}); paid keeps "
                        f"replacing it with back-off (paid status {name}, paid logs {name})\n"
                        f"host {self._host}"
                    ),
                    at=now,
                )
                key = f"down|{notifier.name}|{name}|{mark.at!r}"
                targets = list(notifier.target_names())
                self.outbox.tell_once(key, [(t, notice) for t in targets])

    # -- sending ----------------------------------------------------------------------

    def send_due(self, notifiers: list[DesiredNotifier]) -> None:
        targets: dict[str, NotifyTarget] = {}
        for notifier in notifiers:
            targets.update(notifier.target_names())
        for message in self.outbox.due():
            if self._stop.is_set():
                return
            self.send(message, targets)

    def send(self, message: Message, targets: Mapping[str, NotifyTarget]) -> None:
        now = self._clock()
        target = targets.get(message.target)
        if target is None:
            self._dropped(message, "its notifier or target is no longer in the desired state")
            return
        if now - message.created > MAX_AGE:
            self._dropped(message, f"not delivered within {MAX_AGE / 3600:g} h")
            return
        breaker = self._breakers.of(message.target)
        if not breaker.allows():
            return  # waits: the breaker lets one through after its reset time
        secret = target.secret
        url = b""
        try:
            url = self._secrets.read(secret.source, encrypted=secret.is_encrypted)[0]
            title, body = message.text
            self._sender.send(url.decode("utf-8", errors="replace").strip(), title, body)
        except (SecretUnavailable, DeliveryFailed) as err:
            breaker.record(reachable=False)
            why = str(err)
            if isinstance(err, DeliveryFailed):
                why = redact(why, url.decode("utf-8", errors="replace").strip())
            retry_in = self._retry.delay(message.attempts + 1)
            self.outbox.failed(message, why, retry_in=retry_in)
            self._metrics.notifications.labels(message.target, "failed").inc()
            log.warning(
                "notification_failed",
                target=message.target,
                kind=message.event,
                service=message.service,
                error=why,
                retry_in=retry_in,
            )
            return
        breaker.record(reachable=True)
        self.outbox.sent(message)
        self._metrics.notifications.labels(message.target, "delivered").inc()
        log.info(
            "notification_sent",
            target=message.target,
            kind=message.event,
            service=message.service,
            count=message.count,
        )

    def _dropped(self, message: Message, why: str) -> None:
        self.outbox.drop(message, why)
        self._metrics.notifications.labels(message.target, "dropped").inc()
        log.warning("notification_dropped", target=message.target, kind=message.event, why=why)


def _labels(desired: DesiredState | None, service: str | None) -> Mapping[str, str] | None:
    if service is None or desired is None:
        return None
    found = desired.services.get(service)  # type: ignore[call-overload]
    return None if found is None else found.labels
