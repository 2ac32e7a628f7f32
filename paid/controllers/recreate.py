"""Recreate: the old copy stops, the new one starts under the service's name.

Everything that can be done before the old container stops is done first
— the image pulled, config copies and networks made (``prepare``, by the
caller), and the new container *created*, as ``<name>.paid-next`` — so the
gap is one stop, two renames and one start. The old container is renamed
aside (``<name>.paid-prev``: a dot cannot occur in a service name), kept
until the gate has judged the new one, and put back if it fails.

A service with a fixed address is created after the stop: the address is
one container's, even between a create and a start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from paid.controllers.services import ServiceController
from paid.controllers.verdicts import Verdicts
from paid.runtime.base import NameInUse, Runtime, RuntimeFailure
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.labels import aside_name, next_name

log = structlog.get_logger("paid.rollouts")


class Recreate:
    def __init__(
        self,
        runtime: Runtime,
        services: ServiceController,
        verdicts: Verdicts,
        *,
        gated: Callable[[DesiredService, int, str | None, int | None], None],
        fail: Callable[[DesiredService, str], None],
    ) -> None:
        self.runtime = runtime
        self.services = services
        self.verdicts = verdicts
        self._gated = gated  # the gate starts: (service, revision, aside, previous revision)
        self._fail = fail  # the gate's failure: roll back to the container kept aside

    def replace(
        self,
        service: DesiredService,
        current: ActualContainer | None,
        revision: int,
        previous_revision: int | None,
    ) -> None:
        name = service.name
        aside, early = None, None
        if current is not None and current.managed:
            blocker = self.runtime.inspect_container(aside_name(name))
            if blocker is not None:
                # Not ours (ours would have been resumed first): touch nothing.
                self._refuse(
                    service,
                    revision,
                    previous_revision,
                    f"{aside_name(name)} is held by container {blocker.id[:12]}, which is not "
                    "paid's: nothing was stopped",
                )
                return
            if not any(a.ipv4_address or a.ipv6_address for a in service.spec.networks):
                request = self.services.request_for(service, revision=revision)
                try:
                    early = self.services.create(
                        dataclasses.replace(request, name=next_name(name)), service.spec
                    )
                except NameInUse as err:
                    self._refuse(service, revision, previous_revision, str(err))
                    return
                except RuntimeFailure as err:
                    # Nothing touched: the old copy keeps serving; the revision is at fault.
                    self.verdicts.finish(
                        name,
                        revision,
                        previous_revision,
                        failed=f"revision {revision} could not be created: {err}",
                        restore=None,
                    )
                    return
            # By ID: the container observed, not whatever holds the name now.
            self.services.stop(current.id, timeout=service.spec.termination_grace_period_seconds)
            self.services.rename(current.id, aside_name(name))
            aside = aside_name(name)
        self._gated(service, revision, aside, previous_revision)
        created = self._take_name(service, revision, early)
        if created is None:
            return
        try:
            self.services.start(created)  # by ID: the container just made (or adopted)
        except RuntimeFailure as err:
            self._fail(service, f"revision {revision} could not start: {err}")

    def _take_name(self, service: DesiredService, revision: int, early: str | None) -> str | None:
        """The new container under the service's name: the one made early, or made now."""
        name = service.name
        try:
            if early is not None:
                self.services.rename(early, name)
                return early
            return self.services.create(
                self.services.request_for(service, revision=revision), service.spec
            )
        except NameInUse:
            # A paid killed mid-rollout had its create finished by Podman after
            # it died: let the gate judge whatever holds the name (its spec
            # hash must match, or the rollout fails and rolls back), if paid's.
            log.warning("rollout_adopted", service=name, revision=revision)
            if early is not None:  # the copy made early is not needed
                self.services.retire(early, service=name, timeout=0)
            adopted = self.services.owned(name, service=name)
            if adopted is None:
                self._fail(
                    service, f"revision {revision}: its name is held by a container not paid's"
                )
            return adopted.id if adopted is not None else None
        except RuntimeFailure as err:
            self._fail(service, f"revision {revision} could not be created: {err}")
            return None

    def _refuse(
        self, service: DesiredService, revision: int, previous_revision: int | None, why: str
    ) -> None:
        """The world, not the revision, is in the way: nothing touched; it backs off."""
        self.verdicts.finish(
            service.name, revision, previous_revision, failed=why, restore=None, blocked=True
        )
        self.verdicts.count_first_failure(service)
