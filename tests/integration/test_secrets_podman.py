"""Secrets on a real Podman: delivered as files, known elsewhere only by a keyed hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from paid.controllers.collecting import unused_secrets
from paid.runtime.podman import PodmanRuntime
from paid.state.desired import DesiredState
from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, service_doc, write_services

VALUE = "s3cr3t-Vx9q-correct-horse"


def _paid(
    podman: PodmanService, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        env={**os.environ, "PAID_PODMAN_URL": podman.url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _secret_service(desired_dir: Path) -> None:
    write_services(
        desired_dir,
        service_doc(
            "api",
            env={"MODE": "prod"},
            secretEnv={"API_TOKEN": {"file": "api-token"}},
        ),
    )


def _start_with_secret(daemon: Daemon, tmp_path: Path, value: str) -> Path:
    """A daemon running ``api`` with the secret file ``api-token`` holding ``value``."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "api-token").write_text(value)
    _secret_service(daemon.directory)
    daemon.env["PAID_SECRETS_DIR"] = str(secrets_dir)
    daemon.start()
    return secrets_dir


def _everything_readable(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_secret_reaches_the_container_as_a_file_and_nowhere_else(
    podman: PodmanService, daemon: Daemon, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """The value is in /run/secrets/API_TOKEN; not in inspect, logs, plan, store, metrics."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "api-token").write_text(VALUE)
    _secret_service(desired_dir)
    env = {"PAID_SECRETS_DIR": str(secrets_dir), "PAID_STATE_DIR": str(state_dir)}
    daemon.env.update(env)
    daemon.start()

    assert VALUE == podman.podman("exec", "api", "cat", "/run/secrets/API_TOKEN")
    assert (
        "/run/secrets/API_TOKEN"
        == podman.podman("exec", "api", "sh", "-c", "echo $API_TOKEN_FILE").strip()
    )

    inspected = json.dumps(podman.inspect("api"))
    plan = _paid(podman, "plan", str(desired_dir), "--output", "json", env=env)
    status = _paid(
        podman, "status", str(desired_dir), "--output", "json", "--listen", daemon.url[7:], env=env
    )
    history = _paid(podman, "history", "api", "--output", "json", env=env)
    metrics = daemon.get("/metrics")[1]
    secret_names = podman.podman("secret", "ls", "--format", "{{.Name}}").split()
    daemon.stop()
    places = {
        "podman inspect": inspected,
        "secret inspect": podman.podman("secret", "inspect", *secret_names),
        "paid plan": plan.stdout + plan.stderr,
        "paid status": status.stdout + status.stderr,
        "paid history": history.stdout + history.stderr,
        "daemon log": daemon.log_path.read_text(),
        "metrics": metrics,
    }
    assert "API_TOKEN" in inspected  # the search looks at the right thing
    for where, text in places.items():
        assert VALUE not in text, where
    assert VALUE.encode() not in _everything_readable(state_dir)
    assert 0o600 == (state_dir / "secrets.key").stat().st_mode & 0o777


def test_changed_secret_file_rolls_the_service_out(
    podman: PodmanService, daemon: Daemon, desired_dir: Path, tmp_path: Path
) -> None:
    """A new value is a new revision with a new container; the old one is gone."""
    secrets_dir = _start_with_secret(daemon, tmp_path, "first")
    before = podman.inspect("api")

    (secrets_dir / "api-token").write_text("second")

    wait_until(lambda: podman.inspect("api")["Id"] != before["Id"], 30)
    wait_until(lambda: daemon.service("api")["phase"] == "Running", 30)
    after = podman.inspect("api")
    assert "second" == podman.podman("exec", "api", "cat", "/run/secrets/API_TOKEN")
    labels_before, labels_after = before["Config"]["Labels"], after["Config"]["Labels"]
    assert int(labels_after["paid.revision"]) == int(labels_before["paid.revision"]) + 1
    assert labels_after["paid.secrets"] != labels_before["paid.secrets"]


def test_missing_secret_file_is_a_load_error_and_costs_nothing(
    podman: PodmanService, daemon: Daemon, desired_dir: Path, tmp_path: Path
) -> None:
    """Deleting the file leaves the running container alone and says which file."""
    secrets_dir = _start_with_secret(daemon, tmp_path, "first")
    before = podman.inspect("api")["Id"]

    (secrets_dir / "api-token").unlink()

    wait_until(lambda: daemon.metric("paid_desired_state_valid") == 0, 15)
    errors = daemon.status()["desiredState"]["errors"]
    assert any("api-token" in e and "secretEnv" in e for e in errors), errors
    assert before == podman.inspect("api")["Id"]
    assert podman.inspect("api")["State"]["Running"]


def test_podman_secrets_are_made_once_listed_with_their_age_and_collected(
    podman: PodmanService, tmp_path: Path
) -> None:
    """The runtime against the real API: create is idempotent, list gives creation times
    on this clock, and collection removes only paid's secrets that nothing uses."""
    runtime = PodmanRuntime(podman.url)
    try:
        runtime.create_secret("paid.old.TOKEN.0000000000000000", b"v1")
        runtime.create_secret("paid.old.TOKEN.0000000000000000", b"v1")  # again: no error
        podman.podman("secret", "create", "not-paids", "-", input=b"x")
        listed = runtime.list_secrets()
        assert {"paid.old.TOKEN.0000000000000000", "not-paids"} == set(listed)
        assert abs(time.time() - listed["paid.old.TOKEN.0000000000000000"]) < 60

        young, _ = unused_secrets(runtime, DesiredState(), [], now=time.time())
        removed, kept = unused_secrets(runtime, DesiredState(), [], now=time.time() + 3600)
    finally:
        runtime.close()

    assert [] == young  # made a moment ago: a rollout may be about to use it
    assert (["paid.old.TOKEN.0000000000000000"], 0) == (removed, kept)
    assert ["not-paids"] == podman.podman("secret", "ls", "--format", "{{.Name}}").split()


def test_a_file_secret_is_mounted_at_its_path_with_its_owner_and_mode(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """secrets: [{file, target, uid, gid, mode}]: the image reads it where it expects it."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "db-password").write_text(VALUE)
    write_services(
        desired_dir,
        service_doc(
            "db",
            user="999:999",
            secrets=[
                {"file": "db-password", "target": "/etc/db/password", "uid": 999, "gid": 999,
                 "mode": "0400"},
                {"file": "db-password"},
            ],
        ),
    )  # fmt: skip
    env = {"PAID_SECRETS_DIR": str(secrets_dir), "PAID_STATE_DIR": str(state_dir)}

    applied = _paid(podman, "apply", str(desired_dir), env=env)

    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert VALUE == podman.podman("exec", "db", "cat", "/etc/db/password")
    listing = podman.podman("exec", "db", "stat", "-c", "%u:%g %a", "/etc/db/password").strip()
    assert "999:999 400" == listing
    assert VALUE == podman.podman("exec", "db", "cat", "/run/secrets/db-password")
    assert VALUE not in json.dumps(podman.inspect("db"))
    (secrets_dir / "db-password").write_text("rotated")
    planned = _paid(podman, "plan", str(desired_dir), env=env)
    assert 2 == planned.returncode
    assert "spec.secrets: (changed) → (changed)" in planned.stdout
    assert "rotated" not in planned.stdout
