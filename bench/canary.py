"""Benchmark: how soon a canary that its metrics condemn is gone, and what clients see.

Run by hand: ``.venv/bin/python -m bench.canary [--rounds N]``. On a private
Podman, ``web`` (busybox httpd, no host ports) rolls out with
``strategy: Canary``, ``intervalSeconds`` 2 and one analysis query,
``max(app_errors)`` with ``max: 1``, asked of Debian's Prometheus, which
scrapes a loopback exporter every second. A client container on the
network asks ``web`` by name as a proxy does (``tests.harness.proxy_client``).

Each round: ``paid apply`` of a new revision; once the canary has answered
three of the client's requests (real traffic, by name), the exporter's
value is raised to 5. Measured: seconds from that change to the canary's
removal (the apply's end), the requests the canary answered, and the
client's failed requests (DNS named addresses and none answered).
Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import write_section
from tests.harness import IMAGE, IMAGE_V2, PodmanService, proxy_client, service_doc, write_services
from tests.metrics_sources import exporter, prometheus
from tests.reliability import _env, _paid

HTTPD = ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]
INTERVAL = 2


def _doc(image: str, url: str, round_: int) -> dict[str, Any]:
    return service_doc(
        "web",
        image=image,
        command=HTTPD,
        env={"ROUND": str(round_)},
        readinessProbe={"exec": {"command": ["test", "-f", "/www/index.html"]}, "periodSeconds": 1},
        rollout={
            "strategy": "Canary",
            "minReadySeconds": 1,
            "canary": {
                "durationSeconds": 120,
                "intervalSeconds": INTERVAL,
                "analysis": [{"prometheus": url, "query": "max(app_errors)", "max": 1}],
            },
        },
    )


def _served(podman: PodmanService) -> int:
    return podman.logs("web-canary").count("response:200")


def _failed(podman: PodmanService) -> int:
    return sum(1 for line in podman.podman("logs", "client").splitlines() if line.endswith("FAIL"))


def rounds(podman: PodmanService, work: Path, count: int) -> list[tuple[float, int, int]]:
    desired, state = work / "desired", work / "state"
    found: list[tuple[float, int, int]] = []
    with exporter() as app, prometheus(work / "prometheus", f"127.0.0.1:{app.port}") as url:
        write_services(desired, _doc(IMAGE, url, 0))
        if _paid(podman, state, "apply", str(desired)).returncode != 0:
            raise SystemExit("the first apply failed")
        client = proxy_client("web", hold=False)
        podman.podman(
            "run", "-d", "--name", "client", "--network", "paid", IMAGE, "sh", "-c", client
        )
        for i in range(1, count + 1):
            app.errors = 0
            time.sleep(2)  # Prometheus has scraped the healthy value
            failed_before = _failed(podman)
            write_services(desired, _doc(IMAGE_V2 if i % 2 else IMAGE, url, i))
            apply = subprocess.Popen(
                [sys.executable, "-m", "paid", "apply", str(desired)],
                env=_env(podman, state),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while _served(podman) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            served = _served(podman)
            app.errors = 5
            flipped = time.monotonic()
            apply.wait(timeout=120)
            gone = time.monotonic() - flipped
            found.append((gone, served, _failed(podman) - failed_before))
            print(f"round {i}: {found[-1]}", file=sys.stderr, flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="paid-bench-canary-"))
    podman = PodmanService.start(base)
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        found = rounds(podman, work, args.rounds)
    finally:
        podman.stop()
    gone = [g for g, _, _ in found]
    served = [s for _, s, _ in found]
    failed = [f for _, _, f in found]
    section = "\n".join(
        [
            f"### A canary condemned by its metrics ({len(found)} rounds)",
            "",
            "`max(app_errors)` crosses `max: 1` while the canary takes requests by name; "
            f"paid asks Prometheus every {INTERVAL} s (`intervalSeconds`), Prometheus "
            "scrapes every 1 s. Time: from the value's change to the canary's removal "
            "(the rollout's end, revision quarantined).",
            "",
            "| canary gone after (median) | max | requests the canary answered (median) "
            "| client requests failed |",
            "|---|---|---|---|",
            f"| {statistics.median(gone):.1f} s | {max(gone):.1f} s "
            f"| {statistics.median(served):.0f} | {sum(failed)} |",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("canary", "Canary analysis (`bench/canary.py`)", section)


if __name__ == "__main__":
    main()
