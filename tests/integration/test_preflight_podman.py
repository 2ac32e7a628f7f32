"""`paid preflight` on the suite's real Podman: each failure kind, and apply refusing on one."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from paid.cli import main
from tests.harness import IMAGE, PodmanService, free_port, service_doc, write_services


def run(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def checks(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], tuple[str, str]]:
    doc = json.loads(capsys.readouterr().out)
    return {(c["check"], c["subject"]): (c["status"], c["reason"]) for c in doc["checks"]}


def test_a_sound_desired_state_passes(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Podman, disk, image, port, host path: all OK, exit 0."""
    host = podman.base / "data"
    host.mkdir()
    port = free_port()
    write_services(
        desired_dir, service_doc("web", ports=[f"127.0.0.1:{port}:80"], volumes=[f"{host}:/d"])
    )
    capsys.readouterr()

    code = run(
        podman,
        state_dir,
        "preflight",
        str(desired_dir),
        "--output",
        "json",
        "--allow-host-path",
        str(host),
    )

    found = checks(capsys)
    assert 0 == code
    assert {"OK"} == {status for status, _ in found.values()} - {"WARN"}
    assert {"podman", "state", "disk", "image", "port", "host_path"} == {
        check for check, _ in found
    }
    assert found[("image", IMAGE)][0] == "OK"


def test_each_failure_kind_is_caught(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing image, a port another container or a host process holds, a missing host path."""
    taken_by_container, taken_by_process = free_port(), free_port()
    podman.podman(
        "run",
        "-d",
        "--name",
        "squatter",
        "-p",
        f"127.0.0.1:{taken_by_container}:80",
        IMAGE,
        "sleep",
        "3600",
    )
    allowed = podman.base / "allowed"
    allowed.mkdir()
    write_services(
        desired_dir,
        service_doc("ghost", image="localhost/paid-test/absent:1"),
        service_doc("a", ports=[f"127.0.0.1:{taken_by_container}:80"]),
        service_doc(
            "b", ports=[f"127.0.0.1:{taken_by_process}:80"], volumes=[f"{allowed}/missing:/d"]
        ),
    )
    capsys.readouterr()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken_by_process))
        holder.listen()

        code = run(
            podman,
            state_dir,
            "preflight",
            str(desired_dir),
            "--output",
            "json",
            "--allow-host-path",
            str(allowed),
        )

    found = checks(capsys)
    assert 1 == code
    assert "FAIL" == found[("image", "localhost/paid-test/absent:1")][0]
    assert ("FAIL", "published by container squatter") == found[
        ("port", f"a:127.0.0.1:{taken_by_container}:80/tcp")
    ]
    assert found[("port", f"b:127.0.0.1:{taken_by_process}:80/tcp")][1].startswith(
        "in use by a process"
    )
    assert "FAIL" == found[("host_path", f"b:{allowed}/missing")][0]


def test_low_disk_and_podman_away_fail(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A disk threshold above what is free fails; no Podman fails at once."""
    write_services(desired_dir, service_doc("web"))
    capsys.readouterr()

    assert 1 == run(
        podman, state_dir, "preflight", str(desired_dir), "--output", "json", "--disk-fail", "101"
    )
    assert {"FAIL"} == {s for (check, _), (s, _) in checks(capsys).items() if check == "disk"}

    podman.pause()
    try:
        assert 1 == run(podman, state_dir, "preflight", str(desired_dir), "--output", "json")
    finally:
        podman.resume()
    assert [("podman", "api")] == list(checks(capsys))


def test_apply_runs_preflight_first_and_changes_nothing_on_fail(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One FAIL and apply creates nothing; --skip-preflight goes ahead with what it can."""
    write_services(
        desired_dir, service_doc("ghost", image="localhost/paid-test/absent:1"), service_doc("fine")
    )
    mark = podman.event_mark()

    assert 1 == run(podman, state_dir, "apply", str(desired_dir))
    assert [] == podman.container_events_since(mark)
    assert "pre-flight checks failed" in capsys.readouterr().err

    assert 1 == run(podman, state_dir, "apply", str(desired_dir), "--skip-preflight")
    assert ["fine"] == [c["Names"][0] for c in podman.containers()]


def test_secret_files_are_checked_for_who_can_read_them(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret file others can read is a WARN naming the chmod; a private one is OK."""
    secrets = podman.base / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "open").write_text("x")
    (secrets / "open").chmod(0o644)
    (secrets / "closed").write_text("y")
    (secrets / "closed").chmod(0o600)
    write_services(
        desired_dir,
        service_doc("app", secretEnv={"OPEN": {"file": "open"}, "CLOSED": {"file": "closed"}}),
    )
    capsys.readouterr()

    code = run(
        podman,
        state_dir,
        "preflight",
        str(desired_dir),
        "--output",
        "json",
        "--secrets-dir",
        str(secrets),
    )

    found = checks(capsys)
    assert 0 == code
    assert "WARN" == found[("secret", "app:OPEN")][0]
    assert "chmod 600" in found[("secret", "app:OPEN")][1]
    assert "OK" == found[("secret", "app:CLOSED")][0]


def test_an_unwritable_backup_directory_fails(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only when a service has backups: the directory must be creatable and writable."""
    blocker = podman.base / "not-a-dir"
    blocker.write_text("a file where the backup directory should go")
    write_services(desired_dir, service_doc("db", volumes=["d:/d"], backup={"keep": 1}))
    capsys.readouterr()

    code = run(
        podman,
        state_dir,
        "preflight",
        str(desired_dir),
        "--output",
        "json",
        "--backup-dir",
        str(blocker / "backups"),
    )

    found = checks(capsys)
    assert 1 == code
    status, reason = found[("backup_dir", str(blocker / "backups"))]
    assert "FAIL" == status
    assert "cannot write" in reason
    assert "OK" == found[("disk", "backup directory")][0]
