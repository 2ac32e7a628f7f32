"""The health controller: probes run by paid itself, the kubelet's way.

Podman's own healthchecks need systemd timers, which a host may not have;
paid runs ``startupProbe``, ``livenessProbe`` and ``readinessProbe``
(``httpGet``, ``tcpSocket`` or ``exec``) itself, with Kubernetes'
semantics:

- nothing is probed before ``initialDelaySeconds``; then every
  ``periodSeconds``, each attempt cut off after ``timeoutSeconds``;
- a probe *passes* after ``successThreshold`` consecutive successes and
  *fails* after ``failureThreshold`` consecutive failures;
- while a startup probe has not passed, liveness and readiness are not
  run; a failed startup probe is treated like a failed liveness probe;
- a container is ready when its readiness probe passes, or — without
  one — once it runs (and its startup probe passed);
- a failed liveness probe asks for a restart.

Probes run on a small thread pool, never on the reconcile workers, and a
probe still running is not started again: a hanging probe costs one pool
thread for at most its timeout. Network probes go to the container's own
address on its network, as the kubelet probes the pod IP.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from paid.runtime.base import Runtime, RuntimeFailure
from paid.state import actual as states
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService, DesiredState
from paid.state.specs import Probe, ServiceSpec

log = structlog.get_logger("paid.health")


class ProbeKind(StrEnum):
    STARTUP = "startup"
    LIVENESS = "liveness"
    READINESS = "readiness"


@dataclass
class _Track:
    kind: ProbeKind
    probe: Probe
    next_at: float
    grace_until: float = 0.0  # failures before this do not count, until a first success
    succeeded: bool = False
    successes: int = 0
    failures: int = 0
    passing: bool | None = None  # None until a threshold was crossed
    running: bool = False
    detail: str = ""


@dataclass
class _Health:
    service: str
    container_id: str
    name: str
    tracks: dict[ProbeKind, _Track] = field(default_factory=dict)
    address: str | None = None

    @property
    def started(self) -> bool:
        startup = self.tracks.get(ProbeKind.STARTUP)
        return startup is None or startup.passing is True

    @property
    def ready(self) -> bool:
        if not self.started:
            return False
        readiness = self.tracks.get(ProbeKind.READINESS)
        return readiness is None or readiness.passing is True

    @property
    def failed(self) -> str | None:
        """Why the container must be restarted, if it must."""
        for kind in (ProbeKind.STARTUP, ProbeKind.LIVENESS):
            track = self.tracks.get(kind)
            if track is not None and track.passing is False:
                return f"{kind} probe failed {track.probe.failure_threshold} times: {track.detail}"
        return None


def _tracks(spec: ServiceSpec, now: float) -> dict[ProbeKind, _Track]:
    """A fresh track per probe the spec has, first due after its initial delay."""
    return {
        kind: _Track(
            kind,
            probe,
            next_at=now + probe.initial_delay_seconds,
            grace_until=now + probe.initial_delay_seconds + probe.start_period_seconds,
        )
        for kind, probe in (
            (ProbeKind.STARTUP, spec.startup_probe),
            (ProbeKind.LIVENESS, spec.liveness_probe),
            (ProbeKind.READINESS, spec.readiness_probe),
        )
        if probe is not None
    }


def _probes(health: _Health) -> dict[ProbeKind, Probe]:
    return {kind: track.probe for kind, track in health.tracks.items()}


def _probes_of(spec: ServiceSpec) -> dict[ProbeKind, Probe]:
    """The spec's probes: a changed one (a new path, say) starts its track afresh."""
    return {kind: track.probe for kind, track in _tracks(spec, 0.0).items()}


Transition = Callable[[str, ProbeKind, bool, str], None]
ProbeTimer = Callable[[str, float], None]


class HealthController:
    def __init__(
        self,
        runtime: Runtime,
        *,
        on_transition: Transition,
        on_probe: ProbeTimer | None = None,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 16,
    ) -> None:
        self._runtime = runtime
        self._on_transition = on_transition
        self._on_probe = on_probe
        self._clock = clock
        self._lock = threading.Lock()
        self._health: dict[str, _Health] = {}
        self._extra: set[str] = set()  # watched outside the desired state (canaries)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paid-probe")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- what the reconciler tells us ---------------------------------------

    def sync(
        self,
        desired: DesiredState,
        actual: list[ActualContainer],
        *,
        only: frozenset[str] | None = None,
    ) -> None:
        """Probe exactly the running managed containers of desired services.

        ``only``: ``actual`` holds just these services' containers; leave the rest be.
        """
        now = self._clock()
        by_name = {c.name: c for c in actual}
        with self._lock:
            for service in desired:
                if only is not None and service.name not in only:
                    continue
                container = by_name.get(service.name)
                running = (
                    container is not None
                    and container.managed
                    and container.state == states.RUNNING
                )
                current = self._health.get(service.name)
                if not running or container is None:
                    self._health.pop(service.name, None)
                    continue
                if (
                    current is not None
                    and current.container_id == container.id
                    and _probes(current) == _probes_of(service.spec)
                ):
                    continue  # the same container, probed as the spec says
                self._health[service.name] = _Health(
                    service.name, container.id, container.name, _tracks(service.spec, now)
                )
            if only is None:
                for gone in set(self._health) - set(desired.services) - self._extra:
                    del self._health[gone]

    def watch(self, key: str, *, container_id: str, name: str, spec: ServiceSpec) -> None:
        """Probe one more container (a canary) under ``key``, with ``spec``'s probes."""
        tracks = _tracks(spec, self._clock())
        with self._lock:
            self._extra.add(key)
            self._health[key] = _Health(key, container_id, name, tracks)

    def unwatch(self, key: str) -> None:
        with self._lock:
            self._extra.discard(key)
            self._health.pop(key, None)

    def forget(self, service: str) -> None:
        with self._lock:
            self._health.pop(service, None)

    # -- what the reconciler asks --------------------------------------------

    def ready(self, service: str) -> bool:
        with self._lock:
            health = self._health.get(service)
            return health is not None and health.ready

    def probed(self, service: str) -> bool:
        """True when a container of ``service`` is being watched."""
        with self._lock:
            return service in self._health

    def failed(self, service: str) -> str | None:
        with self._lock:
            health = self._health.get(service)
            return None if health is None else health.failed

    def summary(self, service: str) -> dict[str, object]:
        with self._lock:
            health = self._health.get(service)
            if health is None:
                return {}
            return {
                "ready": health.ready,
                "started": health.started,
                "containerId": health.container_id,
                "probes": {
                    str(k): {"passing": t.passing, "detail": t.detail}
                    for k, t in health.tracks.items()
                },
            }

    # -- running probes ------------------------------------------------------

    def tick(self) -> None:
        """Start every probe that is due (never one that is still running)."""
        now = self._clock()
        due: list[tuple[_Health, _Track]] = []
        with self._lock:
            for health in self._health.values():
                for track in health.tracks.values():
                    if track.running or now < track.next_at:
                        continue
                    if track.kind is not ProbeKind.STARTUP and not health.started:
                        continue
                    if track.kind is ProbeKind.STARTUP and track.passing is True:
                        continue
                    track.running = True
                    track.next_at = now + track.probe.period_seconds
                    due.append((health, track))
        for health, track in due:
            self._pool.submit(self._run, health, track)

    def _run(self, health: _Health, track: _Track) -> None:
        start = time.perf_counter()
        try:
            ok, detail = self._attempt(health, track.probe)
        except Exception as err:  # a probe must never take the controller down
            ok, detail = False, f"probe error: {err}"
        elapsed = time.perf_counter() - start
        if self._on_probe is not None:
            self._on_probe(str(track.kind), elapsed)
        changed: bool | None = None
        with self._lock:
            track.running = False
            if self._health.get(health.service) is not health:
                return  # the container was replaced meanwhile
            track.detail = detail
            in_grace = not track.succeeded and self._clock() < track.grace_until
            if ok:
                track.succeeded = True
                track.successes, track.failures = track.successes + 1, 0
                threshold = 1 if track.kind is ProbeKind.STARTUP else track.probe.success_threshold
                if track.successes >= threshold and track.passing is not True:
                    track.passing = changed = True
            elif in_grace:
                track.successes = 0  # the start period: a failure is not counted
            else:
                track.failures, track.successes = track.failures + 1, 0
                if track.failures >= track.probe.failure_threshold and track.passing is not False:
                    track.passing, changed = False, False
        if changed is not None:
            log.info(
                "probe_transition",
                service=health.service,
                probe=str(track.kind),
                passing=changed,
                detail=detail,
            )
            self._on_transition(health.service, track.kind, changed, detail)

    def _attempt(self, health: _Health, probe: Probe) -> tuple[bool, str]:
        timeout = float(probe.timeout_seconds)
        if probe.exec is not None:
            try:
                code = self._runtime.exec_in(health.name, probe.exec.command, timeout=timeout)
            except RuntimeFailure as err:
                return False, str(err)
            return code == 0, f"exec exited {code}"
        host = self._address(health, probe)
        if host is None:
            return False, "the container has no address to probe"
        if probe.tcp_socket is not None:
            port = probe.tcp_socket.port
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    return True, f"tcp {host}:{port} open"
            except OSError as err:
                return False, f"tcp {host}:{port}: {err.strerror or err}"
        assert probe.http_get is not None  # noqa: S101 -- the model guarantees one handler
        action = probe.http_get
        connection_type = (
            http.client.HTTPSConnection if action.scheme == "HTTPS" else http.client.HTTPConnection
        )
        connection = connection_type(host, action.port, timeout=timeout)
        try:
            connection.request("GET", action.path, headers={"User-Agent": "paid-probe"})
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as err:
            return False, f"GET {action.path} on {host}:{action.port}: {err}"
        finally:
            connection.close()
        return 200 <= status < 400, f"GET {action.path} answered {status}"

    def _address(self, health: _Health, probe: Probe) -> str | None:
        action = probe.http_get or probe.tcp_socket
        if action is not None and action.host:
            return action.host
        if health.address is None:
            try:
                health.address = self._runtime.container_address(health.name)
            except RuntimeFailure:
                return None
        return health.address


def wait_until_ready(
    runtime: Runtime,
    service: DesiredService,
    container_id: str,
    *,
    timeout: float,
    poll: float = 0.25,
) -> bool:
    """Probe one container as the daemon would until it is ready (True) or ``timeout``.

    For the commands that restart a service outside the daemon (``paid
    restore``); a container that stops running meanwhile is not ready.
    """
    health = HealthController(runtime, on_transition=lambda *args: None, workers=2)
    deadline = time.monotonic() + timeout
    try:
        health.watch(service.name, container_id=container_id, name=service.name, spec=service.spec)
        while time.monotonic() < deadline:
            running = any(
                c.id == container_id and c.state == states.RUNNING
                for c in runtime.list_containers()
            )
            if not running:
                return False
            health.tick()
            if health.ready(service.name):
                return True
            time.sleep(poll)
        return False
    finally:
        health.close()
