"""Benchmark: backing up and restoring a named volume, against Podman's own tools.

Run by hand: ``.venv/bin/python -m bench.backup``. On one private Podman, a
service with one volume of ``--mib`` MiB (half random bytes, half text,
plus a thousand small files), side by side in one run:

- ``paid backup run`` (consistency ``stop``; CLI start-up included) and
  ``paid restore`` (checksum and member checks, safety backup, swap, start,
  ready), with how long the container was stopped;
- ``podman volume export | gzip`` and ``gunzip | podman volume import``
  (no checksum, no checks, no quiescing; the container keeps running);
- ``tar -czf`` / ``tar -xzf`` on the volume's directory: the floor.

Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench.report import write_section
from tests.harness import PodmanService, service_doc, write_services


def _fill(data: Path, mib: int) -> None:
    half = mib * 1024 * 1024 // 2
    with (data / "random.bin").open("wb") as handle:
        handle.write(os.urandom(half))
    line = b"2026-12-01T09:00:00Z level=info msg=request path=/api/v1/items status=200\n"
    with (data / "log.txt").open("wb") as handle:
        handle.write(line * (half // len(line)))
    small = data / "small"
    small.mkdir()
    for i in range(1000):
        (small / f"f{i:04d}.json").write_text(f'{{"id": {i}, "name": "item {i}"}}\n')


def _time(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _sh(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="paid-bench-backup-"))
    podman = PodmanService.start(base)
    state, desired, out = base / "state", base / "desired", base / "out"
    out.mkdir()
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state)}

    def paid(*argv: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "paid", *argv], env=env, check=True, capture_output=True
        )

    results: dict[str, list[float]] = {}
    stopped: list[float] = []
    try:
        podman.build_images()
        write_services(
            desired,
            service_doc("db", volumes=["db-data:/data"], backup={"keep": 2, "consistency": "stop"}),
        )
        paid("apply", str(desired))
        mount = Path(
            podman.podman("volume", "inspect", "db-data", "--format", "{{.Mountpoint}}").strip()
        )
        _fill(mount, args.mib)
        archive, target = out / "export.tar.gz", out / "floor"
        for _ in range(args.trials):
            print("trial ...", file=sys.stderr, flush=True)
            before = podman.inspect("db")["State"]["StartedAt"]
            results.setdefault("paid backup", []).append(
                _time(lambda: paid("backup", "run", "db", str(desired)))
            )
            after = podman.inspect("db")["State"]
            if not after["Running"] or after["StartedAt"] == before:
                raise SystemExit("paid backup run did not stop and start db")
            stopped.append(_stopped_seconds(podman))
            results.setdefault("podman export", []).append(
                _time(
                    lambda: _sh(
                        f"podman {' '.join(podman.global_args())} volume export db-data"
                        f" | gzip -6 > {archive}"
                    )
                )
            )
            results.setdefault("tar c", []).append(
                _time(lambda: _sh(f"tar -czf {out}/floor.tar.gz -C {mount} ."))
            )
            results.setdefault("paid restore", []).append(
                _time(lambda: paid("restore", "db", str(desired)))
            )
            results.setdefault("podman import", []).append(
                _time(
                    lambda: _sh(
                        f"gunzip -c {archive} | podman {' '.join(podman.global_args())}"
                        " volume import db-data -"
                    )
                )
            )
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            results.setdefault("tar x", []).append(
                _time(lambda: _sh(f"tar -xzf {out}/floor.tar.gz -C {target}"))
            )
        sizes = {
            "paid": sum(p.stat().st_size for p in (state / "backups" / "db").rglob("*.tar.gz"))
            // len(list((state / "backups" / "db").iterdir())),
            "podman": archive.stat().st_size,
            "tar": (out / "floor.tar.gz").stat().st_size,
        }
    finally:
        podman.stop()

    def row(label: str, key: str, size: str) -> str:
        values = results[key]
        median = statistics.median(values)
        return (
            f"| {label} | {len(values)} | {median:.2f} s | {max(values):.2f} s | "
            f"{args.mib / median:.0f} MiB/s | {size} |"
        )

    mib = 1024 * 1024
    section = "\n".join(
        [
            f"One volume of {args.mib} MiB: half random bytes, half log text, 1000 small files.",
            "",
            "| operation | trials | median | max | throughput | archive |",
            "|---|---|---|---|---|---|",
            row(
                "`paid backup run` (stop, copy, start; sha256 manifest)",
                "paid backup",
                f"{sizes['paid'] / mib:.0f} MiB",
            ),
            row(
                "`podman volume export \\| gzip -6` (live, no checksum)",
                "podman export",
                f"{sizes['podman'] / mib:.0f} MiB",
            ),
            row(
                "`tar -czf` on the volume directory (floor)",
                "tar c",
                f"{sizes['tar'] / mib:.0f} MiB",
            ),
            row("`paid restore` (verify, safety backup, swap, start, ready)", "paid restore", "-"),
            row("`gunzip \\| podman volume import` (no checks)", "podman import", "-"),
            row("`tar -xzf` into a directory (floor)", "tar x", "-"),
            "",
            f"Container stopped during `paid backup run` (consistency `stop`): median "
            f"{statistics.median(stopped):.2f} s, max {max(stopped):.2f} s.",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("backup", "Backups (`bench/backup.py`)", section)


def _stopped_seconds(podman: PodmanService) -> float:
    """From db's last stop to its restart, from its inspect (FinishedAt, StartedAt)."""
    state = podman.inspect("db")["State"]
    return _epoch(state["StartedAt"]) - _epoch(state["FinishedAt"])


def _epoch(stamp: str) -> float:
    """Podman's time with nanoseconds (and a zone name suffix) as epoch seconds."""
    match = re.match(r"(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)", stamp)
    if match is None:
        raise ValueError(f"cannot read the time {stamp!r}")
    fraction = (match[2] or ".0")[:7]
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(match[1] + fraction + zone).timestamp()


if __name__ == "__main__":
    main()
