"""Backup archives on real files: written whole or not at all, checked before use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from paid.controllers.backups import OLD_SUFFIX, RESTORE_SUFFIX, recover
from paid.storage.archives import (
    ArchiveError,
    extract,
    find_backup,
    list_backups,
    prune,
    verify,
    write_backup,
)
from paid.storage.store import HoldTaken, Store


def _volume(tmp_path: Path) -> Path:
    data = tmp_path / "volumes" / "v" / "_data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "file").write_bytes(b"\x00\x01payload")
    (data / ".hidden").write_text("dot file")
    os.symlink("sub/file", data / "rel-link")
    return data


def test_a_backup_round_trips_through_extract(tmp_path: Path) -> None:
    """Hidden files and relative links survive; the manifest's checksum holds."""
    data = _volume(tmp_path)
    record = write_backup(
        tmp_path / "b",
        service="s",
        volumes={"v": data},
        revision=3,
        consistency="live",
        reason="test",
        now=1_700_000_000.0,
    )
    target = tmp_path / "out"
    target.mkdir()

    extract(record, "v", target)

    assert [] == verify(record)
    assert b"\x00\x01payload" == (target / "sub" / "file").read_bytes()
    assert "dot file" == (target / ".hidden").read_text()
    assert "sub/file" == os.readlink(target / "rel-link")
    assert [record.id] == [b.id for b in list_backups(tmp_path / "b")]


def test_a_partial_backup_is_invisible_and_pruned(tmp_path: Path) -> None:
    """A kill mid-copy leaves .<id>.partial: never listed, removed by the next prune."""
    data = _volume(tmp_path)
    root = tmp_path / "b"
    for i in range(3):
        write_backup(
            root,
            service="s",
            volumes={"v": data},
            revision=None,
            consistency="live",
            reason="",
            now=1_700_000_000.0 + i,
        )
    partial = root / "s" / ".20991231T000000.000Z.partial"
    partial.mkdir()

    assert 3 == len(list_backups(root, "s"))
    removed = prune(root, "s", keep=1)

    assert 2 == len(removed)
    assert not partial.exists()
    assert 1 == len(list_backups(root, "s"))


def test_recover_undoes_a_swap_interrupted_between_the_renames(tmp_path: Path) -> None:
    """_data moved aside, the new copy not yet in: the old content comes back."""
    data = tmp_path / "_data"
    old = tmp_path / ("_data" + OLD_SUFFIX)
    staging = tmp_path / ("_data" + RESTORE_SUFFIX)
    old.mkdir()
    (old / "precious").write_text("keep me")
    staging.mkdir()

    recover(data)

    assert "keep me" == (data / "precious").read_text()
    assert not old.exists()
    assert not staging.exists()


def test_a_hold_by_a_live_process_excludes_others_and_a_dead_ones_is_void(
    tmp_path: Path,
) -> None:
    """Holds keep two backups/restores of one service apart, and die with their owner."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Store.open(tmp_path) as store:
        store.hold("db", reason="backup", pid=1)  # init: alive, not us
        with pytest.raises(HoldTaken, match="pid 1"):
            store.hold("db", reason="restore")
        store.hold("web", reason="backup", pid=dead.pid)

        assert {"db"} == set(store.holds())
        store.hold("web", reason="restore")  # the dead holder's claim is void
        assert {"db", "web"} == set(store.holds())


def test_extract_refuses_an_archive_changed_after_it_was_verified(tmp_path: Path) -> None:
    """The checksum is checked again in the extracting pass itself."""
    data = _volume(tmp_path)
    record = write_backup(
        tmp_path / "b",
        service="s",
        volumes={"v": data},
        revision=None,
        consistency="live",
        reason="",
        now=1_700_000_000.0,
    )
    assert [] == verify(record)
    archive = record.path / "v.tar.gz"
    archive.write_bytes(archive.read_bytes() + b"appended later")
    target = tmp_path / "out"
    target.mkdir()

    with pytest.raises(ArchiveError, match="checksum mismatch"):
        extract(record, "v", target)


def test_the_newest_backup_to_restore_is_never_a_restores_own_safety_copy(
    tmp_path: Path,
) -> None:
    """A restore killed and run again restores what was asked, not its own safety backup."""
    data = _volume(tmp_path)
    root = tmp_path / "b"
    wanted = write_backup(
        root, service="s", volumes={"v": data}, revision=None, consistency="live",
        reason="on demand", now=1_700_000_000.0,
    )  # fmt: skip
    write_backup(
        root, service="s", volumes={"v": data}, revision=None, consistency="live",
        reason=f"before restoring {wanted.id}", now=1_700_000_100.0,
    )  # fmt: skip

    assert wanted.id == find_backup(root, "s", None).id


def test_debris_of_a_killed_restore_and_backup_is_collected_unless_held(tmp_path: Path) -> None:
    """`_data.paid-restore`, `_data.paid-old` and `.<id>.partial` go; a held service's stay."""
    from paid.controllers.backups import BackupController  # noqa: PLC0415
    from paid.controllers.services import ServiceController  # noqa: PLC0415
    from paid.runtime.fake import FakeRuntime  # noqa: PLC0415
    from paid.storage.store import Store  # noqa: PLC0415
    from tests.unit.builders import desired_service  # noqa: PLC0415

    runtime = FakeRuntime()
    volumes = {}
    for name in ("db-data", "cache-data"):
        data = tmp_path / "volumes" / name / "_data"
        data.mkdir(parents=True)
        (data / "table").write_text("rows\n")
        (data.with_name("_data.paid-restore") / "half").mkdir(parents=True)
        runtime.volumes[name] = str(data)
        volumes[name] = data
    (volumes["db-data"].with_name("_data.paid-old")).mkdir()
    backups = tmp_path / "backups"
    for service in ("db", "cache"):
        (backups / service / ".20260101T000000.000Z.partial").mkdir(parents=True)
    with Store.open(tmp_path / "state") as store:
        store.hold("cache", reason="restore", pid=os.getpid())
        controller = BackupController(
            runtime=runtime,
            store=store,
            services=ServiceController(runtime=runtime, journal=store),
            directory=backups,
        )
        db = desired_service("db", image="localhost/db:1", volumes=["db-data:/var/lib/db"])
        cache = desired_service("cache", image="localhost/db:1", volumes=["cache-data:/c"])

        cleaned = controller.collect_debris([db, cache])

    assert 3 == len(cleaned)
    assert not volumes["db-data"].with_name("_data.paid-restore").exists()
    assert not volumes["db-data"].with_name("_data.paid-old").exists()
    assert "rows\n" == (volumes["db-data"] / "table").read_text()  # the volume itself stays
    assert not list((backups / "db").iterdir())
    assert volumes["cache-data"].with_name("_data.paid-restore").exists()  # held: in progress
    assert list((backups / "cache").iterdir())
