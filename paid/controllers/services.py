"""The service executor: carry out one action on one service.

The reconciler (``paid.controllers.reconciling``) decides; ``execute``
does, and reports and journals what happened. A recreate is stop-first
(replace, never patch), and its image and secrets are made present
*before* the old container is touched, so a missing image never costs a
running service. ``container_request`` (``paid.controllers.requests``)
is the one place a service becomes a Podman container.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from paid.controllers.journal import Journal
from paid.controllers.preparing import Preparer
from paid.controllers.requests import container_request, runs_beside
from paid.runtime.base import (
    ContainerMissing,
    ContainerRequest,
    ObjectFault,
    RequestRejected,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.state import actual as states
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.plans import Action, ActionKind
from paid.state.secrets import SecretUnavailable
from paid.state.specs import ServiceSpec
from paid.storage.checkout import Checkout
from paid.storage.config_files import ConfigStore
from paid.storage.documents import to_document
from paid.storage.secret_files import SecretSource

log = structlog.get_logger("paid.services")


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


@dataclass
class ServiceController:
    runtime: Runtime
    journal: Journal
    on_result: Callable[[ActionResult], None] = field(default=lambda result: None)
    # The git commit the desired state came from, read when a revision is recorded.
    checkout: Callable[[], Checkout | None] = field(default=lambda: None)
    secrets: SecretSource | None = None  # where secretEnv files are read
    allowed_host_paths: tuple[str, ...] = ()  # --allow-host-path, checked again at create
    configs: ConfigStore | None = None  # where configs' copies are kept (the state dir)
    state_dir: str | None = None  # stamped on containers (labels.STATE_DIR)
    preparer: Preparer = field(init=False)

    def __post_init__(self) -> None:
        self.preparer = Preparer(
            self.runtime, self.journal, self.secrets, self.allowed_host_paths, self.configs
        )

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
                # Any of paid's own containers may be an orphan: checked on the object.
                self.retire(name, service=None, timeout=None, required=True)
            case ActionKind.STOP:
                grace = service.spec.termination_grace_period_seconds if service else None
                stopping = self.owned(name, service=name, required=True)
                if stopping is not None:
                    self.stop(stopping.id, timeout=grace)
            case ActionKind.UPDATE:
                assert service is not None  # noqa: S101 -- planned for desired services only
                self.record(service)
            case ActionKind.START:  # the container checked as paid's, by its ID
                starting = self.owned(name, service=name, required=True)
                if starting is None:
                    raise ContainerMissing(f"start {name}: no container holds the name any more")
                if action.reason == "paused":
                    self.unpause(starting.id)
                else:
                    self.start(starting.id)
            case ActionKind.CREATE | ActionKind.RECREATE | ActionKind.RESTART:
                assert service is not None  # noqa: S101 -- the diff only plans these for desired services
                revision = self.record(service)
                request = self.request_for(service, revision=revision)
                self.prepare(request, heal=action.kind is ActionKind.RESTART)
                if action.kind is ActionKind.RESTART:
                    if self._replace_dead(service, revision, action.reason):
                        return
                    self._keep_last_logs(name, name, action.reason)
                if action.kind is not ActionKind.CREATE:
                    grace = service.spec.termination_grace_period_seconds
                    self.retire(name, service=name, timeout=grace, required=True)
                self.start(self.create(request, service.spec))
            case _:
                raise AssertionError(f"cannot perform {action.kind}")

    def owned(
        self, name: str, *, service: str | None, required: bool = False
    ) -> ActualContainer | None:
        """The container ``name`` now holds, if it is paid's (and ``service``'s); else None.

        Looked up by name, judged on its own labels: whatever acts on it
        next uses its ID, so a container that took the name meanwhile is
        never touched. One that is not paid's is journalled and left alone;
        with ``required`` (the caller is about to reuse the name) it is an error.
        """
        found = self.runtime.inspect_container(name)
        if found is None or name not in (found.name, found.id):
            return None  # nothing there (Podman may answer a name with an ID-prefix match)
        if found.managed and (service is None or found.labels.get(labels.SERVICE) == service):
            return found
        log.warning("not_owned_left_alone", container=name, id=found.id[:12], service=service)
        self.journal.record(
            "not_owned_left_alone",
            f"{name} ({found.id[:12]}) is not paid's own container for "
            f"{service or 'any service'}: left alone",
            service=service,
        )
        if required:
            raise RequestRejected(f"{name} is held by a container that is not paid's")
        return None

    def retire(
        self, name: str, *, service: str | None, timeout: int | None, required: bool = False
    ) -> bool:
        """Stop and remove paid's container ``name`` by its ID, once checked; False if none.

        ``required``: a container that holds the name but is not paid's is an
        error (the caller was about to reuse the name), not a quiet skip.
        """
        try:
            container = self.owned(name, service=service, required=required)
        except ObjectFault as err:
            return self._repair(name, service=service, fault=err)
        if container is None:
            return False
        try:
            self.stop(container.id, timeout=timeout)
        except ObjectFault as err:
            return self._repair(name, service=service, fault=err)
        with contextlib.suppress(ContainerMissing):
            self.runtime.remove_container(container.id)
        return True

    def _repair(self, name: str, *, service: str | None, fault: ObjectFault) -> bool:
        """A container Podman cannot read (``container not known``): removed by ID, if paid's.

        Found in the listing (which reads Podman's database, not the broken
        storage), judged on its labels like any other, and removed with
        force; the caller then makes a new one. One that is not paid's is
        left alone and the fault stands.
        """
        found = next((c for c in self.runtime.list_containers() if name in (c.name, c.id)), None)
        if found is None:
            return False
        if not found.managed or (
            service is not None and found.labels.get(labels.SERVICE) != service
        ):
            raise fault
        with contextlib.suppress(ContainerMissing):
            self.runtime.remove_container(found.id)
        log.warning("container_repaired", container=name, id=found.id[:12], fault=str(fault))
        self.journal.record(
            "container_repaired",
            f"{name} ({found.id[:12]}) could not be read by Podman ({fault}): "
            "removed, to be made anew",
            service=found.labels.get(labels.SERVICE),
        )
        return True

    # The container verbs. Everything in paid that changes a container calls
    # these (or ``create``, ``retire``), always with the ID of a container
    # checked as paid's (``owned``): the executor, rollouts, backups, restores.

    def stop(self, container_id: str, *, timeout: int | None) -> None:
        with contextlib.suppress(ContainerMissing):  # gone already: the goal of a stop
            self.runtime.stop_container(container_id, timeout=10 if timeout is None else timeout)

    def start(self, container_id: str) -> None:
        self.runtime.start_container(container_id)

    def pause(self, container_id: str) -> None:
        self.runtime.pause_container(container_id)

    def unpause(self, container_id: str) -> None:
        self.runtime.unpause_container(container_id)

    def rename(self, container_id: str, name: str) -> None:
        self.runtime.rename_container(container_id, name)

    def _replace_dead(self, service: DesiredService, revision: int, reason: str) -> bool:
        """A dead container's replacement starts beside it, then takes the name; False if not.

        The fresh copy is created and started as ``<name>.paid-next``,
        answering to the service's name and aliases in DNS (as StartFirst's
        new copy does), so it need not wait for Podman to finish cleaning up
        the dead one; the dead one's last log lines are kept, it is removed
        by ID, and the new copy renamed. A paid killed in between leaves a
        running copy beside a dead one: the next pass's ``RESUME_BESIDE``.
        Not for a container that still runs (a liveness failure: two copies
        must not share its files), nor for host ports, fixed addresses or
        the host's network, which one container holds at a time: those are
        replaced in place.
        """
        name, spec = service.name, service.spec
        if not runs_beside(spec):
            return False
        try:
            dead = self.owned(name, service=name, required=True)
        except ObjectFault:
            return False  # unreadable: repaired in place (``retire``)
        if dead is None or dead.state not in states.EXITED:
            return False
        fresh = self.create(self.request_for(service, revision=revision, beside=True), spec)
        try:
            self.start(fresh)
        except RuntimeFailure:
            with contextlib.suppress(RuntimeFailure):
                self.runtime.remove_container(fresh)
            raise
        self._keep_last_logs(name, dead.id, reason)
        with contextlib.suppress(ContainerMissing):
            self.runtime.remove_container(dead.id)
        self.rename(fresh, name)
        return True

    def _keep_last_logs(self, name: str, container: str, reason: str, lines: int = 20) -> None:
        """Journal the last lines of ``container``, ``name``'s instance being replaced."""
        try:
            tail = self.runtime.logs_tail(container, lines=lines)
        except RuntimeFailure as err:
            tail = [f"(logs unavailable: {err})"]
        self.journal.record(
            "container_replaced",
            f"{name}: {reason}",
            service=name,
            reason=reason,
            last_log_lines=tail,
        )

    def prepare(self, request: ContainerRequest, *, heal: bool = False) -> None:
        """What the container needs, made present before anything is stopped (``Preparer``)."""
        self.preparer.prepare(request, heal=heal)

    def create(self, request: ContainerRequest, spec: ServiceSpec) -> str:
        """Create the container, each ``VOLUME`` its image declares kept in a named volume.

        The one place paid creates a service's container: the executor and
        every rollout call it, so no path leaves data in an anonymous volume
        that the next heal would leave behind. A canary gets anonymous ones:
        two copies of a database must never share files.
        """
        if request.labels.get(labels.CANARY) != "true":
            request = self.preparer.with_data_volumes(request, spec)
        return self.runtime.create_container(request)

    def request_for(
        self, service: DesiredService, *, revision: int, canary: bool = False, beside: bool = False
    ) -> ContainerRequest:
        """``container_request`` with this controller's config copies and state directory."""
        request = container_request(
            service, revision=revision, canary=canary, beside=beside, configs=self.configs
        )
        if self.state_dir is None:
            return request
        return dataclasses.replace(
            request, labels={**request.labels, labels.STATE_DIR: self.state_dir}
        )

    def record(self, service: DesiredService) -> int:
        """The revision of ``service``'s spec, its document (controller fields too) kept.

        The one place a revision is recorded: a create here, a rollout's begin.
        """
        document = to_document(service)
        checkout = self.checkout()
        return self.journal.revision_for(
            service=service.name,
            spec_hash=service.spec_hash,
            spec=service.shape,
            image=service.spec.image,
            document=document,
            git_commit=checkout.commit if checkout else None,
            git_dirty=checkout.dirty if checkout else None,
        )

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
