"""Benchmark: examples/notes' cold start, paid against podman-compose, interleaved.

Run by hand (``.venv/bin/python -m bench.notes``); needs root, Podman,
debootstrap and the tools venv of ``bench/reconcile.py`` (``--tools-venv``,
default ``.venv-bench``: ``python3 -m venv .venv-bench &&
.venv-bench/bin/pip install '.[bench]'``), so paid runs as users install it.

Both tools run the same compose file (the example's, each on its own host
port), on one private Podman (the test harness's), with the other tool's
stack running beside it. The base images come from
``examples/notes/build-images``; each tool's own build of ``app/`` and
``db/`` is made once before timing (paid tags it by content, compose by
project) and reused. Each repetition, interleaved paid, compose, paid, ...:

1. remove that tool's containers and the database's data (a new host for
   the app, images present);
2. start the timer, run what a user types (``paid apply DIR`` on the
   imported directory; ``podman-compose up -d``), and poll the app's port
   from the first moment: **first note** is when a POST is acknowledged
   and a GET returns it, **command** is when the command returned.

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
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.reconcile import _storage_env
from bench.report import write_section
from tests.harness import PodmanService, free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "notes"


@dataclass
class Stack:
    label: str
    up: list[str]
    down: list[str]
    env: dict[str, str]
    port: int
    command: list[float] = field(default_factory=list)
    first_note: list[float] = field(default_factory=list)


def _served(port: int, until: float) -> float | None:
    """Seconds until a POST is acknowledged and a GET lists it; None if not by ``until``."""
    start = time.perf_counter()
    while time.perf_counter() < until:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"bench")
            with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 -- http only
                if answer.status == 201:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as got:
                        if "bench" in json.loads(got.read()):
                            return time.perf_counter() - start
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return None


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def _rep(stack: Stack) -> None:
    _run(stack.down, stack.env)
    seen: list[float | None] = []
    poll = threading.Thread(
        target=lambda: seen.append(_served(stack.port, time.perf_counter() + 300))
    )
    start = time.perf_counter()
    poll.start()
    _run(stack.up, stack.env)
    stack.command.append(time.perf_counter() - start)
    poll.join()
    if seen[0] is None:
        raise SystemExit(f"{stack.label}: the app never served a note")
    stack.first_note.append(seen[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--tools-venv", type=Path, default=ROOT / ".venv-bench")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tools = args.tools_venv / "bin"

    base = Path(tempfile.mkdtemp(prefix="paid-bench-notes-"))
    podman = PodmanService.start(base)
    try:
        storage = _storage_env(podman)
        subprocess.run(
            [str(EXAMPLE / "build-images")],
            env={**podman.env, "PODMAN": "podman " + " ".join(podman.global_args())},
            check=True,
        )
        stacks = []
        for label in ("paid", "compose"):
            project = base / label
            shutil.copytree(EXAMPLE, project)
            port = free_port()
            compose = project / "compose.yaml"
            compose.write_text(compose.read_text().replace('"8089:8000"', f'"{port}:8000"'))
            if label == "paid":
                state = base / "state"
                env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state)}
                desired = base / "desired"
                _run(
                    [str(tools / "paid"), "import", "compose", str(compose), "-o", str(desired)],
                    env,
                )
                down = [sys.executable, "-m", "bench.notes_down", podman.url, str(state)]
                up = [str(tools / "paid"), "apply", str(desired)]
            else:
                env = storage
                compose_cmd = [str(tools / "podman-compose"), "-f", str(compose), "-p", "notes"]
                _run([*compose_cmd, "build"], env)
                down = [*compose_cmd, "down", "-v", "-t", "2"]
                up = [*compose_cmd, "up", "-d"]
            stacks.append(Stack(label, up, down, env, port))
        for stack in stacks:  # both up once: each is timed with the other's stack running
            _rep(stack)
            stack.command.clear()
            stack.first_note.clear()
        for i in range(args.reps):
            for stack in stacks:
                print(f"rep {i + 1}/{args.reps} {stack.label} ...", file=sys.stderr, flush=True)
                _rep(stack)
    finally:
        podman.stop()
        shutil.rmtree(base, ignore_errors=True)

    def s(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"

    paid, compose = stacks
    ratio = statistics.median(paid.first_note) / statistics.median(compose.first_note)
    section = "\n".join(
        [
            "`examples/notes` (a Python app in front of PostgreSQL 15, both from Debian "
            "packages and built by each tool from the example's Containerfiles; the compose "
            "file as written, imported unchanged for paid). Each repetition starts the app "
            "from no containers and an empty database volume, images present, with the other "
            "tool's stack running; paid and podman-compose interleaved. paid runs its "
            "defaults: pre-flight, and every first deploy through its health gate "
            "(`minReadySeconds` 10, the database's `start_period` as `startPeriodSeconds`); "
            "podman-compose starts the containers and returns.",
            "",
            f"| measure (median of {args.reps}) | paid apply | podman-compose up -d |",
            "|---|---|---|",
            f"| first note acknowledged and read back | {s(paid.first_note)} "
            f"| {s(compose.first_note)} |",
            f"| the command returned | {s(paid.command)} | {s(compose.command)} |",
            "",
            f"paid serves the first note in {ratio:.2f}× podman-compose's time; its command "
            "returns later, once each deploy has baked through its gate.",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("notes", "Cold start of a database-backed app (`bench/notes.py`)", section)


if __name__ == "__main__":
    main()
