"""The SQLite store: real files, migrations, permissions."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from paid.state.store import FILENAME, SCHEMA_VERSION, Store, StoreError


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
