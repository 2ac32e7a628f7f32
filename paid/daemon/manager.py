"""The manager: everything ``paid run`` does, and its lifecycle.

Requests are keys in a ``WorkQueue``: a service name, ``FULL`` (observe
everything, queue the services that need work) or ``PRUNE`` (the guarded
removal of orphans). Workers take keys; a reconcile of one key reads the
actual state afresh (one list call), decides, acts, and requeues itself
with backoff when it could not finish. What asks for a reconcile:

- APScheduler: a full resync every ``resync_interval`` seconds, and a
  look at the desired-state directory every ``watch_interval``;
- Podman's event stream: a managed container died, was removed, ...;
- SIGHUP: reload the directory now.

Last-known-good: when the directory stops validating, the manager keeps
enforcing the last valid desired state (kept in the store, so it survives
a restart), never prunes because of it, and says so on /readyz and in
metrics. The daemon's own state is never the source of truth: on start it
reconciles from what Podman and the store say.

Shutdown (SIGTERM): no new work; workers finish the action in flight;
managed containers are left running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from paid import __version__
from paid.controllers.backups import BackupController
from paid.controllers.health import HealthController, ProbeKind
from paid.controllers.preflight import Status, preflight
from paid.controllers.rollouts import (
    RolloutController,
    aside_name,
    canary_name,
    effective_state,
)
from paid.controllers.services import ActionResult, Outcome, ServiceController, uses_secrets
from paid.daemon.backups import BackupSchedule
from paid.daemon.http import Endpoints, HttpServer, Probe
from paid.daemon.queue import FULL, PRUNE, ShutDown, WorkQueue
from paid.daemon.sources import DirectoryWatcher, EventPump, EventSource
from paid.daemon.systemd import Notifier
from paid.metrics import Metrics
from paid.runtime.base import RuntimeEvent, RuntimeFailure, RuntimeUnavailable
from paid.runtime.resilient import ResilientRuntime
from paid.state import actual as states
from paid.state.actual import ActualContainer
from paid.state.checkout import describe, pull
from paid.state.desired import DesiredService, DesiredState
from paid.state.diffing import decide, diff
from paid.state.flags import FLAG_NAMES, Flags, FlagsError, load_flags
from paid.state.loading import LoadError, digest, from_documents, load_directory, to_documents
from paid.state.plans import Action, ActionKind
from paid.state.secrets import DEFAULT_DIRECTORY as DEFAULT_SECRETS_DIRECTORY
from paid.state.secrets import SecretSource
from paid.state.slo import measure
from paid.state.statuses import service_statuses
from paid.state.store import Store

log = structlog.get_logger("paid.daemon")

HEARTBEAT_SECONDS = 10.0  # a killed daemon's watch ends at most this long before it died
SLO_SECONDS = 15.0  # how often the SLO gauges are worked out

CRASH_BACKOFF_BASE = 10.0
CRASH_BACKOFF_MAX = 300.0
CRASH_BACKOFF_RESET = 600.0


@dataclass(frozen=True, slots=True)
class Settings:
    directory: Path
    listen: str = "127.0.0.1:9707"
    resync_interval: float = 30.0
    watch_interval: float = 1.0
    workers: int = 4
    watch_events: bool = True
    flags_path: Path | None = None
    allowed_host_paths: tuple[str, ...] = ()
    secrets_dir: Path = Path(DEFAULT_SECRETS_DIRECTORY)
    backup_dir: Path | None = None  # default: <state dir>/backups
    backup_upload_command: str | None = None
    slo_default: float | None = None  # percent, for services without an slo section
    git_pull_interval: float = 0.0  # seconds between pulls of the checkout; 0: never
    allow_mass_prune: bool = False
    stall_limit: float = 600.0  # a reconcile running longer than this is hung
    first_pass_timeout: float = 60.0  # READY by then at the latest (systemd waits 90 s)
    requeue_initial: float = 1.0
    requeue_max: float = 60.0


@dataclass
class _State:
    """What the manager knows; written by workers, read by HTTP handlers."""

    desired: DesiredState | None = None
    desired_since: float | None = None  # when the enforced state was loaded or saved
    load_errors: tuple[LoadError, ...] = ()
    observed: list[ActualContainer] = field(default_factory=list)
    observed_at: float | None = None
    podman_error: str | None = None
    last_pass_error: str | None = None
    last_pass_ok_at: float | None = None
    first_pass_done: bool = False
    waiting: dict[str, tuple[str, ...]] = field(default_factory=dict)
    backing_off: dict[str, float] = field(default_factory=dict)  # service -> seconds left
    notes: dict[str, str] = field(default_factory=dict)  # service -> pinned / quarantined
    failures: dict[str, int] = field(default_factory=dict)  # consecutive, per key


class Manager:
    def __init__(
        self,
        settings: Settings,
        *,
        runtime: ResilientRuntime,
        events: EventSource,
        store: Store,
        metrics: Metrics,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.notifier = notifier or Notifier()
        self._clock = clock
        self.queue = WorkQueue(clock=clock)
        self.secrets = SecretSource.open(settings.secrets_dir, state_dir=store.path.parent)
        self._secrets_maybe_stale = True  # sweep unused Podman secrets at least once
        self.controller = ServiceController(
            runtime=runtime, journal=store, secrets=self.secrets, on_result=self._count
        )
        self.health = HealthController(
            runtime,
            on_transition=self._on_probe_transition,
            on_probe=lambda kind, seconds: metrics.probe_duration.labels(kind).observe(seconds),
            clock=clock,
        )
        self.rollouts = RolloutController(
            runtime=runtime,
            store=store,
            services=self.controller,
            ready=self.health.ready,
            health=self.health,
            flags=lambda: self.flags,
            clock=clock,
            on_finished=self._on_rollout_finished,
            backup=lambda svc: self.backup_schedule.backup(svc, reason="before rollout"),
        )
        self.backups = BackupController(
            runtime=runtime,
            store=store,
            services=self.controller,
            directory=settings.backup_dir or store.path.parent / "backups",
            upload_command=settings.backup_upload_command,
        )
        self._scheduler = BackgroundScheduler(daemon=True)
        self.backup_schedule = BackupSchedule(
            self._scheduler,
            self.backups,
            metrics=metrics,
            desired=lambda: self.state.desired,
            enabled=lambda: self.flags.backups,
        )
        self.backups.on_finished = self.backup_schedule.observe
        self._store_version = store.data_version()
        self.flags = Flags()
        self._flags_mtime: int | None = None
        self._publish_flags()
        self.state = _State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._awaiting_first = threading.Event()
        self._load_lock = threading.Lock()
        self._published: set[str] = set()
        self._readiness: dict[str, bool | None] = {}  # the last mark made, per service
        self._watch_id = 0
        self._last_pull_error: str | None = None
        self._restarts: dict[str, tuple[int, float]] = {}
        self._heartbeat = clock()
        self._inflight: dict[str, float] = {}
        self._watcher = DirectoryWatcher(settings.directory)
        self._secrets_watcher = DirectoryWatcher(settings.secrets_dir, suffixes=None)
        self._pump = EventPump(
            events, on_event=self._on_event, on_reconnect=self._on_reconnect, on_lost=self._on_lost
        )
        self._workers = [
            threading.Thread(target=self._work, name=f"paid-worker-{i}", daemon=True)
            for i in range(max(1, settings.workers))
        ]
        self.http = HttpServer(
            settings.listen,
            Endpoints(
                metrics=self._scrape,
                healthz=self.healthz,
                readyz=self.readyz,
                status=self.status,
            ),
        )

    # -- lifecycle ---------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Serve until ``stop()`` or SIGTERM; return the exit code."""
        if install_signals:
            self._install_signals()
        self.store.record("daemon_started", f"paid {__version__} started", pid=os.getpid())
        log.info("daemon_starting", version=__version__, directory=str(self.settings.directory))
        self._load(initial=True)
        self._reload_flags()
        self._preflight()
        self.http.start()
        log.info("http_listening", address=self.http.address)
        for worker in self._workers:
            worker.start()
        if self.settings.watch_events:
            self._pump.start()
        self._watch_id = self.store.begin_watch()
        self._trigger(FULL, "startup")
        self._every(self.settings.resync_interval, lambda: self._trigger(FULL, "resync"), "resync")
        self._every(self.settings.watch_interval, self._watch, "watch")
        self._every(0.25, self.health.tick, "probes")
        self._every(HEARTBEAT_SECONDS, self._beat, "heartbeat")
        self._every(SLO_SECONDS, self._publish_slos, "slo")
        if self.settings.git_pull_interval > 0:
            self._every(self.settings.git_pull_interval, self._pull, "git-pull")
        self._scheduler.start()
        ready_sent = False
        started = self._clock()
        while not self._stop.is_set():
            self._heartbeat = self._clock()
            if self._reload.is_set():
                self._reload.clear()
                self.notifier.reloading()
                self._load()
                self._trigger(FULL, "signal")
                self.notifier.status(self._status_line())
                self.notifier.notify("READY=1")
            if not ready_sent and (
                self.state.first_pass_done
                or self._clock() - started > self.settings.first_pass_timeout
            ):
                self.notifier.ready(self._status_line())
                ready_sent = True
                log.info("daemon_ready", status=self._status_line())
            if self._making_progress():
                if self.notifier.watchdog_interval is not None:
                    self.notifier.watchdog()
            else:
                log.error("daemon_stalled", inflight=dict(self._inflight))
            self._stop.wait(self._tick())
        return self._shutdown()

    def _every(self, seconds: float, job: Callable[[], object], name: str) -> None:
        """A periodic job that never overlaps itself and never runs late twice."""
        self._scheduler.add_job(
            job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True
        )

    def _tick(self) -> float:
        interval = self.notifier.watchdog_interval
        return 1.0 if interval is None else max(0.05, min(1.0, interval / 3))

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        self._reload.set()

    def _install_signals(self) -> None:
        def on_term(signum: int, frame: FrameType | None) -> None:
            self.stop()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)

    def _shutdown(self) -> int:
        log.info("daemon_stopping", inflight=sorted(self._inflight))
        self.notifier.stopping("finishing the action in flight; services keep running")
        self._scheduler.shutdown(wait=False)
        self.queue.shut_down()
        for worker in self._workers:
            worker.join(timeout=120)
        if self.settings.watch_events:
            self._pump.stop()
        self.health.close()
        self.http.stop()
        self.store.heartbeat(self._watch_id)
        self.store.record("daemon_stopped", "paid stopped", pid=os.getpid())
        log.info("daemon_stopped")
        return 0

    def _reload_flags(self) -> None:
        """Re-read the flags file when it changed; a bad file changes nothing."""
        path = self.settings.flags_path
        if path is None:
            return
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime == self._flags_mtime:
            return
        self._flags_mtime = mtime
        try:
            flags = load_flags(path)
        except FlagsError as err:
            log.error("flags_invalid", error=str(err), keeping=self.flags.model_dump())
            self.store.record("flags_invalid", str(err))
            return
        if flags != self.flags:
            log.info("flags_changed", **flags.model_dump())
            self.store.record("flags_changed", "feature flags changed", **flags.model_dump())
            self.flags = flags
            self._publish_flags()
            self._trigger(FULL, "signal")

    def _publish_flags(self) -> None:
        for name in FLAG_NAMES:
            self.metrics.feature_flag.labels(name).set(1 if getattr(self.flags, name) else 0)

    def _preflight(self) -> None:
        """Run the pre-flight checks once at start; log and export what they found."""
        desired = self.state.desired
        if desired is None:
            return
        checks = preflight(
            desired,
            runtime=self.runtime,
            state_dir=str(self.store.path.parent),
            secrets=self.secrets,
            backup_dir=str(self.backups.directory),
        )
        counts: dict[tuple[str, str], int] = {}
        for check in checks:
            key = (check.check, str(check.status))
            counts[key] = counts.get(key, 0) + 1
            if check.status is not Status.OK:
                log.warning(
                    "preflight",
                    check=check.check,
                    subject=check.subject,
                    status=str(check.status),
                    reason=check.reason,
                )
        for (check_name, status), count in counts.items():
            self.metrics.preflight.labels(check_name, status).set(count)

    def _making_progress(self) -> bool:
        now = self._clock()
        return all(
            now - since < self.settings.stall_limit for since in list(self._inflight.values())
        )

    # -- desired state -------------------------------------------------------

    def _watch(self) -> None:
        if self._watcher.changed() | self._secrets_watcher.changed():  # both, always
            self.metrics.triggers.labels("desired_state_change").inc()
            self._load()
            self._trigger(FULL, "desired_state_change")
        self._reload_flags()
        version = self.store.data_version()
        if version != self._store_version:  # `paid rollback` / `paid rollout retry` wrote
            self._store_version = version
            self._trigger(FULL, "signal")

    def _pull(self) -> None:
        """Fast-forward the checkout from its remote; a refused or failed pull changes nothing."""
        result = pull(self.settings.directory)
        if not result.ok:
            self.metrics.git_pulls.labels("failed").inc()
            log.error("git_pull_failed", reason=result.message)
            if result.message != self._last_pull_error:  # once per new reason, not every pull
                self.store.record("git_pull_failed", result.message)
            self._last_pull_error = result.message
            return
        self._last_pull_error = None
        self.metrics.git_last_pull.set_to_current_time()
        if not result.changed:
            self.metrics.git_pulls.labels("unchanged").inc()
            return
        self.metrics.git_pulls.labels("updated").inc()
        log.info("git_pulled", before=result.before, after=result.after)
        self.store.record("git_pulled", result.message, before=result.before, after=result.after)
        self._watch()  # pick the new files up now, not on the next poll

    def _load(self, *, initial: bool = False) -> None:
        with self._load_lock:
            self._load_locked(initial=initial)

    def _load_locked(self, *, initial: bool) -> None:
        result = load_directory(
            self.settings.directory,
            allowed_host_paths=self.settings.allowed_host_paths,
            secrets=self.secrets,
        )
        now = time.time()
        if result.desired is not None:
            self.controller.checkout = describe(self.settings.directory)
            documents = to_documents(result.desired)
            self.store.save_snapshot(digest=digest(documents), documents=documents)
            before = self.state.desired
            # A secret file's new value changes a hash, not the documents.
            changed = (
                before is None
                or to_documents(before) != documents
                or _hashes(before) != _hashes(result.desired)
            )
            with self._lock:
                self.state.desired = result.desired
                self.state.load_errors = ()
                if changed:
                    self.state.desired_since = now
            self.backup_schedule.sync(result.desired)
            self.metrics.desired_valid.set(1)
            self.metrics.desired_errors.set(0)
            self.metrics.desired_last_load.set(now)
            self.metrics.services_desired.set(len(result.desired))
            if changed:
                log.info(
                    "desired_state_loaded", services=len(result.desired), files=len(result.files)
                )
            return
        # Invalid: keep what we enforce; say so.
        with self._lock:
            self.state.load_errors = result.errors
        self.metrics.desired_valid.set(0)
        self.metrics.desired_errors.set(len(result.errors))
        self.metrics.desired_load_failures.inc()
        for error in result.errors:
            log.error("desired_state_invalid", error=str(error))
        self.store.record(
            "desired_state_invalid",
            f"{len(result.errors)} validation errors; enforcing the last valid state",
            errors=[str(e) for e in result.errors[:20]],
        )
        if initial and self.state.desired is None:
            self._restore_snapshot()

    def _restore_snapshot(self) -> None:
        snapshot = self.store.snapshot()
        if snapshot is None:
            log.error(
                "no_last_known_good", reason="directory invalid and the store holds no valid state"
            )
            return
        restored = from_documents(
            snapshot.documents, origin=f"store:{self.store.path}", secrets=self.secrets
        )
        if restored.desired is None:
            log.error("snapshot_unreadable", errors=[str(e) for e in restored.errors])
            return
        with self._lock:
            self.state.desired = restored.desired
            self.state.desired_since = snapshot.at
        self.backup_schedule.sync(restored.desired)
        self.metrics.services_desired.set(len(restored.desired))
        log.warning(
            "last_known_good_restored", services=len(restored.desired), saved_at=snapshot.at
        )

    # -- requests ------------------------------------------------------------

    def _trigger(self, key: str, trigger: str) -> None:
        self.metrics.triggers.labels(trigger).inc()
        self.queue.add(key)

    def _on_event(self, event: RuntimeEvent) -> None:
        if not self.flags.event_watch:
            return
        desired = self.state.desired
        key = event.service or (event.name if desired and event.name in desired else None)
        if key is None:
            return
        log.debug("podman_event", service=key, podman_action=event.action)
        self._trigger(key, "podman_event")

    def _on_reconnect(self) -> None:
        self._trigger(FULL, "resync")  # events may have been missed while away

    def _on_lost(self, error: str) -> None:
        with self._lock:
            self.state.podman_error = f"event stream lost ({error})"
        self.metrics.podman_up.set(0)

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            if key is None:
                continue
            self._inflight[key] = self._clock()
            try:
                retry = self._reconcile(key)
            except Exception as err:  # a bug in one reconcile must not kill the worker
                log.exception("reconcile_crashed", key=key, error=str(err))
                retry = True
            finally:
                self._inflight.pop(key, None)
                self.queue.done(key)
            if retry:
                self._requeue(key)
            else:
                self.state.failures.pop(key, None)

    def _requeue(self, key: str) -> None:
        count = self.state.failures.get(key, 0) + 1
        self.state.failures[key] = count
        delay = min(self.settings.requeue_initial * 2 ** (count - 1), self.settings.requeue_max)
        self.metrics.triggers.labels("requeue").inc()
        self.queue.add_after(key, delay)

    def _reconcile(self, key: str) -> bool:
        """One reconcile of ``key``; True when it must be retried later."""
        desired = self.state.desired
        if desired is None:
            return False  # nothing valid to enforce; a load will trigger us
        scope = "full" if key == FULL else "service"
        start = time.perf_counter()
        ok = False
        try:
            # Pins and quarantines come from the store: read them once per
            # reconcile, for the probes, the diff and the decision alike.
            enforced = self._effective(desired)
            actual = self._observe(enforced)
            if key == FULL:
                ok = self._full_pass(enforced, actual)
                return not ok
            if key == PRUNE:
                ok = self._prune(desired, actual)
                return not ok
            ok = self._reconcile_service(enforced, key, actual)
            return not ok
        except RuntimeFailure as err:
            log.warning("reconcile_failed", key=key, error=str(err))
            if key == FULL:
                with self._lock:
                    self.state.last_pass_error = str(err)
                    # A failed first pass is still done: READY goes out and
                    # /readyz explains, rather than systemd timing us out.
                    self.state.first_pass_done = True
            return True
        finally:
            result = "success" if ok else "failure"
            self.metrics.passes.labels(scope, result).inc()
            self.metrics.pass_duration.labels(scope, result).observe(time.perf_counter() - start)

    def _observe(self, enforced: DesiredState) -> list[ActualContainer]:
        try:
            actual = self.runtime.list_containers()
        except RuntimeUnavailable as err:
            with self._lock:
                self.state.podman_error = str(err)
            raise
        with self._lock:
            self.state.observed = actual
            self.state.observed_at = time.time()
            self.state.podman_error = None
        self.health.sync(enforced, actual)
        self._publish(actual)
        return actual

    def _effective(self, desired: DesiredState) -> DesiredState:
        effective = effective_state(desired, self.store, self.secrets)
        with self._lock:
            self.state.notes = effective.notes
        return effective.state

    def _full_pass(self, desired: DesiredState, actual: list[ActualContainer]) -> bool:
        """Observe all, queue every service that needs work; True when none does."""
        # An invalid directory never prunes: removals wait for a valid state.
        allow_prune = not self.state.load_errors and self.flags.prune
        plan = diff(desired, actual, allow_mass_prune=self.settings.allow_mass_prune)
        for name in list(desired.services):
            if name in self.rollouts.active or self.health.failed(name):
                self.queue.add(name)
        for note in plan.notes:
            log.warning("prune_withheld", reason=note)
        for action in plan.actions:
            if action.kind is ActionKind.REMOVE:
                if allow_prune:
                    self.queue.add(PRUNE)
            else:
                self.queue.add(action.service)
        if not plan.actions:
            self._collect_secrets(desired, actual)
        with self._lock:
            self.state.first_pass_done = self.state.first_pass_done or not plan.actions
            self.state.last_pass_error = "; ".join(plan.notes) or None
            if not plan.actions:
                self.state.last_pass_ok_at = time.time()
        if not plan.actions:
            self.metrics.last_pass_success.set(time.time())
            self.notifier.status(self._status_line())
        elif not self.state.first_pass_done and not self._awaiting_first.is_set():
            # Startup: READY waits until what the first pass queued was tried.
            self._awaiting_first.set()
            threading.Thread(target=self._await_first_pass, daemon=True).start()
        return not plan.notes

    def _await_first_pass(self) -> None:
        """First pass done: nothing queued, nothing running, no rollout under way."""
        deadline = self._clock() + self.settings.first_pass_timeout
        while self._clock() < deadline and not self._stop.is_set():
            if self.queue.idle() and not self.rollouts.active:
                break
            time.sleep(0.1)
        with self._lock:
            self.state.first_pass_done = True

    def _prune(self, desired: DesiredState, actual: list[ActualContainer]) -> bool:
        if self.state.load_errors or not self.flags.prune:
            return True  # never prune from an invalid directory (or with prune off)
        plan = diff(desired, actual, allow_mass_prune=self.settings.allow_mass_prune)
        ok = True
        for action in plan.actions:
            if action.kind is ActionKind.REMOVE:
                result = self.controller.execute(action, None)
                ok = ok and result.outcome is Outcome.DONE
        return ok and not plan.withheld

    def _reconcile_service(
        self, desired: DesiredState, name: str, actual: list[ActualContainer]
    ) -> bool:
        """Reconcile one service of the *enforced* state (pins and quarantines applied)."""
        if self._held(name):
            return True
        by_name = {c.name: c for c in actual}
        service = desired.services.get(name)  # type: ignore[call-overload]
        current = by_name.get(name)
        canary = by_name.get(canary_name(name))
        if service is not None and name in self.rollouts.active:
            wait = self.rollouts.step(service, current, canary)
            if wait is not None:
                self.queue.add_after(name, wait)
            return True
        if service is not None and canary is not None and canary.managed:
            self.rollouts.clean_canary(service, canary)  # left by a paid that died
        aside = by_name.get(aside_name(name))
        if service is not None and aside is not None and aside.managed:
            self.rollouts.resume_or_restore(service, current, aside)
            self.queue.add_after(name, 0.2)
            return True
        decision = decide(
            desired, name, actual, ready=self.health.ready, unhealthy=self.health.unhealthy()
        )
        if decision.orphan:
            self.queue.add(PRUNE)
            return True
        with self._lock:
            if decision.waiting_on:
                self.state.waiting[name] = decision.waiting_on
            else:
                self.state.waiting.pop(name, None)
        if decision.action is None:
            return True
        if decision.waiting_on:
            # Not a failure: look again soon (sooner when a dependency gets ready).
            log.info("service_waiting", service=name, waiting_on=list(decision.waiting_on))
            self.queue.add_after(name, self.settings.requeue_initial)
            return True
        action = decision.action
        if service is not None and self._gated(action, service):
            wait = self.rollouts.backoff(service)
            if wait > 0:
                self._back_off(name, wait, "first deploy failed")
                return True
            self.rollouts.begin(service, current)
            self.queue.add_after(name, 0.2)
            return True
        wait = self._crash_backoff(name, action)
        if wait > 0:
            self._back_off(name, wait, action.reason)
            return True
        with self._lock:
            self.state.backing_off.pop(name, None)
        self.metrics.crash_loop.labels(name).set(0)
        if action.kind is ActionKind.RESTART:
            why = "liveness" if name in self.health.unhealthy() else "crash"
            self.metrics.restarts.labels(name, why).inc()
            self.health.forget(name)
        result = self.controller.execute(action, service)
        if result.outcome is Outcome.DONE:
            # Level-based: look again to confirm (and publish) what the action did.
            self.queue.add(name)
            return True
        return False

    def _held(self, name: str) -> bool:
        """A backup or restore has the service stopped on purpose: leave it, look again soon."""
        hold = self.store.holds().get(name)
        if hold is None:
            return False
        log.info("service_held", service=name, reason=hold.reason, pid=hold.pid)
        self.queue.add_after(name, 1.0)
        return True

    def _gated(self, action: Action, service: DesiredService) -> bool:
        """Spec changes, and first deploys of a revision, go through the health gate."""
        if action.kind is ActionKind.RECREATE:
            return True
        return action.kind is ActionKind.CREATE and self.rollouts.needs_gate(service)

    def _back_off(self, name: str, wait: float, reason: str) -> None:
        with self._lock:
            self.state.backing_off[name] = wait
        self.metrics.crash_loop.labels(name).set(1)
        log.info("service_backoff", service=name, wait=round(wait, 1), reason=reason)
        self.queue.add_after(name, wait)

    def _on_probe_transition(
        self, service: str, kind: ProbeKind, passing: bool, detail: str
    ) -> None:
        self.store.record(
            "probe_transition",
            f"{service}: {kind} probe {'passing' if passing else 'failing'} ({detail})",
            service=service,
            probe=str(kind),
            passing=passing,
        )
        if not passing:
            self.metrics.probe_failures.labels(str(kind)).inc()
        self._trigger(service, "probe")
        desired = self.state.desired
        if desired is not None and kind is ProbeKind.READINESS and passing:
            for other in desired.dependents(service):  # type: ignore[arg-type]
                self.queue.add(other)

    def _on_rollout_finished(self, service: str, result: str, reason: str) -> None:
        self.metrics.rollouts.labels(result).inc()
        if result == "succeeded":
            self.metrics.last_rollout.labels(service).set(time.time())
        elif result == "rolled_back":
            self.metrics.rollbacks.labels(service).inc()
        desired = self.state.desired
        if desired is not None:
            for other in desired.dependents(service):  # type: ignore[arg-type]
                self.queue.add(other)

    def _crash_backoff(self, name: str, action: Action) -> float:
        """Seconds to wait before restarting a crashed container (kubelet-style).

        The first restart is immediate; then 10 s, doubling to 300 s; the
        count resets after 10 minutes without a restart.
        """
        if action.kind is not ActionKind.RESTART:
            return 0.0
        now = self._clock()
        attempts, last = self._restarts.get(name, (0, -1e9))
        if now - last > CRASH_BACKOFF_RESET:
            attempts = 0
        delay = (
            0.0
            if attempts == 0
            else min(CRASH_BACKOFF_BASE * 2 ** (attempts - 1), CRASH_BACKOFF_MAX)
        )
        if now - last < delay:
            return delay - (now - last)
        self._restarts[name] = (attempts + 1, now)
        return 0.0

    # -- what we publish -----------------------------------------------------

    def _count(self, result: ActionResult) -> None:
        self.metrics.actions.labels(str(result.action.kind), str(result.outcome)).inc()

    def _publish(self, actual: list[ActualContainer]) -> None:
        desired = self.state.desired
        if desired is None:
            return
        by_name = {c.name: c for c in actual}
        running = converged = 0
        for svc in desired:
            container = by_name.get(svc.name)
            is_running = (
                container is not None and container.managed and container.state == states.RUNNING
            )
            is_converged = (
                is_running and container is not None and container.spec_hash == svc.spec_hash
            )
            running += is_running
            converged += is_converged
            self.metrics.service_up.labels(svc.name).set(1 if is_converged else 0)
            ready = self.health.ready(svc.name)
            self.metrics.service_ready.labels(svc.name).set(1 if ready else 0)
            self._mark(svc.name, ready if svc.spec.enabled else None)
        for gone in self._published - set(desired.services):
            self._mark(gone, None)
            self.metrics.service_up.remove(gone)
            self.metrics.service_ready.remove(gone)
            self.metrics.crash_loop.remove(gone)
        self._published = set(desired.services)
        self.metrics.services_desired.set(len(desired))
        self.metrics.services_running.set(running)
        self.metrics.services_converged.set(converged)

    def _mark(self, service: str, ready: bool | None) -> None:
        """Add to the readiness record when the service's readiness changed."""
        if service in self._readiness and self._readiness[service] == ready:
            return
        self._readiness[service] = ready
        self.store.mark_readiness(service, ready)

    def _beat(self) -> None:
        self.store.heartbeat(self._watch_id)

    def _publish_slos(self) -> None:
        desired = self.state.desired
        if desired is None:
            return
        now = time.time()  # the store counts a live daemon's watch until now
        default = self.settings.slo_default
        for found in measure(self.store, desired, default_percent=default, now=now):
            service, target = found.objective.service, found.objective.target
            self.metrics.slo_objective.labels(service).set(target)
            if found.tally.availability is not None:
                self.metrics.slo_availability.labels(service).set(found.tally.availability)
            self.metrics.slo_budget_remaining.labels(service).set(found.budget_remaining_ratio)

    def _scrape(self) -> bytes:
        self.metrics.queue_depth.set(self.queue.depth())
        self.metrics.ready.set(1 if self.readyz().ok else 0)
        return self.metrics.exposition()

    def healthz(self) -> Probe:
        age = self._clock() - self._heartbeat
        if age > max(5.0, 5 * self._tick()):
            return Probe(False, f"control loop has not run for {age:.0f} s")
        if not self._making_progress():
            return Probe(
                False, f"a reconcile has run for more than {self.settings.stall_limit:.0f} s"
            )
        return Probe(True, "ok")

    def readyz(self) -> Probe:
        s = self.state
        reasons = []
        if s.desired is None:
            reasons.append("no valid desired state loaded")
        if s.load_errors:
            first = s.load_errors[0]
            reasons.append(
                f"desired state invalid ({len(s.load_errors)} errors, first: {first}); "
                "enforcing the last valid state"
            )
        if s.podman_error:
            reasons.append(f"Podman unreachable: {s.podman_error}")
        if self.runtime.breaker_state != "closed":
            reasons.append(f"circuit breaker {self.runtime.breaker_state}")
        if not s.first_pass_done:
            reasons.append("first reconcile pass not finished")
        if s.last_pass_error:
            reasons.append(f"last pass: {s.last_pass_error}")
        return Probe(not reasons, "; ".join(reasons))

    def status(self) -> dict[str, Any]:
        s = self.state
        with self._lock:
            desired, observed, waiting = s.desired, list(s.observed), dict(s.waiting)
            backing_off, notes = dict(s.backing_off), dict(s.notes)
        for name, hold in self.store.holds().items():
            notes[name] = f"held by pid {hold.pid} for a {hold.reason}: paid leaves it alone"
        revisions: dict[str, int] = {}
        for svc in desired or ():
            number = self.store.find_revision(service=svc.name, spec_hash=svc.spec_hash)
            if number is not None:
                revisions[svc.name] = number
        statuses = service_statuses(desired, observed, revisions=revisions)
        ready = self.readyz()
        return {
            "version": __version__,
            "ready": ready.ok,
            "reason": ready.reason or None,
            "desiredState": {
                "directory": str(self.settings.directory),
                "valid": not s.load_errors,
                "errors": [str(e) for e in s.load_errors],
                "enforcedSince": s.desired_since,
            },
            "podman": {"reachable": s.podman_error is None, "breaker": self.runtime.breaker_state},
            "observedAt": s.observed_at,
            "reconciling": sorted(k for k in self._inflight if k not in (FULL, PRUNE)),
            "lastSuccessfulPassAt": s.last_pass_ok_at,
            "services": [
                {
                    **st.to_json(),
                    "waitingFor": list(waiting.get(st.name, ())),
                    "crashLoopBackOff": st.name in backing_off,
                    "rollout": self._rollout_json(st.name),
                    "health": self.health.summary(st.name),
                    "note": notes.get(st.name),
                }
                for st in statuses
            ],
        }

    def _collect_secrets(self, desired: DesiredState, actual: list[ActualContainer]) -> None:
        in_use = uses_secrets(desired, actual)
        if not (in_use or self._secrets_maybe_stale):
            return  # no secrets anywhere: spare Podman the list call
        try:
            removed, kept = self.controller.collect_secrets(desired, actual, now=time.time())
        except RuntimeFailure as err:
            log.warning("secret_collection_failed", error=str(err))
            return
        if removed:
            log.info("secrets_removed", secrets=removed)
        self._secrets_maybe_stale = in_use or kept > 0

    def _rollout_json(self, name: str) -> dict[str, Any] | None:
        active = self.rollouts.active.get(name)
        if active is None:
            return None
        return {
            "revision": active.gate.revision,
            "phase": str(active.gate.phase),
            "previousRevision": active.previous_revision,
        }

    def _status_line(self) -> str:
        desired = self.state.desired
        count = len(desired) if desired else 0
        ready = self.readyz()
        return f"{count} services; " + ("converged" if ready.ok else ready.reason)[:200]


def _hashes(desired: DesiredState) -> dict[str, str]:
    return {svc.name: svc.spec_hash for svc in desired}
