"""Canaries on the suite's real Podman, judged by a real Prometheus.

The service publishes no host ports, so its canary runs under the
service's DNS name beside the stable copy: a client that resolves the name
(``tests.harness.proxy_client``) sends it a real share of its requests,
which busybox's httpd (``-vv``) logs one by one. Prometheus (Debian's)
scrapes a loopback exporter that stands for the application's error
counter; the canary's analysis asks Prometheus for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import (
    IMAGE,
    IMAGE_V2,
    PodmanService,
    free_port,
    proxy_client,
    service_doc,
    write_services,
)
from tests.metrics_sources import Exporter, exporter, prometheus

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]
QUERY = "max(app_errors)"


@pytest.fixture
def app_metrics() -> Iterator[Exporter]:
    with exporter() as found:
        yield found


@pytest.fixture
def prometheus_url(tmp_path: Path, app_metrics: Exporter) -> Iterator[str]:
    with prometheus(tmp_path / "prometheus", f"127.0.0.1:{app_metrics.port}") as url:
        yield url


def web(image: str, prometheus: str, *, duration: int = 60) -> dict[str, Any]:
    return service_doc(
        "web",
        image=image,
        command=HTTPD,
        readinessProbe={"exec": {"command": ["test", "-f", "/www/index.html"]}, "periodSeconds": 1},
        rollout={
            "strategy": "Canary",
            "minReadySeconds": 1,
            "canary": {
                "durationSeconds": duration,
                "intervalSeconds": 2,
                "analysis": [{"prometheus": prometheus, "query": QUERY, "max": 1}],
            },
        },
    )


def _history(state_dir: Path) -> list[tuple[int, str]]:
    with Store.open(state_dir) as store:
        return [(r.number, r.outcome) for r in store.revisions("web")]


def _served(podman: PodmanService, name: str) -> int:
    return podman.logs(name).count("response:200")


def _asked(podman: PodmanService) -> list[str]:
    return [line.split()[-1] for line in podman.podman("logs", "client").splitlines() if line]


def test_a_canary_takes_real_traffic_by_name_and_a_prometheus_query_ends_it(
    daemon: Daemon,
    podman: PodmanService,
    desired_dir: Path,
    app_metrics: Exporter,
    prometheus_url: str,
) -> None:
    """The canary answers requests sent to `web`; errors > 1 in Prometheus remove it."""
    write_services(desired_dir, web(IMAGE, prometheus_url))
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 40)
    stable = podman.inspect("web")
    podman.podman(
        "run", "-d", "--name", "client", "--network", "paid", IMAGE, "sh", "-c",
        proxy_client("web", hold=False),
    )  # fmt: skip

    # A long window and a long wait: Debian's aardvark-dns 1.4 can stop answering for
    # tens of seconds after the reload the canary's arrival causes (aardvark-dns#389).
    write_services(desired_dir, web(IMAGE_V2, prometheus_url, duration=300))
    wait_until(lambda: _served(podman, "web-canary") >= 3, 120)  # real requests, by name
    app_metrics.errors = 5
    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 40)

    assert [] == [c for c in podman.containers() if c["Names"][0] == "web-canary"]
    assert (stable["Id"], stable["State"]["StartedAt"]) == (
        podman.inspect("web")["Id"],
        podman.inspect("web")["State"]["StartedAt"],
    )
    with Store.open(daemon.state_dir) as store:
        (event,) = [e for e in store.events(service="web") if e.kind == "canary_analysis_failed"]
        (revision,) = [r for r in store.revisions("web") if r.number == 2]
    assert 5 == event.data["value"]
    assert f"{QUERY} = 5" in revision.reason
    assert revision.quarantined
    asked = _asked(podman)
    assert 0 == asked.count("FAIL"), f"{asked.count('FAIL')} of {len(asked)} failed"


def test_a_canary_is_not_promoted_when_prometheus_does_not_answer(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """Nothing listens at the analysis URL: at the end of its window the canary goes."""
    away = f"http://127.0.0.1:{free_port()}"
    write_services(desired_dir, web(IMAGE, away, duration=4))
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 40)
    stable = podman.inspect("web")["Id"]

    write_services(desired_dir, web(IMAGE_V2, away, duration=4))
    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 40)

    assert stable == podman.inspect("web")["Id"]
    assert IMAGE in podman.inspect("web")["ImageName"]
    with Store.open(daemon.state_dir) as store:
        (revision,) = [r for r in store.revisions("web") if r.number == 2]
    assert "did not answer" in revision.reason
    assert "not promoted on an answer it did not get" in revision.reason
