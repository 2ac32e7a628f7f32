"""Benchmark: the guestbook example's cold start, and its no-op, through `paid apply`.

Run by hand (``.venv/bin/python -m bench.example``); needs root, Podman and
debootstrap. The images are built first by ``examples/guestbook/build-images``
(cached in ``PAID_EXAMPLE_CACHE``; not timed). Then, on a private Podman
(the test harness's), each repetition removes the example's containers,
networks and volume, and times what a user types:

1. **cold**: ``paid apply`` on a new host (no containers, networks,
   volume or store) to all three services through their health gates
   (``minReadySeconds: 2`` each, as the example ships: redis, then the app,
   then nginx), and the first request answered through nginx from redis;
2. **no-op**: ``paid apply`` again on the converged host.

Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from bench.report import write_section
from tests.harness import PodmanService, free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "guestbook"


def _apply(env: dict[str, str], directory: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "paid"), "apply", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"paid apply failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def _answered(port: int, deadline: float) -> None:
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                if "entries" in json.loads(answer.read()):
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the guestbook did not answer through nginx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="paid-bench-example-"))
    podman = PodmanService.start(base)
    try:
        subprocess.run(
            [str(EXAMPLE / "build-images")],
            env={**podman.env, "PODMAN": "podman " + " ".join(podman.global_args())},
            check=True,
        )
        port = free_port()
        app = base / "guestbook"
        shutil.copytree(EXAMPLE, app)
        proxy = yaml.safe_load((app / "proxy.yaml").read_text())
        proxy["spec"]["ports"] = [f"127.0.0.1:{port}:80"]
        (app / "proxy.yaml").write_text(yaml.safe_dump(proxy, sort_keys=False))
        cold, answered, noop = [], [], []
        for i in range(args.reps):
            podman.clean()
            state = base / f"state-{i}"  # a new host: no revision is known good yet
            env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state)}
            print(f"rep {i + 1}/{args.reps} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            cold.append(_apply(env, app))
            _answered(port, time.perf_counter() + 30)
            answered.append(time.perf_counter() - start)
            noop.append(_apply(env, app))
    finally:
        podman.stop()
        shutil.rmtree(base, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"

    section = "\n".join(
        [
            "`examples/guestbook` (nginx → Python app → redis, two networks, configs from the "
            "repository, images from Debian packages). Each repetition starts as a new host: "
            "none of its containers, networks or volumes, and an empty store (so every first "
            "deploy goes through its gate); images present. Each gate bakes 2 s "
            "(`minReadySeconds`); a dependent starts once its dependency is ready, so the "
            "bakes overlap. paid alone: there is no compose file of this app to set beside "
            "it (bench/reconcile.py compares with podman-compose).",
            "",
            f"| measure (median of {args.reps}) | wall time |",
            "|---|---|",
            f"| cold `paid apply` (pre-flight, networks, 3 health-gated deploys) | {ms(cold)} |",
            f"| cold start to the first answer through nginx | {ms(answered)} |",
            f"| no-op `paid apply` on the converged example | {ms(noop)} |",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("example", "The example app (`bench/example.py`)", section)


if __name__ == "__main__":
    main()
