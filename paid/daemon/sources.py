"""Where reconcile requests come from, besides the periodic resync.

``DirectoryWatcher`` notices any change under the desired-state directory
by comparing cheap snapshots (path, inode, size, mtime of every
non-hidden file: the documents and what they name, configs, env files and
build contexts). Polling, not inotify: it sees edits, editors' write-and-rename,
``git pull``, a symlinked directory swapped for another, and network file
systems alike, for a ``stat`` per file per second.

``EventPump`` reads Podman's event stream in a thread and hands each
relevant container event on; when the stream breaks it reconnects with
the events back-off and asks for a full resync, since events may have
been missed.

``FlagsFile`` re-reads the feature flags file when it changes; a file
that does not validate is logged and ignored.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from paid.controllers.backoff import Backoff
from paid.runtime.base import EventStream, RuntimeEvent, RuntimeFailure
from paid.settings import BackoffPolicy, Timings
from paid.storage.flags import Flags, FlagsError, load_flags
from paid.storage.loading import SUFFIXES
from paid.storage.store import Store

log = structlog.get_logger("paid.sources")

Snapshot = frozenset[tuple[str, int, int, int]]

# Container events that may mean a service needs attention. Podman also
# emits "sync" for every container on every list call: never react to it.
RELEVANT_EVENTS = frozenset(
    {"died", "oom", "remove", "health_status", "pause", "stop", "kill", "rename"}
)


class DirectoryWatcher:
    """Changes to the files under ``directory`` that end in one of ``suffixes``.

    ``suffixes=None`` watches every (non-hidden) file: the secrets directory.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, suffixes: tuple[str, ...] | None = SUFFIXES
    ) -> None:
        self.directory = Path(directory)
        self.suffixes = suffixes
        self._last = self.snapshot()

    def snapshot(self) -> Snapshot:
        entries: set[tuple[str, int, int, int]] = set()
        root = os.path.realpath(self.directory)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                wanted = self.suffixes is None or name.endswith(self.suffixes)
                if wanted and not name.startswith("."):
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    entries.add((path, st.st_ino, st.st_size, st.st_mtime_ns))
        return frozenset(entries)

    def changed(self) -> bool:
        """True once per change since the last call."""
        current = self.snapshot()
        if current == self._last:
            return False
        self._last = current
        return True


class EventSource(Protocol):
    def events(self) -> EventStream: ...


class EventPump:
    def __init__(
        self,
        source: EventSource,
        *,
        on_event: Callable[[RuntimeEvent], None],
        on_reconnect: Callable[[], None],
        on_lost: Callable[[str], None],
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._source = source
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost
        self._backoff: Backoff[str] = Backoff(backoff or Timings().events)
        self._stop = threading.Event()
        self._stream: EventStream | None = None
        self._thread = threading.Thread(target=self._run, name="paid-events", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self._stream = self._source.events()
                self.connected.set()
                if not first:
                    log.info("podman_events_reconnected")
                    self._on_reconnect()
                first = False
                self._backoff.reset("stream")
                for event in self._stream:
                    if self._stop.is_set():
                        break
                    if event.action in RELEVANT_EVENTS:
                        self._on_event(event)
            except RuntimeFailure as err:
                if self._stop.is_set():
                    break
                self.connected.clear()
                wait = self._backoff.attempt("stream")
                log.warning("podman_events_lost", error=str(err), retry_in=wait)
                self._on_lost(str(err))
                first = False
                self._stop.wait(wait)
                continue
            self._stop.wait(self._backoff.attempt("stream"))


class FlagsFile:
    """The feature flags file, re-read when its mtime changes."""

    def __init__(
        self, path: Path | None, *, store: Store, on_change: Callable[[Flags], None]
    ) -> None:
        self.path = path
        self.flags = Flags()
        self._store = store
        self._on_change = on_change
        self._mtime: int | None = None

    def reload(self) -> None:
        """Re-read the file when it changed; a bad file changes nothing."""
        if self.path is None:
            return
        try:
            mtime: int | None = self.path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            flags = load_flags(self.path)
        except FlagsError as err:
            log.error("flags_invalid", error=str(err), keeping=self.flags.model_dump())
            self._store.record("flags_invalid", str(err))
            return
        if flags != self.flags:
            log.info("flags_changed", **flags.model_dump())
            self._store.record("flags_changed", "feature flags changed", **flags.model_dump())
            self.flags = flags
            self._on_change(flags)
