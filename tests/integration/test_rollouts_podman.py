"""Health-gated rollouts and automatic rollback, on the suite's real Podman.

Probes are real: httpGet and tcpSocket go to the container's address on
Podman's network, exec runs inside the container.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from paid.storage.store import FILENAME, Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, free_port, service_doc, write_services

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
HTTP_READY = {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}


def web(
    image: str = IMAGE,
    *,
    command: list[str] = HTTPD,
    ready: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    rollout = {"minReadySeconds": 2, "progressDeadlineSeconds": 8}
    rollout.update(spec.pop("rollout", {}))
    return service_doc(
        "web",
        image=image,
        command=command,
        readinessProbe=ready or HTTP_READY,
        rollout=rollout,
        **spec,
    )


def _container(podman: PodmanService, name: str) -> dict[str, Any] | None:
    return next((c for c in podman.containers() if c["Names"][0] == name), None)


def _revision(podman: PodmanService, name: str = "web") -> str | None:
    c = _container(podman, name)
    return None if c is None else (c.get("Labels") or {}).get("paid.revision")


def _creates(podman: PodmanService, mark: int, name: str = "web") -> int:
    return sum(1 for s, n in podman.container_events_since(mark) if s == "create" and n == name)


def _create_times(podman: PodmanService, mark: int, name: str) -> list[float]:
    """When Podman created each container of ``name`` since ``mark`` (Podman's clock).

    A crash heal creates the fresh copy as ``<name>.paid-next`` and renames it.
    """
    names = (name, f"{name}.paid-next")
    return [
        datetime.fromisoformat(e["Time"]).timestamp()
        for e in podman.events()[mark:]
        if e.get("Type") == "container" and e.get("Status") == "create" and e.get("Name") in names
    ]


def _full_passes(daemon: Daemon) -> float:
    return daemon.metric("paid_reconcile_passes_total", 'result="success",scope="full"') or 0.0


def _history(store_dir: Path, service: str = "web") -> list[tuple[int, str]]:
    with Store.open(store_dir) as store:
        return [(r.number, r.outcome) for r in store.revisions(service)]


def _deployed_v1(daemon: Daemon, podman: PodmanService, desired_dir: Path) -> str:
    write_services(desired_dir, web())
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 30)
    running = _container(podman, "web")
    assert running is not None
    return str(running["Id"])


def test_healthy_rollout_replaces_the_old_revision(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """v1 -> v2 passes the gate: v2 serves, v1 is superseded, nothing is left aside."""
    _deployed_v1(daemon, podman, desired_dir)

    write_services(desired_dir, web(IMAGE_V2))

    wait_until(lambda: _history(daemon.state_dir) == [(1, "superseded"), (2, "succeeded")], 40)
    assert "2" == _revision(podman)
    assert _container(podman, "web.paid-prev") is None
    assert 2.0 == daemon.metric("paid_rollouts_total", 'result="succeeded"')  # v1, then v2
    with Store.open(daemon.state_dir) as store:
        image_ids = {r.number: r.image_id for r in store.revisions("web")}
    assert podman.inspect("web")["Image"] == image_ids[2]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param(
            {"ready": {"exec": {"command": ["test", "-f", "/tmp/never"]}, "periodSeconds": 1}},
            "not ready within progressDeadlineSeconds",
            id="never-ready",
        ),
        pytest.param(
            {"command": ["sh", "-c", "echo dying words; exit 3"]},
            "exited with code 3",
            id="crash-on-start",
        ),
        pytest.param(
            {
                "command": [
                    "sh",
                    "-c",
                    "touch /tmp/ok; httpd -p 8080 -h /www; sleep 3; rm /tmp/ok; sleep 3600",
                ],
                "ready": {
                    "exec": {"command": ["test", "-f", "/tmp/ok"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
                "rollout": {"minReadySeconds": 6, "progressDeadlineSeconds": 20},
            },
            "lost readiness",
            id="readiness-lost-during-bake",
        ),
    ],
)
def test_failed_rollout_rolls_back_and_is_not_retried(
    daemon: Daemon, podman: PodmanService, desired_dir: Path, bad: dict[str, Any], why: str
) -> None:
    """The bad revision goes, the old container is back and ready, the bad spec is quarantined."""
    old_id = _deployed_v1(daemon, podman, desired_dir)

    write_services(desired_dir, web(IMAGE_V2, **bad))

    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 60)
    wait_until(daemon.ready, 30)
    assert old_id == (_container(podman, "web") or {}).get("Id")  # the very container, put back
    assert "1" == _revision(podman)
    with Store.open(daemon.state_dir) as store:
        (failed,) = [r for r in store.revisions("web") if r.number == 2]
        events = [e.kind for e in store.events(service="web")]
    assert why in failed.reason
    assert failed.quarantined
    assert "rollout_rolled_back" in events
    mark = podman.event_mark()
    passes = _full_passes(daemon)
    daemon.signal(signal.SIGHUP)  # even a reload does not retry it
    wait_until(lambda: _full_passes(daemon) > passes, 30)  # the reload's pass ran...
    wait_until(lambda: daemon.status()["reconciling"] == [], 30)  # ...and what it queued
    assert 0 == _creates(podman, mark)
    web_status = daemon.service("web")
    assert "quarantined" in (web_status["note"] or "")


def test_missing_image_never_touches_the_running_revision(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """The image is checked first: the old container is not even stopped. The revision is not
    quarantined (the world is at fault, not it): it backs off and is tried again."""
    old_id = _deployed_v1(daemon, podman, desired_dir)
    mark = podman.event_mark()

    write_services(desired_dir, web("localhost/paid-test/absent:2"))

    wait_until(lambda: (2, "failed") in _history(daemon.state_dir), 30)
    assert old_id == (_container(podman, "web") or {}).get("Id")
    assert [] == [
        (s, n)
        for s, n in podman.container_events_since(mark)
        if n == "web" and s in ("stop", "died", "remove")
    ]


def test_liveness_failure_restarts_with_a_fresh_container(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """A failing liveness probe replaces the container by a fresh one of the same revision."""
    liveness = {
        "exec": {"command": ["test", "-f", "/tmp/alive"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    write_services(
        desired_dir,
        web(
            command=["sh", "-c", "touch /tmp/alive; exec httpd -f -p 8080 -h /www"],
            livenessProbe=liveness,
        ),
    )
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 30)
    first = (_container(podman, "web") or {})["Id"]

    podman.podman("exec", "web", "rm", "/tmp/alive")

    wait_until(lambda: (_container(podman, "web") or {}).get("Id") not in (None, first), 30)
    assert "1" == _revision(podman)
    wait_until(
        lambda: (
            (daemon.metric("paid_service_restarts_total", 'reason="liveness",service="web"') or 0)
            >= 1
        ),
        10,
    )


def test_depends_on_waits_for_readiness(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """app starts only once db is *ready*, not merely running."""
    db = service_doc(
        "db",
        command=["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 3600"],
        readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
    )
    app = service_doc("app", dependsOn=["db"])
    write_services(desired_dir, db, app)
    mark = podman.event_mark()

    daemon.start()

    wait_until(lambda: _container(podman, "app") is not None, 30)
    events = podman.container_events_since(mark)
    db_started = next(i for i, (s, n) in enumerate(events) if s == "start" and n == "db")
    app_created = next(i for i, (s, n) in enumerate(events) if s == "create" and n == "app")
    assert db_started < app_created
    with Store.open(daemon.state_dir) as store:
        probe_ok = [e for e in store.events(service="db") if e.kind == "probe_transition"]
    assert probe_ok, "db's readiness transition is journalled"
    assert probe_ok[0].at <= next(
        e.at for e in store_events(daemon.state_dir, "app") if e.kind == "rollout_started"
    )


def store_events(state_dir: Path, service: str) -> list[Any]:
    with Store.open(state_dir) as store:
        return store.events(service=service)


def test_first_deploy_that_fails_backs_off(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """Nothing to roll back to: attempts back off (1 s, then 2 s here) — not a tight loop."""
    write_services(desired_dir, web(command=["sh", "-c", "exit 1"]))
    mark = podman.event_mark()
    daemon.env["PAID_TIMINGS"] = "first_deploy=1"
    daemon.start(wait_ready=False)

    wait_until(lambda: daemon.service("web")["crashLoopBackOff"], 20)
    shown = subprocess.run(
        [sys.executable, "-m", "paid", "status", "--listen", f"127.0.0.1:{daemon.port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 2 == shown.returncode  # a crash loop is not as desired
    wait_until(lambda: len(_create_times(podman, mark, "web")) >= 3, 60)

    assert "CrashLoopBackOff" in shown.stdout
    first, second, third = _create_times(podman, mark, "web")[:3]
    # Each attempt fails its gate, then waits out the back-off (10 % allowed for the
    # time between paid's attempt and Podman's create event).
    assert second - first >= 0.9 * 1.0
    assert third - second >= 0.9 * 2.0
    failures = [e for e in store_events(daemon.state_dir, "web") if e.kind == "rollout_failed"]
    assert len(failures) >= 2  # each attempt before the third was judged and failed


def test_history_and_rollback_cli(daemon: Daemon, podman: PodmanService, desired_dir: Path) -> None:
    """`paid rollback web --to-revision 1` pins web to 1 through the gate; history shows it."""
    _deployed_v1(daemon, podman, desired_dir)
    write_services(desired_dir, web(IMAGE_V2))
    wait_until(lambda: (2, "succeeded") in _history(daemon.state_dir), 40)
    env_args = ["--podman-url", podman.url, "--state-dir", str(daemon.state_dir)]

    rollback = subprocess.run(
        [
            sys.executable,
            "-m",
            "paid",
            "rollback",
            "web",
            str(desired_dir),
            "--to-revision",
            "1",
            *env_args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == rollback.returncode, rollback.stderr
    wait_until(lambda: _revision(podman) == "1" and _container(podman, "web.paid-prev") is None, 40)

    history = subprocess.run(
        [sys.executable, "-m", "paid", "history", "web", "--output", "json", *env_args],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(history.stdout)
    assert 1 == doc["pinnedRevision"]
    assert [1, 2] == [r["revision"] for r in doc["revisions"]]
    status = subprocess.run(
        # Ask this test's daemon, never whatever else listens on the default port.
        [
            sys.executable,
            "-m",
            "paid",
            "status",
            str(desired_dir),
            *env_args,
            "--listen",
            f"127.0.0.1:{daemon.port}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "pinned to revision 1" in status.stdout
    assert 2 == status.returncode  # a pin is drift from the desired state


def test_kill_9_mid_rollout_then_restart(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """paid dies while v2 bakes; the next paid finishes or undoes it: one web, consistent store."""
    _deployed_v1(daemon, podman, desired_dir)
    write_services(desired_dir, web(IMAGE_V2, rollout={"minReadySeconds": 4}))
    wait_until(lambda: _container(podman, "web.paid-prev") is not None, 20, 0.02)

    daemon.kill()
    daemon.start(wait_ready=False)

    wait_until(lambda: _container(podman, "web.paid-prev") is None and _revision(podman) == "2", 60)
    running = [c for c in podman.containers() if c["State"] == "running"]
    assert ["web"] == [c["Names"][0] for c in running]
    assert (2, "succeeded") in _history(daemon.state_dir)
    db = sqlite3.connect(daemon.state_dir / FILENAME)
    assert [("ok",)] == db.execute("PRAGMA integrity_check").fetchall()
    db.close()


def _apply(
    podman: PodmanService, state_dir: Path, directory: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "paid",
            "apply",
            str(directory),
            "--podman-url",
            podman.url,
            "--state-dir",
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_apply_waits_for_the_gate_and_fails_on_rollback(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`paid apply` shows rollout progress; exits 0 when it succeeded, 1 when it was rolled back."""
    write_services(desired_dir, web())
    first = _apply(podman, state_dir, desired_dir)
    assert 0 == first.returncode, first.stdout + first.stderr
    assert "web: Baking" in first.stdout
    assert "ok        rollout  web: succeeded" in first.stdout
    old_id = (_container(podman, "web") or {})["Id"]

    write_services(
        desired_dir, web(IMAGE_V2, ready={"exec": {"command": ["false"]}, "periodSeconds": 1})
    )
    second = _apply(podman, state_dir, desired_dir)

    assert 1 == second.returncode
    assert (
        "ROLLED_BACK rollout  web: rolled back (revision 2 not ready within progressDeadlineSeconds"
        in second.stdout
    )
    assert old_id == (_container(podman, "web") or {})["Id"]
    third = _apply(podman, state_dir, desired_dir)  # quarantined: no second attempt
    assert 0 == third.returncode
    assert "quarantined" in third.stdout


def test_revisions_record_the_git_commit(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """In a git checkout each revision carries the commit, and whether the tree was dirty."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(desired_dir), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q")
    write_services(desired_dir, web())
    git("add", ".")
    git("commit", "-qm", "v1")
    head = git("rev-parse", "HEAD")
    assert 0 == _apply(podman, state_dir, desired_dir).returncode
    write_services(desired_dir, web(IMAGE_V2))  # not committed
    assert 0 == _apply(podman, state_dir, desired_dir).returncode

    with Store.open(state_dir) as store:
        revisions = [(r.number, r.git_commit, r.git_dirty) for r in store.revisions("web")]
    assert [(1, head, False), (2, head, True)] == revisions


def _canary_web(image: str, port: int, canary_port: int, **spec: Any) -> dict[str, Any]:
    return web(
        image,
        ports=[f"127.0.0.1:{port}:8080"],
        rollout={
            "strategy": "Canary",
            "minReadySeconds": 1,
            "progressDeadlineSeconds": 8,
            "canary": {"ports": [f"127.0.0.1:{canary_port}:8080"], "durationSeconds": 3},
        },
        **spec,
    )


def test_canary_is_promoted_after_its_duration(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """The canary runs beside the old revision on its own port, then v2 is rolled out normally."""
    port, canary_port = free_port(), free_port()
    write_services(desired_dir, _canary_web(IMAGE, port, canary_port))
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 30)

    write_services(desired_dir, _canary_web(IMAGE_V2, port, canary_port))

    def states() -> tuple[str | None, str | None]:
        seen = {c["Names"][0]: c["State"] for c in podman.containers()}
        return seen.get("web"), seen.get("web-canary")

    wait_until(lambda: states() == ("running", "running"), 15, 0.05)  # side by side
    assert "1" == _revision(podman)
    wait_until(lambda: (2, "succeeded") in _history(daemon.state_dir), 40)
    assert "2" == _revision(podman)
    assert _container(podman, "web-canary") is None
    kinds = [e.kind for e in store_events(daemon.state_dir, "web")]
    assert kinds.index("canary_started") < kinds.index("canary_promoted") < len(kinds) - 1


def test_canary_that_fails_is_aborted_and_the_old_revision_untouched(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """A canary never ready: removed, v2 quarantined, the old container never even stopped."""
    port, canary_port = free_port(), free_port()
    write_services(desired_dir, _canary_web(IMAGE, port, canary_port))
    daemon.start()
    wait_until(lambda: _history(daemon.state_dir) == [(1, "succeeded")], 30)
    old_id = (_container(podman, "web") or {})["Id"]
    mark = podman.event_mark()

    write_services(
        desired_dir,
        _canary_web(
            IMAGE_V2, port, canary_port, ready={"exec": {"command": ["false"]}, "periodSeconds": 1}
        ),
    )

    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 40)
    assert old_id == (_container(podman, "web") or {})["Id"]
    assert [] == [
        s for s, n in podman.container_events_since(mark) if n == "web" and s in ("stop", "died")
    ]
    assert _container(podman, "web-canary") is None
    with Store.open(daemon.state_dir) as store:
        (failed,) = [r for r in store.revisions("web") if r.number == 2]
    assert failed.reason.startswith("canary: ")
    assert failed.quarantined


def test_a_hanging_probe_is_cut_off_by_its_timeout(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """A readiness exec that would hang 60 s is cut off at timeoutSeconds; the rollout ends."""
    hanging = {"exec": {"command": ["sleep", "60"]}, "periodSeconds": 1, "timeoutSeconds": 1}
    write_services(desired_dir, web(ready=hanging, rollout={"progressDeadlineSeconds": 4}))
    started = time.monotonic()
    daemon.start(wait_ready=False)

    wait_until(lambda: (1, "failed") in _history(daemon.state_dir), 30)

    assert time.monotonic() - started < 30  # not the 60 s the probe would hang
    with Store.open(daemon.state_dir) as store:
        (revision,) = store.revisions("web")
    assert "not ready within progressDeadlineSeconds (4 s)" in revision.reason


def test_a_crashed_revision_leaves_its_last_words_in_the_journal(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """The last log lines of a failed instance are kept with the rollback."""
    _deployed_v1(daemon, podman, desired_dir)

    write_services(desired_dir, web(IMAGE_V2, command=["sh", "-c", "echo dying words; exit 3"]))

    wait_until(lambda: (2, "rolled_back") in _history(daemon.state_dir), 40)
    (event,) = [e for e in store_events(daemon.state_dir, "web") if e.kind == "rollout_rolled_back"]
    assert "dying words" in event.data["last_log_lines"]


def test_a_crashing_service_backs_off(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """Deployed fine, then crashing every 2 s: restarted at once, then 3 s, then 6 s later."""
    write_services(desired_dir, service_doc("flaky", command=["sh", "-c", "sleep 2; exit 1"]))
    mark = podman.event_mark()
    daemon.env["PAID_TIMINGS"] = "crash=3"
    daemon.start(wait_ready=False)

    wait_until(lambda: daemon.service("flaky")["crashLoopBackOff"], 30)
    assert 1.0 == daemon.metric("paid_service_crash_loop_backoff", 'service="flaky"')
    wait_until(lambda: len(_create_times(podman, mark, "flaky")) >= 4, 60)

    created = _create_times(podman, mark, "flaky")[:4]
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    # Each container runs 2 s before it crashes; the back-off counts from the last restart.
    # The back-off counts from paid's attempt, the gaps from Podman's create events:
    # allow 10 % for the difference. Without back-off every gap would be ~2 s.
    assert gaps[0] >= 2.0  # first restart: at once after the crash
    assert gaps[1] >= 0.9 * 3.0  # then the back-off's base
    assert gaps[2] >= 0.9 * 6.0  # then twice that
    restarts = daemon.metric("paid_service_restarts_total", 'reason="crash",service="flaky"') or 0
    assert restarts >= 3


def test_rollback_without_a_daemon_deploys_it_there_and_then(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """No daemon: `paid rollback` drives the rollout itself, through the gate, and exits on it."""
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}

    def paid(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "paid", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    write_services(desired_dir, web())
    assert 0 == paid("apply", str(desired_dir)).returncode
    write_services(desired_dir, web(IMAGE_V2))
    assert 0 == paid("apply", str(desired_dir)).returncode
    assert "2" == _revision(podman)

    rolled = paid("rollback", "web", str(desired_dir), "--to-revision", "1")

    assert 0 == rolled.returncode, rolled.stdout + rolled.stderr
    assert "1" == _revision(podman)  # already running when the command returns
    again = paid("apply", str(desired_dir))  # the pin holds: apply keeps revision 1
    assert 0 == again.returncode, again.stdout + again.stderr
    assert "1" == _revision(podman)
