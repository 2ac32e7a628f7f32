"""The service controller: observe, diff, apply.

``reconcile`` is one level-based pass: it lists what Podman runs (one
call), diffs it against the desired state and applies the plan. Applying
is idempotent by construction: an action is only planned where the actual
state differs, so a second pass over a converged host plans nothing and
makes no mutating call.

The executor applies actions in plan order (removals, then dependency
order), one at a time, and keeps going past a failure: a service whose
image is missing does not stop the others, only the services that depend
on it. A recreate is stop-first (replace, never patch), and its image is
made present *before* the old container is touched, so a missing image
never costs a running service.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import structlog

from paid.runtime.base import (
    ContainerMissing,
    ContainerRequest,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.checkout import Checkout
from paid.state.desired import DesiredService, DesiredState
from paid.state.diffing import diff
from paid.state.loading import to_documents
from paid.state.plans import Action, ActionKind, Plan
from paid.state.secrets import (
    SecretMount,
    SecretSource,
    SecretUnavailable,
    is_managed_secret,
    podman_secret_name,
)
from paid.state.specs import canonical_json

log = structlog.get_logger("paid.services")

SECRET_GRACE_SECONDS = 600.0


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted: a dependency failed or Podman went away
    CONFLICT = "conflict"  # reported, left alone
    WITHHELD = "withheld"  # held back by a guard


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: Action
    outcome: Outcome
    detail: str = ""
    unreachable: bool = False  # failed because Podman could not be reached


@dataclass(frozen=True, slots=True)
class ApplyReport:
    plan: Plan
    results: tuple[ActionResult, ...] = ()

    @property
    def converged(self) -> bool:
        """True when every planned action was done and nothing was held back."""
        return all(r.outcome is Outcome.DONE for r in self.results)

    def failures(self) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if r.outcome is not Outcome.DONE)


class Journal(Protocol):
    """Where revisions are numbered and actions recorded (the store)."""

    def revision_for(
        self,
        *,
        service: str,
        spec_hash: str,
        spec: Mapping[str, object],
        image: str,
        document: Mapping[str, object] | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
    ) -> int: ...

    def record(
        self, kind: str, message: str, *, service: str | None = None, **data: object
    ) -> None: ...


@dataclass
class ServiceController:
    runtime: Runtime
    journal: Journal
    on_result: Callable[[ActionResult], None] = field(default=lambda result: None)
    checkout: Checkout | None = None  # the git commit the desired state came from
    secrets: SecretSource | None = None  # where secretEnv files are read

    def observe(self) -> list[ActualContainer]:
        return self.runtime.list_containers()

    def plan(self, desired: DesiredState, *, allow_mass_prune: bool = False) -> Plan:
        return diff(desired, self.observe(), allow_mass_prune=allow_mass_prune)

    def reconcile(self, desired: DesiredState, *, allow_mass_prune: bool = False) -> ApplyReport:
        return self.apply(desired, self.plan(desired, allow_mass_prune=allow_mass_prune))

    def apply(self, desired: DesiredState, plan: Plan) -> ApplyReport:
        """Apply ``plan`` in order, carrying on past failures where that is safe."""
        results: list[ActionResult] = []
        blocked: set[str] = set()  # services whose dependents must wait
        unreachable: str | None = None
        for action in plan.actions:
            service = desired.services.get(action.service)  # type: ignore[call-overload]
            waiting = [d for d in (service.spec.depends_on if service else []) if d in blocked]
            if unreachable is not None:
                result = self._report(ActionResult(action, Outcome.SKIPPED, unreachable))
            elif waiting:
                detail = f"dependency {waiting[0]} not converged"
                result = self._report(ActionResult(action, Outcome.SKIPPED, detail))
            else:
                result = self.execute(action, service)
                if result.outcome is Outcome.FAILED and result.unreachable:
                    unreachable = f"Podman unreachable: {result.detail}"
            if result.outcome is not Outcome.DONE:
                blocked.add(action.service)
            results.append(result)
        for action in plan.withheld:
            results.append(
                self._report(ActionResult(action, Outcome.WITHHELD, "; ".join(plan.notes)))
            )
        return ApplyReport(plan=plan, results=tuple(results))

    def execute(self, action: Action, service: DesiredService | None) -> ActionResult:
        """Carry out one action; report and journal its result."""
        if action.kind is ActionKind.CONFLICT:
            return self._report(ActionResult(action, Outcome.CONFLICT, action.reason))
        try:
            self._perform(action, service)
        except RuntimeUnavailable as err:
            return self._report(ActionResult(action, Outcome.FAILED, str(err), unreachable=True))
        except (RuntimeFailure, SecretUnavailable) as err:
            return self._report(ActionResult(action, Outcome.FAILED, str(err)))
        return self._report(ActionResult(action, Outcome.DONE))

    def _perform(self, action: Action, service: DesiredService | None) -> None:
        name = action.service
        match action.kind:
            case ActionKind.REMOVE:
                self.stop(name, timeout=None)
                self.runtime.remove_container(name)
            case ActionKind.STOP:
                grace = service.spec.termination_grace_period_seconds if service else None
                self.stop(name, timeout=grace)
            case ActionKind.START if action.reason == "paused":
                self.runtime.unpause_container(name)
            case ActionKind.START:
                self.runtime.start_container(name)
            case ActionKind.CREATE | ActionKind.RECREATE | ActionKind.RESTART:
                assert service is not None  # noqa: S101 -- the diff only plans these for desired services
                request = self._request(service)
                self.prepare(request)
                if action.kind is ActionKind.RESTART:
                    self._keep_last_logs(name, action.reason)
                if action.kind is not ActionKind.CREATE:
                    self.stop(name, timeout=service.spec.termination_grace_period_seconds)
                    self.runtime.remove_container(name)
                self.runtime.create_container(request)
                self.runtime.start_container(name)
            case _:
                raise AssertionError(f"cannot perform {action.kind}")

    def stop(self, name: str, *, timeout: int | None) -> None:
        with contextlib.suppress(ContainerMissing):  # gone already: the goal of a stop
            self.runtime.stop_container(name, timeout=10 if timeout is None else timeout)

    def _keep_last_logs(self, name: str, reason: str, lines: int = 20) -> None:
        """Journal the last lines of an instance about to be replaced."""
        try:
            tail = self.runtime.logs_tail(name, lines=lines)
        except RuntimeFailure as err:
            tail = [f"(logs unavailable: {err})"]
        self.journal.record(
            "container_replaced",
            f"{name}: {reason}",
            service=name,
            reason=reason,
            last_log_lines=tail,
        )

    def prepare(self, request: ContainerRequest) -> None:
        """Make the image and the secrets present: nothing else is touched yet.

        Raises ``RuntimeFailure`` or ``SecretUnavailable``; either leaves a
        running old container as it was.
        """
        if not self.runtime.image_present(request.image):
            self.runtime.pull_image(request.image)
        if not request.secrets:
            return
        if self.secrets is None:
            raise SecretUnavailable("secretEnv needs a secrets directory (--secrets-dir)")
        present = self.runtime.list_secrets()
        for mount in request.secrets:
            if mount.podman_name not in present:
                self.runtime.create_secret(mount.podman_name, self.secrets.value_for(mount))

    def collect_secrets(
        self, desired: DesiredState, containers: list[ActualContainer], *, now: float
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
        for name, created in self.runtime.list_secrets().items():
            if not is_managed_secret(name):
                continue
            if name in used or now - created <= SECRET_GRACE_SECONDS:
                kept += 1
                continue
            with contextlib.suppress(ContainerMissing):
                self.runtime.remove_secret(name)
            removed.append(name)
        return removed, kept

    def _request(self, service: DesiredService) -> ContainerRequest:
        (document,) = to_documents(DesiredState.of({service.name: service}))
        revision = self.journal.revision_for(
            service=service.name,
            spec_hash=service.spec_hash,
            spec=service.shape,
            image=service.spec.image,
            document=document,
            git_commit=self.checkout.commit if self.checkout else None,
            git_dirty=self.checkout.dirty if self.checkout else None,
        )
        return container_request(service, revision=revision)

    def _report(self, result: ActionResult) -> ActionResult:
        action = result.action
        event = "action_applied" if result.outcome is Outcome.DONE else "action_not_applied"
        log_method = log.info if result.outcome is Outcome.DONE else log.warning
        log_method(
            event,
            service=action.service,
            action=str(action.kind),
            reason=action.reason,
            outcome=str(result.outcome),
            detail=result.detail or None,
        )
        self.journal.record(
            f"action_{result.outcome}",
            f"{action.kind} {action.service}: {result.detail or action.reason}",
            service=action.service,
            action=str(action.kind),
            reason=action.reason,
        )
        self.on_result(result)
        return result


def secret_mounts(service: DesiredService) -> tuple[SecretMount, ...]:
    """The Podman secrets a container of ``service`` mounts, by name and fingerprint."""
    return tuple(
        SecretMount(
            env=key,
            file=entry.file,
            fingerprint=service.secret_fingerprints[key],
            podman_name=podman_secret_name(service.name, key, service.secret_fingerprints[key]),
        )
        for key, entry in sorted(service.spec.secret_env.items())
    )


def uses_secrets(desired: DesiredState, containers: list[ActualContainer]) -> bool:
    """Whether any desired service or running container has secrets (else: no list call)."""
    return any(s.spec.secret_env for s in desired) or any(
        labels.SECRETS in c.labels for c in containers
    )


def container_request(
    service: DesiredService, *, revision: int, canary: bool = False
) -> ContainerRequest:
    """The Podman container for one revision of a service, labels included.

    ``command`` and ``args`` follow Kubernetes: ``command`` replaces the
    image's entrypoint, ``args`` its default arguments; a ``command``
    without ``args`` runs with no image arguments at all.
    """
    spec = service.spec
    owned = {
        labels.MANAGED: "true",
        labels.SERVICE: service.name,
        labels.SPEC_HASH: service.spec_hash,
        labels.REVISION: str(revision),
        labels.SPEC: canonical_json(service.shape).decode(),
    }
    secrets = secret_mounts(service)
    if secrets:
        owned[labels.SECRETS] = ",".join(s.podman_name for s in secrets)
    name: str = service.name
    ports = tuple(spec.ports)
    if canary:
        owned[labels.CANARY] = "true"
        name = service.name + labels.CANARY_SUFFIX
        ports = tuple(spec.rollout.canary.ports) if spec.rollout.canary else ()
    args = spec.args if spec.args is not None else ([] if spec.command is not None else None)
    return ContainerRequest(
        name=name,
        image=spec.image,
        labels={**service.labels, **owned},
        entrypoint=spec.command,
        command=args,
        env={**spec.env, **{f"{s.env}_FILE": s.target for s in secrets}},
        ports=ports,
        volumes=tuple(spec.volumes),
        memory_bytes=spec.resources.memory,
        cpus=spec.resources.cpus,
        stop_signal=spec.stop_signal,
        stop_timeout=spec.termination_grace_period_seconds,
        init=spec.init,
        secrets=secrets,
    )
