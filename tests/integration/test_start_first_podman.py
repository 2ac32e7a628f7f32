"""StartFirst rollouts on the suite's real Podman, under a request loop.

A client container on the service's network does what a front proxy with
a resolver does (``tests.harness.proxy_client``): it resolves the service's
name, tries each address until one answers (with nc: this busybox's wget
crashes) and writes one line per request. FAIL is paid's fault: DNS named
addresses and none served. NODNS is Podman's: Debian 12's aardvark-dns 1.4
can stop answering for seconds after a container joins or leaves the
network (containers/aardvark-dns#389), so the client holds no stale
answer here and those requests are counted apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import (
    IMAGE,
    IMAGE_V2,
    PodmanService,
    proxy_client,
    service_doc,
    write_services,
)

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
CLIENT = proxy_client("web", hold=False)


def web(image: str = IMAGE, *, ready: str = "/www/index.html") -> dict[str, Any]:
    return service_doc(
        "web",
        image=image,
        command=HTTPD,
        readinessProbe={"exec": {"command": ["test", "-f", ready]}, "periodSeconds": 1},
        rollout={
            "strategy": "StartFirst",
            "minReadySeconds": 2,
            "progressDeadlineSeconds": 8,
            "drainSeconds": 1,
        },
    )


def _history(store_dir: Path) -> list[tuple[int, str]]:
    with Store.open(store_dir) as store:
        return [(r.number, r.outcome) for r in store.revisions("web")]


def _answers(podman: PodmanService) -> list[str]:
    return [line.split()[-1] for line in podman.podman("logs", "client").splitlines() if line]


def _counts(answers: list[str]) -> str:
    return ", ".join(f"{answers.count(v)} {v}" for v in ("OK", "FAIL", "NODNS"))


def _deployed_with_a_client(daemon: Daemon, podman: PodmanService, desired_dir: Path) -> str:
    write_services(desired_dir, web())
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 40)
    podman.podman("run", "-d", "--name", "client", "--network", "paid", IMAGE, "sh", "-c", CLIENT)
    wait_until(lambda: _answers(podman).count("OK") >= 5, 30)
    return podman.inspect("web")["Id"]


def test_a_start_first_rollout_fails_no_request(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """v1 → v2 while the client asks every 20 ms: no FAIL, v2 holds the name, v1 is gone."""
    v1 = _deployed_with_a_client(daemon, podman, desired_dir)

    write_services(desired_dir, web(IMAGE_V2))
    wait_until(lambda: _history(daemon.state_dir) == [(1, "superseded"), (2, "succeeded")], 40)
    before = len(_answers(podman))
    wait_until(lambda: len(_answers(podman)) >= before + 5, 60)  # asked v2 alone

    answers = _answers(podman)
    assert 0 == answers.count("FAIL"), _counts(answers)
    assert podman.inspect("web")["Id"] != v1
    assert IMAGE_V2 in podman.inspect("web")["ImageName"]
    assert [] == [c for c in podman.containers() if c["Names"][0] == "web.paid-next"]
    with Store.open(daemon.state_dir) as store:
        kinds = [e.kind for e in store.events(service="web")]
    assert "rollout_draining" in kinds


def test_a_failing_new_copy_fails_no_request_and_never_touches_the_old(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """v2 never gets ready: it is removed; v1 is the same container, never restarted."""
    v1 = _deployed_with_a_client(daemon, podman, desired_dir)
    started = podman.inspect("web")["State"]["StartedAt"]

    write_services(desired_dir, web(IMAGE_V2, ready="/tmp/never"))
    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 40)
    wait_until(lambda: not [c for c in podman.containers() if c["Names"][0] == "web.paid-next"], 10)

    answers = _answers(podman)
    assert 0 == answers.count("FAIL"), _counts(answers)
    assert (v1, started) == (
        podman.inspect("web")["Id"],
        podman.inspect("web")["State"]["StartedAt"],
    )
