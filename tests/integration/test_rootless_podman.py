"""paid on a rootless Podman, run by an unprivileged user the suite creates.

Everything a root user gets must work for a rootless one: services on the
default network and on a declared one, a port as compose files write it,
reached from the host, and an image's VOLUME kept across a crash heal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rootless
from tests.daemon import wait_until
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


def test_preflight_says_what_a_rootless_podman_cannot_do(
    user_podman: rootless.RootlessPodman, tmp_path: Path
) -> None:
    """Port 80 below the unprivileged start FAILs with its fix; limits say they are not applied."""
    directory = tmp_path / "desired"
    write_services(
        directory,
        service_doc("web", image=rootless.IMAGE, ports=["80:8080"], resources={"memory": "64Mi"}),
    )
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())

    checked = _paid(user_podman, tmp_path / "state", "preflight", str(directory), "-o", "json")

    found = {
        c["subject"]: c for c in json.loads(checked.stdout)["checks"] if c["check"] == "rootless"
    }
    port = found.get("web:0.0.0.0:80:8080/tcp")
    if start > 80:
        assert 1 == checked.returncode
        assert port is not None
        assert "FAIL" == port["status"]
        assert f"ip_unprivileged_port_start={start}" in port["reason"]
    else:
        assert port is None  # this host lets users bind port 80
    info = json.loads(user_podman.podman("info", "--format", "json"))["host"]
    delegated = info.get("cgroupControllers") or []
    if info["cgroupVersion"] == "v1" or "memory" not in delegated:
        assert "WARN" == found["web:resources"]["status"]
        assert "not applied" in found["web:resources"]["reason"]
    else:
        assert "web:resources" not in found


def _as_user(
    podman: rootless.RootlessPodman, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``paid ARGS`` run by the unprivileged user itself, with its own defaults."""
    return podman.run(
        [str(rootless.user_paid()), *args], timeout=timeout, env={"PAID_LOG_FORMAT": "json"}
    )


def _own(podman: rootless.RootlessPodman, path: Path) -> None:
    for part in [path, *path.rglob("*")]:
        os.chown(part, podman.uid, podman.uid)


def test_paid_run_as_the_user_heals_rolls_out_and_backs_up(
    user_podman: rootless.RootlessPodman, tmp_path: Path
) -> None:
    """paid itself rootless, on its per-user defaults: configs, a secret, a probe, a heal by the
    daemon, a rollout of a changed spec, and a backup of the data volume."""
    home = user_podman.home
    directory = home / "desired-test"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(home / ".local" / "state" / "paid", ignore_errors=True)
    secrets = home / ".config" / "paid" / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "token").write_text("s3cret-token")
    (secrets / "token").chmod(0o600)
    _own(user_podman, home / ".config" / "paid")

    def write(greeting: str) -> None:
        (directory / "conf").mkdir(parents=True, exist_ok=True)
        (directory / "conf" / "app.txt").write_text("configured\n")
        write_services(
            directory,
            service_doc(
                "api",
                image=rootless.IMAGE,
                command=["sh", "-c", "echo $GREETING >> /data/log && exec sleep 3600"],
                env={"GREETING": greeting},
                secretEnv={"TOKEN": {"file": "token"}},
                configs=[{"source": "conf/app.txt", "target": "/etc/app/app.txt"}],
                volumes=["data:/data"],
                readinessProbe={"exec": {"command": ["sh", "-c", "test -f /etc/app/app.txt"]}},
            ),
        )
        _own(user_podman, directory)

    write("hello")
    port = free_port()
    log_path = tmp_path / "daemon.log"
    log = log_path.open("wb")  # opened by root, written by the user's paid through the fd
    daemon = subprocess.Popen(
        [
            str(rootless.user_paid()),
            "run",
            str(directory),
            "--listen",
            f"127.0.0.1:{port}",
            "--resync-interval",
            "1",
        ],
        env={**user_podman.env(), "PAID_TIMINGS": "first_deploy=1"},
        user=user_podman.uid,
        group=user_podman.uid,
        extra_groups=[],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def service() -> dict[str, Any]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as answer:
                doc = json.loads(answer.read())
            return next(s for s in doc["services"] if s["name"] == "api")

        wait_until(lambda: service()["phase"] == "Running" and service()["health"]["ready"], 90)
        assert (
            "s3cret-token"
            == user_podman.podman("exec", "api", "sh", "-c", "cat $TOKEN_FILE").strip()
        )
        assert "configured" == user_podman.podman("exec", "api", "cat", "/etc/app/app.txt").strip()

        user_podman.podman("kill", "api")
        wait_until(lambda: service()["phase"] == "Running" and service()["restarts"] >= 1, 60)

        write("again")
        wait_until(lambda: service()["runningRevision"] == 2 and service()["health"]["ready"], 90)
        rows = user_podman.podman("exec", "api", "cat", "/data/log").split()
        assert ["hello", "hello", "again"] == rows  # the data volume kept across heal and rollout
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- daemon log ---\n{log_path.read_text()[-4000:]}") from err
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        log.close()

    backed = _as_user(user_podman, "backup", "run", "api", str(directory))
    listed = _as_user(user_podman, "backup", "list", "api", "-o", "json")
    assert 0 == backed.returncode, backed.stdout + backed.stderr
    assert 1 == len(json.loads(listed.stdout)), listed.stdout + listed.stderr
    assert (home / ".local" / "state" / "paid" / "paid.db").is_file()  # the per-user default
