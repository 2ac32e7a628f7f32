"""StartFirst rollouts on the suite's real Podman, under a request loop.

A client container on the service's network does what a front proxy does
(nginx's ``resolver`` with ``proxy_next_upstream error``): it resolves the
service's name each time and tries each address until one answers (with
nc: this busybox's wget crashes). It writes one line per request, OK or
FAIL, pausing 20 ms between requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, service_doc, write_services

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
# The proxy's loop: every address of `web`, in DNS order, until one answers.
CLIENT = r"""
while true; do
  ok=FAIL
  for ip in $(nslookup web 2>/dev/null | sed -n 's/^Address: \([0-9.]*\)$/\1/p'); do
    if printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "$ip" 8080 | grep -q '200 OK'; then
      ok=OK; break
    fi
  done
  echo "$ok"
  sleep 0.02
done
"""


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
    return podman.podman("logs", "client").split()


def _deployed_with_a_client(daemon: Daemon, podman: PodmanService, desired_dir: Path) -> str:
    write_services(desired_dir, web())
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 40)
    podman.podman("run", "-d", "--name", "client", "--network", "paid", IMAGE, "sh", "-c", CLIENT)
    wait_until(lambda: _answers(podman).count("OK") >= 20, 30)
    return podman.inspect("web")["Id"]


def test_a_start_first_rollout_fails_no_request(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """v1 → v2 while the client asks every 20 ms: no FAIL, v2 holds the name, v1 is gone."""
    v1 = _deployed_with_a_client(daemon, podman, desired_dir)

    write_services(desired_dir, web(IMAGE_V2))
    wait_until(lambda: _history(daemon.state_dir) == [(1, "superseded"), (2, "succeeded")], 40)
    before = len(_answers(podman))
    wait_until(lambda: len(_answers(podman)) >= before + 20, 20)  # served by v2 alone

    answers = _answers(podman)
    assert 0 == answers.count("FAIL"), f"{answers.count('FAIL')} of {len(answers)} failed"
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
    assert 0 == answers.count("FAIL"), f"{answers.count('FAIL')} of {len(answers)} failed"
    assert (v1, started) == (
        podman.inspect("web")["Id"],
        podman.inspect("web")["State"]["StartedAt"],
    )
