"""Collection: what paid made and nothing uses any more goes, after a converged pass.

Podman secrets (``paid.<service>.<key>.<fingerprint>``) that no container
and no desired service names, past a grace period; copies of configs that
no kept revision, container or desired spec names. Never anything paid
did not make.
"""

from __future__ import annotations

import contextlib
import time

import structlog

from paid.controllers.requests import secret_mounts, uses_secrets
from paid.controllers.worlds import World
from paid.runtime.base import ContainerMissing, Runtime, RuntimeFailure
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.configs import digests_in
from paid.state.desired import DesiredState
from paid.state.secrets import is_managed_secret
from paid.storage.config_files import ConfigStore
from paid.storage.store import Store

log = structlog.get_logger("paid.collecting")

SECRET_GRACE_SECONDS = 600.0


class Collector:
    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        config_store: ConfigStore | None,
        *,
        sweep_secrets: bool = False,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.config_store = config_store
        # A long-lived driver sweeps unused Podman secrets at least once, even
        # when nothing desired or running uses any (left by an earlier state).
        self._secrets_maybe_stale = sweep_secrets

    def secrets(self, world: World) -> None:
        """Remove paid's Podman secrets nothing uses (no list call when none exist)."""
        if not (uses_secrets(world.desired, list(world.actual)) or self._secrets_maybe_stale):
            return
        try:
            removed, kept = unused_secrets(
                self.runtime, world.desired, list(world.actual), now=time.time()
            )
        except RuntimeFailure as err:
            log.warning("secret_collection_failed", error=str(err))
            return
        if removed:
            log.info("secrets_removed", secrets=removed)
        self._secrets_maybe_stale = kept > 0

    def configs(self, world: World) -> None:
        """Remove the copies of configs that no kept revision, container or desired spec names."""
        configs = self.config_store
        if configs is None or not configs.directory.is_dir():
            return
        keep = {
            c.digest for state in (world.desired, world.requested) for s in state for c in s.configs
        }
        keep.update(d for c in world.actual for d in digests_in(c.shape))
        keep.update(d for spec in self.store.recorded_specs() for d in digests_in(spec))
        removed = configs.collect(keep)
        if removed:
            log.info("config_copies_removed", digests=[d[:12] for d in removed])


def unused_secrets(
    runtime: Runtime, desired: DesiredState, containers: list[ActualContainer], *, now: float
) -> tuple[list[str], int]:
    """Remove paid's Podman secrets that nothing uses or is about to use.

    Returns the names removed and how many of paid's secrets remain.

    In use: named by a container's label or by the desired state. A
    secret younger than ``SECRET_GRACE_SECONDS`` is kept too: a rollout
    of a desired state newer than ``desired`` may have just made it.
    """
    used = {
        name for c in containers for name in c.labels.get(labels.SECRETS, "").split(",") if name
    }
    used.update(m.podman_name for svc in desired for m in secret_mounts(svc))
    removed: list[str] = []
    kept = 0
    for name, created in runtime.list_secrets().items():
        if not is_managed_secret(name):
            continue
        if name in used or now - created <= SECRET_GRACE_SECONDS:
            kept += 1
            continue
        with contextlib.suppress(ContainerMissing):
            runtime.remove_secret(name)
        removed.append(name)
    return removed, kept
