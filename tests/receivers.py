"""A webhook receiver on loopback: what Apprise's ``json://`` target really sends, recorded.

It can be told to refuse (an HTTP status), to stall (hold a request that
long, then give up with 504, taking nothing) or to go away and come back
on the same port, as a chat service's webhook does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if receiver.stall:
            time.sleep(receiver.stall)  # a gateway that gives up: the message is not taken
            self.send_response(504)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if receiver.status >= 300:
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with receiver.lock:
            receiver.messages.append({"path": self.path, **json.loads(body or b"{}")})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class Receiver:
    """Messages received, as ``{"path", "title", "message", ...}``; ``url`` is the Apprise URL."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.status = 200
        self.stall = 0.0
        self.port = 0
        self._server: _Server | None = None
        self.token = "tok3n-Secr3t-9f8e7d"  # noqa: S105 -- a test's; in the URL's path, as webhooks' are

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/{self.token}"

    def up(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def titles(self) -> list[str]:
        with self.lock:
            return [str(m.get("title")) for m in self.messages]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()
