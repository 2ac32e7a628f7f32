"""systemd/paid.service under a real systemd.

A Debian tree made with debootstrap (minbase, systemd, python3) is
imported as an image and run ``--privileged --systemd=always`` on the
suite's Podman. The repository, its virtualenv and the Python it was made
with are bind-mounted at the same paths, so the unit runs this checkout's
paid; a drop-in points it at the suite's Podman socket and shortens the
watchdog so that the test does not wait 30 s for it.

The tree is cached between runs (``PAID_TEST_CACHE``, default
/var/tmp/paid-test-cache); a fresh machine builds it in about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import wait_until
from tests.harness import PodmanService, service_doc, write_services

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/paid-test/systemd:bookworm"
CACHE = Path(os.environ.get("PAID_TEST_CACHE", "/var/tmp/paid-test-cache"))
MIRROR = os.environ.get("PAID_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The checkout is mounted at /opt/paid-src: it may live under /tmp on the
# host, which PrivateTmp= (rightly) hides from the service.
SRC = "/opt/paid-src"
DROP_IN = """\
[Service]
ExecStart=
ExecStart={src}/.venv/bin/python3 -m paid run /desired-state \\
    --listen 127.0.0.1:9707 --resync-interval 5
Environment=PYTHONPATH={src}
Environment=PAID_PODMAN_URL=unix:///run/paid-test/podman.sock
WatchdogSec=4s
RestartSec=200ms
"""


def _rootfs_tarball() -> Path:
    tarball = CACHE / "debootstrap-bookworm-systemd.tar"
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
            "--include=systemd,systemd-sysv,dbus,python3",
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
    unit_dir = tmp_path / "units"
    (unit_dir / "paid.service.d").mkdir(parents=True)
    shutil.copy(ROOT / "systemd" / "paid.service", unit_dir / "paid.service")
    (unit_dir / "paid.service.d" / "test.conf").write_text(DROP_IN.format(src=SRC))
    python_home = Path(sys.base_prefix).resolve()
    name = "paid-systemd-test"
    podman.podman("rm", "--force", "--time", "0", name, check=False)
    podman.podman(
        "run",
        "-d",
        "--name",
        name,
        "--privileged",
        "--systemd=always",
        "--network=none",
        "-v",
        f"{ROOT}:{SRC}:ro",
        "-v",
        f"{python_home}:{python_home}:ro",
        "-v",
        f"{desired}:/desired-state:ro",
        "-v",
        f"{podman.socket}:/run/paid-test/podman.sock",
        "-v",
        f"{unit_dir / 'paid.service'}:/etc/systemd/system/paid.service:ro",
        "-v",
        f"{unit_dir / 'paid.service.d'}:/etc/systemd/system/paid.service.d:ro",
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
    # `systemctl start` of a Type=notify unit returns once READY=1 arrived.
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
