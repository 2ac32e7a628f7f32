"""Benchmark: how long the commands people type take, against Podman's and compose's.

Run by hand: ``.venv/bin/python -m bench.cli [--rounds 15]``. On one
private Podman with 20 services applied and a daemon running (``paid
status`` asks it), every round runs each command once, in the same order
(interleaved: a slow moment of the machine hits every command alike):

- ``python -c pass`` (the interpreter alone: the floor for any Python CLI);
- ``paid --version``, ``paid --help``;
- ``paid validate`` of the 20 files (the pre-commit hook's command);
- ``paid plan`` and ``paid status`` of the 20 services;
- ``podman ps -a`` and ``podman-compose version``.

paid and podman-compose run from the tools venv (``bench/tools.py``):
paid installed from this tree as ``pip install`` installs it, byte-compiled,
without the development venv's test tools.

Wall time of the whole process, as a shell sees it. Prints a table and
writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import write_section
from bench.tools import tools_venv
from tests.daemon import Daemon
from tests.harness import IMAGE, PodmanService, service_doc, write_services

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-bench"
PAID = [str(TOOLS / "bin" / "paid")]  # as users install it (bench/tools.py)
COMPOSE = TOOLS / "bin" / "podman-compose"


def _commands(
    podman: PodmanService, desired: Path, state: Path, listen: str
) -> dict[str, list[str]]:
    where = ["--podman-url", podman.url, "--state-dir", str(state)]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "paid --version": [*PAID, "--version"],
        "paid --help": [*PAID, "--help"],
        "paid validate (20 files)": [*PAID, "validate", str(desired)],
        "paid plan (20 services)": [*PAID, "plan", *where, str(desired)],
        "paid status (20 services)": [*PAID, "status", *where, "--listen", listen, str(desired)],
        "podman ps -a": podman.command("ps", "-a"),
    }
    if COMPOSE.exists():
        commands["podman-compose version"] = [str(COMPOSE), "version"]
    return commands


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    took = time.perf_counter() - start
    if done.returncode not in (0, 2):  # plan says 2 for "changes"
        raise RuntimeError(f"{argv}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tools_venv(TOOLS)
    base = Path(tempfile.mkdtemp(prefix="paid-bench-cli-"))
    podman = PodmanService.start(base / "podman")
    try:
        podman.build_images()
        desired, state = base / "desired-state", base / "state"
        desired.mkdir()
        for i in range(20):
            doc = service_doc(f"svc-{i:02d}", command=["sleep", "100000"])
            write_services(desired, doc, filename=f"svc-{i:02d}.yaml")
        env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        applied = subprocess.run(
            [*PAID, "apply", str(desired)], env=env, capture_output=True, check=False
        )
        if applied.returncode != 0:
            raise RuntimeError(applied.stderr.decode()[-2000:])
        daemon = Daemon(podman, desired, state, base / "daemon.log")
        daemon.start()
        try:
            commands = _commands(podman, desired, state, f"127.0.0.1:{daemon.port}")
            took: dict[str, list[float]] = {name: [] for name in commands}
            for argv in commands.values():  # one warm-up each: page cache, .pyc
                _time(argv, env)
            for _ in range(args.rounds):
                for name, argv in commands.items():
                    took[name].append(_time(argv, env))
        finally:
            daemon.stop()
    finally:
        podman.stop()
        shutil.rmtree(base, ignore_errors=True)
    floor = statistics.median(took["python -c pass"])
    rows = [
        "| command | median | p90 | max | × `python -c pass` |",
        "|---|---|---|---|---|",
    ]
    for name, values in took.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        median = statistics.median(values)
        rows.append(
            f"| {name} | {median * 1000:.0f} ms | {p90 * 1000:.0f} ms | "
            f"{max(values) * 1000:.0f} ms | {median / floor:.1f}× |"
        )
    table = "\n".join(rows)
    print(table)
    body = (
        f"Wall time of the whole process, {args.rounds} interleaved rounds after one warm-up "
        "each; 20 services applied and `paid run` serving `paid status` on the same private "
        f"Podman ({IMAGE}). paid as `pip install` installs it (byte-compiled, runtime "
        "dependencies only).\n\n" + table + "\n"
    )
    if not args.no_write:
        write_section("cli", "Command line (`bench/cli.py`)", body)


if __name__ == "__main__":
    main()
