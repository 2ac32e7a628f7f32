"""Backups and restores of named volumes on a real Podman."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from paid.cli import main
from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE_V2, PodmanService, service_doc, write_services


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args, "--podman-url", podman.url, "--state-dir", str(state_dir)])


def paid_json(
    podman: PodmanService, state_dir: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> Any:
    capsys.readouterr()
    paid(podman, state_dir, *args, "--output", "json")
    return json.loads(capsys.readouterr().out)


def db_doc(**backup: Any) -> dict[str, Any]:
    return service_doc(
        "db", volumes=["db-data:/data"], backup={"keep": 3, "consistency": "stop", **backup}
    )


def mountpoint(podman: PodmanService, volume: str) -> Path:
    return Path(podman.podman("volume", "inspect", volume, "--format", "{{.Mountpoint}}").strip())


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under root: type, mode, owner, and content hash or link target."""
    found: dict[str, tuple[Any, ...]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, digest)
    return found


def fill(podman: PodmanService) -> None:
    podman.podman(
        "exec",
        "db",
        "sh",
        "-c",
        "mkdir -p /data/nested/deeper && head -c 3000000 /dev/urandom > /data/blob.bin"
        " && echo hello > '/data/nested/a file' && chmod 640 '/data/nested/a file'"
        " && chown 1000:1000 /data/nested/deeper && ln -s 'nested/a file' /data/link"
        " && : > /data/empty",
    )


@pytest.fixture
def db(podman: PodmanService, desired_dir: Path, state_dir: Path) -> PodmanService:
    write_services(desired_dir, db_doc())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    fill(podman)
    return podman


def test_backup_and_restore_round_trip_byte_for_byte(
    db: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Content, modes, owners and links come back exactly; the service runs again."""
    data = mountpoint(db, "db-data")
    before = tree(data)
    assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
    (backup,) = paid_json(db, state_dir, capsys, "backup", "list")["backups"]
    archive = state_dir / "backups" / "db" / backup["id"]
    assert 0o700 == stat.S_IMODE(archive.stat().st_mode)
    assert {0o600} == {stat.S_IMODE(p.stat().st_mode) for p in archive.iterdir()}
    db.podman("exec", "db", "sh", "-c", "rm -rf /data/nested && echo junk > /data/blob.bin")
    assert tree(data) != before

    code = paid(db, state_dir, "restore", "db", str(desired_dir), "--backup", backup["id"])

    assert 0 == code
    assert before == tree(mountpoint(db, "db-data"))
    assert db.inspect("db")["State"]["Running"]
    assert "hello\n" == db.podman("exec", "db", "cat", "/data/link")
    # What was there before the restore was kept, as a backup of its own.
    reasons = [b["reason"] for b in paid_json(db, state_dir, capsys, "backup", "list")["backups"]]
    assert ["on demand", f"before restoring {backup['id']}"] == reasons


def test_retention_keeps_the_newest(
    db: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keep: 3 — a fifth backup leaves the newest three."""
    ids = []
    for _ in range(5):
        assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
        ids.append(paid_json(db, state_dir, capsys, "backup", "list")["backups"][-1]["id"])

    listed = [b["id"] for b in paid_json(db, state_dir, capsys, "backup", "list", "db")["backups"]]

    assert ids[-3:] == listed
    assert 3 == len(list((state_dir / "backups" / "db").iterdir()))


def test_a_tampered_archive_is_refused_before_anything_stops(
    db: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One flipped byte: verify says so, restore refuses, the running service is untouched."""
    assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
    (backup,) = paid_json(db, state_dir, capsys, "backup", "list")["backups"]
    archive = state_dir / "backups" / "db" / backup["id"] / "db-data.tar.gz"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    started = db.inspect("db")["State"]["StartedAt"]
    data_before = tree(mountpoint(db, "db-data"))
    capsys.readouterr()

    verify_code = paid(db, state_dir, "backup", "verify")
    verify_out = capsys.readouterr().out
    restore_code = paid(db, state_dir, "restore", "db", str(desired_dir))

    assert 1 == verify_code
    assert "checksum mismatch" in verify_out
    assert 1 == restore_code
    assert "checksum mismatch" in capsys.readouterr().err
    assert started == db.inspect("db")["State"]["StartedAt"]
    assert data_before == tree(mountpoint(db, "db-data"))


def _evil_archive(directory: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(info: tarfile.TarInfo, data: bytes = b"") -> None:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(tarfile.TarInfo("./ok"), b"fine")
        add(tarfile.TarInfo("../escaped"), b"x")
        add(tarfile.TarInfo("/tmp/paid-absolute"), b"x")
        link = tarfile.TarInfo("./etc-link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        add(link)
        add(tarfile.TarInfo("./etc-link/passwd"), b"x")
        climb = tarfile.TarInfo("./up")
        climb.type, climb.linkname = tarfile.SYMTYPE, "../../.."
        add(climb)
    data = gzip.compress(buffer.getvalue())
    (directory / "db-data.tar.gz").write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["volumes"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["volumes"][0]["size"] = len(data)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_path_traversal_archive_is_refused(
    db: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'..', absolute names and links out of the volume: each named; nothing extracted."""
    assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
    (backup,) = paid_json(db, state_dir, capsys, "backup", "list")["backups"]
    _evil_archive(state_dir / "backups" / "db" / backup["id"])
    data_before = tree(mountpoint(db, "db-data"))

    (result,) = paid_json(db, state_dir, capsys, "backup", "verify")["backups"]
    code = paid(db, state_dir, "restore", "db", str(desired_dir))

    problems = " | ".join(result["problems"])
    assert not result["ok"]
    for expected in (
        "'../escaped': path climbs out",
        "'/tmp/paid-absolute': absolute path",
        "'./etc-link': symbolic link to the absolute path",
        "'./etc-link/passwd': written through the link",
        "'./up': symbolic link to '../../..', outside the volume",
    ):
        assert expected in problems
    assert "'./ok'" not in problems
    assert 1 == code
    assert not Path("/tmp/paid-absolute").exists()
    assert not (mountpoint(db, "db-data").parent / "escaped").exists()
    assert data_before == tree(mountpoint(db, "db-data"))


def _archive_of(directory: Path, members: list[tarfile.TarInfo]) -> None:
    """Replace the backup's volume archive by ``members``, the manifest made to match."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in members:
            data = b"attacker" if info.isfile() else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = gzip.compress(buffer.getvalue())
    (directory / "db-data.tar.gz").write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["volumes"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["volumes"][0]["size"] = len(data)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    return info


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param(
            [_link("l0", "."), _link("l1", "l0/.."), tarfile.TarInfo("l1/planted")],
            id="symlink-chain-then-a-file",
        ),
        pytest.param(
            [_link("l0", "."), _link("l1", "l0/.."), _link("h", "l1/victim", hard=True)],
            id="symlink-chain-then-a-hard-link",
        ),
    ],
)
def test_links_that_look_inside_on_paper_are_refused(
    db: PodmanService,
    desired_dir: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    chain: list[tarfile.TarInfo],
) -> None:
    """`l0 -> .`, `l1 -> l0/..` leads out of the volume: refused; nothing on the host changes."""
    assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
    (backup,) = paid_json(db, state_dir, capsys, "backup", "list")["backups"]
    volume_dir = mountpoint(db, "db-data").parent  # .../volumes/db-data, above _data
    victim = volume_dir / "victim"
    victim.write_text("host file")
    _archive_of(state_dir / "backups" / "db" / backup["id"], chain)
    before = tree(mountpoint(db, "db-data"))

    code = paid(db, state_dir, "restore", "db", str(desired_dir), "--backup", backup["id"])

    assert 1 == code
    assert "passes through the link 'l0'" in capsys.readouterr().err
    assert not (volume_dir / "planted").exists()
    assert (1, "host file") == (victim.stat().st_nlink, victim.read_text())
    assert before == tree(mountpoint(db, "db-data"))
    assert db.inspect("db")["State"]["Running"]


def test_restore_on_a_new_host_creates_the_volume(
    db: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Disaster recovery: container and volume gone; restore, apply, the data is back."""
    before = tree(mountpoint(db, "db-data"))
    assert 0 == paid(db, state_dir, "backup", "run", "db", str(desired_dir))
    db.podman("rm", "--force", "--time", "0", "db")
    db.podman("volume", "rm", "db-data")

    assert 0 == paid(db, state_dir, "restore", "db", str(desired_dir))
    assert 0 == paid(db, state_dir, "apply", str(desired_dir))

    assert before == tree(mountpoint(db, "db-data"))
    assert "hello\n" == db.podman("exec", "db", "cat", "/data/nested/a file")


def test_daemon_backs_up_on_schedule_and_before_a_rollout(
    podman: PodmanService,
    daemon: Daemon,
    desired_dir: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cron schedule fires under the daemon (which leaves the stopped container to it);
    beforeRollout backs up before a new image replaces the container."""
    write_services(desired_dir, db_doc(keep=2))
    daemon.start()
    fill(podman)  # before the schedule: a backup stops db, and exec needs it running
    write_services(desired_dir, db_doc(schedule="*/2 * * * * *", keep=2))

    wait_until(
        lambda: (
            (daemon.metric("paid_backup_last_success_timestamp_seconds", 'service="db"') or 0) > 0
        ),
        30,
    )
    wait_until(
        lambda: len(paid_json(podman, state_dir, capsys, "backup", "list")["backups"]) == 2, 30
    )
    assert 0 == daemon.metric("paid_backup_failures_total", 'service="db"')
    assert 0 < (daemon.metric("paid_backup_interval_seconds", 'service="db"') or 0) <= 2
    # The copies stopped and started db; the daemon held off instead of "healing" it.
    with Store.open(state_dir) as store:
        done = [e.data.get("action") for e in store.events(service="db") if e.kind == "action_done"]
    assert "start" not in done
    assert "restart" not in done

    write_services(
        desired_dir,
        service_doc(
            "db",
            image=IMAGE_V2,
            volumes=["db-data:/data"],
            backup={"keep": 5, "beforeRollout": True, "consistency": "pause"},
        ),
    )
    wait_until(lambda: IMAGE_V2 in podman.inspect("db")["ImageName"], 30)

    wait_until(lambda: daemon.service("db")["phase"] == "Running", 30)
    reasons = [
        b["reason"] for b in paid_json(podman, state_dir, capsys, "backup", "list")["backups"]
    ]
    assert "before rollout" == reasons[-1]
    assert "hello\n" == podman.podman("exec", "db", "cat", "/data/nested/a file")


def test_daemon_leaves_a_held_service_alone_until_released(
    podman: PodmanService, daemon: Daemon, desired_dir: Path, state_dir: Path
) -> None:
    """A live process's hold keeps the daemon off a stopped service; a dead one's does not."""
    write_services(desired_dir, db_doc())
    daemon.start()
    with Store.open(state_dir) as store:
        store.hold("db", reason="restore")  # this test process: alive
        podman.podman("stop", "--time", "1", "db")
        daemon.signal(signal.SIGHUP)  # and look now
        time.sleep(3)
        assert not podman.inspect("db")["State"]["Running"]
        assert any(e.get("event") == "service_held" for e in daemon.logs())
        assert "held by pid" in daemon.service("db")["note"]

        store.release("db")
        wait_until(lambda: podman.inspect("db")["State"]["Running"], 20)

        dead = subprocess.Popen(["true"])
        dead.wait()
        store.hold("db", reason="restore", pid=dead.pid)
        podman.podman("stop", "--time", "1", "db")
        wait_until(lambda: podman.inspect("db")["State"]["Running"], 20)


def test_a_backup_killed_mid_copy_leaves_no_backup_and_the_daemon_heals(
    podman: PodmanService,
    daemon: Daemon,
    desired_dir: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """kill -9 while the service is stopped for the copy: its hold dies with it, the
    daemon starts the service again, and the half-written backup is never listed."""
    write_services(desired_dir, db_doc())
    daemon.start()
    podman.podman("exec", "db", "sh", "-c", "head -c 150000000 /dev/urandom > /data/big")
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}
    backup = subprocess.Popen(
        [sys.executable, "-m", "paid", "backup", "run", "db", str(desired_dir)], env=env
    )
    wait_until(lambda: not podman.inspect("db")["State"]["Running"], 30)
    wait_until(lambda: list((state_dir / "backups" / "db").glob(".*.partial/*.tar.gz")), 10)
    backup.kill()
    backup.wait()

    wait_until(lambda: podman.inspect("db")["State"]["Running"], 30)
    assert [] == paid_json(podman, state_dir, capsys, "backup", "list")["backups"]
    assert 0 == paid(podman, state_dir, "backup", "run", "db", str(desired_dir))
    (entry,) = paid_json(podman, state_dir, capsys, "backup", "list")["backups"]
    assert [entry["id"]] == [p.name for p in (state_dir / "backups" / "db").iterdir()]


def test_the_upload_command_gets_each_new_backup_and_its_failure_is_journalled(
    db: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """PAID_BACKUP_DIR/_ID/_SERVICE name the new backup; a failing upload keeps it."""
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    copy = f'cp -r "$PAID_BACKUP_DIR" "{offsite}/$PAID_BACKUP_SERVICE-$PAID_BACKUP_ID"'

    assert 0 == paid(
        db, state_dir, "backup", "run", "db", str(desired_dir), "--backup-upload-command", copy
    )
    assert 0 == paid(
        db,
        state_dir,
        "backup",
        "run",
        "db",
        str(desired_dir),
        "--backup-upload-command",
        "echo no route to host >&2; exit 3",
    )

    (uploaded,) = offsite.iterdir()
    assert (uploaded / "manifest.json").is_file()
    assert uploaded.name.startswith("db-")
    with Store.open(state_dir) as store:
        kinds = [e.kind for e in store.events(service="db") if e.kind.startswith("backup_")]
        (failure,) = [e for e in store.events() if e.kind == "backup_upload_failed"]
    assert [
        "backup_succeeded",
        "backup_uploaded",
        "backup_succeeded",
        "backup_upload_failed",
    ] == kinds
    assert "no route to host" in failure.message
    assert 2 == len(list((state_dir / "backups" / "db").iterdir()))


def test_backup_run_and_restore_speak_json(
    db: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--output json`: the backup made, then the backup restored, one document each."""
    made = paid_json(db, state_dir, capsys, "backup", "run", "db", str(desired_dir))
    (backup,) = made["backups"]

    restored = paid_json(db, state_dir, capsys, "restore", "db", str(desired_dir))

    assert ([], "db") == (made["failures"], backup["service"])
    assert {"service": "db", "restored": backup["id"], "ready": True} == restored
