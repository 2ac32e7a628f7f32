"""The manager: ``paid run``'s wiring and lifecycle.

It builds the parts and starts them; it decides nothing itself:

- the ``Reconciler`` (``paid.controllers.reconciling``) holds every rule;
  the worker loop (``paid.controllers.working``) runs it on the work
  queue's keys and is the one place that requeues;
- sources ask for reconciles: the desired-state directory
  (``DesiredSource``, polled every ``watch_interval``, SIGHUP, git pull),
  the flags file, Podman's event stream, and a full resync every
  ``resync_interval`` (APScheduler);
- handlers turn what happened into keys; observers publish metrics and
  the readiness record; ``StatusViews`` answers /healthz, /readyz and
  /status.

Last-known-good: an invalid directory never replaces the enforced state
and never prunes. The daemon holds nothing Podman and the store do not:
on start it reconciles from what runs. Shutdown (SIGTERM): the HTTP
server first, then no new work; workers finish the action in flight;
managed containers are left running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from paid import __version__
from paid.controllers import wiring
from paid.controllers.backups import BackupController
from paid.controllers.images import Registry
from paid.controllers.preflight import preflight
from paid.controllers.queue import WorkQueue
from paid.controllers.reconciling import FULL, Hooks, Reconciler, Result
from paid.controllers.wiring import Mode
from paid.controllers.working import Workers
from paid.controllers.worlds import Wants, World
from paid.daemon import deaths
from paid.daemon.backups import BackupSchedule
from paid.daemon.dashboard import Dashboard
from paid.daemon.deaths import DeathWatch
from paid.daemon.desired import DesiredSource
from paid.daemon.handlers import Handlers
from paid.daemon.http import Endpoints, HttpServer
from paid.daemon.image_jobs import ImageJobs
from paid.daemon.notifications import Notifications
from paid.daemon.observers import Observers
from paid.daemon.sources import DirectoryWatcher, EventPump, EventSource, FlagsFile
from paid.daemon.status import Knowledge, StatusViews
from paid.daemon.systemd import Notifier
from paid.metrics import Metrics
from paid.runtime.base import RuntimeFailure, RuntimeUnavailable
from paid.runtime.registry import RegistryClient
from paid.runtime.resilient import ResilientRuntime
from paid.settings import Settings
from paid.state.checks import Status
from paid.state.desired import DesiredState
from paid.storage.flags import Flags
from paid.storage.outbox import Outbox
from paid.storage.secret_files import SecretSource, repository_of
from paid.storage.store import Store, StoreError

log = structlog.get_logger("paid.daemon")

HEARTBEAT_SECONDS = 10.0  # a killed daemon's watch ends at most this long before it died
SLO_SECONDS = 15.0  # how often the SLO gauges are worked out


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
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.notifier = notifier or Notifier()
        self._clock = clock
        self.knowledge = Knowledge()
        self.queue = WorkQueue(clock=clock)
        self.secrets = SecretSource.open(
            settings.secrets_dir,
            state_dir=store.path.parent,
            repo=repository_of(settings.directory),
            identity=settings.age_identity,
        )
        self.flags_file = FlagsFile(settings.flags_path, store=store, on_change=self._flags_changed)
        self.desired = DesiredSource(
            settings.directory,
            knowledge=self.knowledge,
            store=store,
            metrics=metrics,
            secrets=self.secrets,
            allowed_host_paths=settings.allowed_host_paths,
            allowed_devices=settings.allowed_devices,
            default_network=settings.default_network,
            on_loaded=lambda desired: self.backup_schedule.sync(desired),  # noqa: PLW0108 -- made below
        )
        self.reconciler = self._reconciler(registry or RegistryClient())
        self.image_jobs = self._image_jobs()
        self.observers = Observers(
            knowledge=self.knowledge,
            metrics=metrics,
            store=store,
            health=self.reconciler.health,
            slo_default=settings.slo_default,
        )
        self.workers = Workers(
            self.reconciler,
            self.queue,
            count=settings.workers,
            timings=settings.timings,
            on_result=self._on_result,
            on_failure=self._on_podman_failure,
            clock=clock,
        )
        self.handlers = Handlers(
            self.workers.wake,
            metrics=metrics,
            desired=self._desired,
            flags=self._flags,
            woken_by_probe=self.reconciler.woken_by_probe,
        )
        self._scheduler = BackgroundScheduler(daemon=True)
        self.backups, self.backup_schedule = self._backups()
        self.notifications = self._notifications()
        self.observers.flags(self._flags())
        self._store_version = store.data_version()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._awaiting_first = threading.Event()
        self._watch_id = 0
        self._heartbeat = clock()
        # Every file, not only YAML: configs, env files and build contexts are content too.
        self._watcher = DirectoryWatcher(settings.directory, suffixes=None)
        self._secrets_watcher = DirectoryWatcher(settings.secrets_dir, suffixes=None)
        self._pump, self._deaths = self._events(events)
        self.views, self.http = self._status()

    def _image_jobs(self) -> ImageJobs:
        """Checks of followed tags and collection of unused images, on the scheduler."""
        images = self.reconciler.images
        assert images is not None  # noqa: S101 -- built with a registry
        return ImageJobs(
            images,
            knowledge=self.knowledge,
            store=self.store,
            flags=self._flags,
            busy=lambda: set(self.reconciler.rollouts.active),
            moved=lambda: self.handlers.trigger(FULL, "image_update"),
        )

    def _events(self, events: EventSource) -> tuple[EventPump, DeathWatch | None]:
        """Podman's events, to the handlers; lost and reconnected with back-off.

        And, with a local Podman, the watch on managed containers' processes.
        """
        pump = EventPump(
            events,
            on_event=self.handlers.event,
            on_reconnect=self.handlers.reconnected,
            on_lost=self._on_events_lost,
            backoff=self.settings.timings.events,
        )
        settings = self.settings
        watching = settings.watch_events and settings.watch_processes and deaths.supported()
        on_death = lambda service: self.handlers.trigger(service, "process_exit")  # noqa: E731
        return pump, DeathWatch(on_death) if watching else None

    def _notifications(self) -> Notifications:
        timings = self.settings.timings
        return Notifications(
            self.store,
            desired=self._desired,
            secrets=self.secrets,
            metrics=self.metrics,
            outbox=Outbox(self.store, group_seconds=timings.notify_group),
            poll=timings.notify_poll,
            retry=timings.notify_retry,
        )

    def _backups(self) -> tuple[BackupController, BackupSchedule]:
        """Backups, and their schedule (which takes one before a rollout that asks)."""
        settings = self.settings
        backups = BackupController(
            runtime=self.runtime,
            store=self.store,
            services=self.reconciler.services,
            directory=settings.backup_dir or self.store.path.parent / "backups",
            upload_command=settings.backup_upload_command,
            on_finished=lambda *args: schedule.observe(*args),  # noqa: PLW0108 -- made below
        )
        schedule = BackupSchedule(
            self._scheduler,
            backups,
            metrics=self.metrics,
            desired=self._desired,
            enabled=lambda: self._flags().backups,
        )
        return backups, schedule

    def _status(self) -> tuple[StatusViews, HttpServer]:
        """What the listener answers: metrics, health, readiness and status."""
        settings = self.settings
        views = StatusViews(
            self.knowledge,
            reconciler=self.reconciler,
            runtime=self.runtime,
            store=self.store,
            directory=settings.directory,
            inflight=lambda: dict(self.workers.inflight),
            heartbeat=lambda: self._heartbeat,
            tick=self._tick,
            stall_limit=settings.stall_limit,
            clock=self._clock,
        )
        http = HttpServer(
            settings.listen,
            Endpoints(
                metrics=self._scrape,
                healthz=views.healthz,
                readyz=views.readyz,
                status=views.status,
                pages=Dashboard(
                    status=views.status,
                    steps=lambda: self.knowledge.steps,
                    desired=self._desired,
                    store=self.store,
                    slo_default=self.settings.slo_default,
                    checkout=lambda: self.desired.checkout,
                ).page,
            ),
        )
        return views, http

    def _reconciler(self, registry: Registry) -> Reconciler:
        """The reconciler, its hooks reporting to the observers, metrics and handlers."""
        settings, metrics = self.settings, self.metrics
        return wiring.build(
            self.runtime,
            self.store,
            Wants(
                desired=self._desired,
                checkout=lambda: self.desired.checkout,
                flags=self._flags,
                prune_allowed=self.desired.valid,
                allow_mass_prune=settings.allow_mass_prune,
                allowed_host_paths=settings.allowed_host_paths,
            ),
            secrets=self.secrets,
            registry=registry,
            timings=settings.timings,
            hooks=Hooks(
                action=lambda result: self.observers.action(result),  # noqa: PLW0108 -- made later
                rollout_finished=lambda *args: self.observers.rollout_finished(*args),  # noqa: PLW0108 -- made later
                restarted=lambda service, why: self.observers.restarted(service, why),  # noqa: PLW0108 -- made later
                observed=self._observed,
                probe_transition=self._on_probe_transition,
                probe=lambda kind, seconds: metrics.probe_duration.labels(kind).observe(seconds),
                image_result=lambda service, result: metrics.image_updates.labels(
                    service, result
                ).inc(),
                analysis=lambda service, judgement: metrics.canary_analysis.labels(
                    service, judgement
                ).inc(),
            ),
            backup=lambda svc: self.backup_schedule.backup(svc, reason="before rollout"),
            clock=self._clock,
            mode=Mode.DAEMON,
        )

    def _desired(self) -> DesiredState | None:
        return self.knowledge.desired

    def _flags(self) -> Flags:
        return self.flags_file.flags

    # -- lifecycle ---------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Serve until ``stop()`` or SIGTERM; return the exit code."""
        if install_signals:
            self._install_signals()
        self.notifications.outbox.start_cursor()  # what follows is told
        self.observers.record_lost()
        self.store.record("daemon_started", f"paid {__version__} started", pid=os.getpid())
        log.info("daemon_starting", version=__version__, directory=str(self.settings.directory))
        self.desired.load(initial=True)
        self.flags_file.reload()
        self.http.start()  # first: /healthz answers while pre-flight asks the registries
        log.info("http_listening", address=self.http.address)
        self._preflight()
        self._collect_debris()
        self.workers.start()
        self.notifications.start()
        if self.settings.watch_events:
            self._pump.start()
        if self._deaths is not None:
            self._deaths.start()
        self._watch_id = self.store.begin_watch()
        self.handlers.trigger(FULL, "startup")
        self._schedule()
        self._scheduler.start()
        ready_sent = False
        started = self._clock()
        while not self._stop.is_set():
            self._heartbeat = self._clock()
            if self._reload.is_set():
                self._reload.clear()
                self.notifier.reloading()
                self.desired.load()
                self.handlers.trigger(FULL, "signal")
                self._scheduler.add_job(
                    self.image_jobs.check, id="image-check", replace_existing=True
                )
                self.notifier.status(self.views.status_line())
                self.notifier.notify("READY=1")
            if not ready_sent and (
                self.knowledge.first_pass_done
                or self._clock() - started > self.settings.first_pass_timeout
            ):
                self.notifier.ready(self.views.status_line())
                ready_sent = True
                log.info("daemon_ready", status=self.views.status_line())
            if self.views.making_progress():
                if self.notifier.watchdog_interval is not None:
                    self.notifier.watchdog()
            else:
                log.error("daemon_stalled", inflight=dict(self.workers.inflight))
            self._stop.wait(self._tick())
        return self._shutdown()

    def _schedule(self) -> None:
        """The periodic jobs, each on the scheduler's threads."""
        timings = self.settings.timings
        resync = self.settings.resync_interval
        self._every(resync, lambda: self.handlers.trigger(FULL, "resync"), "resync")
        self._every(self.settings.watch_interval, self._watch, "watch")
        self._every(timings.probe_tick, self.reconciler.health.tick, "probes")
        self._every(HEARTBEAT_SECONDS, lambda: self.store.heartbeat(self._watch_id), "heartbeat")
        self._every(SLO_SECONDS, self.observers.publish_slos, "slo")
        if self.settings.git_pull_interval > 0:
            self._every(self.settings.git_pull_interval, self._pull, "git-pull")
        if self.settings.image_update_interval > 0:
            self._every(self.settings.image_update_interval, self.image_jobs.check, "image-updates")
        if self.settings.image_gc:
            self._every(self.settings.image_gc_interval, self.image_jobs.collect, "image-gc")

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
        log.info("daemon_stopping", inflight=sorted(self.workers.inflight))
        self.notifier.stopping("finishing the action in flight; services keep running")
        self.http.stop()  # first: no handler reads what is being torn down
        self._scheduler.shutdown(wait=False)
        self.workers.stop()
        if self.settings.watch_events:
            self._pump.stop()
        if self._deaths is not None:
            self._deaths.stop()
        self.reconciler.close()
        self.notifications.stop()
        self.store.heartbeat(self._watch_id)
        self.store.record("daemon_stopped", "paid stopped", pid=os.getpid())
        log.info("daemon_stopped")
        return 0

    def _collect_debris(self) -> None:
        """What a killed backup or restore left, cleaned before anything else runs."""
        desired = self.knowledge.desired
        if desired is None:
            return
        try:
            self.backups.collect_debris(desired)
        except (OSError, StoreError, RuntimeFailure) as err:
            log.warning("backup_debris_not_collected", error=str(err))

    def _preflight(self) -> None:
        """Run the pre-flight checks once at start; log and export what they found."""
        desired = self.knowledge.desired
        if desired is None:
            return
        checks = preflight(
            desired,
            runtime=self.runtime,
            state_dir=str(self.store.path.parent),
            secrets=self.secrets,
            backup_dir=str(self.backups.directory),
            registry=self.image_jobs.images.registry,
        )
        self.observers.preflight(checks)
        for check in checks:
            if check.check == "state" and check.status is Status.FAIL:
                # Two state directories on one instance undo each other: never start.
                raise StoreError(check.reason)

    # -- sources -------------------------------------------------------------

    def _watch(self) -> None:
        if self._watcher.changed() | self._secrets_watcher.changed():  # both, always
            self.desired.load()
            self.handlers.trigger(FULL, "desired_state_change")
        self.flags_file.reload()
        version = self.store.data_version()
        if version != self._store_version:  # `paid rollback` / `paid rollout retry` wrote
            self._store_version = version
            self.handlers.trigger(FULL, "signal")

    def _pull(self) -> None:
        if self.desired.pull():
            self._watch()  # pick the new files up now, not on the next poll

    def _flags_changed(self, flags: Flags) -> None:
        self.observers.flags(flags)
        self.handlers.trigger(FULL, "signal")

    # -- what the reconciler and Podman report ----------------------------------

    def _observed(self, world: World) -> None:
        self.observers.observed(world)
        if self._deaths is not None:  # its running containers, watched
            self._deaths.observed(world.actual)

    def _on_result(self, key: str, result: Result, seconds: float) -> None:
        self.observers.reconciled(key, result, seconds)
        starting = key == FULL and result.enqueue and not self.knowledge.first_pass_done
        if starting and not self._awaiting_first.is_set():
            # Startup: READY waits until what the first pass queued was tried.
            self._awaiting_first.set()
            threading.Thread(target=self._await_first_pass, daemon=True).start()

    def _await_first_pass(self) -> None:
        """First pass done: nothing queued, nothing running, no rollout under way."""
        deadline = self._clock() + self.settings.first_pass_timeout
        while self._clock() < deadline and not self._stop.is_set():
            if self.queue.idle() and not self.reconciler.rollouts.active:
                break
            time.sleep(0.1)
        self.knowledge.update(first_pass_done=True)

    def _on_podman_failure(self, err: RuntimeFailure) -> None:
        if isinstance(err, RuntimeUnavailable):
            self.observers.podman_failed(str(err))

    def _on_events_lost(self, error: str) -> None:
        self.observers.podman_failed(f"event stream lost ({error})")
        self.metrics.podman_up.set(0)

    def _on_probe_transition(self, service: str, kind: str, passing: bool, detail: str) -> None:
        self.observers.probe_transition(service, kind, passing, detail)
        self.handlers.probe_transition(service, kind, passing)

    def _scrape(self) -> bytes:
        self.metrics.queue_depth.set(self.queue.depth())
        self.metrics.ready.set(1 if self.views.readyz().ok else 0)
        return self.metrics.exposition()
