"""Age-encrypted secrets from the repository, decrypted by a real `paid run` on real Podman."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, service_doc, write_services

VALUE = b"s3cr3t-Vx9q-correct-horse"


def _paid(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


def _encrypt(repo: Path, public: str, value: bytes) -> None:
    (repo / "secrets").mkdir(exist_ok=True)
    made = _paid(
        "secret", "encrypt", "-r", public, "-o", "secrets/api-token.age", "--force", "-",
        cwd=repo, stdin=value,
    )  # fmt: skip
    assert 0 == made.returncode, made.stderr


def _start(daemon: Daemon, tmp_path: Path) -> str:
    """`api` reading API_TOKEN from secrets/api-token.age; the daemon holds the identity."""
    made = _paid("secret", "keygen", "-o", str(tmp_path / "age.key"), cwd=tmp_path)
    assert 0 == made.returncode, made.stderr
    public = made.stdout.decode().strip()
    _encrypt(daemon.directory, public, VALUE)
    write_services(
        daemon.directory,
        service_doc("api", secretEnv={"API_TOKEN": {"encrypted": "secrets/api-token.age"}}),
    )
    daemon.env["PAID_AGE_IDENTITY"] = str(tmp_path / "age.key")
    daemon.env["PAID_SECRETS_DIR"] = str(tmp_path / "secrets-dir")
    daemon.start()
    return public


def _reloaded(daemon: Daemon, since: float) -> bool:
    """The daemon loaded the desired state after ``since`` and finished a pass after that."""
    loaded = daemon.metric("paid_desired_state_last_load_success_timestamp_seconds") or 0
    passed = daemon.status()["lastSuccessfulPassAt"] or 0
    return bool(loaded > since and passed > loaded)


def test_an_encrypted_secret_reaches_the_container_and_nothing_else(
    podman: PodmanService, daemon: Daemon, state_dir: Path, tmp_path: Path
) -> None:
    """Decrypted into /run/secrets/API_TOKEN; the value is in no label, log, store or metric."""
    _start(daemon, tmp_path)

    assert VALUE.decode() == podman.podman("exec", "api", "cat", "/run/secrets/API_TOKEN")
    inspected = json.dumps(podman.inspect("api"))
    assert "API_TOKEN" in inspected
    metrics = daemon.get("/metrics")[1]
    daemon.stop()
    for where, text in {
        "inspect": inspected,
        "log": daemon.log_path.read_text(),
        "metrics": metrics,
    }.items():
        assert VALUE.decode() not in text, where
    stored = b"".join(p.read_bytes() for p in sorted(daemon.state_dir.rglob("*")) if p.is_file())
    assert VALUE not in stored


def test_reencrypted_same_value_keeps_the_container_and_a_new_value_rolls_out(
    podman: PodmanService, daemon: Daemon, tmp_path: Path
) -> None:
    """A new ciphertext of the same value is not drift; a new value is a new revision."""
    public = _start(daemon, tmp_path)
    before = podman.inspect("api")
    mark = daemon.metric("paid_desired_state_last_load_success_timestamp_seconds") or 0

    _encrypt(daemon.directory, public, VALUE)
    wait_until(lambda: _reloaded(daemon, mark), 30)
    assert before["Id"] == podman.inspect("api")["Id"]

    _encrypt(daemon.directory, public, b"rotated")
    wait_until(lambda: podman.inspect("api")["Id"] != before["Id"], 30)
    wait_until(lambda: daemon.service("api")["phase"] == "Running", 30)
    assert "rotated" == podman.podman("exec", "api", "cat", "/run/secrets/API_TOKEN")
    revision = int(podman.inspect("api")["Config"]["Labels"]["paid.revision"])
    assert revision == int(before["Config"]["Labels"]["paid.revision"]) + 1


def test_a_value_for_another_key_is_a_load_error_and_the_service_keeps_running(
    podman: PodmanService, daemon: Daemon, tmp_path: Path
) -> None:
    """Encrypted to someone else: the error names the file; the running container is kept."""
    _start(daemon, tmp_path)
    before = podman.inspect("api")["Id"]
    other = _paid("secret", "keygen", "-o", str(tmp_path / "other.key"), cwd=tmp_path)
    assert 0 == other.returncode

    _encrypt(daemon.directory, other.stdout.decode().strip(), b"not for this host")

    wait_until(lambda: daemon.metric("paid_desired_state_valid") == 0, 30)
    errors = daemon.status()["desiredState"]["errors"]
    assert any("api-token.age" in e and "cannot decrypt" in e for e in errors), errors
    assert before == podman.inspect("api")["Id"]
    assert podman.inspect("api")["State"]["Running"]
