"""The persistent store: one SQLite file under the state directory.

It keeps the revisions of every service, the journal of what paid did and
the last valid desired state (so that a daemon started on a broken
checkout still enforces what was last known good).
The file is opened in WAL mode with ``synchronous=FULL`` so that a commit
that returned survives ``kill -9`` and power loss; every change is one
transaction. The file is created with mode 0600 (specs hold env values).

Schema changes are numbered migrations, applied in order inside a
transaction and recorded in ``PRAGMA user_version``: a store written by an
older paid is upgraded on open; one written by a newer paid is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILENAME = "paid.db"

_MIGRATIONS: tuple[str, ...] = (
    # 1: revisions and the journal
    """
    CREATE TABLE revisions (
        service     TEXT    NOT NULL,
        number      INTEGER NOT NULL,
        spec_hash   TEXT    NOT NULL,
        spec        TEXT    NOT NULL,
        image       TEXT    NOT NULL,
        created_at  REAL    NOT NULL,
        PRIMARY KEY (service, number),
        UNIQUE (service, spec_hash)
    );
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       REAL    NOT NULL,
        kind     TEXT    NOT NULL,
        service  TEXT,
        message  TEXT    NOT NULL,
        data     TEXT    NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_time ON events (at);
    CREATE INDEX events_by_service ON events (service, at);
    """,
    # 2: the last valid desired state, enforced while the directory is broken
    """
    CREATE TABLE desired_snapshot (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        at         REAL    NOT NULL,
        digest     TEXT    NOT NULL,
        documents  TEXT    NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


class StoreError(Exception):
    """The store cannot be opened or used."""


@dataclass(frozen=True, slots=True)
class Revision:
    service: str
    number: int
    spec_hash: str
    spec: Mapping[str, Any]
    image: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: float
    kind: str
    service: str | None
    message: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    digest: str
    documents: list[dict[str, Any]]


class Store:
    """Revisions, journal and last good desired state in SQLite.

    One connection, shared by the daemon's threads under a lock: SQLite
    serialises writers anyway, and the store is far from the hot path.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.path = path

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str]) -> Store:
        directory = Path(state_dir)
        path = directory / FILENAME
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create the file 0600 before SQLite does (it would honour umask).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot open the store at {path}: {err}") from err
        store = cls(db, path)
        store._migrate()
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        try:
            current = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {current}; this paid knows up to "
                    f"{SCHEMA_VERSION}: upgrade paid"
                )
            for version in range(current, SCHEMA_VERSION):
                with self._transaction() as db:
                    for statement in _MIGRATIONS[version].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {version + 1}")
        except sqlite3.Error as err:
            raise StoreError(f"cannot migrate the store at {self.path}: {err}") from err

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    # -- revisions ------------------------------------------------------

    def revision_for(
        self, *, service: str, spec_hash: str, spec: Mapping[str, Any], image: str
    ) -> int:
        """The revision number of this spec, allocating the next one if new."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT number FROM revisions WHERE service = ? AND spec_hash = ?",
                (service, spec_hash),
            ).fetchone()
            if row is not None:
                return int(row[0])
            (last,) = db.execute(
                "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE service = ?", (service,)
            ).fetchone()
            number = int(last) + 1
            db.execute(
                "INSERT INTO revisions (service, number, spec_hash, spec, image, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (service, number, spec_hash, json.dumps(spec, sort_keys=True), image, time.time()),
            )
            return number

    def find_revision(self, *, service: str, spec_hash: str) -> int | None:
        rows = self._query(
            "SELECT number FROM revisions WHERE service = ? AND spec_hash = ?",
            (service, spec_hash),
        )
        return int(rows[0][0]) if rows else None

    def revisions(self, service: str) -> list[Revision]:
        rows = self._query(
            "SELECT service, number, spec_hash, spec, image, created_at FROM revisions"
            " WHERE service = ? ORDER BY number",
            (service,),
        )
        return [Revision(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    # -- journal ----------------------------------------------------------

    def record(self, kind: str, message: str, *, service: str | None = None, **data: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events (at, kind, service, message, data) VALUES (?, ?, ?, ?, ?)",
                (time.time(), kind, service, message, json.dumps(data, sort_keys=True)),
            )

    def events(self, *, service: str | None = None, since: float = 0.0) -> list[Event]:
        query = "SELECT id, at, kind, service, message, data FROM events WHERE at >= ?"
        args: list[Any] = [since]
        if service is not None:
            query += " AND service = ?"
            args.append(service)
        rows = self._query(query + " ORDER BY id", args)
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- last valid desired state ---------------------------------------

    def save_snapshot(self, *, digest: str, documents: list[dict[str, Any]]) -> None:
        """Keep ``documents`` as the last valid desired state (one row, replaced)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO desired_snapshot (id, at, digest, documents) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at, digest = excluded.digest,"
                " documents = excluded.documents WHERE digest != excluded.digest",
                (time.time(), digest, json.dumps(documents, sort_keys=True)),
            )

    def snapshot(self) -> Snapshot | None:
        rows = self._query("SELECT at, digest, documents FROM desired_snapshot WHERE id = 1")
        if not rows:
            return None
        at, digest, documents = rows[0]
        return Snapshot(at=at, digest=digest, documents=json.loads(documents))
