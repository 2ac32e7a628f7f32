"""The network executor: make paid's networks match, before any container needs them.

The full pass calls ``NetworkController.reconcile`` first; its plan is the
pure ``network_plan``. A network is listed only when something may have
changed: once a listing found every desired network in place and none of
paid's left over, later passes skip the call until the desired networks,
or the networks containers are on, differ from that listing.

A recreate (the network's spec changed) disconnects paid's containers
from the old network, replaces it and connects them to the new one with
their aliases: no container is replaced for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from paid.controllers.journal import Journal
from paid.runtime.base import ContainerMissing, RequestRejected, Runtime, RuntimeFailure
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredState
from paid.state.networks import (
    ActualNetwork,
    DesiredNetwork,
    NetworkAction,
    NetworkActionKind,
    members_of,
    network_plan,
)

log = structlog.get_logger("paid.networks")


@dataclass(frozen=True, slots=True)
class NetworkResult:
    action: NetworkAction
    error: str | None = None

    @property
    def conflict(self) -> bool:
        return self.action.kind is NetworkActionKind.CONFLICT

    def __str__(self) -> str:
        return f"network {self.action.network}: {self.error or self.action.reason}"


class NetworkController:
    def __init__(self, runtime: Runtime, journal: Journal) -> None:
        self.runtime = runtime
        self.journal = journal
        self._settled: frozenset[tuple[str, str]] | None = None
        self._planned: list[ActualNetwork] | None = None  # a plan's listing, for the next pass

    def forget(self) -> None:
        """List again on the next pass (something changed that a listing would show)."""
        self._settled = None

    def plan(
        self, desired: DesiredState, containers: Iterable[ActualContainer], *, prune: bool
    ) -> tuple[NetworkAction, ...]:
        """What ``reconcile`` would do now (one network list call, which the next pass reuses)."""
        self._planned = self.runtime.list_networks()
        return network_plan(desired.networks, self._planned, members_of(containers), prune=prune)

    def reconcile(
        self, desired: DesiredState, containers: Iterable[ActualContainer], *, prune: bool
    ) -> list[NetworkResult]:
        """Create, recreate and (with ``prune``) remove networks; each result says how it went."""
        listed = tuple(containers)
        wanted = frozenset((n.name, n.spec_hash) for n in desired.networks.values())
        on = {name for c in listed if c.managed for name in c.networks or ()}
        if self._settled == wanted and on <= {name for name, _ in wanted}:
            return []
        actual, self._planned = self._planned or self.runtime.list_networks(), None
        actions = network_plan(desired.networks, actual, members_of(listed), prune=prune)
        results = [self._execute(a, desired.networks, listed) for a in actions]
        leftover = any(n.managed and n.name not in desired.networks for n in actual)
        clean = all(r.error is None for r in results) and not leftover and prune
        self._settled = wanted if clean and not _conflicts(actions) else None
        return results

    def _execute(
        self,
        action: NetworkAction,
        desired: Mapping[str, DesiredNetwork],
        containers: tuple[ActualContainer, ...],
    ) -> NetworkResult:
        name = action.network
        try:
            match action.kind:
                case NetworkActionKind.CONFLICT:
                    log.warning("network_conflict", network=name, reason=action.reason)
                    self.journal.record("network_conflict", f"{name}: {action.reason}")
                    return NetworkResult(action, action.reason)
                case NetworkActionKind.CREATE:
                    self._create(desired[name])
                case NetworkActionKind.RECREATE:
                    self._recreate(desired[name], containers)
                case NetworkActionKind.REMOVE:
                    self._remove(name)
        except RuntimeFailure as err:
            log.warning(
                "network_not_applied", network=name, action=str(action.kind), error=str(err)
            )
            self.journal.record(
                "network_not_applied", f"{action.kind} network {name}: {err}", network=name
            )
            return NetworkResult(action, str(err))
        log.info("network_applied", network=name, action=str(action.kind), reason=action.reason)
        self.journal.record(
            "network_applied", f"{action.kind} network {name}: {action.reason}", network=name
        )
        return NetworkResult(action)

    def _create(self, network: DesiredNetwork) -> None:
        self.runtime.create_network(
            network.name,
            network.spec,
            {**network.labels, labels.MANAGED: "true", labels.SPEC_HASH: network.spec_hash},
        )

    def _owned(self, name: str) -> ActualNetwork:
        """The network ``name`` as it is now, checked to be paid's (this instance's)."""
        found = next((n for n in self.runtime.list_networks() if n.name == name), None)
        if found is None:
            raise ContainerMissing(f"network {name} is gone")
        if not found.managed:
            raise RequestRejected(f"network {name} ({found.id[:12]}) is not paid's: left alone")
        return found

    def _remove(self, name: str) -> None:
        found = self._owned(name)
        with contextlib.suppress(ContainerMissing):
            self.runtime.remove_network(found.id)

    def _recreate(self, network: DesiredNetwork, containers: tuple[ActualContainer, ...]) -> None:
        found = self._owned(network.name)
        members = [c for c in containers if c.managed and network.name in (c.networks or ())]
        for member in members:
            with contextlib.suppress(ContainerMissing):
                self.runtime.disconnect_network(found.id, member.id)
        self.runtime.remove_network(found.id)
        self._create(network)
        for member in members:
            with contextlib.suppress(ContainerMissing):
                aliases, addresses = _attachment(member, network.name)
                self.runtime.connect_network(
                    network.name, member.id, aliases=aliases, addresses=addresses
                )


def _attachment(container: ActualContainer, network: str) -> tuple[list[str], list[str]]:
    """The aliases and fixed addresses a container was made with on ``network`` (its shape)."""
    shape = container.shape or {}
    for attachment in shape.get("networks") or ():
        if isinstance(attachment, dict) and attachment.get("name") == network:
            addresses = [attachment.get("ipv4Address"), attachment.get("ipv6Address")]
            return (
                [str(a) for a in attachment.get("aliases") or ()],
                [str(a) for a in addresses if a],
            )
    return [], []


def _conflicts(actions: Iterable[NetworkAction]) -> bool:
    return any(a.kind is NetworkActionKind.CONFLICT for a in actions)


__all__ = ["NetworkController", "NetworkResult"]
