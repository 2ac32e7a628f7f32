"""Benchmark: what a deploy costs the clients of a service: Recreate, StartFirst, compose.

Run by hand: ``.venv/bin/python -m bench.deploys [--rounds N]``. On one
private Podman, one desired state holds both paid services and a compose
project holds a third, so every tool's containers are always present;
rounds alternate (Recreate, StartFirst, podman-compose, Recreate, ...),
each a new revision (the image tag switched and an env value changed);
paid's by ``paid apply`` with ``minReadySeconds`` 1:

- *Recreate*: ``web-recreate`` publishes ``127.0.0.1:PORT:8080``; this
  process sends a GET every 20 ms from the host and records each answer.
- *StartFirst*: ``web-start-first`` publishes nothing (two copies cannot
  hold one host port); a client container on its network does what a
  front proxy does — resolves the name once a second (nginx's ``resolver
  valid=1s``), and on each request tries the addresses in turn until one
  answers (``proxy_next_upstream error``), resolving again when none does,
  pausing 20 ms.
- *podman-compose*: ``podman-compose up -d`` (from ``--tools-venv``,
  default ``.venv-bench``, made as ``bench/reconcile.py`` says) of the same
  service publishing its own host port, asked from the host as Recreate is.

For each round: failed requests, and the longest time between two answered
requests. Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.reconcile import _storage_env
from bench.report import write_section
from tests.harness import (
    IMAGE,
    IMAGE_V2,
    PodmanService,
    free_port,
    proxy_client,
    service_doc,
    write_services,
)
from tests.reliability import _paid

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
READY = {"exec": {"command": ["test", "-f", "/www/index.html"]}, "periodSeconds": 1}
CLIENT = proxy_client("web-start-first")


def _docs(port: int, round_: int, changed: str) -> list[dict[str, Any]]:
    def doc(name: str, strategy: str, **extra: Any) -> dict[str, Any]:
        image = IMAGE_V2 if (name == changed and round_ % 2) else IMAGE
        return service_doc(
            name,
            image=image,
            command=HTTPD,
            env={"ROUND": str(round_ if name == changed else 0)},
            readinessProbe=READY,
            rollout={"strategy": strategy, "minReadySeconds": 1, "drainSeconds": 1},
            **extra,
        )

    return [
        doc("web-recreate", "Recreate", ports=[f"127.0.0.1:{port}:8080"]),
        doc("web-start-first", "StartFirst"),
    ]


class HostPoller(threading.Thread):
    """GET every 20 ms from the host; (time, ok) per request."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.seen, self.stop = port, list[tuple[float, bool]](), threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                # A short deadline: a request that hangs is a gap, not one slow answer.
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=0.25) as r:
                    ok = r.status == 200
            except OSError:
                ok = False
            self.seen.append((time.time(), ok))
            time.sleep(0.02)


def _judge(seen: list[tuple[float, bool]]) -> tuple[int, float, float]:
    """Failed requests, the longest time between two answered ones, requests per second."""
    failed = sum(1 for _, ok in seen if not ok)
    answered = [t for t, ok in seen if ok]
    gap = max((b - a for a, b in itertools.pairwise(answered)), default=0.0)
    rate = len(seen) / (seen[-1][0] - seen[0][0]) if len(seen) > 1 else 0.0
    return failed, gap, rate


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _client_seen(podman: PodmanService, since: float, until: float) -> list[tuple[float, bool]]:
    """The client's requests between two moments of the kernel's uptime clock."""
    out = []
    for line in podman.podman("logs", "client").splitlines():
        stamp, _, verdict = line.partition(" ")
        with contextlib.suppress(ValueError):
            if since <= float(stamp) <= until:
                out.append((float(stamp), verdict == "OK"))
    return out


def _compose(path: Path, port: int, round_: int) -> None:
    """The same service for podman-compose: its own host port, the image switched by round."""
    service = {
        "image": IMAGE_V2 if round_ % 2 else IMAGE,
        "command": HTTPD,
        "ports": [f"127.0.0.1:{port}:8080"],
        "environment": {"ROUND": str(round_)},
    }
    path.write_text(yaml.safe_dump({"services": {"web": service}}, sort_keys=False))


STRATEGIES = ("Recreate", "StartFirst", "podman-compose")


def rounds(
    podman: PodmanService, work: Path, count: int, tools: Path
) -> dict[str, list[tuple[int, float, float]]]:
    port, desired, state = free_port(), work / "desired", work / "state"
    compose_port, compose = free_port(), work / "compose.yaml"
    up = [str(tools / "podman-compose"), "-f", str(compose), "-p", "bench"]
    storage = _storage_env(podman)
    write_services(desired, *_docs(port, 0, ""))
    if _paid(podman, state, "apply", str(desired)).returncode != 0:
        raise SystemExit("the first apply failed")
    _compose(compose, compose_port, 0)
    subprocess.run([*up, "up", "-d"], env=storage, check=True, capture_output=True)
    podman.podman("run", "-d", "--name", "client", "--network", "paid", IMAGE, "sh", "-c", CLIENT)
    pollers = {"Recreate": HostPoller(port), "podman-compose": HostPoller(compose_port)}
    for poller in pollers.values():
        poller.start()
    results: dict[str, list[tuple[int, float, float]]] = {s: [] for s in STRATEGIES}
    time.sleep(2)
    for i in range(1, count * len(STRATEGIES) + 1):
        strategy = STRATEGIES[(i - 1) % len(STRATEGIES)]
        before, up_before = time.time(), _uptime()
        if strategy == "podman-compose":
            _compose(compose, compose_port, i)
            before, up_before = time.time(), _uptime()
            applied = subprocess.run(
                [*up, "up", "-d"], env=storage, capture_output=True, text=True, check=False
            )
        else:
            name = "web-recreate" if strategy == "Recreate" else "web-start-first"
            write_services(desired, *_docs(port, i, name))
            before, up_before = time.time(), _uptime()
            applied = _paid(podman, state, "apply", str(desired))
        time.sleep(1.5)  # answers after the deploy, from the new copy alone
        after, up_after = time.time(), _uptime()
        if applied.returncode != 0:
            raise SystemExit(f"round {i}: {strategy} exited {applied.returncode}: {applied.stdout}")
        if strategy in pollers:
            seen = [s for s in pollers[strategy].seen if before <= s[0] <= after]
        else:
            seen = _client_seen(podman, up_before, up_after)
        results[strategy].append(_judge(seen))
        print(f"round {i} {strategy}: {results[strategy][-1]}", file=sys.stderr, flush=True)
    for poller in pollers.values():
        poller.stop.set()
    return results


def _row(strategy: str, found: list[tuple[int, float, float]]) -> str:
    failed = [f for f, _, _ in found]
    gaps = [g * 1000 for _, g, _ in found]
    rate = statistics.median(r for _, _, r in found)
    clean = sum(1 for f in failed if f == 0)
    return (
        f"| {strategy} | {len(found)} | {clean} of {len(found)} "
        f"| {sum(failed)} (max {max(failed)}) "
        f"| {statistics.median(gaps):.0f} ms (max {max(gaps):.0f}) | {rate:.0f}/s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each strategy")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--tools-venv",
        type=Path,
        default=Path(__file__).resolve().parent.parent / ".venv-bench",
        help="a venv with podman-compose (pip install '.[bench]'), as bench/reconcile.py uses",
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="paid-bench-deploys-"))
    podman = PodmanService.start(base)
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        found = rounds(podman, work, args.rounds, args.tools_venv / "bin")
    finally:
        podman.stop()
    section = "\n".join(
        [
            "### Requests during a deploy (`paid apply` of a new revision, minReadySeconds 1)",
            "",
            "Recreate and podman-compose `up -d` are asked from the host on their published "
            "ports; StartFirst by a client "
            "on its network that resolves the name once a second and tries each address "
            "(as nginx with `resolver` and `proxy_next_upstream error` does).",
            "",
            "A failed request: no address answered. A gap: the time between two answered "
            "requests; for StartFirst it is the client's connect timeout (`nc -w 1`) on the "
            "old copy's address, still in its cache when the old copy stopped (Podman 4.3 "
            "takes a container out of DNS only by taking it off the network).",
            "",
            "| strategy | rounds | rounds with no failure | failed requests | longest gap "
            "between answers (median) | request rate |",
            "|---|---|---|---|---|---|",
            _row("Recreate", found["Recreate"]),
            _row("StartFirst", found["StartFirst"]),
            _row("podman-compose", found["podman-compose"]),
        ]
    )
    print(section)
    if not args.no_write:
        write_section("deploys", "Deploys (`bench/deploys.py`)", section)


if __name__ == "__main__":
    main()
