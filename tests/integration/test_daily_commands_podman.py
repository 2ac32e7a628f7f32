"""The commands people type every day, on the suite's Podman: status, logs, exec, ssh://."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import wait_until
from tests.harness import IMAGE, PodmanService, free_port, run_paid, service_doc, write_services

CHATTY = [
    "sh",
    "-c",
    "echo first; echo to-stderr >&2; i=0; while :; do i=$((i+1)); echo n$i; sleep 0.2; done",
]


def _status(
    podman: PodmanService, state_dir: Path, desired_dir: Path
) -> tuple[int, dict[str, Any]]:
    done = run_paid(
        podman,
        state_dir,
        "status",
        str(desired_dir),
        "-o",
        "json",
        "--listen",
        f"127.0.0.1:{free_port()}",
    )
    return done.returncode, json.loads(done.stdout)


def test_status_shows_ports_age_and_restarts_and_gates_scripts(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Ports as published, an age, paid's restarts of this container; exit 0 / 2 by phase."""
    port = free_port()
    write_services(desired_dir, service_doc("web", ports=[f"{port}:80"]))
    assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode

    code, doc = _status(podman, state_dir, desired_dir)
    (web,) = doc["services"]
    assert 0 == code
    assert [f"0.0.0.0:{port}->80/tcp"] == web["ports"]
    assert int(web["createdAt"]) <= web["startedAt"]  # the list gives whole seconds to start
    assert 0 == web["restarts"]

    podman.podman("stop", "--time", "0", "web")
    stopped, doc = _status(podman, state_dir, desired_dir)
    assert 2 == stopped
    assert "Stopped" == doc["services"][0]["phase"]

    assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode
    code, doc = _status(podman, state_dir, desired_dir)
    assert 0 == code
    assert 1 == doc["services"][0]["restarts"]  # paid started it again
    text = run_paid(
        podman, state_dir, "status", str(desired_dir), "--listen", f"127.0.0.1:{free_port()}"
    )
    assert f"0.0.0.0:{port}->80/tcp" in text.stdout
    assert "RESTARTS" in text.stdout


def test_logs_split_streams_tail_and_refuse_a_stranger(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """stdout to stdout, stderr to stderr, --tail N; another tool's container is not read."""
    write_services(desired_dir, service_doc("web", command=CHATTY), service_doc("idle"))
    assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode
    podman.podman("run", "-d", "--name", "stranger", IMAGE, "sh", "-c", "echo secret; sleep 600")

    everything = run_paid(podman, state_dir, "logs", "web")
    tail = run_paid(podman, state_dir, "logs", "web", "--tail", "2")
    stranger = run_paid(podman, state_dir, "logs", "stranger")
    missing = run_paid(podman, state_dir, "logs", "nothing")

    assert 0 == everything.returncode, everything.stderr
    assert "first" == everything.stdout.splitlines()[0]
    assert "to-stderr" in everything.stderr
    assert "to-stderr" not in everything.stdout
    assert 2 == len(tail.stdout.splitlines())
    assert tail.stdout.splitlines()[-1].startswith("n")
    assert 1 == stranger.returncode
    assert "not paid's" in stranger.stderr
    assert "secret" not in stranger.stdout
    assert 1 == missing.returncode
    assert "has no container" in missing.stderr


@contextlib.contextmanager
def _following(podman: PodmanService, state_dir: Path, out: Path) -> Iterator[Path]:
    """``paid logs web -f`` running, writing into ``out``."""
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "paid", "logs", "web", "-f"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            yield out
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_logs_follow_goes_on_with_the_next_container(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """A heal replaces the container: -f says so and prints the new one's lines."""
    write_services(desired_dir, service_doc("web", command=CHATTY))
    assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode
    out = tmp_path / "follow.out"
    with _following(podman, state_dir, out):
        wait_until(lambda: b"n3" in out.read_bytes(), 30)

        podman.podman("rm", "--force", "--time", "0", "web")
        assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode
        marker = f"running again ({podman.inspect('web')['Id'][:12]})".encode()

        wait_until(lambda: marker in out.read_bytes(), 30)
        wait_until(lambda: b"first" in out.read_bytes().split(marker, 1)[1], 30)
    assert 1 == out.read_bytes().split(marker, 1)[0].count(b"first")  # the old one's, once


def test_exec_runs_in_the_service_with_its_exit_code(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`paid exec web -- CMD`: the command's output and exit code; a stranger is refused."""
    write_services(desired_dir, service_doc("web", env={"GREETING": "hi"}))
    assert 0 == run_paid(podman, state_dir, "apply", str(desired_dir)).returncode
    podman.podman("run", "-d", "--name", "stranger", IMAGE, "sleep", "600")

    ran = run_paid(
        podman, state_dir, "exec", "-T", "web", "--", "sh", "-c", "echo $GREETING $((6*7)); exit 3"
    )
    as_user = run_paid(podman, state_dir, "exec", "-T", "-u", "65534", "web", "--", "id", "-u")
    refused = run_paid(podman, state_dir, "exec", "-T", "stranger", "--", "true")
    nothing = run_paid(podman, state_dir, "exec", "web")

    assert 3 == ran.returncode, ran.stderr
    assert "hi 42" == ran.stdout.strip()
    assert "65534" == as_user.stdout.strip()
    assert 1 == refused.returncode
    assert "not paid's" in refused.stderr
    assert 1 == nothing.returncode
    assert "name the command" in nothing.stderr


SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {base}/host_key
AuthorizedKeysFile {base}/authorized_keys
PidFile {base}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
AllowStreamLocalForwarding yes
"""


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real sshd on loopback, its host key and one client key of the suite's own."""
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.fail("sshd is not installed: run scripts/install-deps (CI does)")
    base = tmp_path / "ssh"
    base.mkdir(mode=0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / key)], check=True
        )
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = free_port()
    (base / "sshd_config").write_text(SSHD_CONFIG.format(port=port, base=base))
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege-separation directory
    process = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(base / "sshd_config")], stderr=subprocess.PIPE
    )
    try:
        host_key = (base / "host_key.pub").read_text().split()
        (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        wait_until(lambda: _listening(port), 10)
        yield port, base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_ssh_urls_work_and_fail_fast_with_ssh_s_words(
    podman: PodmanService, desired_dir: Path, state_dir: Path, sshd: tuple[int, Path]
) -> None:
    """ssh:// reaches Podman through ssh; an unknown host key or a closed port fails in seconds."""
    port, base = sshd
    write_services(desired_dir, service_doc("web"))
    url = f"ssh://root@127.0.0.1:{port}{podman.socket}"
    trusted = f"ssh -o UserKnownHostsFile={base}/known_hosts -i {base}/client_key"
    stranger = f"ssh -o UserKnownHostsFile={base}/nobody_known -i {base}/client_key"

    def paid(ssh_command: str, target: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PAID_SSH_COMMAND": ssh_command, "PAID_STATE_DIR": str(state_dir)}
        return subprocess.run(
            [sys.executable, "-m", "paid", *args, "--podman-url", target],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    applied = paid(trusted, url, "apply", str(desired_dir))
    unknown = paid(stranger, url, "plan", str(desired_dir))
    closed = paid(
        trusted,
        f"ssh://root@127.0.0.1:{free_port()}{podman.socket}",
        "plan",
        str(desired_dir),
        "-o",
        "json",
    )

    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert "running" == podman.inspect("web")["State"]["Status"]
    assert 1 == unknown.returncode
    assert "Host key verification failed" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert 1 == closed.returncode
    assert "Connection refused" in json.loads(closed.stdout)["error"]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        pytest.param("unix:///nonexistent/podman.sock", "No such file or directory", id="unix"),
        pytest.param("tcp://127.0.0.1:1", "Connection refused", id="tcp-refused"),
        pytest.param("tcp://198.51.100.7:8080", "no answer within 10 s", id="tcp-dropped"),
        pytest.param("ssh://root@127.0.0.1:1/run/podman.sock", "Connection refused", id="ssh"),
    ],
)
def test_every_transport_fails_fast_with_one_clear_message(
    desired_dir: Path, tmp_path: Path, url: str, said: str
) -> None:
    """A Podman that is not there: why, in the OS's words, within seconds; never a traceback.

    The dropped one is a TEST-NET address whose packets this test drops (iptables), as a
    firewall would: the connect gives up after 10 s, not the request's 60.
    """
    write_services(desired_dir, service_doc("web"))
    dropped = ["OUTPUT", "-d", "198.51.100.7", "-j", "DROP"]
    if "198.51.100.7" in url:
        subprocess.run(["iptables", "-A", *dropped], check=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "paid", "plan", str(desired_dir), "--podman-url", url],
            env={**os.environ, "PAID_STATE_DIR": str(tmp_path / "state")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        if "198.51.100.7" in url:
            subprocess.run(["iptables", "-D", *dropped], check=True)

    assert 1 == done.returncode
    assert said in done.stderr
    assert "Traceback" not in done.stderr
