"""How a rollout ends: the verdict recorded, the old container kept or put back.

``RolloutController`` runs the gate; when it ends, it hands the rollout
here. Success retires the container kept aside and records the outcome;
failure removes the new container, puts the old one back (automatic
rollback) or keeps the failed one (``autoRollback: false``), says why
(the probes' last answers and the last log lines) and quarantines the
revision. A failed first deploy counts towards its back-off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from paid.controllers.backoff import Backoff
from paid.controllers.health import HealthController
from paid.controllers.services import ServiceController
from paid.runtime.base import ContainerMissing, Runtime, RuntimeFailure
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.images import repo_digest
from paid.state.labels import aside_name
from paid.state.rollouts import RolloutGate
from paid.storage.flags import Flags
from paid.storage.store import Store

log = structlog.get_logger("paid.rollouts")

MAX_GATE_POLL = 1.0  # seconds: a gate is looked at at least this often while it runs


@dataclass
class ActiveRollout:
    gate: RolloutGate
    previous: str | None  # the container kept aside, if any
    previous_revision: int | None
    canary: bool = False  # judging the canary beside the old container
    beside: bool = False  # StartFirst: judging the new copy beside the old one
    drain_until: float | None = None  # StartFirst: the new one is ready; the old drains until
    analysis_due: float = 0.0  # Canary: when its analysis queries are next evaluated


class Verdicts:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: Store,
        services: ServiceController,
        health: HealthController | None,
        flags: Callable[[], Flags],
        first_deploy: Backoff[tuple[str, str]],
        on_finished: Callable[[str, str, str], None],
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.services = services
        self._health = health
        self._flags = flags
        self.first_deploy = first_deploy
        self._on_finished = on_finished
        self.backups_before: dict[str, str] = {}  # service -> backup taken before the rollout

    def record_image(self, service: DesiredService, revision: int, image_id: str) -> None:
        """The image ID and the registry digest the revision ran (``paid history``)."""
        digest = service.image_digest
        if digest is None:
            with contextlib.suppress(RuntimeFailure):
                found = self.runtime.inspect_image(image_id)
                digest = repo_digest(found.repo_digests, service.spec.image) if found else None
        self.store.set_image(
            service.name, revision, image=service.spec.image, image_id=image_id, digest=digest
        )

    def succeed(self, service: DesiredService, active: ActiveRollout) -> None:
        name, revision = service.name, active.gate.revision
        # Also a container set aside by a paid that was killed while Podman
        # still carried out its last request: the new revision has won. Only
        # paid's own container for this service, checked by ID, ever goes.
        with contextlib.suppress(ContainerMissing):
            self.services.retire(aside_name(name), service=name, timeout=None)
        if active.previous_revision is not None and active.previous_revision != revision:
            self.store.set_outcome(
                name, active.previous_revision, "superseded", f"by revision {revision}"
            )
        reason = f"{service.cause}; {active.gate.reason}" if service.cause else active.gate.reason
        self.store.set_outcome(
            name,
            revision,
            "succeeded",
            reason,
            event=(
                "rollout_succeeded",
                f"{name}: revision {revision} {active.gate.reason}",
                {"revision": revision},
            ),
        )
        self.first_deploy.reset((name, service.spec_hash))
        self.store.prune_revisions(
            name, keep=service.spec.revision_history_limit, protect={revision}
        )
        log.info("rollout_succeeded", service=name, revision=revision)
        self.backups_before.pop(name, None)
        self._on_finished(name, "succeeded", active.gate.reason)

    def abandon(
        self, service: DesiredService, active: ActiveRollout, judged: ActualContainer
    ) -> None:
        """The desired state moved on while the gate judged a revision that still runs.

        Not a failure (nothing is quarantined): the gate ends unjudged, what
        only this rollout needed goes (the canary, the copy beside, the old
        container kept aside: the running one is what the next rollout
        replaces), and the next pass rolls the new desired spec out.
        """
        name, revision = service.name, active.gate.revision
        grace = service.spec.termination_grace_period_seconds
        if active.canary or active.beside:
            if self._health is not None:
                self._health.unwatch(judged.name)
            self.services.retire(judged.id, service=name, timeout=grace)
        else:
            self.services.retire(aside_name(name), service=name, timeout=grace)
        reason = "abandoned: the desired state changed before the gate judged it"
        self.store.set_outcome(
            name,
            revision,
            "abandoned",
            reason,
            event=(
                "rollout_abandoned",
                f"{name}: revision {revision} {reason}",
                {"revision": revision},
            ),
        )
        log.info("rollout_abandoned", service=name, revision=revision)

    def fail(self, service: DesiredService, active: ActiveRollout, reason: str) -> None:
        name = service.name
        reason = f"{service.cause}; {reason}" if service.cause else reason
        revision = active.gate.revision
        tail: list[str] = []
        with contextlib.suppress(RuntimeFailure):
            tail = self.runtime.logs_tail(name, lines=20)
        reason += _why(self._probe_answers(name), tail)
        auto = service.spec.rollout.auto_rollback and self._flags().auto_rollback
        restore = active.previous if auto else None
        grace = service.spec.termination_grace_period_seconds
        if restore is not None or active.previous is None:
            with contextlib.suppress(ContainerMissing):
                self.services.retire(name, service=name, timeout=grace)
        elif active.previous is not None:
            # No rollback wanted: the failed revision stays; the old one goes
            # (its spec stays in the store for `paid rollback`).
            with contextlib.suppress(ContainerMissing):
                self.services.retire(active.previous, service=name, timeout=grace)
        self.finish(
            name,
            revision,
            active.previous_revision,
            failed=reason,
            restore=restore,
            logs=tail,
            kept_failed=not auto and active.previous is not None,
        )
        if active.previous is None:
            self.count_first_failure(service)

    def _probe_answers(self, name: str) -> list[str]:
        """The last answer of each of the container's probes that is not passing."""
        if self._health is None:
            return []
        probes = self._health.summary(name).get("probes")
        if not isinstance(probes, dict):
            return []
        return [
            f"{kind} probe: {state['detail']}"
            for kind, state in sorted(probes.items())
            if isinstance(state, dict) and state.get("passing") is not True and state.get("detail")
        ]

    def count_first_failure(self, service: DesiredService) -> None:
        self.first_deploy.attempt((service.name, service.spec_hash))

    def finish(
        self,
        name: str,
        revision: int,
        previous_revision: int | None,
        *,
        failed: str,
        restore: str | None,
        logs: list[str] | None = None,
        kept_failed: bool = False,
        blocked: bool = False,
    ) -> None:
        """Record a failed rollout; ``blocked``: the world, not the revision, is at fault.

        A blocked revision is not quarantined: it backs off and is tried again.
        """
        if restore is not None:
            # The container kept aside, checked on its labels and moved by its ID.
            kept = self.services.owned(restore, service=name, required=True)
            if kept is not None:
                self.services.rename(kept.id, name)
                self.services.start(kept.id)
        rolled_back = previous_revision is not None and not kept_failed and not blocked
        outcome = "rolled_back" if rolled_back else "failed"
        message = f"{name}: revision {revision} failed: {failed}"
        if rolled_back:
            message += f"; back on revision {previous_revision}"
        backup_id = self.backups_before.pop(name, None)
        if rolled_back and backup_id is not None:
            message += (
                f"; the data from before the rollout is backup {backup_id} "
                f"(paid restore {name} --backup {backup_id})"
            )
        event = {"revision": revision, "previous": previous_revision, "last_log_lines": logs or []}
        self.store.set_outcome(
            name,
            revision,
            outcome,
            failed,
            quarantine=rolled_back,
            event=("rollout_rolled_back" if rolled_back else "rollout_failed", message, event),
        )
        log.warning(
            "rollout_failed",
            service=name,
            revision=revision,
            reason=failed,
            rolled_back=rolled_back,
        )
        self._on_finished(name, outcome, failed)


def _why(probes: list[str], tail: list[str], *, lines: int = 5, width: int = 200) -> str:
    """What a failed revision said: its probes' last answers and its last log lines, bounded.

    Part of the outcome's reason, so ``paid apply``, ``paid history`` and
    ``paid postmortem`` show why, not only "exited 1"; the journal keeps
    the last 20 lines in full.
    """
    parts = [p[:width] for p in probes]
    shown = [line[:width] for line in tail[-lines:] if line.strip()]
    if shown:
        parts.append("last output: " + " ⏎ ".join(shown))
    return "".join(f"; {p}" for p in parts)
