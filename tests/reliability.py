"""Fault-injection trials: kill -9 at random moments, two writers at once.

Each trial drives the real ``paid`` command line against the suite's
Podman, breaks it at a moment drawn from a seeded RNG, and checks the
invariants a user relies on: one container per service (no duplicates,
nothing left aside), every revision settled, the store's
``integrity_check`` ok, and the next ``paid apply`` converging with
nothing lost. ``tests/integration/test_reliability_podman.py`` runs a few
trials in CI (``PAID_RELIABILITY_TRIALS``, default 2);
``bench/reliability.py`` runs many and writes ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from paid.storage.store import FILENAME, Store
from tests.harness import IMAGE, IMAGE_V2, PodmanService, service_doc, write_services

SERVICES = [f"r{i}" for i in range(6)]


@dataclass
class Tally:
    """What the trials did and found."""

    trials: int = 0
    faults: int = 0
    lost: list[str] = field(default_factory=list)  # one line per broken invariant

    def add(self, other: Tally) -> None:
        self.trials += other.trials
        self.faults += other.faults
        self.lost.extend(other.lost)


def _env(podman: PodmanService, state_dir: Path) -> dict[str, str]:
    return {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}


def _paid(podman: PodmanService, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        env=_env(podman, state_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _killed_after(
    podman: PodmanService, state_dir: Path, delay: float, *args: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "paid", *args],
        env=_env(podman, state_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def check_invariants(
    podman: PodmanService, state_dir: Path, names: list[str], image: str, label: str
) -> list[str]:
    """Everything that must hold once ``paid apply`` has run after a fault."""
    lost: list[str] = []
    containers = podman.containers()
    listed = sorted(c["Names"][0] for c in containers)
    if listed != sorted(names):
        lost.append(f"{label}: containers {listed}, wanted {sorted(names)}")
    if {c["State"] for c in containers} != {"running"}:
        lost.append(f"{label}: not all running: {[c['State'] for c in containers]}")
    images = {podman.inspect(n)["ImageName"] for n in names if n in listed}
    if images and images != {image}:
        lost.append(f"{label}: images {images}, wanted {image}")
    try:
        with contextlib.closing(sqlite3.connect(state_dir / FILENAME)) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as err:
        check = (str(err),)
    if check != ("ok",):
        lost.append(f"{label}: store integrity_check {check}")
        return lost
    with Store.open(state_dir) as store:
        if store.progressing():
            lost.append(f"{label}: revisions left progressing: {store.progressing()}")
        quarantined = [r.number for n in names for r in store.revisions(n) if r.quarantined]
        if quarantined:
            lost.append(f"{label}: revisions quarantined by a fault: {quarantined}")
    return lost


def kill_during_cold_apply(
    podman: PodmanService, work: Path, rng: random.Random, trials: int
) -> Tally:
    """From nothing: kill -9 the apply at a random moment, then apply again."""
    tally = Tally()
    for trial in range(trials):
        podman.clean()
        state_dir, desired = work / f"cold-{trial}-state", work / f"cold-{trial}"
        write_services(desired, *(service_doc(n, rollout={"minReadySeconds": 1}) for n in SERVICES))
        delay = rng.uniform(0.2, 3.0)
        _killed_after(podman, state_dir, delay, "apply", str(desired))
        again = _paid(podman, state_dir, "apply", str(desired))
        tally.trials += 1
        tally.faults += 1
        label = f"cold apply, kill at {delay:.2f} s"
        if again.returncode != 0:
            tally.lost.append(f"{label}: the next apply exited {again.returncode}")
        tally.lost.extend(check_invariants(podman, state_dir, SERVICES, IMAGE, label))
    return tally


def kill_during_rollout(
    podman: PodmanService, work: Path, rng: random.Random, trials: int
) -> Tally:
    """v1 running everywhere; kill -9 the apply of v2 at a random moment; apply again."""
    tally = Tally()
    podman.clean()
    state_dir, desired = work / "rollout-state", work / "rollout"
    write_services(desired, *(service_doc(n) for n in SERVICES))
    if _paid(podman, state_dir, "apply", str(desired)).returncode != 0:
        return Tally(lost=["rollout: the first apply failed"])
    image = IMAGE
    for _ in range(trials):
        image = IMAGE_V2 if image == IMAGE else IMAGE
        write_services(desired, *(service_doc(n, image=image) for n in SERVICES))
        delay = rng.uniform(0.2, 2.5)
        _killed_after(podman, state_dir, delay, "apply", str(desired))
        again = _paid(podman, state_dir, "apply", str(desired))
        tally.trials += 1
        tally.faults += 1
        label = f"rollout to {image.rsplit(':', 1)[-1]}, kill at {delay:.2f} s"
        if again.returncode != 0:
            tally.lost.append(f"{label}: the next apply exited {again.returncode}: {again.stdout}")
        tally.lost.extend(check_invariants(podman, state_dir, SERVICES, image, label))
    return tally


def kill_during_start_first_rollout(
    podman: PodmanService, work: Path, rng: random.Random, trials: int
) -> Tally:
    """StartFirst: kill -9 the apply of v2 at a random moment; never zero copies, then one."""
    rollout = {"strategy": "StartFirst", "minReadySeconds": 1, "drainSeconds": 1}
    return _kill_during_beside_rollout(
        podman, work, rng, trials, label="start-first", rollout=rollout
    )


def kill_during_canary_rollout(
    podman: PodmanService, work: Path, rng: random.Random, trials: int
) -> Tally:
    """Canary by name, then its StartFirst promotion: kill -9 at a random moment of either."""
    canary = {"durationSeconds": 2, "intervalSeconds": 1}
    rollout = {"strategy": "Canary", "minReadySeconds": 1, "drainSeconds": 1, "canary": canary}
    return _kill_during_beside_rollout(
        podman, work, rng, trials, label="canary", rollout=rollout, longest=6.0
    )


def _kill_during_beside_rollout(
    podman: PodmanService,
    work: Path,
    rng: random.Random,
    trials: int,
    *,
    label: str,
    rollout: dict[str, object],
    longest: float = 4.0,
) -> Tally:
    """A rollout that runs a copy beside the old one; at the kill every service has one
    running copy or more, after the next apply exactly one, of the desired image."""
    tally = Tally()
    podman.clean()
    state_dir, desired = work / f"{label}-state", work / label
    write_services(desired, *(service_doc(n, rollout=rollout) for n in SERVICES))
    if _paid(podman, state_dir, "apply", str(desired)).returncode != 0:
        return Tally(lost=[f"{label}: the first apply failed"])
    image = IMAGE
    for _ in range(trials):
        image = IMAGE_V2 if image == IMAGE else IMAGE
        write_services(desired, *(service_doc(n, image=image, rollout=rollout) for n in SERVICES))
        delay = rng.uniform(0.2, longest)
        _killed_after(podman, state_dir, delay, "apply", str(desired))
        what = f"{label} rollout to {image.rsplit(':', 1)[-1]}, kill at {delay:.2f} s"
        running = {c["Names"][0] for c in podman.containers() if c["State"] == "running"}
        serving = {n for n in SERVICES if {n, f"{n}.paid-next", f"{n}-canary"} & running}
        if serving != set(SERVICES):
            tally.lost.append(f"{what}: no running copy of {sorted(set(SERVICES) - serving)}")
        again = _paid(podman, state_dir, "apply", str(desired))
        tally.trials += 1
        tally.faults += 1
        if again.returncode != 0:
            tally.lost.append(f"{what}: the next apply exited {again.returncode}: {again.stdout}")
        tally.lost.extend(check_invariants(podman, state_dir, SERVICES, image, what))
    return tally


def kill_during_restore(
    podman: PodmanService, work: Path, rng: random.Random, trials: int
) -> Tally:
    """A volume with known content; kill -9 a restore at a random moment.

    The volume must then hold either the content from before or the
    backup's, never a mix, never nothing; the next apply runs the service.
    """
    tally = Tally()
    podman.clean()
    state_dir, desired = work / "restore-state", work / "restore"
    doc = service_doc("db", volumes=["db-data:/data"], backup={"consistency": "stop"})
    write_services(desired, doc)
    if _paid(podman, state_dir, "apply", str(desired)).returncode != 0:
        return Tally(lost=["restore: the first apply failed"])
    podman.podman("exec", "db", "sh", "-c", "seq 1 20000 > /data/rows; echo backed > /data/mark")
    if _paid(podman, state_dir, "backup", "run", "db", str(desired)).returncode != 0:
        return Tally(lost=["restore: the backup failed"])
    for trial in range(trials):
        podman.podman("exec", "db", "sh", "-c", f"echo changed-{trial} > /data/mark")
        delay = rng.uniform(0.1, 2.0)
        _killed_after(podman, state_dir, delay, "restore", "db", str(desired))
        again = _paid(podman, state_dir, "apply", str(desired))
        tally.trials += 1
        tally.faults += 1
        label = f"restore, kill at {delay:.2f} s"
        if again.returncode != 0:
            tally.lost.append(f"{label}: the next apply exited {again.returncode}")
            continue
        mark = podman.podman("exec", "db", "cat", "/data/mark", check=False).strip()
        rows = podman.podman("exec", "db", "sh", "-c", "wc -l < /data/rows", check=False).strip()
        if mark not in ("backed", f"changed-{trial}") or rows != "20000":
            tally.lost.append(f"{label}: volume holds mark={mark!r}, rows={rows!r}")
    return tally


def concurrent_applies(podman: PodmanService, work: Path, rng: random.Random, trials: int) -> Tally:
    """Two `paid apply --wait` of different images at once: the later one wins, nothing breaks."""
    tally = Tally()
    podman.clean()
    state_dir = work / "race-state"
    a, b = work / "race-a", work / "race-b"
    write_services(a, *(service_doc(n) for n in SERVICES))
    write_services(b, *(service_doc(n, image=IMAGE_V2) for n in SERVICES))
    order = [(a, IMAGE), (b, IMAGE_V2)]
    for _ in range(trials):
        env = _env(podman, state_dir)
        procs = []
        for directory, _image in order:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "paid", "apply", str(directory), "--wait"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(rng.uniform(0.0, 0.5))
        finished: dict[int, float] = {}
        deadline = time.monotonic() + 300
        while len(finished) < 2 and time.monotonic() < deadline:
            for i, proc in enumerate(procs):
                if i not in finished and proc.poll() is not None:
                    finished[i] = time.monotonic()
            time.sleep(0.05)
        tally.trials += 1
        tally.faults += 1
        codes = [proc.wait(timeout=5) for proc in procs]
        if codes != [0, 0]:
            tally.lost.append(f"race: exits {codes}")
        last = order[max(finished, key=finished.__getitem__)][1] if finished else IMAGE
        tally.lost.extend(check_invariants(podman, state_dir, SERVICES, last, "race"))
        order.reverse()
    return tally
