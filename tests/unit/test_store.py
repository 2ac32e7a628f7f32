"""The SQLite store: real files, migrations, permissions."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from paid.storage.store import FILENAME, SCHEMA_VERSION, Store, StoreError


def test_store_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    """Specs carry env values: the file is 0600; WAL makes commits crash-safe."""
    with Store.open(tmp_path) as store:
        mode = stat.S_IMODE((tmp_path / FILENAME).stat().st_mode)
        journal = store._db.execute("PRAGMA journal_mode").fetchone()[0]

    assert (0o600, "wal") == (mode, journal)


def test_reopen_keeps_revisions_and_schema_version(tmp_path: Path) -> None:
    """What was committed is there after reopening; migrations do not rerun."""
    with Store.open(tmp_path) as store:
        number = store.revision_for(
            service="web", spec_hash="h1", spec={"image": "a:1"}, image="a:1"
        )
    with Store.open(tmp_path) as store:
        again = store.revision_for(
            service="web", spec_hash="h1", spec={"image": "a:1"}, image="a:1"
        )
        revisions = store.revisions("web")
        version = store.schema_version

    assert (1, 1, SCHEMA_VERSION) == (number, again, version)
    assert [("web", 1, "h1")] == [(r.service, r.number, r.spec_hash) for r in revisions]


def test_store_from_a_newer_paid_is_refused(tmp_path: Path) -> None:
    """Downgrades do not silently corrupt a newer schema."""
    with Store.open(tmp_path):
        pass
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()

    with pytest.raises(StoreError, match="upgrade paid"):
        Store.open(tmp_path)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    """A corrupt store is reported with its path, not as a traceback."""
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match=str(tmp_path / FILENAME)):
        Store.open(tmp_path)


def test_journal_records_in_order(tmp_path: Path) -> None:
    """Events come back in insertion order, filterable by service."""
    with Store.open(tmp_path) as store:
        store.record("a", "first", service="web", n=1)
        store.record("b", "second", service="db")
        store.record("c", "third", service="web")
        web = store.events(service="web")

    assert [("a", {"n": 1}), ("c", {})] == [(e.kind, dict(e.data)) for e in web]


def _history(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from paid.cli import main  # noqa: PLC0415

    code = main(["history", "web", "--state-dir", str(state_dir)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _filled(state_dir: Path) -> None:
    with Store.open(state_dir) as store:
        for i in range(200):
            store.record("test", "x" * 500, service="web", i=i)
        store.revision_for(service="web", spec_hash="h1", spec={"image": "a:1"}, image="a:1")
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_corrupt_store_is_named_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scribbled pages: one line naming the file, how to move it aside, what is lost."""
    _filled(tmp_path)
    path = tmp_path / FILENAME
    with path.open("r+b") as file:
        file.seek(4096)
        file.write(b"\xff" * 8192)

    code, text = _history(tmp_path, capsys)

    assert 1 == code
    assert f"the store {path} is corrupt" in text
    assert f"mv {path} {path}.corrupt" in text
    assert "Traceback" not in text


def test_an_emptied_store_is_lost_history_not_a_new_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A paid.db truncated to 0 bytes is refused, never silently started afresh."""
    _filled(tmp_path)
    (tmp_path / FILENAME).write_bytes(b"")

    code, text = _history(tmp_path, capsys)

    assert 1 == code
    assert "is empty (0 bytes) but was not made now" in text
    assert 0 == (tmp_path / FILENAME).stat().st_size  # left as it was, for the user to look at


def test_a_new_store_is_never_left_empty(tmp_path: Path) -> None:
    """A store is linked into place only once made: no 0-byte paid.db, no temporary file left."""
    with Store.open(tmp_path) as store:
        assert SCHEMA_VERSION == store.schema_version

    assert (tmp_path / FILENAME).stat().st_size > 0
    assert [FILENAME] == sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("shm"))


def _mount(*args: str) -> None:
    import subprocess  # noqa: PLC0415

    subprocess.run(["mount", *args], check=True, capture_output=True)


def _unmount(path: Path) -> None:
    """Every mount on ``path`` (a bind mount then its remount stack two)."""
    import subprocess  # noqa: PLC0415

    while subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _can_mount() -> bool:
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount (as CI runs)")
def test_a_read_only_state_directory_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state directory on a read-only mount: one line that says read-only, no traceback."""
    state = tmp_path / "state"
    _filled(state)
    _mount("--bind", str(state), str(state))
    try:
        _mount("-o", "remount,ro,bind", str(state))
        code, text = _history(state, capsys)
    finally:
        _unmount(state)
    assert 1 == code
    assert "read-only" in text or "cannot be written" in text, text
    assert "Traceback" not in text


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount (as CI runs)")
def test_a_full_disk_is_called_no_space_left(tmp_path: Path) -> None:
    """The store's file system full: StoreError says no space left on device."""

    state = tmp_path / "state"
    state.mkdir()
    _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(state))
    try:

        def fill(store: Store) -> None:
            for i in range(10_000):
                store.record("test", "x" * 4000, service="web", i=i)

        with Store.open(state) as store, pytest.raises(StoreError, match="no space left"):
            fill(store)
    finally:
        _unmount(state)


def test_a_store_made_on_a_nearly_full_disk_is_whole_or_not_made(tmp_path: Path) -> None:
    """Disks from 64 KiB to 352 KiB: the store opens whole, or "no space left" and the
    file is absent or whole (it opens once there is room).

    Never a malformed store: made in WAL mode, the schema sat in the -wal
    file, the checkpoint at close failed silently on the full disk, and a
    store missing its schema was linked into place (256 KiB did it).
    """
    outcomes = set()
    for kib in range(64, 353, 32):
        state = tmp_path / f"state-{kib}"
        state.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(state))
        try:
            refused = ""
            try:
                with Store.open(state) as store:
                    assert SCHEMA_VERSION == store.schema_version
            except StoreError as err:
                refused = str(err)
            outcomes.add("refused" if refused else "made")
            if refused:
                assert "no space left" in refused, (kib, refused)
                made = state / FILENAME
                if made.exists():
                    db = sqlite3.connect(f"file:{made}?mode=ro&immutable=1", uri=True)
                    checked = db.execute("PRAGMA integrity_check").fetchone()[0]
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    db.close()
                    assert ("ok", SCHEMA_VERSION) == (checked, version), kib
        finally:
            _unmount(state)
    assert {"made", "refused"} == outcomes  # the range crosses the size the schema needs
