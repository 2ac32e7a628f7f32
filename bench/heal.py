"""Benchmark: how fast a broken service runs again, paid beside Podman's own restart policy.

Run by hand: ``.venv/bin/python -m bench.heal``. On one private Podman, for
each size N (20 and 100 by default), both tools' containers present at
once:

- paid: ``paid run`` over N services (busybox ``sleep``, on its default
  network ``paid``, DNS on), plus one service per round with a published
  host port (``PORT:8080``, replaced in place);
- Podman: N containers with ``--restart=always`` on a network of their
  own with DNS on, so both restart onto the same kind of network.

Rounds interleave the tools: in each, paid's service gets SIGKILL of its
main process (a crash, as the OOM killer does it), Podman's container
the same, then a paid service is ``podman kill``-ed, one is removed with
``podman rm -f``, and one with a host port gets SIGKILL. Every break hits
a service not broken before in the run, so the crash back-off (first
restart at once) never enters. Podman's restart policy has no back-off
and ignores ``podman rm``; ``podman kill`` marks the container stopped
by its user, which the policy respects: those rows are paid's alone.

Latency: from just before the break to the ``start`` event of the
container that replaces it (for paid, any container of the service: the
fresh copy starts as ``<name>.paid-next``), both on Podman's clock. The
suite's Podman keeps its events file up to 1 GB (Podman 4.3 truncates at
1 MB by default, which would lose events mid-run).

Then the daemon's RSS and idle CPU with the largest N converged.

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
from collections.abc import Callable
from pathlib import Path

from podman import PodmanClient

from bench.report import write_section
from paid.state.labels import SERVICE
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, PodmanService, free_port, service_doc, write_services

NATIVE_NETWORK = "native"


class Events:
    """Podman's container events, remembered as (name, service label, action, timeNano)."""

    def __init__(self, url: str) -> None:
        self.client = PodmanClient(base_url=url, timeout=None)
        self.seen: list[tuple[str, str, str, int]] = []
        self.lock = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        response = self.client.api.get(
            "/events",
            params={"stream": "true", "filters": json.dumps({"type": ["container"]})},
            stream=True,
        )
        try:
            for line in response.iter_lines():
                if line:
                    self._remember(json.loads(line))
        except Exception:  # the stream ends with the Podman service
            return

    def _remember(self, doc: dict[str, object]) -> None:
        actor = doc.get("Actor") or {}
        attributes = actor.get("Attributes", {}) if isinstance(actor, dict) else {}
        with self.lock:
            self.seen.append(
                (
                    str(attributes.get("name", "")),
                    str(attributes.get(SERVICE, "")),
                    str(doc.get("Action", "")),
                    int(str(doc.get("timeNano", 0))),
                )
            )
            self.lock.notify_all()

    def wait_for(self, wanted: str, matches: Callable[[str, str], bool], after_ns: int) -> int:
        """The time of the first ``wanted`` event after ``after_ns`` that ``matches``."""
        deadline = time.monotonic() + 60
        with self.lock:
            while True:
                for name, service, action, when in self.seen:
                    if action == wanted and when >= after_ns and matches(name, service):
                        return when
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {wanted} event within 60 s")
                self.lock.wait(left)


def _break(client: PodmanClient, name: str, how: str) -> None:
    if how == "sigkill":
        pid = client.api.get(f"/containers/{name}/json").json()["State"]["Pid"]
        os.kill(int(pid), signal.SIGKILL)
    elif how == "kill":
        client.api.post(f"/containers/{name}/kill", params={"signal": "SIGKILL"})
    else:
        client.api.delete(f"/containers/{name}", params={"force": True, "t": 0})


def _heal_time(events: Events, name: str, how: str, *, paid: bool) -> tuple[float, float]:
    """Seconds from the break of ``name``, and from its death, to its replacement's start.

    The death: Podman's ``died`` event of the container (``remove`` for rm).
    """

    def replacement(started: str, service: str) -> bool:
        return service == name if paid else started == name

    t0 = time.time_ns()
    _break(events.client, name, how)
    started = events.wait_for("start", replacement, t0)
    death = "remove" if how == "rm" else "died"
    died = events.wait_for(death, lambda dead, service: dead == name, t0)
    return (started - t0) / 1e9, (started - died) / 1e9


ROWS = (
    ("sigkill", "paid"),
    ("sigkill", "podman --restart=always"),
    ("kill", "paid"),
    ("rm", "paid"),
    ("sigkill", "paid, host port (in place)"),
)


def measure(
    podman: PodmanService, events: Events, work: Path, n: int, *, rounds: int, pause: float
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """One size: both tools' containers up, then ``rounds`` interleaved rounds."""
    if n < 3 * rounds:
        raise SystemExit(f"--rounds {rounds} needs at least {3 * rounds} services per size")
    directory = work / f"heal-{n}"
    plain = [f"svc{i:03d}" for i in range(n)]
    ported = [f"port{i:02d}" for i in range(rounds)]
    docs = [service_doc(s) for s in plain]
    httpd = ["httpd", "-f", "-p", "8080", "-h", "/www"]
    docs += [service_doc(p, command=httpd, ports=[f"{free_port()}:8080"]) for p in ported]
    write_services(directory, *docs)
    natives = [f"native{i:03d}" for i in range(n)]
    podman.podman("network", "create", NATIVE_NETWORK)
    for native in natives:
        podman.podman(
            "run", "-d", "--name", native, "--network", NATIVE_NETWORK, "--restart=always",
            "--init", IMAGE, "sleep", "3600",
        )  # fmt: skip
    daemon = Daemon(podman, directory, work / f"state-{n}", work / f"heal-{n}.log", resync=30)
    daemon.start(wait_ready=False)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {row: [] for row in ROWS}
    try:
        wait_until(lambda: daemon.metric("paid_services_converged") == n + rounds, 600, 0.5)
        for r in range(rounds):
            print(f"N={n}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            plan = (
                (("sigkill", "paid"), plain[3 * r], True),
                (("sigkill", "podman --restart=always"), natives[r], False),
                (("kill", "paid"), plain[3 * r + 1], True),
                (("rm", "paid"), plain[3 * r + 2], True),
                (("sigkill", "paid, host port (in place)"), ported[r], True),
            )
            for row, name, by_paid in plan:
                time.sleep(pause)
                results[row].append(_heal_time(events, name, row[0], paid=by_paid))
    finally:
        daemon.stop()
        podman.clean()
        podman.podman("network", "rm", "-f", NATIVE_NETWORK, check=False)
    return results


def daemon_cost(
    podman: PodmanService, work: Path, n: int, idle_seconds: float
) -> tuple[float, float]:
    directory = work / f"cost-{n}"
    write_services(directory, *(service_doc(f"svc{i:03d}") for i in range(n)))
    daemon = Daemon(podman, directory, work / "cost-state", work / "cost.log", resync=30).start()
    try:
        wait_until(lambda: daemon.metric("paid_services_converged") == n, 600, 0.5)
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
        podman.clean()


def _ms(values: list[float], how: Callable[[list[float]], float]) -> str:
    return f"{how(values) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="20,100")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between two breaks")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    base = Path(tempfile.mkdtemp(prefix="paid-bench-heal-"))
    podman = PodmanService.start(base)
    lines: list[str] = []
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        events = Events(podman.url)
        for n in sizes:
            results = measure(podman, events, work, n, rounds=args.rounds, pause=args.pause)
            for (how, healer), pairs in results.items():
                broken, dead = [b for b, _ in pairs], [d for _, d in pairs]
                lines.append(
                    f"| {n} | {how} | {healer} | {len(pairs)} "
                    f"| {_ms(broken, statistics.median)} | {_ms(broken, max)} "
                    f"| {_ms(dead, statistics.median)} | {_ms(dead, max)} |"
                )
        print(f"daemon cost with {max(sizes)} services ...", file=sys.stderr, flush=True)
        rss, cpu = daemon_cost(podman, work, max(sizes), args.idle_seconds)
    finally:
        podman.stop()

    section = "\n".join(
        [
            "Both tools' containers present; rounds interleave them (see the script's",
            "docstring). Latency to the replacement's `start` event, on Podman's clock:",
            "from just before the break request, and from the container's death (its",
            "`died` event; `remove` for rm). Each break hits a service not broken before",
            "in the run: the first restart of a crash loop, at once. Podman writes `died`",
            "when something first looks at the dead container (paid's look comes at once;",
            "otherwise its clean-up process, tens of ms later): compare the tools on the",
            "columns from the break.",
            "",
            "### Heal latency",
            "",
            "| N | break | healer | trials | from the break: median | max "
            "| from the death: median | max |",
            "|---|---|---|---|---|---|---|---|",
            *lines,
            "",
            f"### Daemon cost, {max(sizes)} services converged, idle",
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
