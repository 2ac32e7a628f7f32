"""The backup controller: a service's named volumes out to archives, and back.

A backup quiesces the service as its ``consistency`` says (``stop``: stop the
container for the copy and start it again; ``pause``: freeze it; ``live``:
copy as it runs), copies every named volume, keeps the newest ``keep``
backups and, if configured, hands the new one to an upload command for an
off-host copy. A restore checks the archives first (checksums and member
paths), takes a safety backup of what is there now, stops the service,
swaps each volume's content for the archive's, starts it and waits until
it is ready.

While it works the controller *holds* the service in the store: the daemon
leaves a held service alone (no restart of the stopped container), and a
hold whose process died is void, so a killed ``paid restore`` never keeps a
service down.

Swapping a volume's content is two renames (``_data`` aside, the extracted
copy in); ``recover`` puts the old content back if a kill fell between them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from paid.controllers.services import ServiceController
from paid.runtime.base import ContainerMissing, Runtime, RuntimeFailure
from paid.state import actual as states
from paid.state.actual import ActualContainer
from paid.state.data_volumes import CONTAINER_LABEL
from paid.state.desired import DesiredService
from paid.state.specs import Backup, BackupConsistency
from paid.storage.archives import (
    PARTIAL_SUFFIX,
    SAFETY_PREFIX,
    ArchiveError,
    BackupRecord,
    extract,
    find_backup,
    list_backups,
    prune,
    verify,
    write_backup,
)
from paid.storage.store import HoldTaken, Store

log = structlog.get_logger("paid.backups")

RESTORE_SUFFIX = ".paid-restore"
OLD_SUFFIX = ".paid-old"
UPLOAD_TIMEOUT = 3600.0


class BackupFailed(Exception):
    """A backup or restore did not happen; what was there is as it was."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    service: str
    ok: bool
    seconds: float
    backup: BackupRecord | None = None
    error: str = ""


class BackupController:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: Store,
        services: ServiceController,
        directory: Path,
        upload_command: str | None = None,
        on_finished: Callable[[BackupResult], None] = lambda result: None,
        wait_ready: Callable[[DesiredService, str], bool] | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.services = services
        self.directory = directory
        self.upload_command = upload_command
        self.on_finished = on_finished
        self._wait_ready = wait_ready

    # -- backups ---------------------------------------------------------------

    def backup(self, service: DesiredService, *, reason: str, keep: bool = True) -> BackupRecord:
        """Back up every named volume of ``service``; ``BackupFailed`` says why not.

        ``keep=False`` skips retention (a safety backup must not prune the
        backup about to be restored).
        """
        start = time.perf_counter()
        config = service.spec.backup or Backup()
        try:
            with self._held(service.name, "backup"):
                record = self._copy(service, config.consistency, reason)
            removed = prune(self.directory, service.name, keep=config.keep) if keep else []
        except (RuntimeFailure, ArchiveError, OSError) as err:
            raise self._failed(service.name, "backup", err, start) from err
        seconds = time.perf_counter() - start
        self.store.record(
            "backup_succeeded",
            f"{service.name}: backup {record.id} ({_size(record.size)}, {seconds:.1f} s; {reason})",
            service=service.name,
            backup=record.id,
            seconds=round(seconds, 3),
            size=record.size,
            reason=reason,
            pruned=removed,
        )
        log.info("backup_succeeded", service=service.name, backup=record.id, seconds=seconds)
        self._upload(record)
        self.on_finished(BackupResult(service.name, True, seconds, record))
        return record

    def _copy(
        self, service: DesiredService, consistency: BackupConsistency, reason: str
    ) -> BackupRecord:
        volumes = {}
        container = self._container(service.name)
        names = _volumes_of(service, container)
        if not names:
            raise ArchiveError(
                "nothing to back up: the service mounts no named volume and its image "
                "declares no VOLUME (or it has not run yet)"
            )
        for volume in names:
            try:
                volumes[volume] = Path(self.runtime.volume_mountpoint(volume))
            except ContainerMissing:
                raise ArchiveError(f"volume {volume} does not exist (yet)") from None
            recover(volumes[volume])
        with self._quiesced(service, container, consistency):
            return write_backup(
                self.directory,
                service=service.name,
                volumes=volumes,
                revision=container.revision if container else None,
                consistency=str(consistency),
                reason=reason,
                now=time.time(),
            )

    @contextlib.contextmanager
    def _quiesced(
        self,
        service: DesiredService,
        container: ActualContainer | None,
        consistency: BackupConsistency,
    ) -> Iterator[None]:
        running = container is not None and container.state == states.RUNNING
        if not running or consistency is BackupConsistency.LIVE:
            yield
            return
        assert container is not None  # noqa: S101 -- running, so found (and paid's: _container)
        owned = container.id  # by ID: the container checked as paid's, never another of the name
        if consistency is BackupConsistency.PAUSE:
            self.services.pause(owned)
            try:
                yield
            finally:
                self.services.unpause(owned)
            return
        self.services.stop(owned, timeout=service.spec.termination_grace_period_seconds)
        try:
            yield
        finally:
            self.services.start(owned)

    def _upload(self, record: BackupRecord) -> None:
        if not self.upload_command:
            return
        env = {
            **os.environ,
            "PAID_BACKUP_DIR": str(record.path),
            "PAID_BACKUP_ID": record.id,
            "PAID_BACKUP_SERVICE": record.service,
        }
        try:
            done = subprocess.run(  # noqa: S602 -- the operator's own command line
                self.upload_command,
                shell=True,
                env=env,
                capture_output=True,
                text=True,
                timeout=UPLOAD_TIMEOUT,
                check=False,
            )
            ok, detail = done.returncode == 0, (done.stderr or done.stdout).strip()[-500:]
        except (OSError, subprocess.TimeoutExpired) as err:
            ok, detail = False, str(err)
        kind = "backup_uploaded" if ok else "backup_upload_failed"
        self.store.record(
            kind,
            f"{record.service}: {record.id}: {detail or 'ok'}",
            service=record.service,
            backup=record.id,
        )
        (log.info if ok else log.error)(
            kind, service=record.service, backup=record.id, detail=detail
        )

    # -- restores --------------------------------------------------------------

    def restore(self, service: DesiredService, backup_id: str | None = None) -> BackupRecord:
        """Put a backup's content back into the service's volumes, then wait until ready."""
        start = time.perf_counter()
        self.collect_debris([service])
        try:
            record = find_backup(self.directory, service.name, backup_id)
            problems = verify(record)
            if problems:
                raise ArchiveError(f"backup {record.id} refused: " + "; ".join(problems))
            wanted = set(service.spec.named_volumes())
            # Data volumes (an image's VOLUMEs) are the service's by name: on a new host the
            # container that lists them is not there yet.
            strangers = [
                v.volume
                for v in record.volumes
                if v.volume not in wanted and not v.volume.startswith(f"{service.name}-data-")
            ]
            if strangers:
                raise ArchiveError(
                    f"backup {record.id} holds volumes the service no longer mounts: "
                    + ", ".join(strangers)
                )
            for volume in record.volumes:  # a new host: the volume is not there yet
                try:
                    self.runtime.volume_mountpoint(volume.volume)
                except ContainerMissing:
                    self.runtime.create_volume(volume.volume)
            safety = self.backup(service, reason=f"{SAFETY_PREFIX}{record.id}", keep=False)
            with self._held(service.name, "restore"):
                container = self._container(service.name)
                running = container is not None and container.state == states.RUNNING
                if container is not None:  # paid's (``_container``), stopped by its ID
                    self.services.stop(
                        container.id, timeout=service.spec.termination_grace_period_seconds
                    )
                for volume in record.volumes:
                    _replace_content(
                        Path(self.runtime.volume_mountpoint(volume.volume)), record, volume.volume
                    )
                if container is not None:
                    self.services.start(container.id)
            ready = True
            if running and container is not None and self._wait_ready is not None:
                fresh = self._container(service.name)
                ready = fresh is not None and self._wait_ready(service, fresh.id)
        except (RuntimeFailure, ArchiveError, OSError) as err:
            raise self._failed(service.name, "restore", err, start) from err
        seconds = time.perf_counter() - start
        self.store.record(
            "restore_succeeded" if ready else "restore_not_ready",
            f"{service.name}: restored backup {record.id} in {seconds:.1f} s"
            + ("" if ready else "; the service did not become ready")
            + f" (what was there is backup {safety.id})",
            service=service.name,
            backup=record.id,
            safety_backup=safety.id,
            seconds=round(seconds, 3),
        )
        if not ready:
            raise BackupFailed(
                f"restored backup {record.id}, but {service.name} did not become ready; "
                f"the data from before is backup {safety.id}"
            )
        return record

    # -- debris ------------------------------------------------------------------

    def collect_debris(self, desired: Iterable[DesiredService]) -> list[str]:
        """Finish or undo what a killed backup or restore left; the paths it cleaned.

        For each service no backup or restore holds now: a half-made backup
        (``.<id>.partial``) and a content swap cut short beside a volume
        (``_data.paid-restore``, ``_data.paid-old``). Run at the daemon's
        start and before each restore, so debris never outlives the next run.
        """
        held = set(self.store.holds())
        cleaned: list[str] = []
        for service in desired:
            if service.name in held:
                continue
            parent = self.directory / service.name
            if parent.is_dir():
                for entry in parent.iterdir():
                    if entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX):
                        shutil.rmtree(entry, ignore_errors=True)
                        cleaned.append(str(entry))
            for volume in service.spec.named_volumes():
                try:
                    data = Path(self.runtime.volume_mountpoint(volume))
                except RuntimeFailure:
                    continue  # not there (yet), or Podman cannot say: nothing to clean
                debris = [data.with_name(data.name + s) for s in (RESTORE_SUFFIX, OLD_SUFFIX)]
                if any(d.exists() for d in debris):
                    recover(data)
                    cleaned.extend(str(d) for d in debris)
        if cleaned:
            log.warning("backup_debris_collected", paths=cleaned)
            self.store.record("backup_debris_collected", f"collected {len(cleaned)} leftovers")
        return cleaned

    # -- reading ---------------------------------------------------------------

    def list(self, service: str | None = None) -> list[BackupRecord]:
        return list_backups(self.directory, service)

    # -- helpers ---------------------------------------------------------------

    @contextlib.contextmanager
    def _held(self, service: str, reason: str) -> Iterator[None]:
        try:
            self.store.hold(service, reason=reason)
        except HoldTaken as err:
            raise ArchiveError(str(err)) from None
        try:
            yield
        finally:
            self.store.release(service)

    def _container(self, name: str) -> ActualContainer | None:
        for container in self.runtime.list_containers():
            if container.name == name and container.managed:
                return container
        return None

    def _failed(self, service: str, what: str, err: Exception, start: float) -> BackupFailed:
        seconds = time.perf_counter() - start
        self.store.record(
            f"{what}_failed", f"{service}: {what} failed: {err}", service=service, error=str(err)
        )
        log.error(f"{what}_failed", service=service, error=str(err))
        if what == "backup":
            self.on_finished(BackupResult(service, False, seconds, error=str(err)))
        return BackupFailed(f"{what} of {service} failed: {err}")


def _volumes_of(service: DesiredService, container: ActualContainer | None) -> list[str]:
    """The volumes a backup holds: the spec's named ones, then the image's data volumes.

    A database whose image declares its data directory a ``VOLUME`` keeps it
    in a data volume of paid's (``paid.state.data_volumes``), which its
    container lists: backed up like the ones the spec names.
    """
    names = service.spec.named_volumes()
    listed = container.labels.get(CONTAINER_LABEL, "") if container is not None else ""
    return names + [v for v in listed.split(",") if v and v not in names]


def recover(data: Path) -> None:
    """Finish or undo a content swap that a kill interrupted."""
    old = data.with_name(data.name + OLD_SUFFIX)
    staging = data.with_name(data.name + RESTORE_SUFFIX)
    if not data.exists() and old.exists():
        os.rename(old, data)  # killed between the renames: the old content stays
        log.warning("restore_undone", volume=str(data))
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _replace_content(data: Path, record: BackupRecord, volume: str) -> None:
    recover(data)
    staging = data.with_name(data.name + RESTORE_SUFFIX)
    old = data.with_name(data.name + OLD_SUFFIX)
    staging.mkdir(mode=0o700)
    try:
        extract(record, volume, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # the volume itself was not touched
        raise
    os.rename(data, old)
    os.rename(staging, data)
    fd = os.open(data.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    shutil.rmtree(old)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
