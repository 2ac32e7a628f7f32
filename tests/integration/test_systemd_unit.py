"""systemd/paid.service under a real systemd, installed by scripts/install.

A Debian tree made with debootstrap (minbase, systemd, python3, venv) is
imported as an image and run ``--privileged --systemd=always`` on the
suite's Podman. Inside it, ``scripts/install`` of this checkout makes the
venv in /opt/paid (from PyPI), links /usr/local/bin/paid and installs and
enables the unit, exactly as on a real host; a drop-in only points it at
the suite's Podman socket and shortens the watchdog so that the test does
not wait 30 s for it.

The tree is cached between runs (``PAID_TEST_CACHE``, default
/var/tmp/paid-test-cache); a fresh machine builds it in about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import wait_until
from tests.harness import PodmanService, free_port, service_doc, write_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # debootstrap on a fresh machine

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/paid-test/systemd:bookworm"
CACHE = Path(os.environ.get("PAID_TEST_CACHE", "/var/tmp/paid-test-cache"))
MIRROR = os.environ.get("PAID_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
# The checkout is mounted at /opt/paid-src: it may live under /tmp on the
# host, which PrivateTmp= (rightly) hides from the service.
SRC = "/opt/paid-src"
DROP_IN = """\
[Service]
Environment=PAID_PODMAN_URL=unix:///run/paid-test/podman.sock
Environment=PAID_LISTEN=127.0.0.1:{port}
Environment=PAID_RESYNC_INTERVAL=5
WatchdogSec=4s
RestartSec=200ms
"""


def _rootfs_tarball() -> Path:
    tarball = CACHE / "debootstrap-bookworm-systemd-venv.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: scripts/install-deps installs it")
    CACHE.mkdir(parents=True, exist_ok=True)
    tree = CACHE / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates",
            "bookworm",
            str(tree),
            MIRROR,
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(tree), "-cf", str(partial), "."], check=True, timeout=300)
    partial.rename(tarball)
    shutil.rmtree(tree, ignore_errors=True)
    return tarball


@pytest.fixture(scope="module")
def systemd_image(podman_session: PodmanService) -> str:
    if not podman_session.podman("images", "-q", IMAGE, check=False).strip():
        podman_session.podman("import", str(_rootfs_tarball()), IMAGE)
    return IMAGE


class Machine:
    def __init__(self, podman: PodmanService, name: str) -> None:
        self.podman, self.name = podman, name

    def sh(self, command: str, *, check: bool = True) -> str:
        return self.podman.podman("exec", self.name, "sh", "-c", command, check=check)

    def show(self, prop: str) -> str:
        return self.sh(f"systemctl show -p {prop} --value paid.service").strip()

    def main_pid(self) -> int:
        return int(self.show("MainPID") or 0)


@pytest.fixture
def machine(podman: PodmanService, systemd_image: str, tmp_path: Path) -> Iterator[Machine]:
    desired = tmp_path / "desired-state"
    write_services(desired, service_doc("web"), service_doc("db"))
    drop_in = tmp_path / "paid.service.d"
    drop_in.mkdir()
    (drop_in / "test.conf").write_text(DROP_IN.format(port=free_port()))
    name = "paid-systemd-test"
    podman.podman("rm", "--force", "--time", "0", name, check=False)
    podman.podman(
        "run",
        "-d",
        "--name",
        name,
        "--privileged",
        "--systemd=always",
        # The host's network, for scripts/install to reach PyPI (containers here
        # reach no outside address); paid listens on a free port of it.
        "--network=host",
        "-v",
        f"{HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro",  # and the host's CA bundle
        "-v",
        f"{ROOT}:{SRC}:ro",
        "-v",
        f"{desired}:/etc/paid/desired-state",  # ReadWritePaths= names it: not a ro mount
        "-v",
        f"{podman.socket}:/run/paid-test/podman.sock",
        "-v",
        f"{drop_in}:/etc/systemd/system/paid.service.d:ro",
        systemd_image,
        "/sbin/init",
    )
    m = Machine(podman, name)
    try:
        wait_until(
            lambda: (
                m.sh("systemctl is-system-running", check=False).strip() in ("running", "degraded")
            ),
            60,
            0.5,
        )
        # A copy of the checkout without its venv or git: pip builds in it.
        m.sh(
            f"mkdir -p /root/src && tar -C {SRC} --exclude=./.venv --exclude=./.venv-bench "
            "--exclude=./.git --exclude=./build -cf - . | tar -C /root/src -xf -"
        )
        # As on a real host: install, enable and start paid.service.
        m.sh("/root/src/scripts/install > /root/install.log 2>&1")
        yield m
    finally:
        podman.podman("rm", "--force", "--time", "0", name, check=False)


def _managed(podman: PodmanService) -> set[str]:
    return {
        c["Names"][0]
        for c in podman.containers()
        if (c.get("Labels") or {}).get("paid.managed") == "true" and c["State"] == "running"
    }


def test_unit_reaches_ready_is_restarted_after_kill_9_and_by_the_watchdog(
    machine: Machine, podman: PodmanService
) -> None:
    """READY after the first pass; Restart=always after kill -9; the watchdog after SIGSTOP."""
    # scripts/install enabled it; `systemctl start` of a Type=notify unit
    # returns once READY=1 arrived.
    enabled = machine.sh("systemctl is-enabled paid.service", check=False).strip()
    assert "enabled" == enabled, machine.sh("cat /root/install.log", check=False)
    assert machine.sh("readlink /usr/local/bin/paid").strip() == "/opt/paid/bin/paid"
    machine.sh("systemctl start paid.service")
    assert "active" == machine.show("ActiveState")
    assert {"web", "db"} <= _managed(podman)
    assert "converged" in machine.show("StatusText")
    first = machine.main_pid()

    machine.sh(f"kill -9 {first}")
    wait_until(
        lambda: machine.main_pid() not in (0, first) and machine.show("ActiveState") == "active",
        30,
        0.2,
    )
    second = machine.main_pid()
    assert {"web", "db"} <= _managed(podman)  # the services never noticed

    machine.sh(f"kill -STOP {second}")
    wait_until(
        lambda: machine.main_pid() not in (0, second) and machine.show("ActiveState") == "active",
        60,
        0.2,
    )
    journal = machine.sh("journalctl -u paid.service --no-pager", check=False)
    assert "Watchdog timeout" in journal
    assert int(machine.show("NRestarts")) >= 2
