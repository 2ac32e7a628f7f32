"""Benchmark: requests through the guestbook's nginx while its app rolls out.

Run by hand: ``.venv/bin/python -m bench.proxy_deploys [--rounds N]``; needs
debootstrap for the example's images (cached in ``PAID_EXAMPLE_CACHE``).
On a private Podman the example is applied as it ships (nginx → app →
redis; nginx resolves ``app`` every second and retries the next address on
a refused or timed-out connect). Two threads on the host ask nginx for the
page, each as fast as answers come back (a 1 s deadline per request).

Rounds alternate the app's strategy: StartFirst (as the example ships)
and Recreate, each a ``paid apply`` of a new revision (a changed title in
``app/app.env``). Per round: the requests made from the apply's start to
1.5 s after its end, those that failed (no answer, or not 200), and the
longest time between two answered requests. Prints a table and writes its
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from bench.report import write_section
from tests.harness import PodmanService, build_example_images, free_port
from tests.reliability import _paid

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "guestbook"
STRATEGIES = ("StartFirst", "Recreate")


class Asker(threading.Thread):
    def __init__(self, port: int, seen: list[tuple[float, bool]]) -> None:
        super().__init__(daemon=True)
        self.port, self.seen, self.stop = port, seen, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1) as r:
                    r.read()
                    ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False  # refused, reset, timed out, not 200, or cut short
            self.seen.append((time.time(), ok))


def _judge(seen: list[tuple[float, bool]]) -> tuple[int, int, float, float]:
    """Requests, failed ones, the longest gap between answers, requests per second."""
    answered = [t for t, ok in seen if ok]
    gap = max((b - a for a, b in itertools.pairwise(answered)), default=0.0)
    rate = len(seen) / (seen[-1][0] - seen[0][0]) if len(seen) > 1 else 0.0
    return len(seen), sum(1 for _, ok in seen if not ok), gap, rate


def _round(app: Path, strategy: str, i: int) -> None:
    doc = yaml.safe_load((app / "app.yaml").read_text())
    doc["spec"]["rollout"]["strategy"] = strategy
    (app / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (app / "app" / "app.env").write_text(f'GUESTBOOK_TITLE="guestbook {i}"\nREDIS_PORT=6379\n')


Found = tuple[int, int, float, float]


def rounds(podman: PodmanService, work: Path, count: int) -> dict[str, list[Found]]:
    app, state, port = work / "guestbook", work / "state", free_port()
    shutil.copytree(EXAMPLE, app)
    proxy = yaml.safe_load((app / "proxy.yaml").read_text())
    proxy["spec"]["ports"] = [f"127.0.0.1:{port}:80"]
    (app / "proxy.yaml").write_text(yaml.safe_dump(proxy, sort_keys=False))
    if _paid(podman, state, "apply", str(app)).returncode != 0:
        raise SystemExit("the first apply failed")
    seen: list[tuple[float, bool]] = []
    askers = [Asker(port, seen) for _ in range(2)]
    for asker in askers:
        asker.start()
    time.sleep(2)
    results: dict[str, list[Found]] = {s: [] for s in STRATEGIES}
    for i in range(1, count * len(STRATEGIES) + 1):
        strategy = STRATEGIES[(i - 1) % len(STRATEGIES)]
        _round(app, strategy, i)
        before = time.time()
        applied = _paid(podman, state, "apply", str(app))
        time.sleep(1.5)  # answers after the apply, from the new app alone
        after = time.time()
        if applied.returncode != 0:
            raise SystemExit(f"round {i}: apply exited {applied.returncode}: {applied.stdout}")
        results[strategy].append(_judge([s for s in list(seen) if before <= s[0] <= after]))
        print(f"round {i} {strategy}: {results[strategy][-1]}", file=sys.stderr, flush=True)
    for asker in askers:
        asker.stop.set()
    return results


def _row(strategy: str, found: list[Found]) -> str:
    failed = [f for _, f, _, _ in found]
    gaps = [g * 1000 for _, _, g, _ in found]
    rate = statistics.median(r for _, _, _, r in found)
    clean = sum(1 for f in failed if f == 0)
    return (
        f"| {strategy} | {len(found)} | {clean} of {len(found)} "
        f"| {sum(failed)} of {sum(n for n, _, _, _ in found)} (max {max(failed)} in a round) "
        f"| {statistics.median(gaps):.0f} ms (max {max(gaps):.0f}) | {rate:.0f}/s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each strategy")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="paid-bench-proxy-"))
    podman = PodmanService.start(base)
    try:
        build_example_images(podman, EXAMPLE)
        work = base / "work"
        work.mkdir()
        found = rounds(podman, work, args.rounds)
    finally:
        podman.stop()
    section = "\n".join(
        [
            "### Requests through nginx while the guestbook's app rolls out",
            "",
            "`examples/guestbook` as it ships (nginx `resolver valid=1s`, "
            "`proxy_next_upstream error timeout`); two host threads ask nginx as fast as "
            "it answers (1 s deadline). Each round is a `paid apply` of a new app revision "
            "(`minReadySeconds` 2, `drainSeconds` 3), strategies alternating.",
            "",
            "| app strategy | rounds | rounds with no failure | failed requests "
            "| longest gap between answers (median) | request rate |",
            "|---|---|---|---|---|---|",
            *(_row(s, found[s]) for s in STRATEGIES),
        ]
    )
    print(section)
    if not args.no_write:
        write_section("proxy-deploys", "Deploys behind a proxy (`bench/proxy_deploys.py`)", section)


if __name__ == "__main__":
    main()
