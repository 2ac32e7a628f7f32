"""Benchmark: from a push to the new digest serving, and from a bad push back to the old one.

Run by hand (``.venv/bin/python -m bench.image_updates``); needs root, Podman
and Debian's docker-registry. On a private Podman (the test harness's) and
a registry on loopback, ``paid run --image-update-interval 5`` (the
production daemon, a process of its own) follows ``web``'s tag. web is
busybox httpd serving ``/edition``, with a readiness probe on ``/ready``
and ``minReadySeconds: 2``. Each repetition:

1. **good push**: pushes a new edition; the clock runs from the end of
   ``podman push`` until the published port answers with the new edition
   *and* paid's journal says the rollout succeeded (through the gate);
2. **bad push**: pushes an edition without ``/ready``; the clock runs until
   the old edition answers again after paid rolled back
   (``progressDeadlineSeconds: 6``).

Both include the wait for the next check (0 to 5 s). Prints a table and
writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.report import write_section
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, PodmanService, Registry, free_port, use_registry, write_services

INTERVAL = 5


def _edition(podman: PodmanService, label: str, *, ready: bool) -> str:
    name = f"localhost/bench/edition:{label}"
    podman.podman("rm", "--force", "--time", "0", "make-edition", check=False)
    script = f"mkdir -p /www && echo {label} > /www/edition" + (
        " && touch /www/ready" if ready else ""
    )
    podman.podman("run", "--name", "make-edition", IMAGE, "sh", "-c", script)
    podman.podman("commit", "--quiet", "make-edition", name)
    podman.podman("rm", "--force", "--time", "0", "make-edition")
    return name


def _serving(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/edition", timeout=1) as answer:
            return str(answer.read().decode().strip())
    except OSError:
        return ""


def _events(state: Path, kind: str) -> int:
    with sqlite3.connect(state / "paid.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0])


def _service(image: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "image": image,
            "imageUpdate": {"policy": "registry"},
            # The host's network: no port forwarding. netavark 1.4 here can leave the
            # replaced container's DNAT rule in front of the new one's when another
            # container is made meanwhile (this script's `podman run`), a Podman bug.
            "command": ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
            "hostNetwork": True,
            "terminationGracePeriodSeconds": 1,
            "readinessProbe": {
                "exec": {"command": ["test", "-f", "/www/ready"]},
                "periodSeconds": 1,
            },
            "rollout": {"minReadySeconds": 2, "progressDeadlineSeconds": 6},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="paid-bench-images-"))
    podman = PodmanService.start(base / "podman")
    registry = Registry.start(base / "registry")
    good, bad = [], []
    try:
        podman.build_images()
        use_registry(podman, registry)
        remote = f"{registry.host}/bench/web:stable"
        port = free_port()

        def push(label: str, *, ready: bool = True) -> float:
            local = _edition(podman, label, ready=ready)
            podman.podman("push", "--tls-verify=false", local, remote)
            return time.perf_counter()

        push("e0")
        desired = base / "desired"
        write_services(desired, _service(remote, port))
        state = base / "state"
        daemon = Daemon(
            podman, desired, state, base / "daemon.log",
            extra=["--image-update-interval", str(INTERVAL)],
        ).start()  # fmt: skip
        try:
            wait_until(lambda: _serving(port) == "e0", 60)
            for i in range(args.reps):
                print(f"rep {i + 1}/{args.reps} ...", file=sys.stderr, flush=True)
                label = f"e{i + 1}"
                done = _events(state, "image_updated") + 1
                pushed = push(label)

                def updated(want: str = label, n: int = done) -> bool:
                    return _serving(port) == want and _events(state, "image_updated") >= n

                wait_until(updated, 120, interval=0.02)
                good.append(time.perf_counter() - pushed)
                undone = _events(state, "image_update_rolled_back") + 1
                pushed = push(f"bad{i + 1}", ready=False)

                def undone_again(want: str = label, n: int = undone) -> bool:
                    return (
                        _events(state, "image_update_rolled_back") >= n and _serving(port) == want
                    )

                wait_until(undone_again, 120, interval=0.02)
                bad.append(time.perf_counter() - pushed)
        finally:
            daemon.stop()
    finally:
        registry.stop()
        podman.stop()
        shutil.rmtree(base, ignore_errors=True)

    def s(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"

    section = "\n".join(
        [
            "`paid run --image-update-interval 5` following a tag in Debian's docker-registry on "
            "loopback; web is busybox httpd with a readiness probe (every 1 s) and "
            "`minReadySeconds: 2`. Times run from the end of `podman push`, so each includes "
            f"the wait for the next check (at most {INTERVAL} s; each push follows the last "
            "rollout's end, so pushes fall at a similar phase of the check timer and the "
            "spread is narrow).",
            "",
            f"| measure (median of {args.reps}) | wall time |",
            "|---|---|",
            f"| push → the new digest serving, its rollout succeeded | {s(good)} |",
            "| bad push (never ready) → rolled back, the old digest serving again "
            f"(`progressDeadlineSeconds: 6`) | {s(bad)} |",
            "",
            "`podman auto-update` is not beside it: it needs each container run by a systemd "
            "unit it can restart (`PODMAN_SYSTEMD_UNIT`), and this machine has no systemd as "
            "PID 1; in the suite's systemd container its Podman would have to reach this "
            "registry and run the images itself (not built). Its own rollback undoes an update "
            "only when the unit fails to restart: an image that starts but never gets ready "
            "stays (see `podman-auto-update(1)`).",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("image-updates", "Image updates (`bench/image_updates.py`)", section)


if __name__ == "__main__":
    os.environ.setdefault("PAID_LOG_LEVEL", "warning")
    main()
