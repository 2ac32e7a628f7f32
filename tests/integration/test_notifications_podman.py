"""Notifications from a real `paid run` on real Podman to a webhook on loopback (Apprise json://)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, service_doc, write_services
from tests.receivers import Receiver, receiving

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def _web(image: str, command: list[str]) -> dict[str, Any]:
    doc = service_doc(
        "web",
        image=image,
        command=command,
        readinessProbe={"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
        rollout={"minReadySeconds": 1, "progressDeadlineSeconds": 6},
    )
    doc["metadata"]["labels"] = {"tier": "web"}
    return doc


def _notifier(events: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "paid/v1",
        "kind": "Notifier",
        "metadata": {"name": "ops"},
        "spec": {
            "events": events,
            "services": {"matchLabels": {"tier": "web"}},
            "targets": [{"urlFile": "ops-webhook"}],
        },
    }


def _start(daemon: Daemon, tmp_path: Path, receiver: Receiver, events: list[str]) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "ops-webhook").write_text(receiver.url + "\n")
    write_services(daemon.directory, _web(IMAGE, HTTPD), _notifier(events))
    daemon.env["PAID_SECRETS_DIR"] = str(secrets)
    daemon.env["PAID_TIMINGS"] = "notify_poll=0.2,notify_retry=0.5"
    daemon.start()


def _break_web(daemon: Daemon, events: list[str]) -> None:
    """Revision 2 exits at once: its gate fails and paid rolls back to revision 1."""
    write_services(daemon.directory, _web(IMAGE_V2, ["sh", "-c", "exit 3"]), _notifier(events))


def test_a_rollback_is_told_to_the_webhook_with_what_paid_did(
    podman: PodmanService, daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    """The message names the service, both revisions and images, and the rollback."""
    _start(daemon, tmp_path, receiver, ["rolled_back"])

    _break_web(daemon, ["rolled_back"])

    wait_until(lambda: receiver.titles() == ["paid: web: rolled back"], 60)
    body = receiver.messages[0]["message"]
    assert "revision 2 failed" in body
    assert "back on revision 1" in body
    assert f"revision 2: {IMAGE_V2}" in body
    assert f"back on revision 1: {IMAGE}" in body
    sent = 'paid_notifications_total{result="delivered",target="ops/ops-webhook"}'
    assert f"{sent} 1.0" in daemon.get("/metrics")[1]
    assert receiver.token not in daemon.log_path.read_text()


def test_a_message_waits_out_a_dead_target_and_a_daemon_restart_and_arrives_once(
    podman: PodmanService, daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    """Target down at the rollback; daemon restarted; target back: one message, no more.

    A later event's message, sent after it, shows the first was not sent again.
    """
    events = ["rolled_back", "desired_state_invalid"]
    _start(daemon, tmp_path, receiver, events)
    receiver.down()

    _break_web(daemon, events)
    wait_until(lambda: 'result="failed",target="ops/ops-webhook"' in daemon.get("/metrics")[1], 60)
    daemon.stop()
    receiver.up()
    daemon.start()
    wait_until(lambda: receiver.titles() == ["paid: web: rolled back"], 30)

    (daemon.directory / "broken.yaml").write_text("apiVersion: paid/v1\nkind: Servic\n")

    expected = ["paid: web: rolled back", f"paid: {os.uname().nodename}: desired state invalid"]
    wait_until(lambda: len(receiver.titles()) >= 2, 30)
    assert expected == receiver.titles()


def test_a_daemon_killed_by_kill_9_is_told_of_by_the_next_one(
    podman: PodmanService, daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    """daemon_lost: how long nothing watched the services, sent by the daemon that follows."""
    _start(daemon, tmp_path, receiver, ["daemon_lost"])
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait()

    daemon.start()

    wait_until(lambda: receiver.titles() != [], 30)
    assert [f"paid: {os.uname().nodename}: paid was not running"] == receiver.titles()
    assert "ended without stopping" in receiver.messages[0]["message"]


def test_a_stalled_target_never_delays_a_rollout(
    podman: PodmanService, daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    """The webhook holds every request 60 s: a rollback and the next good deploy go on.

    The message waits (its sends cut at the 10 s deadline) and arrives once the
    target answers again.
    """
    _start(daemon, tmp_path, receiver, ["rolled_back"])
    receiver.stall = 60.0

    _break_web(daemon, ["rolled_back"])
    wait_until(lambda: _outcomes(daemon)[-1:] == ["rolled_back"], 60)
    write_services(daemon.directory, _web(IMAGE_V2, HTTPD), _notifier(["rolled_back"]))
    wait_until(lambda: _outcomes(daemon)[-1:] == ["succeeded"], 30)
    assert [] == receiver.titles()

    receiver.stall = 0.0  # retried with back-off, through the target's breaker
    wait_until(lambda: receiver.titles() == ["paid: web: rolled back"], 150)


def _outcomes(daemon: Daemon) -> list[str]:
    with Store.open(daemon.state_dir) as store:
        return [r.outcome for r in store.revisions("web")]
