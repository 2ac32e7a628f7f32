"""Benchmark: what the health gate costs, and how fast a bad deploy is undone.

Run by hand: ``.venv/bin/python -m bench.rollout``. On one private Podman:

- *bad deploy to old revision serving again*: the daemon runs v1 (httpd,
  readiness httpGet every 1 s); the desired file is switched to a bad v2
  (crashes on start, or never ready with progressDeadlineSeconds 5); the
  time from writing the file to the old container's ``start`` event (it
  is put back and started) — this includes noticing the edit (the
  directory is polled every second);
- *gated rollout vs bare replace*: ``paid apply`` of v1 -> v2
  (minReadySeconds 0, so the gate is "until ready") against
  ``podman stop; podman rm; podman run`` of the same container, both
  measured until the new container answers HTTP on its published port.

Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.heal import Events
from bench.report import write_section
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, free_port, service_doc, write_services

ROOT = Path(__file__).resolve().parent.parent
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def _web(image: str, port: int, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": image,
        "command": HTTPD,
        "ports": [f"127.0.0.1:{port}:8080"],
        "readinessProbe": {"httpGet": {"port": 8080}, "periodSeconds": 1},
        "rollout": {"minReadySeconds": 0, "progressDeadlineSeconds": 5},
    }
    base.update(spec)
    return service_doc("web", **base)


def _serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def bad_deploy_trials(podman: PodmanService, work: Path, kind: str, trials: int) -> list[float]:
    port = free_port()
    directory = work / f"bad-{kind}"
    write_services(directory, _web(IMAGE, port))
    daemon = Daemon(podman, directory, work / f"state-{kind}", work / f"bad-{kind}.log", resync=30)
    daemon.start()
    events = Events(podman.url)
    out = []
    try:
        for i in range(trials):
            # each trial a new bad spec (quarantine is per spec): vary an env value
            bad: dict[str, Any] = {"env": {"TRIAL": str(i)}}
            if kind == "crash":
                bad["command"] = ["sh", "-c", "exit 3"]
            else:
                bad["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1}
            t0 = time.time_ns()
            write_services(directory, _web(IMAGE_V2, port, **bad))
            events.wait_for("web", "start", t0, 60)  # the bad one starting
            t1 = _restored(events, t0)
            out.append((t1 - t0) / 1e9)
            wait_until(lambda: _serves(port), 20)
            write_services(directory, _web(IMAGE, port))  # back to v1 (no change on the host)
            time.sleep(2)
    finally:
        daemon.stop()
    return out


def _restored(events: Events, after: int) -> int:
    """The second `start` of web after ``after``: the old container put back."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with events.lock:
            starts = [t for n, a, t in events.seen if n == "web" and a == "start" and t >= after]
        if len(starts) >= 2:
            return starts[1]
        time.sleep(0.02)
    raise TimeoutError("the old revision did not start again")


def replace_trials(
    podman: PodmanService, work: Path, trials: int
) -> tuple[list[float], list[float]]:
    port = free_port()
    directory = work / "replace"
    state = work / "state-replace"
    paid = [
        str(ROOT / ".venv" / "bin" / "paid"),
        "apply",
        str(directory),
        "--podman-url",
        podman.url,
        "--state-dir",
        str(state),
        "--log-format",
        "json",
    ]
    gated, bare = [], []
    for i in range(trials):
        podman.clean()
        write_services(directory, _web(IMAGE, port, env={"N": f"a{i}"}))
        subprocess.run(paid, check=True, capture_output=True)
        write_services(directory, _web(IMAGE_V2, port, env={"N": f"b{i}"}))
        t0 = time.perf_counter()
        subprocess.run(paid, check=True, capture_output=True)
        wait_until(lambda: _serves(port), 20, 0.01)
        gated.append(time.perf_counter() - t0)

        podman.clean()
        remote = ["podman", "--url", podman.url]
        run = [*remote, "run", "-d", "--name", "web", "--init", "-p", f"127.0.0.1:{port}:8080"]
        subprocess.run([*run, IMAGE, *HTTPD], check=True, capture_output=True)
        wait_until(lambda: _serves(port), 20, 0.01)
        t0 = time.perf_counter()
        subprocess.run([*remote, "stop", "-t", "2", "web"], check=True, capture_output=True)
        subprocess.run([*remote, "rm", "web"], check=True, capture_output=True)
        subprocess.run([*run, IMAGE_V2, *HTTPD], check=True, capture_output=True)
        wait_until(lambda: _serves(port), 20, 0.01)
        bare.append(time.perf_counter() - t0)
    return gated, bare


def _row(label: str, values: list[float]) -> str:
    return f"| {label} | {len(values)} | {statistics.median(values):.2f} s | {max(values):.2f} s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="paid-bench-rollout-"))
    podman = PodmanService.start(base)
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        print("bad deploy: crash ...", file=sys.stderr, flush=True)
        crash = bad_deploy_trials(podman, work, "crash", args.trials)
        podman.clean()
        print("bad deploy: never ready ...", file=sys.stderr, flush=True)
        never = bad_deploy_trials(podman, work, "never-ready", args.trials)
        podman.clean()
        print("gated vs bare replace ...", file=sys.stderr, flush=True)
        gated, bare = replace_trials(podman, work, args.trials)
    finally:
        podman.stop()
    section = "\n".join(
        [
            "### Bad deploy to the old revision serving again "
            "(desired file written -> old container started)",
            "",
            "| bad revision | trials | median | max |",
            "|---|---|---|---|",
            _row("crashes on start", crash),
            _row("never ready (progressDeadlineSeconds 5)", never),
            "",
            "### Replacing a container until the new one answers HTTP",
            "",
            "| how | trials | median | max |",
            "|---|---|---|---|",
            _row("`paid apply` (health-gated, readiness httpGet every 1 s)", gated),
            _row("`podman stop; podman rm; podman run`", bare),
        ]
    )
    print(section)
    if not args.no_write:
        write_section("rollout", "Rollouts (`bench/rollout.py`)", section)


if __name__ == "__main__":
    main()
