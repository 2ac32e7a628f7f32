"""Published ports as users write them, reached as users reach them.

Every form is applied through the real CLI and then reached over TCP (or
UDP) from loopback *and* from the host's own non-loopback address: a
published port that only answers on one of them is the bug this file is
for (netavark 1.4 writes an unmatchable ``-d 0.0.0.0/32`` rule when the
API is sent HostIp ``0.0.0.0``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, free_port, run_paid, service_doc, write_services

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def _host_address() -> str | None:
    """This host's first non-loopback IPv4 address, as another host would reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.254", 9))  # no packet is sent: the route picks an address
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") else address


def _paid(podman: PodmanService, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=120)


def _get(address: str, port: int, *, deadline: float = 15.0) -> str:
    """The page at ``address:port``, retried until the container listens (or the deadline)."""
    host = f"[{address}]" if ":" in address else address
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def _addresses() -> list[str]:
    found = ["127.0.0.1"]
    host = _host_address()
    if host is not None:
        found.append(host)
    return found


@pytest.mark.parametrize(
    "form",
    [
        pytest.param("{port}:8080", id="host-container"),
        pytest.param("{port}:8080/tcp", id="with-protocol"),
        pytest.param("0.0.0.0:{port}:8080", id="any-address"),
        pytest.param("[::]:{port}:8080", id="ipv6-any"),
    ],
)
def test_a_port_in_each_form_answers_on_loopback_and_the_host_address(
    podman: PodmanService, desired_dir: Path, state_dir: Path, form: str
) -> None:
    """`8080:80`, as compose files write it, answers on 127.0.0.1 and the host's address."""
    port = free_port()
    write_services(desired_dir, service_doc("web", command=HTTPD, ports=[form.format(port=port)]))
    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    for address in _addresses():
        assert "paid test" in _get(address, port), address


def test_a_port_bound_to_loopback_answers_there_only(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`127.0.0.1:PORT:80` stays private: loopback answers, the host's own address refuses."""
    host = _host_address()
    if host is None:
        pytest.skip("this host has no non-loopback address")
    port = free_port()
    write_services(desired_dir, service_doc("web", command=HTTPD, ports=[f"127.0.0.1:{port}:8080"]))
    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert "paid test" in _get("127.0.0.1", port)
    with pytest.raises(urllib.error.URLError):
        _get(host, port, deadline=0)


def test_a_port_range_publishes_each_port(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`A-B:C-D` publishes every pair, each reached on its own container port."""
    first = free_port()
    while True:  # two free neighbours
        second = first + 1
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", second))
            break
        except OSError:
            first = free_port()
    command = ["sh", "-c", "httpd -p 8080 -h /www; exec httpd -f -p 8081 -h /www"]
    ports = [f"{first}-{second}:8080-8081"]
    write_services(desired_dir, service_doc("web", command=command, ports=ports))
    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    for address in _addresses():
        assert "paid test" in _get(address, first)
        assert "paid test" in _get(address, second)


def test_a_udp_port_is_bound_on_every_address(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`PORT:5353/udp` is published for every address, as `podman run -p` does it.

    Debian's static busybox has no UDP server to answer a datagram, so this
    reads Podman's own record of the binding instead of sending one.
    """
    port = free_port()
    write_services(desired_dir, service_doc("echo", ports=[f"{port}:5353/udp"]))
    applied = _paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    bindings = podman.inspect("echo")["HostConfig"]["PortBindings"]
    assert [{"HostIp": "", "HostPort": str(port)}] == bindings["5353/udp"]


def test_a_crashed_container_s_port_answers_again_on_the_host_address(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """`8080:80` under `paid run`: SIGKILL of the server, and the port answers again on
    loopback and the host's address (a published port is replaced in place, never beside)."""
    port = free_port()
    write_services(desired_dir, service_doc("web", command=HTTPD, ports=[f"{port}:8080"]))
    daemon = Daemon(podman, desired_dir, state_dir, tmp_path / "daemon.log").start()
    try:
        dead = podman.inspect("web")
        mark = podman.event_mark()
        os.kill(int(dead["State"]["Pid"]), signal.SIGKILL)
        wait_until(lambda: podman.inspect("web")["Id"] != dead["Id"], 15)
        for address in _addresses():
            assert "paid test" in _get(address, port), address
        started = [n for action, n in podman.container_events_since(mark) if action == "start"]
        assert ["web"] == started
    finally:
        daemon.stop()
