"""Where reconcile requests come from, besides the periodic resync.

``DirectoryWatcher`` notices any change under the desired-state directory
by comparing cheap snapshots (path, inode, size, mtime of every YAML
file). Polling, not inotify: it sees edits, editors' write-and-rename,
``git pull``, a symlinked directory swapped for another, and network file
systems alike, for a ``stat`` per file per second.

``EventPump`` reads Podman's event stream in a thread and hands each
relevant container event on; when the stream breaks it reconnects with
backoff and asks for a full resync, since events may have been missed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from paid.runtime.base import EventStream, RuntimeEvent, RuntimeFailure
from paid.state.loading import SUFFIXES

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
        max_backoff: float = 10.0,
    ) -> None:
        self._source = source
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost
        self._max_backoff = max_backoff
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
        backoff = 0.25
        first = True
        while not self._stop.is_set():
            try:
                self._stream = self._source.events()
                self.connected.set()
                if not first:
                    log.info("podman_events_reconnected")
                    self._on_reconnect()
                first = False
                backoff = 0.25
                for event in self._stream:
                    if self._stop.is_set():
                        break
                    if event.action in RELEVANT_EVENTS:
                        self._on_event(event)
            except RuntimeFailure as err:
                if self._stop.is_set():
                    break
                self.connected.clear()
                log.warning("podman_events_lost", error=str(err), retry_in=backoff)
                self._on_lost(str(err))
                first = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)
