"""Scheduled backups: jobs follow the desired state; the backups flag stops them at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from paid.controllers.backups import BackupFailed, BackupResult
from paid.daemon.backups import BackupSchedule
from paid.metrics import Metrics
from paid.state.desired import DesiredService, DesiredState
from tests.unit.builders import desired, desired_service


@dataclass
class Recorder:
    """Stands in for the BackupController: records what it was asked to back up."""

    calls: list[str] = field(default_factory=list)
    fail: bool = False

    def backup(self, service: DesiredService, *, reason: str) -> Any:
        self.calls.append(f"{service.name}:{reason}")
        if self.fail:
            raise BackupFailed("disk full")
        return type("Record", (), {"id": "B"})()


def _db(schedule: str | None) -> DesiredService:
    return desired_service(
        "db", volumes=["data:/data"], backup={"schedule": schedule} if schedule else {}
    )


def test_jobs_follow_the_schedules_and_the_flag_stops_them() -> None:
    """Added, changed and dropped with the desired state; skipped while backups are off."""
    scheduler = BackgroundScheduler()
    recorder, metrics = Recorder(), Metrics()
    state: dict[str, DesiredState] = {"now": desired(_db("0 3 * * *"))}
    flags = {"backups": True}
    schedule = BackupSchedule(
        scheduler,
        recorder,  # type: ignore[arg-type]
        metrics=metrics,
        desired=lambda: state["now"],
        enabled=lambda: flags["backups"],
    )

    schedule.sync(state["now"])
    (job,) = scheduler.get_jobs()
    assert "backup:db" == job.id
    assert 86400.0 == metrics.backup_interval.labels("db")._value.get()

    flags["backups"] = False
    job.func(*job.args)
    flags["backups"] = True
    job.func(*job.args)
    assert ["db:scheduled"] == recorder.calls

    state["now"] = desired(_db(None))
    schedule.sync(state["now"])
    assert [] == scheduler.get_jobs()


def test_results_reach_the_metrics() -> None:
    """A success sets the last-success time and duration; a failure counts."""
    metrics = Metrics()
    schedule = BackupSchedule(
        BackgroundScheduler(),
        Recorder(fail=True),  # type: ignore[arg-type]
        metrics=metrics,
        desired=lambda: None,
        enabled=lambda: True,
    )

    assert schedule.backup(_db(None), reason="before rollout") is None
    schedule.observe(BackupResult("db", False, 1.0))
    schedule.observe(BackupResult("db", True, 2.5))

    assert 1 == metrics.backup_failures.labels("db")._value.get()
    assert 2.5 == metrics.backup_duration.labels("db")._value.get()
    assert metrics.backup_last_success.labels("db")._value.get() > 0
