"""Notifications waiting in the store: queued with the journal read, sent once, grouped.

The journal is read in order from a cursor; the messages an entry makes
and the cursor's move past it are one transaction, so an entry is queued
exactly once, across restarts and kill -9. A message is marked sent when
its target took it; a daemon killed between the two sends it once more
(at least once, never lost), and nothing else sends anything twice.

Grouping: one message per target, service and event per ``group_seconds``.
What happens meanwhile is folded into the message still waiting (its
count goes up, its text becomes the latest), so a flapping service is one
message with a count, not a flood.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from paid.state.notices import Notice, grouped_title
from paid.storage.store import Event, Store

GROUP_SECONDS = 60.0
KEEP_SECONDS = 30 * 86400.0  # sent and dropped messages, and told keys, are forgotten then


@dataclass(frozen=True, slots=True)
class Message:
    """One waiting message, as its target will get it."""

    id: int
    target: str
    event: str
    service: str | None
    title: str
    body: str
    count: int
    created: float
    attempts: int

    @property
    def text(self) -> tuple[str, str]:
        """Title and body, saying how many happenings it stands for."""
        if self.count <= 1:
            return self.title, self.body
        since = time.strftime("%H:%M:%S UTC", time.gmtime(self.created))
        body = f"{self.count} times since {since}; the latest:\n{self.body}"
        return grouped_title(self.title, self.count), body


class Outbox:
    def __init__(
        self,
        store: Store,
        *,
        group_seconds: float = GROUP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.group_seconds = group_seconds
        self._clock = clock

    # -- reading the journal ----------------------------------------------------

    def start_cursor(self) -> int:
        """Where reading goes on; on the very first start, the journal's end (no old news)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT event_id FROM notify_cursor WHERE id = 1").fetchone()
            if row is not None:
                return int(row[0])
            end = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            db.execute("INSERT INTO notify_cursor (id, event_id) VALUES (1, ?)", (end,))
            return int(end)

    def unread(self, *, limit: int = 200) -> list[Event]:
        """Journal entries after the cursor, oldest first (a read: no write lock taken)."""
        rows = self.store.query("SELECT event_id FROM notify_cursor WHERE id = 1")
        cursor = int(rows[0][0]) if rows else self.start_cursor()
        return self.store.events_after(cursor, limit=limit)

    def queue(self, upto: int, messages: Iterable[tuple[str, Notice]]) -> int:
        """Queue ``messages`` (target, notice) and move the cursor to ``upto``: all or nothing.

        The number queued (new or folded into one waiting).
        """
        now = self._clock()
        count = 0
        with self.store.transaction() as db:
            row = db.execute("SELECT event_id FROM notify_cursor WHERE id = 1").fetchone()
            if row is not None and int(row[0]) >= upto:
                return 0  # another reader got here first: queued already
            for target, notice in messages:
                self._put(db, target, notice, now)
                count += 1
            db.execute(
                "INSERT INTO notify_cursor (id, event_id) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id",
                (upto,),
            )
        return count

    def tell_once(self, key: str, messages: Iterable[tuple[str, Notice]]) -> bool:
        """Queue ``messages`` unless ``key`` was told before (a service_down episode)."""
        now = self._clock()
        with self.store.transaction() as db:
            seen = db.execute("SELECT 1 FROM notify_told WHERE key = ?", (key,)).fetchone()
            if seen is not None:
                return False
            db.execute("INSERT INTO notify_told (key, at) VALUES (?, ?)", (key, now))
            for target, notice in messages:
                self._put(db, target, notice, now)
        return True

    def _put(self, db: sqlite3.Connection, target: str, notice: Notice, now: float) -> None:
        group = f"{target}|{notice.service or ''}|{notice.event}"
        waiting = db.execute(
            "SELECT id FROM notifications WHERE grp = ? AND sent IS NULL AND dropped IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (group,),
        ).fetchone()
        if waiting is not None:
            db.execute(
                "UPDATE notifications SET count = count + 1, title = ?, body = ? WHERE id = ?",
                (notice.title, notice.body, waiting[0]),
            )
            return
        last = db.execute("SELECT MAX(sent) FROM notifications WHERE grp = ?", (group,)).fetchone()
        due = now if last[0] is None else max(now, float(last[0]) + self.group_seconds)
        db.execute(
            "INSERT INTO notifications (target, grp, event, service, title, body, created, due)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (target, group, notice.event, notice.service, notice.title, notice.body, now, due),
        )

    # -- sending ------------------------------------------------------------------

    def due(self, *, now: float | None = None, limit: int = 50) -> list[Message]:
        """Messages whose time has come, oldest first."""
        at = self._clock() if now is None else now
        rows = self.store.query(
            "SELECT id, target, event, service, title, body, count, created, attempts"
            " FROM notifications WHERE sent IS NULL AND dropped IS NULL AND due <= ?"
            " ORDER BY due, id LIMIT ?",
            (at, limit),
        )
        return [Message(*r) for r in rows]

    def waiting(self) -> dict[str, int]:
        """Messages not yet sent (nor dropped), by target."""
        rows = self.store.query(
            "SELECT target, COUNT(*) FROM notifications"
            " WHERE sent IS NULL AND dropped IS NULL GROUP BY target"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def sent(self, message: Message) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE notifications SET sent = ?, attempts = attempts + 1, last_error = ''"
                " WHERE id = ?",
                (self._clock(), message.id),
            )

    def failed(self, message: Message, error: str, *, retry_in: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?, due = ?"
                " WHERE id = ?",
                (error[:500], self._clock() + retry_in, message.id),
            )

    def drop(self, message: Message, why: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE notifications SET dropped = ?, last_error = ? WHERE id = ?",
                (self._clock(), why[:500], message.id),
            )

    def forget_old(self) -> None:
        """Sent and dropped messages and told keys older than ``KEEP_SECONDS``."""
        before = self._clock() - KEEP_SECONDS
        with self.store.transaction() as db:
            db.execute("DELETE FROM notifications WHERE COALESCE(sent, dropped) < ?", (before,))
            db.execute("DELETE FROM notify_told WHERE at < ?", (before,))

    def history(self, *, limit: int = 100) -> list[tuple[Message, float | None, str]]:
        """The latest messages with when they were sent (None: not yet) and the last error."""
        rows = self.store.query(
            "SELECT id, target, event, service, title, body, count, created, attempts,"
            " sent, last_error FROM notifications ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(Message(*r[:9]), r[9], str(r[10])) for r in rows]
