"""The daemon's HTTP endpoints: /metrics, /healthz, /readyz, /status, and the dashboard.

An asyncio server in its own thread: answering never waits for a
reconcile, and handlers read state the manager publishes; they never call
Podman. Anything but GET/HEAD on a known path is 404 or 405, never a
traceback.

It cannot be starved. Every connection is a coroutine, not a thread, so
hundreds of slow clients cost almost nothing; each must send its whole
request head (at most ``MAX_HEAD`` bytes) within ``HEAD_DEADLINE``
seconds in all — a client that trickles a byte a second is cut off, not
waited for read by read — and at most ``MAX_CONNECTIONS`` are held, more
being closed at once. Each answer is one request (``Connection: close``).
A client that goes away is one debug line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from paid.daemon.dashboard import HEADERS, Page

log = structlog.get_logger("paid.http")

HEAD_DEADLINE = 5.0  # seconds a client has to send its whole request head
WRITE_DEADLINE = 10.0  # seconds a client has to take its answer
MAX_HEAD = 8192  # bytes of request line and headers
MAX_CONNECTIONS = 512  # held at once; more are closed unanswered
ENDPOINTS = frozenset({"/metrics", "/healthz", "/readyz", "/status"})  # the rest: dashboard


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
    pages: Callable[[str, str], Page | None] | None = None  # the dashboard: (path, query)


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    payload: bytes
    content_type: str = "text/plain"
    allow: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def answer(endpoints: Endpoints, method: str, target: str) -> Answer:
    """The answer to one request (``HEAD`` gets the same, the server drops the body)."""
    path, _, query = target.partition("?")
    known = path in ENDPOINTS
    if method not in ("GET", "HEAD"):
        if known or (endpoints.pages is not None and endpoints.pages(path, query) is not None):
            return Answer(405, b"method not allowed\n", allow="GET, HEAD")
        return Answer(404, b"not found\n")
    if path == "/metrics":
        return Answer(200, endpoints.metrics(), CONTENT_TYPE_LATEST)
    if path in ("/healthz", "/readyz"):
        probe = (endpoints.healthz if path == "/healthz" else endpoints.readyz)()
        text = ("ok" if probe.ok else probe.reason) + "\n"
        return Answer(200 if probe.ok else 503, text.encode())
    if path == "/status":
        doc = json.dumps(endpoints.status(), indent=2, sort_keys=True) + "\n"
        return Answer(200, doc.encode(), "application/json")
    page = endpoints.pages(path, query) if endpoints.pages is not None else None
    if page is not None:
        return Answer(page.code, page.body, page.content_type, headers=HEADERS)
    return Answer(404, b"not found\n")


class HttpServer:
    """The endpoints on ``listen`` (``host:port``; port 0 picks one), served from a thread."""

    def __init__(self, listen: str, endpoints: Endpoints) -> None:
        host, _, port = listen.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._endpoints = endpoints
        self._loop = asyncio.new_event_loop()
        self._held = 0
        self._writers: set[asyncio.StreamWriter] = set()
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._connection, self._host, int(port), limit=MAX_HEAD, backlog=128
                )
            )
        except BaseException:
            self._loop.close()
            raise
        bound = self._server.sockets[0].getsockname()
        self.address = f"{self._host}:{bound[1]}"
        self._thread = threading.Thread(target=self._run, name="paid-http", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, end every connection in hand, then the loop: nothing left pending."""

        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()  # a stalled client is not waited for at shutdown
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            if pending:  # each ends by itself now that its connection is gone
                _, late = await asyncio.wait(pending, timeout=2.0)
                for task in late:  # a page still rendering: cancelled while the loop runs,
                    task.cancel()  # so its clean-up runs here, not at garbage collection
                if late:
                    await asyncio.wait(late, timeout=1.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(HEAD_DEADLINE + 1)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=HEAD_DEADLINE + 1)
        else:
            self._loop.run_until_complete(close())
        self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._held >= MAX_CONNECTIONS:
            log.debug("http_busy_dropped", client=str(writer.get_extra_info("peername")))
            writer.close()
            return
        self._held += 1
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as err:
            log.debug("http_client_gone", error=str(err) or type(err).__name__)
        except asyncio.CancelledError:
            # Cancelled by close() at shutdown. Ending quietly, not cancelled: Python 3.11's
            # streams call task.exception() on a connection's task and log a traceback when
            # it was cancelled (fixed in 3.12).
            log.debug("http_connection_cancelled")
        except Exception as err:  # a bug must not take the server down
            log.exception("http_connection_failed", error=str(err))
        finally:
            self._held -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_DEADLINE)
        except asyncio.LimitOverrunError:
            await self._write(writer, Answer(400, b"request head too large\n"), body=True)
            return
        except TimeoutError:
            await self._write(writer, Answer(408, b"request head too slow\n"), body=True)
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._write(writer, Answer(400, b"bad request\n"), body=True)
            return
        method, target = parts[0], parts[1]
        try:
            # On the loop, as every answer: a page renders in milliseconds (bench/dashboard.py:
            # 23 ms for 500 services); threads here left work pending at shutdown.
            reply = answer(self._endpoints, method, target)
        except Exception as err:  # a handler bug must not kill the server
            log.exception("http_handler_failed", path=target, error=str(err))
            reply = Answer(500, b"internal error\n")
        await self._write(writer, reply, body=method != "HEAD")

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: Answer, *, body: bool) -> None:
        lines = [
            f"HTTP/1.1 {reply.code} {HTTPStatus(reply.code).phrase}",
            "Server: paid",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.payload)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        if reply.allow:
            lines.append(f"Allow: {reply.allow}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body:
            writer.write(reply.payload)
        await asyncio.wait_for(writer.drain(), WRITE_DEADLINE)
