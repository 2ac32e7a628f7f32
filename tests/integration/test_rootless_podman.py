"""paid on a rootless Podman, run by an unprivileged user the suite creates.

Everything a root user gets must work for a rootless one: services on the
default network and on a declared one, a port as compose files write it,
reached from the host, and an image's VOLUME kept across a crash heal.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import rootless
from tests.harness import free_port, run_paid, service_doc, write_services

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(rootless.available() is not None, reason=str(rootless.available())),
]


@pytest.fixture(scope="module")
def user_podman() -> Iterator[rootless.RootlessPodman]:
    started = rootless.RootlessPodman.start()
    yield started
    started.stop()


def _paid(
    podman: rootless.RootlessPodman, state: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=180)


def _get(port: int, deadline: float = 20.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_services_on_networks_publish_and_keep_their_data(
    user_podman: rootless.RootlessPodman, tmp_path: Path
) -> None:
    """Default and declared networks, `PORT:8080`, and /data kept across `podman kill`."""
    port = free_port()
    directory = tmp_path / "desired"
    write_services(
        directory,
        {"apiVersion": "paid/v1", "kind": "Network", "metadata": {"name": "back"}},
        service_doc(
            "web",
            image=rootless.IMAGE,
            command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            ports=[f"{port}:8080"],
            networks=["paid", "back"],
        ),
        service_doc(
            "db",
            image=rootless.IMAGE,
            command=["sh", "-c", "echo row >> /data/rows && exec sleep 3600"],
            networks=["back"],
        ),
    )
    applied = _paid(user_podman, tmp_path / "state", "apply", str(directory))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert "paid test" in _get(port)

    user_podman.podman("kill", "db")
    healed = _paid(user_podman, tmp_path / "state", "apply", str(directory))
    assert 0 == healed.returncode, healed.stdout + healed.stderr
    assert 2 == len(user_podman.podman("exec", "db", "cat", "/data/rows").split())
