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
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paid.state.images import ImageTarget
from paid.state.slo import Mark, Watch

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
    # 3: rollouts: each revision's outcome, its full document (to roll back
    # to), where it came from; pins made by `paid rollback`
    """
    ALTER TABLE revisions ADD COLUMN document TEXT;
    ALTER TABLE revisions ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending';
    ALTER TABLE revisions ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE revisions ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE revisions ADD COLUMN git_commit TEXT;
    ALTER TABLE revisions ADD COLUMN git_dirty INTEGER;
    ALTER TABLE revisions ADD COLUMN updated_at REAL;
    ALTER TABLE revisions ADD COLUMN image_id TEXT;
    CREATE TABLE pins (
        service       TEXT PRIMARY KEY,
        revision      INTEGER NOT NULL,
        desired_hash  TEXT    NOT NULL,
        reason        TEXT    NOT NULL,
        at            REAL    NOT NULL
    );
    """,
    # 4: holds: a service a backup or restore is working on; the daemon
    # leaves it alone until the hold is released or its owner is gone
    """
    CREATE TABLE holds (
        service  TEXT    PRIMARY KEY,
        reason   TEXT    NOT NULL,
        pid      INTEGER NOT NULL,
        at       REAL    NOT NULL
    );
    """,
    # 5: the readiness record (SLOs, postmortems): each service's ready /
    # not-ready transitions, and when a daemon was watching at all
    """
    CREATE TABLE readiness (
        service  TEXT    NOT NULL,
        at       REAL    NOT NULL,
        ready    INTEGER  -- 1 ready, 0 not, NULL not counted (disabled)
    );
    CREATE INDEX readiness_by_service ON readiness (service, at);
    CREATE TABLE watches (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        pid      INTEGER NOT NULL,
        start    REAL    NOT NULL,
        seen     REAL    NOT NULL
    );
    """,
    # 6: images: the registry digest each revision ran; the digest a service
    # following its tag is to run (its target) and the digests that failed
    # there; every image paid ran (what `paid images prune` may remove)
    """
    ALTER TABLE revisions ADD COLUMN digest TEXT;
    CREATE TABLE image_targets (
        service   TEXT    PRIMARY KEY,
        image     TEXT    NOT NULL,
        digest    TEXT    NOT NULL,
        previous  TEXT,
        reason    TEXT    NOT NULL,
        settled   INTEGER NOT NULL,
        at        REAL    NOT NULL
    );
    CREATE TABLE bad_digests (
        service  TEXT    NOT NULL,
        digest   TEXT    NOT NULL,
        reason   TEXT    NOT NULL,
        at       REAL    NOT NULL,
        PRIMARY KEY (service, digest)
    );
    CREATE TABLE images_run (
        image_id  TEXT    PRIMARY KEY,
        image     TEXT    NOT NULL,
        at        REAL    NOT NULL
    );
    """,
    # 7: notifications (paid.storage.outbox): messages waiting for their
    # targets, how far the journal has been read for them, and what was told
    """
    CREATE TABLE notifications (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        target      TEXT    NOT NULL,
        grp         TEXT    NOT NULL,
        event       TEXT    NOT NULL,
        service     TEXT,
        title       TEXT    NOT NULL,
        body        TEXT    NOT NULL,
        count       INTEGER NOT NULL DEFAULT 1,
        created     REAL    NOT NULL,
        due         REAL    NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT    NOT NULL DEFAULT '',
        sent        REAL,
        dropped     REAL
    );
    CREATE INDEX notifications_waiting ON notifications (sent, dropped, due);
    CREATE INDEX notifications_by_group ON notifications (grp, created);
    CREATE TABLE notify_cursor (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        event_id  INTEGER NOT NULL
    );
    CREATE TABLE notify_told (
        key  TEXT PRIMARY KEY,
        at   REAL NOT NULL
    );
    """,
    # 8: safer image updates: the tag a target is the digest of (policy
    # semver moves between tags), and when each digest was first seen and
    # made (imageUpdate.minimumAge)
    """
    ALTER TABLE image_targets ADD COLUMN tag TEXT;
    ALTER TABLE image_targets ADD COLUMN previous_tag TEXT;
    CREATE TABLE image_seen (
        repository  TEXT NOT NULL,
        digest      TEXT NOT NULL,
        first_seen  REAL NOT NULL,
        created     REAL,
        PRIMARY KEY (repository, digest)
    );
    """,
)

# abandoned: the desired state moved on while its gate judged it (never judged, not quarantined)
OUTCOMES = (
    "pending", "progressing", "succeeded", "failed", "rolled_back", "superseded", "abandoned"
)  # fmt: skip
SCHEMA_VERSION = len(_MIGRATIONS)


class StoreError(Exception):
    """The store cannot be opened or used; the message names the file and what to do."""


def explained(path: Path, err: BaseException) -> StoreError:
    """SQLite's (or the OS's) error as a StoreError that says what is wrong and what to do.

    Running containers are never touched by any of these: the store is
    paid's memory, not the host's state.
    """
    text = str(err)
    lowered = text.lower()
    if "malformed" in lowered or "not a database" in lowered or "file is encrypted" in lowered:
        return StoreError(
            f"the store {path} is corrupt ({text}): move it aside (mv {path} {path}.corrupt, "
            f"and its -wal and -shm files); the next start makes a new one and rebuilds "
            "what it can from the containers' labels. Revision history, pins and the "
            "journal in the old file are lost to paid"
        )
    if "readonly" in lowered or "read-only" in lowered or _read_only(path.parent):
        return StoreError(
            f"the store {path} cannot be written ({text}): its directory or file is read-only; "
            "make it writable by the user paid runs as"
        )
    if "disk is full" in lowered or "no space" in lowered or _full(path.parent):
        return StoreError(
            f"the store {path} cannot be written: no space left on device; free space "
            "on its file system"
        )
    return StoreError(f"the store {path}: {text}")


def _full(directory: Path) -> bool:
    """Whether ``directory``'s file system has no block left (SQLite may say "disk I/O error")."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


@dataclass(frozen=True, slots=True)
class Revision:
    service: str
    number: int
    spec_hash: str
    spec: Mapping[str, Any]
    image: str
    created_at: float
    document: Mapping[str, Any] | None = None
    outcome: str = "pending"
    reason: str = ""
    quarantined: bool = False
    git_commit: str | None = None
    git_dirty: bool | None = None
    updated_at: float | None = None
    image_id: str | None = None
    digest: str | None = None  # the registry's digest of what ran (None: a local image)


@dataclass(frozen=True, slots=True)
class Pin:
    service: str
    revision: int
    desired_hash: str  # the desired spec when pinned; a new one ends the pin
    reason: str
    at: float


def _insert_event(
    db: sqlite3.Connection,
    kind: str,
    message: str,
    *,
    service: str | None,
    data: Mapping[str, Any],
) -> None:
    db.execute(
        "INSERT INTO events (at, kind, service, message, data) VALUES (?, ?, ?, ?, ?)",
        (time.time(), kind, service, message, json.dumps(data, sort_keys=True)),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True, slots=True)
class Hold:
    service: str
    reason: str
    pid: int  # the process that holds it; a hold whose process died is void
    at: float

    def alive(self) -> bool:
        return _alive(self.pid)


class HoldTaken(Exception):
    """Another live process holds the service."""


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


def _read_only(directory: Path) -> bool:
    """Whether ``directory`` is on a read-only mount or cannot be written by this user."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY) or not os.access(
            directory, os.W_OK
        )
    except OSError:
        return False


def _create(path: Path) -> None:
    """Make a new store beside ``path`` and link it into place only once it is whole.

    So a ``paid.db`` of 0 bytes is never paid's own (a kill -9 mid-creation
    leaves only a hidden temporary file), and is reported as lost history.
    The file is made 0600 before SQLite sees it (SQLite would honour umask);
    a link, not a rename, so a store another process made meanwhile stays.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    os.close(os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        db = sqlite3.connect(temporary, isolation_level=None)
        try:
            # A rollback journal, not WAL, while it is made: every page is in the
            # file itself when the link is made. In WAL mode the schema would sit
            # in the -wal file until close checkpoints it, and a checkpoint that
            # fails (a full disk) fails silently, linking a malformed store.
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("PRAGMA synchronous=FULL")
            Store(db, temporary)._migrate()
        finally:
            db.close()
        with suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            with suppress(FileNotFoundError):
                leftover.unlink()


def _empty(path: Path) -> bool:
    """A database file of 0 bytes with no write-ahead log: nothing was ever kept in it."""
    try:
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size == 0 and (not wal.exists() or wal.stat().st_size == 0)
    except OSError:
        return False


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
            # Create the file 0600 before SQLite does (it would honour umask), and
            # only when it is missing: closing a descriptor of a database this
            # process has open drops SQLite's POSIX locks on it.
            if not path.exists():
                _create(path)
            elif _empty(path):
                raise StoreError(
                    f"the store {path} is empty (0 bytes) but was not made now: its history "
                    f"was lost (a truncated file?). Move it aside (mv {path} {path}.empty) to "
                    "start a new one; paid rebuilds what it can from the containers' labels"
                )
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as err:
            raise explained(path, err) from err
        store = cls(db, path)
        try:
            store._migrate()
        except BaseException:
            db.close()
            raise
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
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise explained(self.path, err) from err
            try:
                yield self._db
            except BaseException as err:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise explained(self.path, err) from err
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise explained(self.path, err) from err

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, for the store's companion modules (``outbox``)."""
        return self._transaction()

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read, for the store's companion modules."""
        return self._query(sql, args)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise explained(self.path, err) from err

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
            raise explained(self.path, err) from err

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    # -- revisions ------------------------------------------------------

    def revision_for(
        self,
        *,
        service: str,
        spec_hash: str,
        spec: Mapping[str, Any],
        image: str,
        document: Mapping[str, Any] | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
    ) -> int:
        """The revision number of this spec, allocating the next one if new."""
        doc = json.dumps(document, sort_keys=True) if document is not None else None
        with self._transaction() as db:
            row = db.execute(
                "SELECT number FROM revisions WHERE service = ? AND spec_hash = ?",
                (service, spec_hash),
            ).fetchone()
            if row is not None:
                if doc is not None:  # controller fields may have changed: keep the latest
                    db.execute(
                        "UPDATE revisions SET document = ? WHERE service = ? AND number = ?",
                        (doc, service, row[0]),
                    )
                return int(row[0])
            (last,) = db.execute(
                "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE service = ?", (service,)
            ).fetchone()
            number = int(last) + 1
            now = time.time()
            db.execute(
                "INSERT INTO revisions (service, number, spec_hash, spec, image, created_at,"
                " document, git_commit, git_dirty, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    number,
                    spec_hash,
                    json.dumps(spec, sort_keys=True),
                    image,
                    now,
                    doc,
                    git_commit,
                    None if git_dirty is None else int(git_dirty),
                    now,
                ),
            )
            return number

    def set_outcome(
        self,
        service: str,
        number: int,
        outcome: str,
        reason: str = "",
        *,
        quarantine: bool | None = None,
        event: tuple[str, str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Set a revision's outcome; ``event`` (kind, message, data) is journalled with it.

        One transaction: a reader that sees the outcome sees its event.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self._transaction() as db:
            db.execute(
                "UPDATE revisions SET outcome = ?, reason = ?, updated_at = ?,"
                " quarantined = COALESCE(?, quarantined) WHERE service = ? AND number = ?",
                (
                    outcome,
                    reason,
                    time.time(),
                    None if quarantine is None else int(quarantine),
                    service,
                    number,
                ),
            )
            if event is not None:
                kind, message, data = event
                _insert_event(db, kind, message, service=service, data=data)

    def set_image(
        self, service: str, number: int, *, image: str, image_id: str, digest: str | None
    ) -> None:
        """What a revision ran: the image ID and the registry digest; remembered for pruning."""
        with self._transaction() as db:
            db.execute(
                "UPDATE revisions SET image_id = ?, digest = COALESCE(?, digest)"
                " WHERE service = ? AND number = ?",
                (image_id, digest, service, number),
            )
            db.execute(
                "INSERT INTO images_run (image_id, image, at) VALUES (?, ?, ?)"
                " ON CONFLICT (image_id) DO UPDATE SET at = excluded.at",
                (image_id, image, time.time()),
            )

    def images_run(self) -> dict[str, str]:
        """Every image ID a revision of paid's ran (pruned revisions included), with its image."""
        return {str(r[0]): str(r[1]) for r in self._query("SELECT image_id, image FROM images_run")}

    def kept_image_ids(self) -> set[str]:
        """The image IDs that kept revisions ran: a rollback needs them."""
        rows = self._query("SELECT image_id FROM revisions WHERE image_id IS NOT NULL")
        return {str(r[0]) for r in rows}

    # -- image targets (imageUpdate) -------------------------------------------

    def image_targets(self) -> dict[str, ImageTarget]:
        rows = self._query(
            "SELECT service, image, digest, previous, reason, settled, tag, previous_tag"
            " FROM image_targets"
        )
        return {
            r[0]: ImageTarget(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) for r in rows
        }

    def set_image_target(self, target: ImageTarget) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO image_targets"
                " (service, image, digest, previous, reason, settled, at, tag, previous_tag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    target.service,
                    target.image,
                    target.digest,
                    target.previous,
                    target.reason,
                    int(target.settled),
                    time.time(),
                    target.tag,
                    target.previous_tag,
                ),
            )

    def reject_digest(self, target: ImageTarget, reason: str) -> None:
        """``target``'s digest failed: it is bad for its service, and the previous one is back."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO bad_digests (service, digest, reason, at)"
                " VALUES (?, ?, ?, ?)",
                (target.service, target.digest, reason, time.time()),
            )
            if target.previous is None:
                db.execute("DELETE FROM image_targets WHERE service = ?", (target.service,))
            else:
                db.execute(
                    "UPDATE image_targets SET digest = ?, previous = NULL, settled = 1,"
                    " reason = ?, at = ?, tag = ?, previous_tag = NULL WHERE service = ?",
                    (
                        target.previous,
                        f"back from {target.digest}",
                        time.time(),
                        target.previous_tag,
                        target.service,
                    ),
                )

    def seen(
        self, repository: str, digest: str, *, created: float | None, at: float | None = None
    ) -> tuple[float, float | None]:
        """When ``digest`` of ``repository`` was first seen, and made (its image's ``created``).

        The first sighting is kept; a creation time learnt later fills in.
        """
        with self._transaction() as db:
            db.execute(
                "INSERT INTO image_seen (repository, digest, first_seen, created)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (repository, digest) DO UPDATE SET"
                " created = COALESCE(image_seen.created, excluded.created)",
                (repository, digest, time.time() if at is None else at, created),
            )
            row = db.execute(
                "SELECT first_seen, created FROM image_seen WHERE repository = ? AND digest = ?",
                (repository, digest),
            ).fetchone()
        return float(row[0]), None if row[1] is None else float(row[1])

    def bad_digests(self, service: str) -> dict[str, str]:
        rows = self._query("SELECT digest, reason FROM bad_digests WHERE service = ?", (service,))
        return {str(r[0]): str(r[1]) for r in rows}

    def forgive_digests(self, service: str) -> int:
        """``paid rollout retry``: the service's bad digests may be tried again."""
        with self._transaction() as db:
            return db.execute("DELETE FROM bad_digests WHERE service = ?", (service,)).rowcount

    def revision(self, service: str, number: int) -> Revision | None:
        found = [r for r in self.revisions(service) if r.number == number]
        return found[0] if found else None

    def last_good(self, service: str, *, excluding: int | None = None) -> Revision | None:
        """The most recently succeeded revision (never pruned)."""
        good = [
            r
            for r in self.revisions(service)
            if r.outcome in ("succeeded", "superseded") and r.number != excluding and r.document
        ]
        return max(good, key=lambda r: (r.outcome == "succeeded", r.updated_at or 0), default=None)

    def prune_revisions(self, service: str, *, keep: int, protect: set[int]) -> int:
        """Drop the oldest revisions beyond ``keep``, never the last good or ``protect``."""
        revisions = self.revisions(service)
        good = self.last_good(service)
        keepers = {r.number for r in revisions[-keep:]} | protect
        if good is not None:
            keepers.add(good.number)
        doomed = [r.number for r in revisions if r.number not in keepers]
        if doomed:
            with self._transaction() as db:
                db.executemany(
                    "DELETE FROM revisions WHERE service = ? AND number = ?",
                    [(service, n) for n in doomed],
                )
        return len(doomed)

    # -- pins ---------------------------------------------------------------

    def pin(self, service: str, *, revision: int, desired_hash: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO pins (service, revision, desired_hash, reason, at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (service) DO UPDATE SET revision = excluded.revision,"
                " desired_hash = excluded.desired_hash, reason = excluded.reason, at = excluded.at",
                (service, revision, desired_hash, reason, time.time()),
            )

    def unpin(self, service: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM pins WHERE service = ?", (service,))

    def pins(self) -> dict[str, Pin]:
        rows = self._query("SELECT service, revision, desired_hash, reason, at FROM pins")
        return {r[0]: Pin(*r) for r in rows}

    # -- holds --------------------------------------------------------------

    def hold(self, service: str, *, reason: str, pid: int | None = None) -> None:
        """Take the service for a backup or restore; ``HoldTaken`` if a live process has it."""
        pid = os.getpid() if pid is None else pid
        with self._transaction() as db:
            row = db.execute(
                "SELECT service, reason, pid, at FROM holds WHERE service = ?", (service,)
            ).fetchone()
            if row is not None and Hold(*row).alive() and row[2] != pid:
                raise HoldTaken(f"{service} is held by pid {row[2]} ({row[1]})")
            db.execute(
                "INSERT OR REPLACE INTO holds (service, reason, pid, at) VALUES (?, ?, ?, ?)",
                (service, reason, pid, time.time()),
            )

    def release(self, service: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM holds WHERE service = ?", (service,))

    def holds(self) -> dict[str, Hold]:
        """Holds whose process is alive (a dead one's hold is void)."""
        rows = self._query("SELECT service, reason, pid, at FROM holds")
        return {h.service: h for h in (Hold(*r) for r in rows) if h.alive()}

    # -- the readiness record -------------------------------------------------

    def begin_watch(self, *, at: float | None = None, pid: int | None = None) -> int:
        """A daemon starts watching; ``heartbeat`` extends it, its last one ends it."""
        at = time.time() if at is None else at
        pid = os.getpid() if pid is None else pid
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO watches (pid, start, seen) VALUES (?, ?, ?)", (pid, at, at)
            )
            return int(cursor.lastrowid or 0)

    def heartbeat(self, watch: int, *, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._transaction() as db:
            db.execute("UPDATE watches SET seen = ? WHERE id = ?", (at, watch))

    def mark_readiness(self, service: str, ready: bool | None, *, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._transaction() as db:
            db.execute(
                "INSERT INTO readiness (service, at, ready) VALUES (?, ?, ?)",
                (service, at, None if ready is None else int(ready)),
            )

    def readiness(self, service: str, *, since: float = 0.0) -> list[Mark]:
        """The service's marks from ``since`` on, plus the last one before it."""
        rows = self._query(
            "SELECT at, ready FROM readiness WHERE service = ? AND at >= ("
            " SELECT COALESCE(MAX(at), 0) FROM readiness WHERE service = ? AND at <= ?"
            ") ORDER BY at",
            (service, service, since),
        )
        return [Mark(at, None if ready is None else bool(ready)) for at, ready in rows]

    def watches(self, *, since: float = 0.0, now: float | None = None) -> list[Watch]:
        """Daemon runs reaching past ``since``; the newest, if its daemon lives, lasts until now."""
        now = time.time() if now is None else now
        rows = self._query("SELECT id, pid, start, seen FROM watches ORDER BY id DESC LIMIT 1")
        newest: int | None = None
        live: list[Watch] = []
        if rows and _alive(rows[0][1]):
            newest, _, start, seen = rows[0]
            live = [Watch(start, max(seen, now))]
        rows = self._query(
            "SELECT start, seen FROM watches WHERE seen >= ? AND id IS NOT ? ORDER BY start",
            (since, newest),
        )
        found = [Watch(start, seen) for start, seen in rows] + live
        return sorted((w for w in found if w.end >= since), key=lambda w: w.start)

    def data_version(self) -> int:
        """Changes when another connection (the CLI) committed: a cheap "look again"."""
        return int(self._query("PRAGMA data_version")[0][0])

    def progressing(self) -> list[tuple[str, int]]:
        """Every (service, revision) whose rollout began and has no outcome yet."""
        rows = self._query(
            "SELECT service, number FROM revisions WHERE outcome = 'progressing'"
            " ORDER BY service, number"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def find_revision(self, *, service: str, spec_hash: str) -> int | None:
        rows = self._query(
            "SELECT number FROM revisions WHERE service = ? AND spec_hash = ?",
            (service, spec_hash),
        )
        return int(rows[0][0]) if rows else None

    def recorded_specs(self) -> list[dict[str, Any]]:
        """The container shape of every kept revision of every service (for collection)."""
        return [json.loads(r[0]) for r in self._query("SELECT spec FROM revisions")]

    def revisions(self, service: str) -> list[Revision]:
        rows = self._query(
            "SELECT service, number, spec_hash, spec, image, created_at, document, outcome, reason,"
            " quarantined, git_commit, git_dirty, updated_at, image_id, digest FROM revisions"
            " WHERE service = ? ORDER BY number",
            (service,),
        )
        return [
            Revision(
                service=r[0],
                number=r[1],
                spec_hash=r[2],
                spec=json.loads(r[3]),
                image=r[4],
                created_at=r[5],
                document=json.loads(r[6]) if r[6] else None,
                outcome=r[7],
                reason=r[8],
                quarantined=bool(r[9]),
                git_commit=r[10],
                git_dirty=None if r[11] is None else bool(r[11]),
                updated_at=r[12],
                image_id=r[13],
                digest=r[14],
            )
            for r in rows
        ]

    # -- journal ----------------------------------------------------------

    def record(self, kind: str, message: str, *, service: str | None = None, **data: Any) -> None:
        with self._transaction() as db:
            _insert_event(db, kind, message, service=service, data=data)

    def events(self, *, service: str | None = None, since: float = 0.0) -> list[Event]:
        query = "SELECT id, at, kind, service, message, data FROM events WHERE at >= ?"
        args: list[Any] = [since]
        if service is not None:
            query += " AND service = ?"
            args.append(service)
        rows = self._query(query + " ORDER BY id", args)
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def latest_event_per_service(self) -> dict[str, Event]:
        """Each service's newest journal entry (the dashboard's "last thing that happened")."""
        rows = self._query(
            "SELECT id, at, kind, service, message, data FROM events WHERE id IN"
            " (SELECT MAX(id) FROM events WHERE service IS NOT NULL GROUP BY service)"
        )
        return {r[3]: Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows}

    def recent_events(
        self, *, limit: int, service: str | None = None, kind: str | None = None, since: float = 0.0
    ) -> list[Event]:
        """The newest ``limit`` journal entries (of ``service``, of a ``kind``), newest first."""
        query = "SELECT id, at, kind, service, message, data FROM events WHERE at >= ?"
        args: list[Any] = [since]
        if service is not None:
            query += " AND service = ?"
            args.append(service)
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        rows = self._query(query + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def events_after(self, event_id: int, *, limit: int = 200) -> list[Event]:
        """Journal entries after ``event_id``, oldest first."""
        rows = self._query(
            "SELECT id, at, kind, service, message, data FROM events WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (event_id, limit),
        )
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def last_event(self, kinds: Sequence[str]) -> Event | None:
        """The latest journal entry of one of ``kinds``."""
        marks = ", ".join("?" for _ in kinds)  # placeholders only: the kinds are bound
        sql = f"SELECT id, at, kind, service, message, data FROM events WHERE kind IN ({marks})"  # noqa: S608
        rows = self._query(sql + " ORDER BY id DESC LIMIT 1", list(kinds))
        return next((Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows), None)

    def latest_readiness(self) -> dict[str, Mark]:
        """Each service's last readiness mark."""
        rows = self._query(
            "SELECT r.service, r.at, r.ready FROM readiness r JOIN"
            " (SELECT service, MAX(at) AS at FROM readiness GROUP BY service) l"
            " ON r.service = l.service AND r.at = l.at"
        )
        return {r[0]: Mark(r[1], None if r[2] is None else bool(r[2])) for r in rows}

    def restarts_since(self, since: Mapping[str, float]) -> dict[str, int]:
        """Per service, the starts and restarts paid made since the time given for it."""
        if not since:
            return {}
        rows = self._query(
            "SELECT service, at FROM events WHERE kind = 'action_done' AND at >= ?"
            " AND json_extract(data, '$.action') IN ('start', 'restart')",
            [min(since.values())],
        )
        counts: dict[str, int] = {}
        for service, at in rows:
            if service in since and at >= since[service]:
                counts[service] = counts.get(service, 0) + 1
        return counts

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
