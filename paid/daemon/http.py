"""The daemon's HTTP endpoints: /metrics, /healthz, /readyz, /status.

An HTTP server in its own thread: answering never waits for a reconcile.
Handlers read state the manager publishes; they never call Podman.
Anything but GET/HEAD on a known path is 404 or 405, never a traceback.

Connections are served by a bounded pool (``WORKERS`` threads, at most
``BACKLOG`` waiting; more are closed at once), each with a socket timeout,
so a flood of half-open connections cannot pile up threads, and no
thread is a daemon thread left running while the interpreter shuts down
(which crashed it). A client that goes away mid-answer is one debug line.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import structlog
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = structlog.get_logger("paid.http")

WORKERS = 8
BACKLOG = 64  # connections waiting for a worker; more are closed unanswered
TIMEOUT = 5.0  # seconds a connection may take to send its request


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Endpoints:
    metrics: Callable[[], bytes]
    healthz: Callable[[], Probe]
    readyz: Callable[[], Probe]
    status: Callable[[], dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server_version = "paid"
    timeout = TIMEOUT
    endpoints: Endpoints  # set on the subclass made per server

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_allowed(self) -> None:
        self._send(405, b"method not allowed\n", "text/plain", body=True, allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _serve(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(200, self.endpoints.metrics(), CONTENT_TYPE_LATEST, body=body)
            elif path in ("/healthz", "/readyz"):
                probe = (self.endpoints.healthz if path == "/healthz" else self.endpoints.readyz)()
                text = ("ok" if probe.ok else probe.reason) + "\n"
                self._send(200 if probe.ok else 503, text.encode(), "text/plain", body=body)
            elif path == "/status":
                doc = json.dumps(self.endpoints.status(), indent=2, sort_keys=True) + "\n"
                self._send(200, doc.encode(), "application/json", body=body)
            else:
                self._send(404, b"not found\n", "text/plain", body=body)
        except Exception as err:  # a handler bug must not kill the server
            log.exception("http_handler_failed", path=path, error=str(err))
            self._send(500, b"internal error\n", "text/plain", body=body)

    def _send(self, code: int, payload: bytes, ctype: str, *, body: bool, allow: str = "") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the journal; metrics count scrapes


class _PooledServer(HTTPServer):
    """``HTTPServer`` with a bounded worker pool instead of a thread per connection."""

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        # Before binding: a failed bind calls server_close(), which shuts the pool.
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="paid-http")
        self._waiting = threading.Semaphore(WORKERS + BACKLOG)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._waiting.acquire(blocking=False):
            log.debug("http_busy_dropped", client=str(client_address))
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._serve_one, request, client_address)
        except RuntimeError:  # shutting down
            self._waiting.release()
            self.shutdown_request(request)

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._waiting.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, ConnectionError | TimeoutError | socket.timeout):
            log.debug("http_client_gone", client=str(client_address), error=str(err))
            return
        log.exception("http_connection_failed", client=str(client_address))

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True, cancel_futures=True)


class HttpServer:
    def __init__(self, listen: str, endpoints: Endpoints) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        handler = type("Handler", (_Handler,), {"endpoints": endpoints})
        self._server = _PooledServer((host, int(port)), handler)
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="paid-http",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then let the connections in hand finish (each within its timeout)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=TIMEOUT + 1)
