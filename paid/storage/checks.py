"""Checks across the documents of a desired state, after each has validated on its own.

Duplicate host ports, dependencies (missing, on itself, in a cycle), canaries
and their ports, host paths and devices against the allow-lists, networks a
service names, overlapping subnets, and networks asked to hold more
containers than they have addresses. Each finding is a ``LoadError`` at the
file, line and field it is about.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import posixpath
from typing import Any

from paid.state.labels import canary_name
from paid.state.networks import NetworkDocument
from paid.state.reading import Document, LoadError, dotted
from paid.state.specs import PortMapping, ServiceDocument, ServiceSpec
from paid.storage.paths import within


def cross_checks(
    where: dict[str, tuple[Document, ServiceDocument]],
    *,
    known: set[str | None],
    allowed_host_paths: tuple[str, ...],
    allowed_devices: tuple[str, ...] = (),
    offline: bool = False,
) -> list[LoadError]:
    errors: list[LoadError] = []
    names = set(where)
    claimed: list[tuple[str, PortMapping]] = []
    for name in sorted(where):
        doc, parsed = where[name]
        spec = parsed.spec
        errors += _canary_checks(name, doc, spec, names)
        errors += _start_first_checks(name, doc, spec)
        errors += _port_checks(name, doc, spec, claimed)
        errors += _dependency_checks(name, doc, spec, names | {n for n in known if n})
        if not offline:
            errors += _host_access_checks(doc, spec, allowed_host_paths, allowed_devices)
    for cycle in _cycles(
        {n: [d for d in p.spec.depends_on if d in names and d != n] for n, (_, p) in where.items()}
    ):
        doc, _ = where[cycle[0]]
        errors.append(
            _at(doc, ("spec", "dependsOn"), "dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
        )
    return errors


def _at(doc: Document, loc: tuple[str | int, ...], message: str) -> LoadError:
    return LoadError(doc.file, doc.line_of(loc), dotted(loc), message)


def _canary_checks(name: str, doc: Document, spec: ServiceSpec, names: set[str]) -> list[LoadError]:
    if spec.rollout.strategy != "Canary":
        return []
    where = ("spec", "rollout", "strategy")
    errors = []
    if canary_name(name) in names:
        errors.append(
            _at(
                doc,
                where,
                f"the canary of {name!r} runs as {canary_name(name)}, which is a service's name",
            )
        )
    if any(not v.read_only for v in spec.volumes):
        errors.append(
            _at(
                doc,
                where,
                "a canary runs beside the old instance: with a writable volume that "
                "is two instances on one volume; use Recreate",
            )
        )
    return errors


def _start_first_checks(name: str, doc: Document, spec: ServiceSpec) -> list[LoadError]:
    """What two copies of a service cannot share: StartFirst runs them side by side."""
    if spec.rollout.strategy != "StartFirst":
        return []
    where = ("spec", "rollout", "strategy")
    two = "StartFirst runs the new copy beside the old"
    errors = []
    if spec.ports:
        errors.append(
            _at(
                doc,
                where,
                f"{two}, and two containers cannot hold one host port: publish the "
                f"port on a front proxy and reach this service by name ({name}:"
                f"{spec.ports[0].container_port}), or use Recreate",
            )
        )
    if spec.host_network:
        errors.append(
            _at(
                doc,
                where,
                f"{two}, and two copies on the host's network hold the same ports: use Recreate",
            )
        )
    if any(a.addresses for a in spec.networks):
        errors.append(
            _at(
                doc,
                where,
                f"{two}, and a fixed address is one container's: use Recreate, or "
                "drop the address and reach the service by name",
            )
        )
    writable = [v for v in spec.volumes if not v.read_only]
    if writable and not spec.rollout.shared_volumes:
        errors.append(
            _at(
                doc,
                where,
                f"{two}, so two copies would write {writable[0].source} at once "
                "(two database servers on one data directory corrupt it): use Recreate, or set "
                "rollout.sharedVolumes: true if the application allows it",
            )
        )
    return errors


def _port_checks(
    name: str, doc: Document, spec: ServiceSpec, claimed: list[tuple[str, PortMapping]]
) -> list[LoadError]:
    """Host ports (the service's and its canary's) no other claim overlaps; adds its own."""
    errors = []
    canary_ports = spec.rollout.canary.ports if spec.rollout.canary else []
    mine = [(("spec", "ports", i), name, p) for i, p in enumerate(spec.ports)] + [
        (("spec", "rollout", "canary", "ports", i), f"{name} (canary)", p)
        for i, p in enumerate(canary_ports)
    ]
    for loc, claimant, port in mine:
        for other_name, other in claimed:
            if port.overlaps(other):
                by = "this service" if other_name == name else f"service {other_name!r}"
                errors.append(
                    _at(
                        doc,
                        loc,
                        f"host port {port.host_port}/{port.protocol} is already claimed by {by}",
                    )
                )
        claimed.append((claimant, port))
    return errors


def _dependency_checks(
    name: str, doc: Document, spec: ServiceSpec, names: set[str]
) -> list[LoadError]:
    errors = []
    for i, dep in enumerate(spec.depends_on):
        if dep == name:
            errors.append(_at(doc, ("spec", "dependsOn", i), "a service cannot depend on itself"))
        elif dep not in names:
            errors.append(_at(doc, ("spec", "dependsOn", i), f"no service named {dep!r}"))
    return errors


def _host_access_checks(
    doc: Document, spec: ServiceSpec, host_paths: tuple[str, ...], devices: tuple[str, ...]
) -> list[LoadError]:
    """Host paths and devices within the allow-lists (the operator's, not the repository's)."""
    errors = []
    for i, volume in enumerate(spec.volumes):
        if volume.is_host_path and not within(volume.source, host_paths):
            errors.append(
                _at(
                    doc,
                    ("spec", "volumes", i),
                    f"host path {_shown(volume.source)} is not "
                    f"under an allowed prefix ({', '.join(host_paths) or 'none configured'}; "
                    "see --allow-host-path)",
                )
            )
    for i, device in enumerate(spec.devices):
        if not within(device, devices):
            errors.append(
                _at(
                    doc,
                    ("spec", "devices", i),
                    f"device {_shown(device)} is host access and "
                    f"not allowed ({', '.join(devices) or 'none configured'}; see --allow-device)",
                )
            )
    return errors


def _shown(path: str) -> str:
    """The path, and where it leads when a symlink takes it elsewhere."""
    real = os.path.realpath(path)
    return path if real == posixpath.normpath(path) else f"{path} (a link to {real})"


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle found by depth-first search, once, smallest name first."""
    found: dict[frozenset[str], list[str]] = {}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, [])):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                start = cycle.index(min(cycle))
                found.setdefault(frozenset(cycle), cycle[start:] + cycle[:start])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return list(found.values())


def network_checks(
    where: dict[str, tuple[Document, ServiceDocument]],
    networks: dict[str, tuple[Document, NetworkDocument]],
    *,
    written: set[str | None],
    default_network: str,
) -> list[LoadError]:
    """Every network a service names exists; no two declared subnets overlap.

    ``written``: the names of every Network document, valid or not (a
    broken one is reported as such, not as missing).
    """
    errors: list[LoadError] = []
    for name in sorted(where):
        doc, parsed = where[name]
        for i, attachment in enumerate(parsed.spec.networks):
            if attachment.name not in written and attachment.name != default_network:
                loc = ("spec", "networks", i)
                known = sorted(n for n in written if n is not None)
                close = difflib.get_close_matches(attachment.name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                errors.append(
                    LoadError(
                        doc.file,
                        doc.line_of(loc),
                        dotted(loc),
                        f"no network named {attachment.name!r} (declare it with kind: Network, "
                        f"or use the default network {default_network!r}){hint}",
                    )
                )
    errors.extend(capacity(where, networks, default_network=default_network))
    errors.extend(fixed_addresses(where, networks))
    seen: list[tuple[str, Any]] = []
    for name in sorted(networks):
        network_doc, network = networks[name]
        if network.spec.subnet is None:
            continue
        subnet = ipaddress.ip_network(network.spec.subnet)
        for other, other_subnet in seen:
            if subnet.version == other_subnet.version and subnet.overlaps(other_subnet):
                errors.append(
                    LoadError(
                        network_doc.file,
                        network_doc.line_of(("spec", "subnet")),
                        "spec.subnet",
                        f"{subnet} overlaps network {other!r} ({other_subnet})",
                    )
                )
        seen.append((name, subnet))
    return errors


def fixed_addresses(
    where: dict[str, tuple[Document, ServiceDocument]],
    networks: dict[str, tuple[Document, NetworkDocument]],
) -> list[LoadError]:
    """A fixed address lies in its network's declared subnet, is a host's, and is one service's.

    The subnet's first address is Podman's gateway; its network and
    broadcast addresses are no host's. A network without a declared subnet
    gets one from Podman's pool at creation, so no address can be checked
    against it: it must be declared.
    """
    errors: list[LoadError] = []
    taken: dict[tuple[str, str], str] = {}
    for name in sorted(where):
        doc, parsed = where[name]
        for i, attachment in enumerate(parsed.spec.networks):
            for field, address in (
                ("ipv4Address", attachment.ipv4_address),
                ("ipv6Address", attachment.ipv6_address),
            ):
                if address is None:
                    continue
                loc = ("spec", "networks", i, field)
                why = _address_problem(address, attachment.name, networks)
                holder = taken.setdefault((attachment.name, address), name)
                if why is None and holder != name:
                    why = f"{address} on {attachment.name!r} is already service {holder!r}'s"
                if why is not None:
                    errors.append(LoadError(doc.file, doc.line_of(loc), dotted(loc), why))
    return errors


def _address_problem(
    address: str, network: str, networks: dict[str, tuple[Document, NetworkDocument]]
) -> str | None:
    declared = networks.get(network)
    subnet_text = declared[1].spec.subnet if declared else None
    if subnet_text is None:
        return (
            f"a fixed address needs the network's subnet: declare {network!r} "
            "(kind: Network) with a spec.subnet that holds it"
        )
    subnet = ipaddress.ip_network(subnet_text)
    ip = ipaddress.ip_address(address)
    if ip.version != subnet.version or ip not in subnet:
        return f"{address} is not in network {network!r}'s subnet {subnet}"
    gateway = subnet.network_address + 1
    reserved = {subnet.network_address, gateway}
    if subnet.version == 4:
        reserved.add(subnet.broadcast_address)
    if ip in reserved:
        return f"{address} is the network, gateway or broadcast address of {subnet}"
    return None


PODMAN_DEFAULT_PREFIX = 24  # a network made without a subnet gets a /24 from Podman's pool


def capacity(
    where: dict[str, tuple[Document, ServiceDocument]],
    networks: dict[str, tuple[Document, NetworkDocument]],
    *,
    default_network: str,
) -> list[LoadError]:
    """No network is asked to hold more containers than its subnet has addresses.

    A canary takes an address beside its service's; the gateway, the
    network and the broadcast address are not for containers.
    """
    members: dict[str, int] = {}
    for _, parsed in where.values():
        attached = [a.name for a in parsed.spec.networks] or (
            [] if parsed.spec.host_network else [default_network]
        )
        extra = 1 if parsed.spec.rollout.strategy == "Canary" else 0
        for name in attached:
            members[name] = members.get(name, 0) + 1 + extra
    errors: list[LoadError] = []
    for name, count in sorted(members.items()):
        declared = networks.get(name)
        subnet = declared[1].spec.subnet if declared else None
        prefix = ipaddress.ip_network(subnet).prefixlen if subnet else PODMAN_DEFAULT_PREFIX
        room = 2 ** (32 - prefix) - 3 if prefix <= 30 else 0
        if subnet is not None and ipaddress.ip_network(subnet).version == 6:
            continue  # an IPv6 subnet has room to spare
        if count > room:
            doc = declared[0] if declared else next(iter(where.values()))[0]
            where_line = doc.line_of(("spec", "subnet") if declared else ())
            given = f"its subnet {subnet}" if subnet else "a network without a subnet (a /24)"
            errors.append(
                LoadError(
                    doc.file,
                    where_line,
                    "spec.subnet" if declared else "",
                    f"network {name!r}: {count} containers on it, but {given} has room for "
                    f"{room}; declare it (kind: Network) with a larger spec.subnet, "
                    "such as a /20 for 4000",
                )
            )
    return errors
