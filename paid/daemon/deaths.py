"""A container's death, known the moment its main process exits.

Podman's ``died`` event reaches paid late on a host whose events go to a
file (no journald): the event stream polls that file every 250 ms. So the
daemon also holds a pidfd (Linux 5.3+) on the main process of each
running container it manages, learnt from its observations; the kernel
makes it readable the instant the process exits, and the service's key is
woken then. The event stream and the resync remain the truth: a pidfd
only wakes a reconcile sooner, and a wake finds what Podman says.

Only for a Podman on this host (process IDs are the host's). A process is
watched only while its cgroup names the container's ID, so a reused
process ID, or one from another PID namespace, is never taken for the
container: such a number is simply not watched.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from paid.state import labels
from paid.state.actual import RUNNING, ActualContainer

log = structlog.get_logger("paid.deaths")


@dataclass(frozen=True, slots=True)
class Watched:
    container_id: str
    pid: int
    service: str
    fd: int


def supported() -> bool:
    """pidfds work here (Python has them, the kernel answers for this very process)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def runs_in(pid: int, container_id: str, proc: str = "/proc") -> bool:
    """True if process ``pid`` is in the cgroup Podman made for ``container_id``."""
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as file:
            return container_id in file.read(65536)
    except OSError:
        return False


class DeathWatch:
    """Wakes ``on_death(service)`` when a watched container's main process exits."""

    def __init__(self, on_death: Callable[[str], None], *, proc: str = "/proc") -> None:
        self._on_death = on_death
        self._proc = proc
        self._lock = threading.Lock()
        self._by_id: dict[str, Watched] = {}
        self._by_fd: dict[int, Watched] = {}
        self._poll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        self._poll.register(self._wake_r, select.EPOLLIN)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paid-deaths", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            for watched in self._by_fd.values():
                with contextlib.suppress(OSError):
                    os.close(watched.fd)
            self._by_fd.clear()
            self._by_id.clear()
        self._poll.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def watched(self) -> dict[str, int]:
        """Container ID -> the process watched for it."""
        with self._lock:
            return {cid: w.pid for cid, w in self._by_id.items()}

    def observed(self, containers: Iterable[ActualContainer]) -> None:
        """Watch paid's running containers just observed; drop those no longer running."""
        for container in containers:
            service = container.labels.get(labels.SERVICE)
            if not container.managed or not service:
                continue
            if container.state == RUNNING and container.pid is not None:
                self._watch(container.id, container.pid, service)
            else:
                self._unwatch(container.id)

    def _watch(self, container_id: str, pid: int, service: str) -> None:
        with self._lock:
            known = self._by_id.get(container_id)
            if known is not None and known.pid == pid:
                return
        if known is not None:
            self._unwatch(container_id)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Gone since the observation, or never in this PID namespace (paid in a
            # container): not watched, and no wake (a wake here would loop on every look).
            return
        except OSError as err:
            log.debug("death_watch_refused", container=container_id[:12], error=str(err))
            return
        if not runs_in(pid, container_id, self._proc):
            os.close(fd)  # another process by now, or a PID namespace not ours
            return
        watched = Watched(container_id, pid, service, fd)
        with self._lock:
            if self._stopped.is_set():
                os.close(fd)
                return
            self._by_id[container_id] = watched
            self._by_fd[fd] = watched
            self._poll.register(fd, select.EPOLLIN)

    def _unwatch(self, container_id: str) -> None:
        with self._lock:
            watched = self._by_id.pop(container_id, None)
            if watched is None:
                return
            self._by_fd.pop(watched.fd, None)
            with contextlib.suppress(OSError):
                self._poll.unregister(watched.fd)
            os.close(watched.fd)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                ready = self._poll.poll()
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return  # closed under us: stopping
            for fd, _ in ready:
                if fd == self._wake_r:
                    continue
                with self._lock:
                    watched = self._by_fd.get(fd)
                if watched is None:
                    continue
                self._unwatch(watched.container_id)
                log.debug("process_exited", service=watched.service, pid=watched.pid)
                self._on_death(watched.service)
