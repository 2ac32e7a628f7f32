"""`paid run` as a process, against the suite's own real Podman.

The resync period is set far beyond each test's deadlines, so whatever
heals within them was healed by an event, not by the periodic resync.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, service_doc, write_services

pytestmark = pytest.mark.slow


def _services(
    directory: Path, *, image: str = IMAGE, names: tuple[str, ...] = ("db", "web", "worker")
) -> None:
    docs = [service_doc(n, image=image) for n in names]
    write_services(directory, *docs)


def _running(podman: PodmanService) -> dict[str, str]:
    return {c["Names"][0]: c["Id"] for c in podman.containers() if c["State"] == "running"}


@pytest.fixture
def daemon(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> Iterator[Daemon]:
    _services(desired_dir)
    d = Daemon(podman, desired_dir, state_dir, tmp_path / "daemon.log")
    yield d
    d.stop()


def test_ready_after_first_pass_with_everything_running(
    daemon: Daemon, podman: PodmanService
) -> None:
    """/readyz turns 200 only once the first pass converged the host."""
    daemon.start()

    assert {"db", "web", "worker"} == set(_running(podman))
    assert 3.0 == daemon.metric("paid_services_converged")
    assert 1.0 == daemon.metric("paid_ready")
    assert 1.0 == daemon.metric("paid_preflight_checks", 'check="image",status="OK"')  # at start
    assert 0.0 == daemon.metric("paid_preflight_checks", 'check="port",status="FAIL"')


def test_kill_heals_through_the_event_stream(daemon: Daemon, podman: PodmanService) -> None:
    """`podman kill` of a managed container: a fresh one runs long before any resync."""
    daemon.start()
    before = _running(podman)["web"]

    podman.podman("kill", "web")
    wait_until(lambda: "web" in _running(podman), 15)

    assert before != _running(podman)["web"]  # a fresh container ...
    assert "1" == podman.inspect("web")["Config"]["Labels"]["paid.revision"]  # ... same revision
    assert (daemon.metric("paid_reconcile_triggers_total", 'trigger="podman_event"') or 0) >= 1


def test_a_dead_process_is_noticed_at_once_and_its_replacement_takes_the_name(
    daemon: Daemon, podman: PodmanService, state_dir: Path
) -> None:
    """SIGKILL of the main process: the death watch wakes the heal, not the event stream;
    the fresh copy, started beside the dead one, answers to the name in DNS and takes it;
    the dead copy's last lines are kept and nothing is left beside."""
    daemon.start()
    dead = podman.inspect("web")
    mark = podman.event_mark()

    os.kill(int(dead["State"]["Pid"]), signal.SIGKILL)
    wait_until(lambda: _running(podman).get("web", dead["Id"]) != dead["Id"], 15)

    assert (daemon.metric("paid_reconcile_triggers_total", 'trigger="process_exit"') or 0) >= 1
    fresh = podman.inspect("web")
    assert "web" in fresh["NetworkSettings"]["Networks"]["paid"]["Aliases"]
    started = [n for action, n in podman.container_events_since(mark) if action == "start"]
    assert ["web.paid-next"] == started  # started beside the dead copy, then renamed
    wait_until(lambda: {c["Names"][0] for c in podman.containers()} == {"db", "web", "worker"}, 10)
    with Store.open(state_dir) as store:
        replaced = [e for e in store.events(service="web") if e.kind == "container_replaced"]
    assert 1 == len(replaced)
    assert "exited with code 137" in replaced[0].message
    assert "last_log_lines" in replaced[0].data


def test_rm_heals_through_the_event_stream(daemon: Daemon, podman: PodmanService) -> None:
    """`podman rm -f`: a new container of the same revision, long before any resync."""
    daemon.start()
    before = _running(podman)["db"]

    podman.podman("rm", "--force", "--time", "0", "db")
    wait_until(lambda: "db" in _running(podman), 15)

    assert before != _running(podman)["db"]
    assert "1" == podman.inspect("db")["Config"]["Labels"]["paid.revision"]


def test_burst_of_edits_coalesces_to_the_last(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """Twenty quick edits end in the last spec, with far fewer replacements than edits."""
    daemon.start()
    mark = podman.event_mark()

    for i in range(20):
        _services(desired_dir, image=IMAGE_V2 if i % 2 == 0 else IMAGE)
        time.sleep(0.02)
    _services(desired_dir, image=IMAGE_V2)

    wait_until(
        lambda: {podman.inspect(n)["ImageName"] for n in ("db", "web", "worker")} == {IMAGE_V2}, 30
    )
    creates = [n for s, n in podman.container_events_since(mark) if s == "create"]
    assert len(creates) < 3 * 10
    assert 1 == sum(1 for c in podman.containers() if c["Names"][0] == "web")


def test_invalid_directory_keeps_last_known_good(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """A broken file: nothing pruned, 503 with file:line, metrics say so; the fix is picked up."""
    daemon.start()
    ids = _running(podman)
    (desired_dir / "services.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: db}\nspec: {imagee: x}\n"
    )

    wait_until(lambda: daemon.get("/readyz")[0] == 503, 10)
    code, reason = daemon.get("/readyz")
    assert 503 == code
    assert "services.yaml:4: spec.image: an image, or a build to make one, is required" in reason
    assert 0.0 == daemon.metric("paid_desired_state_valid")
    podman.podman("rm", "--force", "--time", "0", "worker")
    wait_until(lambda: "worker" in _running(podman), 15)  # still enforced
    assert ids["db"] == _running(podman)["db"]

    _services(desired_dir)
    wait_until(daemon.ready, 10)
    assert 1.0 == daemon.metric("paid_desired_state_valid")


def test_restart_on_a_broken_checkout_enforces_the_stored_state(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """The last valid state survives the daemon: on a broken directory it prunes nothing."""
    daemon.start()
    assert 0 == daemon.stop()
    (desired_dir / "services.yaml").write_text("not: [valid")

    daemon.start(wait_ready=False)
    podman.podman("rm", "--force", "--time", "0", "web")

    wait_until(lambda: "web" in _running(podman), 15)
    assert {"db", "web", "worker"} == set(_running(podman))
    assert 503 == daemon.get("/readyz")[0]


def test_sighup_reloads(daemon: Daemon, podman: PodmanService, desired_dir: Path) -> None:
    """SIGHUP makes the daemon read the directory now (here: watching is slowed to 1 h)."""
    daemon.extra = ["--watch-interval", "3600"]
    daemon.start()
    _services(desired_dir, names=("db", "web", "worker", "extra"))

    daemon.signal(signal.SIGHUP)

    wait_until(lambda: "extra" in _running(podman), 15)


def test_podman_going_away_and_coming_back(daemon: Daemon, podman: PodmanService) -> None:
    """Podman's API down: the daemon stays up and says why; back: converged without a resync."""
    daemon.start()
    podman.pause()
    try:
        wait_until(
            lambda: "Podman" in daemon.get("/readyz")[1] or daemon.metric("paid_podman_up") == 0, 20
        )
        # Something happens while Podman's API is down (the CLI works on storage directly).
        podman.podman("rm", "--force", "--time", "0", "worker")
        assert 200 == daemon.get("/healthz")[0]
    finally:
        podman.resume()

    wait_until(lambda: "worker" in _running(podman), 30)
    wait_until(daemon.ready, 30)
    assert daemon.process is not None
    assert daemon.process.poll() is None


def test_sigterm_exits_zero_and_leaves_services_running(
    daemon: Daemon, podman: PodmanService
) -> None:
    """Stopping the daemon never stops what it manages."""
    daemon.start()
    ids = _running(podman)

    assert 0 == daemon.stop()

    assert ids == _running(podman)
    assert "daemon_stopped" in [e.get("event") for e in daemon.logs()]


def test_kill_9_mid_apply_then_restart_converges_without_duplicates(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """kill -9 while it replaces services; the next daemon finishes the job."""
    names = tuple(f"s{i}" for i in range(6))
    _services(desired_dir, names=names)
    daemon.start()
    _services(desired_dir, names=names, image=IMAGE_V2)
    wait_until(
        lambda: any(n for s, n in podman.container_events_since(0)[-30:] if s == "remove"), 20, 0.01
    )

    daemon.kill()
    daemon.start()

    wait_until(lambda: {podman.inspect(n)["ImageName"] for n in names} == {IMAGE_V2}, 30)
    containers = podman.containers()
    assert sorted(names) == sorted(c["Names"][0] for c in containers)
    assert {"running"} == {c["State"] for c in containers}


def test_http_answers_bad_requests_politely(daemon: Daemon) -> None:
    """Unknown paths 404, other methods 405, /status is JSON of every service."""
    daemon.start()

    assert 404 == daemon.get("/nope")[0]
    assert 405 == daemon.get("/metrics", method="POST")[0]
    status = daemon.status()
    assert ["db", "web", "worker"] == [s["name"] for s in status["services"]]
    assert {"Running"} == {s["phase"] for s in status["services"]}


def test_promtool_accepts_the_metrics(daemon: Daemon) -> None:
    """`promtool check metrics` finds nothing to complain about."""
    daemon.start()
    body = daemon.get("/metrics")[1]

    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body.encode(), capture_output=True, check=False
    )

    assert (0, b"") == (result.returncode, result.stdout + result.stderr)


def test_listen_address_in_use_is_a_clear_error(
    daemon: Daemon, podman: PodmanService, tmp_path: Path
) -> None:
    """A second daemon on the same port exits 1 with one line, no traceback."""
    daemon.start()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paid",
            "run",
            str(daemon.directory),
            "--listen",
            f"127.0.0.1:{daemon.port}",
            "--podman-url",
            podman.url,
            "--state-dir",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert 1 == result.returncode
    assert b"cannot listen on" in result.stderr
    assert b"Traceback" not in result.stderr
    assert json.loads(daemon.get("/status")[1])["ready"]


def test_a_slow_service_does_not_stall_the_others(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """While one service takes 8 s to stop for its recreate, a killed neighbour heals at once."""
    slow = {"init": False, "terminationGracePeriodSeconds": 8}  # sleep as PID 1 ignores SIGTERM
    write_services(desired_dir, service_doc("slow", **slow), service_doc("fast"))
    daemon.start()
    write_services(desired_dir, service_doc("slow", image=IMAGE_V2, **slow), service_doc("fast"))
    wait_until(lambda: "slow" in daemon.status()["reconciling"], 10, 0.02)

    podman.podman("kill", "fast")
    wait_until(lambda: "fast" in _running(podman), 10)

    assert "slow" in daemon.status()["reconciling"]  # still stopping: fast did not wait for it
    wait_until(lambda: podman.inspect("slow")["ImageName"] == IMAGE_V2, 60)


def _resyncs(daemon: Daemon) -> int:
    metrics = daemon.get("/metrics")[1]
    for line in metrics.splitlines():
        if line.startswith('paid_reconcile_triggers_total{trigger="resync"}'):
            return int(float(line.split()[-1]))
    return 0


def test_a_stranger_holding_the_name_is_reported_once_then_left_until_it_goes(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """--resync-interval 1: a conflict is journalled once across resyncs, not retried each
    pass; when the stranger goes, the service is made at once."""
    podman.podman("run", "-d", "--name", "web", IMAGE, "sleep", "600")
    stranger = podman.inspect("web")["Id"]
    write_services(desired_dir, service_doc("web"))
    daemon.extra += ["--resync-interval", "1"]
    daemon.start(wait_ready=False)

    wait_until(lambda: _resyncs(daemon) >= 5, 60)
    with Store.open(daemon.state_dir) as store:
        conflicts = [e for e in store.events(service="web") if e.kind == "action_conflict"]
    assert 1 == len(conflicts)
    assert stranger == podman.inspect("web")["Id"]  # left alone
    assert "running" == podman.inspect("web")["State"]["Status"]

    podman.podman("rm", "--force", "--time", "0", "web")
    wait_until(lambda: daemon.service("web")["phase"] == "Running", 60)
    assert stranger != podman.inspect("web")["Id"]
