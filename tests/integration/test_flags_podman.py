"""Feature flags and `enabled: false`, on a running daemon and real Podman."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, service_doc, write_services

pytestmark = pytest.mark.slow


def _names(podman: PodmanService) -> dict[str, str]:
    return {c["Names"][0]: c["State"] for c in podman.containers()}


def test_prune_flag_turned_off_and_on_without_a_restart(
    daemon: Daemon, podman: PodmanService, desired_dir: Path, tmp_path: Path
) -> None:
    """prune: false keeps a dropped service; true in the file prunes it, same process."""
    flags = tmp_path / "flags.yaml"
    flags.write_text("prune: false\n")
    daemon.extra = ["--flags", str(flags)]
    write_services(desired_dir, *(service_doc(n) for n in ("a", "b", "c")))
    daemon.start()
    assert 0.0 == daemon.metric("paid_feature_flag", 'flag="prune"')
    pid = daemon.process.pid if daemon.process else None

    write_services(desired_dir, service_doc("a"), service_doc("b"))
    wait_until(lambda: daemon.service("c")["phase"] == "Orphan", 10)  # the daemon saw the change
    wait_until(daemon.ready, 10)
    assert "c" in _names(podman)

    flags.write_text("prune: true\n")

    wait_until(lambda: "c" not in _names(podman), 15)
    assert 1.0 == daemon.metric("paid_feature_flag", 'flag="prune"')
    assert pid == (daemon.process.pid if daemon.process else None)


def test_a_bad_flags_file_changes_nothing(
    daemon: Daemon, podman: PodmanService, desired_dir: Path, tmp_path: Path
) -> None:
    """A typo in the flags file is logged and ignored; the flags in force stay."""
    flags = tmp_path / "flags.yaml"
    flags.write_text("eventWatch: false\n")
    daemon.extra = ["--flags", str(flags)]
    write_services(desired_dir, service_doc("a"))
    daemon.start()

    flags.write_text("evnetWatch: true\n")
    wait_until(lambda: "flags_invalid" in [e.get("event") for e in daemon.logs()], 10)

    assert 0.0 == daemon.metric("paid_feature_flag", 'flag="event_watch"')


def test_disabled_service_is_stopped_kept_and_comes_back(
    daemon: Daemon, podman: PodmanService, desired_dir: Path
) -> None:
    """enabled: false stops the container and keeps it and its volume; true runs it again."""
    write_services(desired_dir, service_doc("db", volumes=["db-data:/data"]), service_doc("other"))
    daemon.start()
    podman.podman("exec", "db", "sh", "-c", "echo kept > /data/proof")
    db_id = next(c["Id"] for c in podman.containers() if c["Names"][0] == "db")

    write_services(
        desired_dir,
        service_doc("db", volumes=["db-data:/data"], enabled=False),
        service_doc("other"),
    )
    wait_until(lambda: _names(podman).get("db") == "exited", 15)
    assert "Disabled" == daemon.service("db")["phase"]

    write_services(desired_dir, service_doc("db", volumes=["db-data:/data"]), service_doc("other"))
    wait_until(lambda: _names(podman).get("db") == "running", 15)

    assert "kept\n" == podman.podman("exec", "db", "cat", "/data/proof")  # the volume was kept
    assert db_id != podman.inspect("db")["Id"]  # a fresh container ...
    assert "1" == podman.inspect("db")["Config"]["Labels"]["paid.revision"]  # ... same revision
