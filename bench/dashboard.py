"""Benchmark: how long the dashboard's pages take to render on the server, at 500 services.

Run by hand: ``.venv/bin/python -m bench.dashboard [--rounds 30]``. The
production renderer (``paid.daemon.dashboard.Dashboard``) on a real store
holding a journal entry per service and 2,000 more, from a status document
of 500 running services with a rollout under way: the time from request to
bytes, in process (the HTTP server adds a thread hop and the socket).
Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import write_section
from paid.daemon.dashboard import Dashboard
from paid.storage.store import Store


def _service(i: int) -> dict[str, Any]:
    name = f"svc-{i:03d}"
    rollout = None
    if i == 0:
        rollout = {"revision": 2, "phase": "Baking", "previousRevision": 1, "readyFor": 3.0,
                   "minReadySeconds": 10.0, "deadlineIn": 590.0}  # fmt: skip
    return {
        "name": name, "phase": "Running", "desired": True, "state": "running",
        "image": f"localhost/{name}:1", "desiredImage": f"localhost/{name}:1",
        "runningRevision": 1, "desiredRevision": 1, "ports": ["0.0.0.0:8080->80/tcp"],
        "createdAt": None, "startedAt": None, "restarts": i % 3, "waitingFor": [],
        "crashLoopBackOff": False, "rollout": rollout, "health": {"ready": True},
        "note": "quarantined: revision 2 failed" if i % 100 == 7 else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    status = {
        "desiredState": {"directory": "/srv/desired-state", "valid": True, "errors": [],
                         "enforcedSince": time.time()},
        "podman": {"reachable": True, "breaker": "closed"},
        "services": [_service(i) for i in range(500)],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as base, Store.open(Path(base)) as store:
        for i in range(500):
            store.record("container_replaced", f"svc-{i:03d}: replaced", service=f"svc-{i:03d}")
        for i in range(2000):
            kind = "rollout_started" if i % 2 else "container_replaced"
            store.record(kind, f"svc-{i % 500:03d}: {kind}", service=f"svc-{i % 500:03d}")
        dashboard = Dashboard(status=lambda: status, steps=dict, desired=lambda: None, store=store)
        took: dict[str, list[float]] = {"/": [], "/services/svc-007": [], "/timeline": []}
        sizes: dict[str, int] = {}
        for path in took:  # warm-up: templates compiled once
            dashboard.page(path, "")
        for _ in range(args.rounds):
            for path, values in took.items():
                start = time.perf_counter()
                page = dashboard.page(path, "")
                values.append(time.perf_counter() - start)
                assert page is not None
                sizes[path] = len(page.body)
    rows = ["| page | median | max | size |", "|---|---|---|---|"]
    for path, values in took.items():
        rows.append(
            f"| `{path}` | {statistics.median(values) * 1000:.1f} ms | "
            f"{max(values) * 1000:.1f} ms | {sizes[path] / 1024:.0f} KiB |"
        )
    table = "\n".join(rows)
    print(table)
    body = (
        f"500 services, a journal of 2,500 entries; {args.rounds} rounds, interleaved, after "
        "one warm-up; in process, request to bytes.\n\n" + table + "\n"
    )
    write_section("dashboard", "Dashboard rendering (`bench/dashboard.py`)", body)


if __name__ == "__main__":
    main()
