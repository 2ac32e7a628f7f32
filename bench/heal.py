"""Benchmark: how fast a broken service runs again, and what the daemon costs.

Run by hand: ``.venv/bin/python -m bench.heal``. On one private Podman:

- heal latency after ``podman kill`` and after ``podman rm -f`` of a
  managed container, with the daemon event-driven (default) and with
  events off (resync only, default 30 s period), and for the kill case
  Podman's own ``--restart=always`` on an unmanaged container. Latency is
  from just before the break request to the ``start`` event of the
  container that replaces it, both on Podman's clock (event timeNano);
- the daemon's RSS and idle CPU with 100 services converged.

Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from podman import PodmanClient

from bench.report import write_section
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, PodmanService, service_doc, write_services


class Events:
    """Podman's event stream, remembered: (name, action) -> [timeNano]."""

    def __init__(self, url: str) -> None:
        self.client = PodmanClient(base_url=url, timeout=None)
        self.seen: list[tuple[str, str, int]] = []
        self.lock = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        response = self.client.api.get(
            "/events",
            params={"stream": "true", "filters": json.dumps({"type": ["container"]})},
            stream=True,
        )
        for line in response.iter_lines():
            if not line:
                continue
            doc = json.loads(line)
            name = (doc.get("Actor") or {}).get("Attributes", {}).get("name", "")
            with self.lock:
                self.seen.append((name, doc.get("Action", ""), int(doc.get("timeNano", 0))))
                self.lock.notify_all()

    def wait_for(self, name: str, action: str, after_ns: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for n, a, t in self.seen:
                    if n == name and a == action and t >= after_ns:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {action} of {name} within {timeout} s")
                self.lock.wait(left)


def _break(client: PodmanClient, name: str, how: str) -> None:
    """``kill``: SIGKILL the container's main process from outside, as a crash
    or the OOM killer would (``podman kill`` marks the container stopped by
    the user, which Podman's restart policy then respects); ``rm``: remove it."""
    if how == "kill":
        pid = client.api.get(f"/containers/{name}/json").json()["State"]["Pid"]
        os.kill(int(pid), signal.SIGKILL)
    else:
        client.api.delete(f"/containers/{name}", params={"force": True, "t": 0})


def heal_trials(
    events: Events, names: list[str], how: str, *, trials: int, timeout: float, pause: float
) -> list[float]:
    """Break ``names`` round robin: each break is that container's first in a
    while, so the kubelet-style crash back-off (10 s doubling) stays out of it."""
    out = []
    for trial in range(trials):
        name = names[trial % len(names)]
        time.sleep(pause)
        t0 = time.time_ns()
        _break(events.client, name, how)
        t1 = events.wait_for(name, "start", t0, timeout)
        out.append((t1 - t0) / 1e9)
    return out


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms"


def daemon_cost(
    podman: PodmanService, work: Path, n: int, idle_seconds: float
) -> tuple[float, float]:
    directory = work / f"cost-{n}"
    write_services(directory, *(service_doc(f"svc{i:03d}") for i in range(n)))
    daemon = Daemon(podman, directory, work / "cost-state", work / "cost.log", resync=30).start()
    try:
        wait_until(lambda: daemon.metric("paid_services_converged") == n, 300, 0.5)
        assert daemon.process is not None
        pid = daemon.process.pid
        time.sleep(5)
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        c0, t0 = cpu(), time.monotonic()
        time.sleep(idle_seconds)
        c1, t1 = cpu(), time.monotonic()
        rss_kb = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        return rss_kb / 1024, 100 * (c1 - c0) / (t1 - t0)
    finally:
        daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--resync-trials", type=int, default=8)
    parser.add_argument("--resync", type=float, default=30.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="paid-bench-heal-"))
    podman = PodmanService.start(base)
    rows: list[str] = []
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        events = Events(podman.url)
        directory = work / "heal"
        victims = [f"victim{i:02d}" for i in range(args.trials)]
        write_services(directory, *(service_doc(v) for v in victims))

        for mode, extra, trials in (
            ("event-driven", [], args.trials),
            (f"resync only ({args.resync:.0f} s)", ["--no-watch-events"], args.resync_trials),
        ):
            daemon = Daemon(
                podman,
                directory,
                work / "state",
                work / "heal.log",
                resync=args.resync,
                extra=extra,
            )
            daemon.start()
            try:
                for how in ("kill", "rm"):
                    print(f"{mode}: {how} x{trials} ...", file=sys.stderr, flush=True)
                    values = heal_trials(
                        events, victims, how, trials=trials, timeout=args.resync * 3, pause=1.0
                    )
                    rows.append(f"| {how} | paid, {mode} | {trials} | {_summary(values)} |")
            finally:
                daemon.stop()
        podman.clean()

        print("podman --restart=always: kill ...", file=sys.stderr, flush=True)
        podman.podman(
            "run", "-d", "--name", "native", "--restart=always", "--init", IMAGE, "sleep", "3600"
        )
        # Podman restarts from its cleanup process (conmon -> podman container cleanup).
        values = heal_trials(events, ["native"], "kill", trials=args.trials, timeout=30, pause=1.0)
        rows.append(f"| kill | podman --restart=always | {args.trials} | {_summary(values)} |")
        podman.clean()

        print(f"daemon cost with {args.services} services ...", file=sys.stderr, flush=True)
        rss, cpu = daemon_cost(podman, work, args.services, args.idle_seconds)
    finally:
        podman.stop()

    section = "\n".join(
        [
            "### Heal latency: break request to the replacement's `start` event (Podman's clock)",
            "",
            "| break | healer | trials | median | max |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"### Daemon cost, {args.services} services converged, idle",
            "",
            "| RSS | CPU over idle window |",
            "|---|---|",
            f"| {rss:.1f} MiB | {cpu:.2f} % of one core "
            f"({args.idle_seconds:.0f} s window, resync every 30 s) |",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("heal", "Healing and daemon cost (`bench/heal.py`)", section)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
