"""The desired-state source: the directory, its last known good state, git pulls.

``load()`` reads the directory. A valid directory becomes the enforced
state and is saved in the store as the last known good; an invalid one
changes nothing that is enforced, and says so (log, journal, metrics,
``Knowledge.load_errors``). A daemon started on an invalid directory
enforces the snapshot in the store. A loader that crashes (a bug, an
unreadable file) is invalid desired state too, never a silent traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from paid.daemon.status import Knowledge
from paid.metrics import Metrics
from paid.state.desired import DesiredState
from paid.state.networks import DEFAULT_NETWORK
from paid.storage.checkout import Checkout, describe, pull
from paid.storage.documents import digest, from_documents, to_documents
from paid.storage.loading import LoadError, load_directory
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store

log = structlog.get_logger("paid.daemon")


class DesiredSource:
    def __init__(
        self,
        directory: Path,
        *,
        knowledge: Knowledge,
        store: Store,
        metrics: Metrics,
        secrets: SecretSource,
        allowed_host_paths: tuple[str, ...],
        allowed_devices: tuple[str, ...] = (),
        default_network: str = DEFAULT_NETWORK,
        on_loaded: Callable[[DesiredState], None] = lambda desired: None,
    ) -> None:
        self.directory = directory
        self.knowledge = knowledge
        self.store = store
        self.metrics = metrics
        self.secrets = secrets
        self.allowed_host_paths = allowed_host_paths
        self.allowed_devices = allowed_devices
        self.default_network = default_network
        self._on_loaded = on_loaded
        self._lock = threading.Lock()
        self._last_pull_error: str | None = None
        self.checkout: Checkout | None = None

    def current(self) -> DesiredState | None:
        return self.knowledge.desired

    def valid(self) -> bool:
        return not self.knowledge.load_errors

    def load(self, *, initial: bool = False) -> None:
        with self._lock:
            try:
                result = load_directory(
                    self.directory,
                    allowed_host_paths=self.allowed_host_paths,
                    allowed_devices=self.allowed_devices,
                    default_network=self.default_network,
                    secrets=self.secrets,
                )
            except Exception as err:  # a loader bug must not pass for a valid state
                log.exception("desired_state_load_crashed", error=str(err))
                self._invalid((LoadError(str(self.directory), 0, "", f"cannot load: {err}"),))
            else:
                if result.desired is not None:
                    self._valid(result.desired, files=len(result.files))
                else:
                    self._invalid(result.errors)
            if initial and self.knowledge.desired is None:
                self._restore_snapshot()

    def _valid(self, desired: DesiredState, *, files: int) -> None:
        now = time.time()
        self.checkout = describe(self.directory)
        documents = to_documents(desired)
        self.store.save_snapshot(digest=digest(documents), documents=documents)
        before = self.knowledge.desired
        # A secret file's new value changes a hash, not the documents.
        changed = (
            before is None
            or to_documents(before) != documents
            or _hashes(before) != _hashes(desired)
        )
        self.knowledge.update(desired=desired, load_errors=())
        if changed:
            self.knowledge.update(desired_since=now)
        self._on_loaded(desired)
        self.metrics.desired_valid.set(1)
        self.metrics.desired_errors.set(0)
        self.metrics.desired_last_load.set(now)
        self.metrics.services_desired.set(len(desired))
        if changed:
            log.info("desired_state_loaded", services=len(desired), files=files)

    def _invalid(self, errors: tuple[LoadError, ...]) -> None:
        """Keep what we enforce; say so."""
        self.knowledge.update(load_errors=errors)
        self.metrics.desired_valid.set(0)
        self.metrics.desired_errors.set(len(errors))
        self.metrics.desired_load_failures.inc()
        for error in errors:
            log.error("desired_state_invalid", error=str(error))
        self.store.record(
            "desired_state_invalid",
            f"{len(errors)} validation errors; enforcing the last valid state",
            errors=[str(e) for e in errors[:20]],
        )

    def _restore_snapshot(self) -> None:
        snapshot = self.store.snapshot()
        if snapshot is None:
            log.error(
                "no_last_known_good", reason="directory invalid and the store holds no valid state"
            )
            return
        restored = from_documents(
            snapshot.documents,
            origin=f"store:{self.store.path}",
            secrets=self.secrets,
            default_network=self.default_network,
        )
        if restored.desired is None:
            log.error("snapshot_unreadable", errors=[str(e) for e in restored.errors])
            return
        self.knowledge.update(desired=restored.desired, desired_since=snapshot.at)
        self._on_loaded(restored.desired)
        self.metrics.services_desired.set(len(restored.desired))
        log.warning(
            "last_known_good_restored", services=len(restored.desired), saved_at=snapshot.at
        )

    def pull(self) -> bool:
        """Fast-forward the checkout from its remote; True when it moved.

        A refused or failed pull changes nothing, and is journalled once per reason.
        Loading waits while git rewrites the checkout: a load in the middle of
        a merge would see the new files under the old commit.
        """
        with self._lock:
            result = pull(self.directory)
        if not result.ok:
            self.metrics.git_pulls.labels("failed").inc()
            log.error("git_pull_failed", reason=result.message)
            if result.message != self._last_pull_error:
                self.store.record("git_pull_failed", result.message)
            self._last_pull_error = result.message
            return False
        self._last_pull_error = None
        self.metrics.git_last_pull.set_to_current_time()
        if not result.changed:
            self.metrics.git_pulls.labels("unchanged").inc()
            return False
        self.metrics.git_pulls.labels("updated").inc()
        log.info("git_pulled", before=result.before, after=result.after)
        self.store.record("git_pulled", result.message, before=result.before, after=result.after)
        return True


def _hashes(desired: DesiredState) -> dict[str, str]:
    return {svc.name: svc.spec_hash for svc in desired}
