"""Pre-flight checks: will applying this desired state work on this host?

Each check says OK, WARN or FAIL with the reason, before anything is
changed: Podman reachable (and its version), free disk on Podman's storage
and on the state directory, what a rootless Podman cannot do (low ports,
limits without their cgroup controller, no subordinate UIDs), every image
present or pullable, every host
port free or held by the service's own container, every host path there,
every secret file readable (and not readable by others), the backup
directory writable with free space.
``paid preflight`` prints them; ``paid apply`` runs them first; the daemon
runs them at start and exports the results.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paid.controllers.images import Registry
from paid.controllers.preparing import present_or_pulled
from paid.controllers.rootless import rootless_checks, unprivileged_port_start
from paid.runtime.base import ImageUnavailable, Runtime, RuntimeFailure
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.checks import Check, Status
from paid.state.desired import DesiredState
from paid.state.images import short
from paid.state.podman_host import PodmanHost
from paid.state.secrets import SecretUnavailable
from paid.state.specs import PortMapping, PullPolicy
from paid.storage.secret_files import SecretSource

REGISTRY_BUDGET = 5.0  # seconds pre-flight waits for all registries together
CHECKS = (
    "podman", "state", "disk", "rootless", "image", "registry", "port", "host_path", "volume",
    "secret", "backup_dir",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DiskThresholds:
    warn_percent: float = 10.0
    fail_percent: float = 2.0


def preflight(
    desired: DesiredState,
    *,
    runtime: Runtime,
    state_dir: str,
    disk: DiskThresholds = DiskThresholds(),
    secrets: SecretSource | None = None,
    backup_dir: str | None = None,
    actual: Sequence[ActualContainer] | None = None,
    registry: Registry | None = None,
    registry_budget: float = REGISTRY_BUDGET,
) -> list[Check]:
    """Every check; ``actual`` is a listing already made (``paid apply``'s first look).

    With a ``registry``, the tag of every image pulled before each create
    (``Always``, and ``imageUpdate``) is asked for: a registry that does not
    answer is a WARN while the image is on this host, else a FAIL. They are
    asked at once, and pre-flight waits ``registry_budget`` seconds for them
    in all: one that has not answered by then is a WARN (a FAIL if the image
    is not here), so a stalled registry never holds a start-up.
    """
    checks: list[Check] = []
    try:
        version = runtime.version()
        listed = list(actual) if actual is not None else runtime.list_containers()
        host = _host(runtime, state_dir)
    except RuntimeFailure as err:
        return [Check("podman", "api", Status.FAIL, f"Podman unreachable: {err}")]
    checks.append(Check("podman", "api", Status.OK, f"Podman {version}"))
    checks.append(state_owner(listed, state_dir))
    for label, path in (("podman storage", host.graph_root), ("state directory", state_dir)):
        checks.append(_disk(label, path, disk))
    if host.rootless:
        checks.extend(rootless_checks(desired, host, port_start=unprivileged_port_start()))
    in_use = {c.image for c in listed}
    policies: dict[str, set[str]] = {}
    for svc in desired:
        if svc.build is not None:  # made at create, from the tree: nothing to pull or ask
            checks.append(Check("image", svc.spec.image, Status.OK, "built from the tree"))
            continue
        policies.setdefault(svc.spec.image, set()).add(str(svc.spec.pull_policy))
    for image in sorted(policies):
        if image in in_use:  # a container has it: present, no need to ask
            checks.append(Check("image", image, Status.OK, "present (in use)"))
        elif registry is not None and "Always" in policies[image] and "@" not in image:
            continue  # pulled at each create: the registry is asked instead (below)
        else:
            # Pulled if any service using it may pull it.
            only_never = policies[image] == {str(PullPolicy.NEVER)}
            policy = PullPolicy.NEVER if only_never else PullPolicy.IF_NOT_PRESENT
            checks.append(_image(runtime, image, policy))
    if registry is not None:
        asked = sorted(i for i, p in policies.items() if "Always" in p and "@" not in i)
        present = {i: i in in_use or _present(runtime, i) for i in asked}
        checks.extend(_registries(registry, present, budget=registry_budget))
    actual = listed
    checks.extend(_ports(desired, actual))
    checks.extend(_shared_volumes(desired, runtime))
    for svc in desired:
        for volume in svc.spec.volumes:
            if volume.is_host_path:
                there = os.path.exists(volume.source)
                checks.append(
                    Check(
                        "host_path",
                        f"{svc.name}:{volume.source}",
                        Status.OK if there else Status.FAIL,
                        "present" if there else "does not exist (Podman will refuse the mount)",
                    )
                )
    if secrets is not None:
        checks.extend(_secret_files(desired, secrets))
    if backup_dir is not None and any(svc.spec.backup is not None for svc in desired):
        checks.append(_disk("backup directory", backup_dir, disk))
        checks.append(_writable(backup_dir))
    return checks


HOST_CACHE = "podman-host.json"
HOST_CACHE_SECONDS = 3600.0


def _host(runtime: Runtime, state_dir: str) -> PodmanHost:
    """What Podman says of its host, remembered for an hour in the state directory.

    Podman answers it only from /info, which costs ~0.1 s (it gathers
    everything about the host); it changes when someone reconfigures
    Podman, which the hour and a vanished storage path both catch.
    """
    cache = os.path.join(state_dir, HOST_CACHE)
    try:
        with open(cache, encoding="utf-8") as handle:
            remembered = json.load(handle)
        host, at = PodmanHost.from_json(remembered["host"]), float(remembered["at"])
        if time.time() - at < HOST_CACHE_SECONDS and os.path.isdir(host.graph_root):
            return host
    except (OSError, ValueError, KeyError, TypeError):
        pass
    host = runtime.host()
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        partial = f"{cache}.{os.getpid()}"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump({"host": host.to_json(), "at": time.time()}, handle)
        os.replace(partial, cache)
    except OSError:
        pass  # no cache: ask again next time
    return host


def _writable(path: str) -> Check:
    """The backup directory can be created and written by this process."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        probe = os.path.join(path, f".paid-preflight-{os.getpid()}")
        with open(probe, "wb") as handle:
            handle.write(b"ok")
        os.unlink(probe)
    except OSError as err:
        return Check("backup_dir", path, Status.FAIL, f"cannot write: {err.strerror}")
    return Check("backup_dir", path, Status.OK, "writable")


def _secret_files(desired: DesiredState, secrets: SecretSource) -> Iterable[Check]:
    needs_identity = False
    for svc in desired:
        named = [(key, entry) for key, entry in sorted(svc.spec.secret_env.items())]
        named += [(m.path, m) for m in svc.spec.secrets]
        for key, entry in named:
            subject = f"{svc.name}:{key}"
            try:
                path = secrets.path_of(entry.source, encrypted=entry.is_encrypted)
                secrets.read(entry.source, encrypted=entry.is_encrypted)
            except SecretUnavailable as err:
                yield Check("secret", subject, Status.FAIL, str(err))
                continue
            if entry.is_encrypted:
                needs_identity = True
                yield Check("secret", subject, Status.OK, f"{path} decrypts")
            else:
                yield _private("secret", subject, path)
    if needs_identity and secrets.identity is not None:
        yield _private("age_identity", str(secrets.identity), secrets.identity)


def _private(kind: str, subject: str, path: Path) -> Check:
    try:
        mode = path.stat().st_mode
    except OSError as err:
        return Check(kind, subject, Status.FAIL, f"{path}: {err.strerror}")
    if mode & 0o077:
        return Check(
            kind,
            subject,
            Status.WARN,
            f"{path} is readable by other users (mode {mode & 0o777:o}); chmod 600 it",
        )
    return Check(kind, subject, Status.OK, f"{path} readable")


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.status is Status.FAIL]


def _disk(label: str, path: str, limits: DiskThresholds) -> Check:
    probe = path
    while probe and not os.path.exists(probe):  # the state dir may not exist yet
        probe = os.path.dirname(probe.rstrip("/")) or "/"
        if probe == "/":
            break
    try:
        usage = shutil.disk_usage(probe or "/")
    except OSError as err:
        return Check(
            "disk", label, Status.WARN, f"cannot read free space of {path}: {err.strerror}"
        )
    free = 100 * usage.free / usage.total if usage.total else 0.0
    gib = 2**30
    text = (
        f"{usage.free / gib:.1f} GiB free of {usage.total / gib:.1f} GiB ({free:.0f} %) at {path}"
    )
    if free < limits.fail_percent:
        return Check("disk", label, Status.FAIL, text + f"; below {limits.fail_percent:g} %")
    if free < limits.warn_percent:
        return Check("disk", label, Status.WARN, text + f"; below {limits.warn_percent:g} %")
    return Check("disk", label, Status.OK, text)


def _image(runtime: Runtime, image: str, policy: PullPolicy) -> Check:
    try:
        return Check("image", image, Status.OK, present_or_pulled(runtime, image, policy))
    except RuntimeFailure as err:
        return Check("image", image, Status.FAIL, str(err))


def _present(runtime: Runtime, image: str) -> bool:
    try:
        return runtime.image_present(image)
    except RuntimeFailure:
        return False


def state_owner(containers: Sequence[ActualContainer], state_dir: str) -> Check:
    """This instance's containers are this state directory's, not another's that still exists.

    Two paids with different ``--state-dir`` and one instance on one Podman
    undo each other's work (names in use, a container gone, false
    rollbacks). A state directory that no longer exists (moved, deleted)
    is no one's: its containers are adopted.
    """
    mine = os.path.realpath(state_dir)
    others: dict[str, list[str]] = {}
    for container in containers:
        owner = container.labels.get(labels.STATE_DIR)
        if container.managed and owner and owner != mine and os.path.isdir(owner):
            others.setdefault(owner, []).append(container.name)
    if not others:
        return Check("state", mine, Status.OK, "no other state directory manages this instance")
    owner, names = sorted(others.items())[0]
    instance = next((c.instance for c in containers if c.name in names), "")
    return Check(
        "state",
        mine,
        Status.FAIL,
        f"instance {instance!r} on this Podman is managed from the state directory {owner} "
        f"({', '.join(sorted(names)[:3])}); this paid's is {mine}: use that --state-dir, or "
        "give this one its own --instance",
    )


def _shared_volumes(desired: DesiredState, runtime: Runtime) -> list[Check]:
    """A named volume a service mounts that another's containers use: FAIL, naming them.

    Volume names are host-wide: two apps that both say ``db-data`` would
    share one database's files. Users that are fine: this paid's own
    containers of a service that mounts the volume in this desired state.
    """
    wanted: dict[str, set[str]] = {}
    for svc in desired:
        for volume in svc.spec.volumes:
            if not volume.is_host_path:
                wanted.setdefault(volume.source, set()).add(str(svc.name))
    checks = []
    for name, services in sorted(wanted.items()):
        try:
            users = runtime.volume_users(name)
        except RuntimeFailure as err:
            checks.append(Check("volume", name, Status.WARN, f"could not list its users: {err}"))
            continue
        strangers = [
            c for c in users if not (c.managed and c.labels.get(labels.SERVICE, "") in services)
        ]
        if not strangers:
            checks.append(Check("volume", name, Status.OK, "used by no one else"))
            continue
        whose = ", ".join(f"{c.name} ({_owner(c)})" for c in strangers[:3])
        checks.append(
            Check(
                "volume",
                name,
                Status.FAIL,
                f"already used by {whose}: volume names are host-wide; give "
                f"{', '.join(sorted(services))} a volume of its own (paid import compose "
                "prefixes the project name, as compose does)",
            )
        )
    return checks


def _owner(container: ActualContainer) -> str:
    if not container.managed:
        instance = container.labels.get(labels.INSTANCE)
        return f"paid instance {instance}" if instance else "not paid's"
    return f"service {container.labels.get(labels.SERVICE, '?')} of this paid, not in this state"


def _registries(registry: Registry, present: dict[str, bool], *, budget: float) -> list[Check]:
    """Each image's registry check, all at once, within ``budget`` seconds in all.

    Daemon threads, never joined past the budget: a check still waiting on
    a registry ends on its own (the client's own deadline), unseen.
    """
    answers: dict[str, Check] = {}
    threads = []
    for image, here in present.items():

        def ask(image: str = image, here: bool = here) -> None:
            answers[image] = _registry(registry, image, present=here)

        thread = threading.Thread(target=ask, name=f"preflight-{image}", daemon=True)
        thread.start()
        threads.append(thread)
    end = time.monotonic() + budget
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    out = []
    for image, here in present.items():
        check = answers.get(image)
        if check is None:
            why = f"the registry did not answer within pre-flight's {budget:g} s"
            status = Status.WARN if here else Status.FAIL
            if here:
                why += "; the image on this host runs until it answers"
            check = Check("registry", image, status, why)
        out.append(check)
    return out


def _registry(registry: Registry, image: str, *, present: bool) -> Check:
    try:
        digest = registry.digest(image)
    except ImageUnavailable as err:
        soft = err.reason == "unreachable" and present
        why = str(err) + ("; the image on this host runs until it answers" if soft else "")
        return Check("registry", image, Status.WARN if soft else Status.FAIL, why)
    return Check("registry", image, Status.OK, f"the tag is {short(digest)}")


def _ports(desired: DesiredState, actual: list[ActualContainer]) -> list[Check]:
    by_name = {c.name: c for c in actual}
    out = []
    for svc in desired:
        own = by_name.get(svc.name)
        for port in svc.spec.ports:
            subject = f"{svc.name}:{port}"
            holder = _holder(port, actual)
            if holder is not None:
                if own is not None and holder.name == own.name and own.managed:
                    out.append(
                        Check("port", subject, Status.OK, "held by the service's own container")
                    )
                else:
                    out.append(
                        Check("port", subject, Status.FAIL, f"published by container {holder.name}")
                    )
                continue
            problem = _bind_problem(port)
            out.append(
                Check("port", subject, Status.FAIL, problem)
                if problem
                else Check("port", subject, Status.OK, "free")
            )
    return out


def _holder(port: PortMapping, actual: list[ActualContainer]) -> ActualContainer | None:
    for container in actual:
        if container.state not in ("running", "paused", "created"):
            continue
        for published in container.published:
            if published.overlaps(port):
                return container
    return None


def _bind_problem(port: PortMapping) -> str | None:
    family = socket.AF_INET6 if ":" in port.host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if port.protocol == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(family, kind) as sock:
            sock.bind((port.host_ip, port.host_port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            return f"in use by a process on this host ({port.host_ip}:{port.host_port})"
        if err.errno == errno.EADDRNOTAVAIL:
            return f"{port.host_ip} is not an address of this host"
        if err.errno == errno.EACCES:
            return f"binding {port.host_port} needs privileges"
        return f"cannot bind: {err.strerror}"
    return None
