"""Wiring: the reconciler and its parts, built in one place for every driver.

``paid run``, ``paid apply``, ``paid plan``, ``paid update`` and
``paid rollback`` all get their ``Reconciler`` from ``build``: the
executor (``ServiceController``), the health, rollout, network and image
controllers, and the hooks between them are connected here and nowhere
else. A driver says what it wants (``Wants``), what it hears (``Hooks``)
and how it runs (``Mode``); it never patches a part after the fact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from paid.controllers.health import HealthController, ProbeKind
from paid.controllers.images import ImageController, Registry
from paid.controllers.networks import NetworkController
from paid.controllers.reconciling import Reconciler
from paid.controllers.rollouts import RolloutController
from paid.controllers.services import ServiceController
from paid.controllers.worlds import Hooks, Wants
from paid.runtime.base import Runtime
from paid.settings import Timings
from paid.state.desired import DesiredService
from paid.storage.config_files import ConfigStore
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store


class Mode(Enum):
    """How a driver runs the reconciler: how many probes at once, what it sweeps."""

    PLAN = 1  # observes and plans; reconciles nothing
    APPLY = 8  # one drive to convergence
    DAEMON = 16  # long-lived: also sweeps secrets an earlier state left

    @property
    def probe_workers(self) -> int:
        return self.value


def build(
    runtime: Runtime,
    store: Store,
    wants: Wants,
    *,
    secrets: SecretSource | None = None,
    registry: Registry | None = None,
    timings: Timings | None = None,
    hooks: Hooks | None = None,
    backup: Callable[[DesiredService], str | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    mode: Mode = Mode.APPLY,
) -> Reconciler:
    """The reconciler with its parts connected; ``registry`` None: tags are not followed."""
    timings = timings or Timings()
    heard = hooks or Hooks()
    services = _services(runtime, store, wants, secrets, heard)

    def transition(service: str, kind: ProbeKind, passing: bool, detail: str) -> None:
        heard.probe_transition(service, str(kind), passing, detail)

    health = HealthController(
        runtime,
        on_transition=transition,
        on_probe=heard.probe,
        clock=clock,
        workers=mode.probe_workers,
    )
    images = (
        ImageController(
            runtime=runtime,
            store=store,
            registry=registry,
            on_result=heard.image_result,
            clock=clock,
            retry_after=timings.registry_retry,
        )
        if registry is not None
        else None
    )

    def finished(service: str, result: str, why: str) -> None:
        if images is not None:
            images.finished(service, result, why)
        heard.rollout_finished(service, result, why)

    rollouts = RolloutController(
        runtime=runtime,
        store=store,
        services=services,
        ready=health.ready,
        health=health,
        flags=wants.flags,
        clock=clock,
        on_finished=finished,
        backup=backup,
        timings=timings,
        on_analysis=heard.analysis,
    )
    return Reconciler(
        runtime=runtime,
        store=store,
        wants=wants,
        secrets=secrets,
        services=services,
        health=health,
        rollouts=rollouts,
        networks=NetworkController(runtime, store),
        images=images,
        timings=timings,
        hooks=heard,
        clock=clock,
        sweep_secrets=mode is Mode.DAEMON,
    )


def _services(
    runtime: Runtime, store: Store, wants: Wants, secrets: SecretSource | None, heard: Hooks
) -> ServiceController:
    """The executor: the one part that changes containers, by ID, once checked as paid's."""
    state_dir = Path(store.path).parent
    return ServiceController(
        runtime=runtime,
        journal=store,
        secrets=secrets,
        on_result=heard.action,
        checkout=wants.checkout,
        allowed_host_paths=wants.allowed_host_paths,
        configs=ConfigStore(state_dir / "configs"),
        state_dir=os.path.realpath(state_dir),
    )
