"""The reliability suite, long: fault trials and fuzzing, written to docs/reliability.md.

Run by hand (``.venv/bin/python -m bench.reliability [--trials 30] [--seed 7]``);
needs root and Podman. It runs the same trials as
``tests/integration/test_reliability_podman.py`` (kill -9 during a cold
apply, a rollout and a restore; two writers at once), many times, and the
two property tests (mutated desired-state files, hostile backup
archives) with many more examples, then writes what was tried and what
was lost.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import reliability
from tests.harness import PodmanService

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"

TRIALS = {
    "kill -9 during a cold apply (6 services)": reliability.kill_during_cold_apply,
    "kill -9 during a rollout (6 services)": reliability.kill_during_rollout,
    "kill -9 during a StartFirst rollout (6 services)": reliability.kill_during_start_first_rollout,
    "kill -9 during a canary and its promotion (6 services)": (
        reliability.kill_during_canary_rollout
    ),
    "kill -9 during a restore": reliability.kill_during_restore,
    "two `paid apply --wait` at once": reliability.concurrent_applies,
}
FUZZ = {
    "mutated desired-state files": "tests/unit/test_loading_hostile.py::"
    "test_mutated_files_load_or_fail_with_located_errors",
    "generated hostile backup archives": "tests/unit/test_hostile_archives.py::"
    "test_no_generated_archive_touches_anything_outside",
    "compose files with hostile values at every key": "tests/unit/test_importers_hostile.py::"
    "test_hostile_values_at_every_key_are_problems_not_crashes",
    "mutated compose files": "tests/unit/test_importers_hostile.py::"
    "test_mutated_compose_files_are_problems_not_crashes",
    "mutated Quadlet units": "tests/unit/test_importers_hostile.py::"
    "test_mutated_quadlet_units_are_problems_not_crashes",
}


def _fuzz(test: str, examples: int) -> tuple[bool, float]:
    env = {**os.environ, "PAID_FUZZ_EXAMPLES": str(examples)}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="per kind of fault")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--examples", type=int, default=5000, help="per property test")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    rows = []
    base = Path(tempfile.mkdtemp(prefix="paid-reliability-"))
    podman = PodmanService.start(base)
    try:
        podman.build_images()
        for label, trial in TRIALS.items():
            print(f"{label} ...", file=sys.stderr, flush=True)
            work = base / f"work-{len(rows)}"
            work.mkdir()
            start = time.monotonic()
            tally = trial(podman, work, random.Random(args.seed), args.trials)
            seconds = time.monotonic() - start
            lost = "; ".join(tally.lost) or "nothing"
            rows.append(f"| {label} | {tally.trials} | {tally.faults} | {seconds:.0f} s | {lost} |")
    finally:
        podman.stop()
    fuzz_rows = []
    for label, test in FUZZ.items():
        print(f"{label} ...", file=sys.stderr, flush=True)
        ok, seconds = _fuzz(test, args.examples)
        held = (
            "every problem located, none over 10 s"
            if "test_importers" in test
            else ("nothing outside touched")
        )
        result = f"no exception, {held}" if ok else "FAILED (see pytest)"
        fuzz_rows.append(f"| {label} | up to {args.examples} | {seconds:.0f} s | {result} |")

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = "\n".join(
        [
            "# Reliability",
            "",
            "Written by `bench/reliability.py` (seed "
            f"{args.seed}, {args.trials} trials per fault, {stamp}). CI runs the same trials "
            "short (`tests/integration/test_reliability_podman.py`, 2 each) and the property "
            "tests with 300-400 examples.",
            "",
            "After every fault the next `paid apply` must converge and: one container per "
            "service (no duplicates, nothing left aside), every container running the "
            "image last applied, no revision left `progressing`, none quarantined by the "
            "fault, the store's `PRAGMA integrity_check` ok; a restore's volume holds the old "
            "or the restored content, never a mix or nothing.",
            "",
            "| fault | trials | faults injected | time | lost |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "| property test | inputs tried | time | result |",
            "|---|---|---|---|",
            *fuzz_rows,
            "",
        ]
    )
    print(text)
    if not args.no_write:
        DOC.write_text(text)


if __name__ == "__main__":
    main()
