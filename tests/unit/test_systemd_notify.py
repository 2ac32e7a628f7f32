"""sd_notify over a real datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from paid.daemon.systemd import Notifier


def test_ready_status_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    """READY=1 with STATUS and MAINPID, then WATCHDOG=1, each one datagram."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "3000000"})

        notifier.ready("3 services; converged")
        notifier.watchdog()
        first, second = sock.recv(4096).decode(), sock.recv(4096).decode()

    assert f"READY=1\nSTATUS=3 services; converged\nMAINPID={os.getpid()}" == first
    assert "WATCHDOG=1" == second
    assert 3.0 == notifier.watchdog_interval


def test_without_systemd_everything_is_a_quiet_no_op() -> None:
    """No NOTIFY_SOCKET: nothing sent, no error, no watchdog."""
    notifier = Notifier({})

    assert (False, None) == (notifier.notify("READY=1"), notifier.watchdog_interval)


def test_watchdog_meant_for_another_pid_is_ignored() -> None:
    """WATCHDOG_PID names the process the watchdog is for."""
    notifier = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})

    assert notifier.watchdog_interval is None
