"""Scheduled backups: one APScheduler cron job per service with a schedule.

Jobs run on their own two-thread executor, so a long copy never delays the
resync, the directory watch or the probes; a job never overlaps itself and
a missed run (paid was down) is made up once, within an hour, not replayed.
The ``backups`` feature flag turns scheduled and pre-rollout backups off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from paid.controllers.backups import BackupController, BackupFailed, BackupResult
from paid.metrics import Metrics
from paid.state.desired import DesiredService, DesiredState
from paid.state.specs import cron_fields

log = structlog.get_logger("paid.backups")

EXECUTOR = "backups"
_PREFIX = "backup:"
MISFIRE_GRACE_SECONDS = 3600


class BackupSchedule:
    def __init__(
        self,
        scheduler: BaseScheduler,
        controller: BackupController,
        *,
        metrics: Metrics,
        desired: Callable[[], DesiredState | None],
        enabled: Callable[[], bool],
    ) -> None:
        self._scheduler = scheduler
        self._controller = controller
        self._metrics = metrics
        self._desired = desired
        self._enabled = enabled
        self._schedules: dict[str, str] = {}
        scheduler.add_executor(ThreadPoolExecutor(2), EXECUTOR)

    def sync(self, desired: DesiredState) -> None:
        """Add, change and drop jobs to match the services' schedules."""
        wanted = {
            svc.name: svc.spec.backup.schedule
            for svc in desired
            if svc.spec.backup is not None and svc.spec.backup.schedule
        }
        for name in set(self._schedules) - set(wanted):
            self._scheduler.remove_job(_PREFIX + name)
            del self._schedules[name]
        for name, schedule in wanted.items():
            self._metrics.backup_failures.labels(name)
            if self._schedules.get(name) == schedule:
                continue
            trigger = CronTrigger(**cron_fields(schedule))
            self._scheduler.add_job(
                self._run,
                trigger,
                args=[name],
                id=_PREFIX + name,
                replace_existing=True,
                executor=EXECUTOR,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
            )
            self._schedules[name] = schedule
            self._metrics.backup_interval.labels(name).set(interval_of(trigger))
            log.info("backup_scheduled", service=name, schedule=schedule)

    def _run(self, name: str) -> None:
        desired = self._desired()
        service = desired.services.get(name) if desired else None  # type: ignore[call-overload]
        if service is None:
            return
        if not self._enabled():
            log.info("backup_skipped", service=name, reason="feature flag backups is off")
            return
        self.backup(service, reason="scheduled")

    def backup(self, service: DesiredService, *, reason: str) -> str | None:
        """Back up now; the backup's ID, or None when it failed (and was reported)."""
        try:
            return self._controller.backup(service, reason=reason).id
        except BackupFailed:
            return None

    def observe(self, result: BackupResult) -> None:
        if result.ok:
            self._metrics.backup_last_success.labels(result.service).set_to_current_time()
            self._metrics.backup_duration.labels(result.service).set(result.seconds)
        else:
            self._metrics.backup_failures.labels(result.service).inc()


def interval_of(trigger: CronTrigger, *, runs: int = 32) -> float:
    """The longest gap between the next ``runs`` runs: the period the stale alert allows.

    Longest, not next: ``0 3 * * 1-5`` waits three days over a weekend.
    """
    previous = trigger.get_next_fire_time(None, datetime.now(UTC))
    longest = 0.0
    for _ in range(runs):
        if previous is None:
            break
        following = trigger.get_next_fire_time(previous, previous + timedelta(microseconds=1))
        if following is None:
            break
        longest = max(longest, (following - previous).total_seconds())
        previous = following
    return longest
