"""The daemon's HTTP side cannot be starved: slow, stalled and vanishing clients on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from paid.daemon import http
from paid.daemon.http import Endpoints, HttpServer, Probe


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpServer]:
    monkeypatch.setattr(http, "HEAD_DEADLINE", 1.0)
    endpoints = Endpoints(
        metrics=lambda: b"paid_up 1\n" * 50_000,
        healthz=lambda: Probe(True, ""),
        readyz=lambda: Probe(False, "converging"),
        status=lambda: {"ready": True},
    )
    running = HttpServer("127.0.0.1:0", endpoints)
    running.start()
    yield running
    running.stop()


def _address(server: HttpServer) -> tuple[str, int]:
    host, _, port = server.address.rpartition(":")
    return host, int(port)


def _get(server: HttpServer, path: str) -> tuple[int, bytes]:
    with socket.create_connection(_address(server), timeout=3) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_healthz_answers_while_hundreds_of_clients_stall(server: HttpServer) -> None:
    """300 connections that sent half a request line: /healthz and /readyz still answer."""
    stalled = []
    for _ in range(300):
        sock = socket.create_connection(_address(server), timeout=3)
        sock.sendall(b"GET /he")
        stalled.append(sock)
    try:
        assert (200, b"ok\n") == _get(server, "/healthz")
        assert (503, b"converging\n") == _get(server, "/readyz")
    finally:
        for sock in stalled:
            sock.close()


def test_a_trickling_client_is_cut_off_at_the_head_deadline(server: HttpServer) -> None:
    """A byte every 0.1 s never finishes a head: the server answers 408 and closes, by itself."""
    with socket.create_connection(_address(server), timeout=5) as sock:
        answered = b""
        start = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"." * 200:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # closed under us: what the test waits for
            sock.settimeout(0.1)
            try:
                answered += sock.recv(4096)
            except TimeoutError:
                continue
            if answered:
                break
        elapsed = time.monotonic() - start
    assert answered.startswith(b"HTTP/1.1 408"), answered
    assert elapsed < 20  # it stopped trickling because it was cut off, not because it ran out


def test_a_client_that_hangs_up_is_one_debug_line(server: HttpServer) -> None:
    """Asking for a large /metrics and hanging up at once logs nothing above debug."""
    with capture_logs() as logs:
        for _ in range(20):
            sock = socket.create_connection(_address(server), timeout=3)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            sock.close()
        assert 200 == _get(server, "/healthz")[0]

    assert [] == [e for e in logs if e["log_level"] not in ("debug",)]


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        pytest.param(b"POST /metrics HTTP/1.1\r\n\r\n", 405, id="post"),
        pytest.param(b"GET /nope HTTP/1.1\r\n\r\n", 404, id="unknown"),
        pytest.param(b"NONSENSE\r\n\r\n", 400, id="garbage"),
        pytest.param(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", 400, id="huge-head"),
    ],
)
def test_bad_requests_get_an_answer_not_a_traceback(
    server: HttpServer, request_bytes: bytes, code: int
) -> None:
    """Methods, paths, garbage and an oversized head each get their status code."""
    with socket.create_connection(_address(server), timeout=3) as sock:
        sock.sendall(request_bytes)
        data = sock.recv(4096)
    assert data.startswith(f"HTTP/1.1 {code}".encode()), data
