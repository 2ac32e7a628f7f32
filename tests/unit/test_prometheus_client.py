"""The Prometheus client against a loopback HTTP server that answers as scripted.

Every way a Prometheus can fail a canary's analysis is one
``AnalysisUnavailable`` with the reason; none of them hangs the caller.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from paid.runtime.outbound import MAX_BODY
from paid.runtime.prometheus import AnalysisUnavailable, PrometheusClient, Sample


class Scripted(ThreadingHTTPServer):
    daemon_threads = True
    status: int = 200
    body: bytes = b""
    stall: float = 0.0
    queries: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.queries.append(parse_qs(url.query).get("query", [""])[0])
        time.sleep(self.server.stall)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prom() -> Iterator[Scripted]:
    server = Scripted(("127.0.0.1", 0), Handler)
    server.queries = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: Scripted) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def answer(server: Scripted, payload: object, status: int = 200) -> None:
    server.body, server.status = json.dumps(payload).encode(), status


def test_a_vector_is_its_series_and_values_without_nan(prom: Scripted) -> None:
    """Each series with its labels as PromQL writes them; a NaN value is no data."""
    series = [
        {"metric": {"__name__": "errors", "pod": "b", "app": "web"}, "value": [1.0, "0.25"]},
        {"metric": {}, "value": [1.0, "NaN"]},
    ]
    answer(prom, {"status": "success", "data": {"resultType": "vector", "result": series}})

    found = PrometheusClient().query(url(prom), 'errors{app="web"}')

    assert [Sample('errors{app="web", pod="b"}', 0.25)] == found
    assert ['errors{app="web"}'] == prom.queries


def test_a_scalar_is_one_value(prom: Scripted) -> None:
    answer(prom, {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}})
    assert [Sample("", 3.0)] == PrometheusClient().query(url(prom), "scalar(up)")


@pytest.mark.parametrize(
    ("status", "payload", "words"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}, "parse error"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
        (200, {"status": "success", "data": {"resultType": "vector", "result": [{}]}}, "malformed"),
        (200, [1, 2], "refused the query"),
        (503, "<html>down</html>", "refused the query (HTTP 503)"),
    ],
    ids=["bad query", "range vector", "malformed series", "not an object", "an HTML page"],
)
def test_an_answer_that_cannot_be_judged_says_why(
    prom: Scripted, status: int, payload: object, words: str
) -> None:
    answer(prom, payload, status)
    with pytest.raises(AnalysisUnavailable, match=words.replace("(", r"\(").replace(")", r"\)")):
        PrometheusClient().query(url(prom), "up")


def test_not_json_is_unavailable(prom: Scripted) -> None:
    prom.body = b"\xff\xfe not json"
    with pytest.raises(AnalysisUnavailable, match="not Prometheus JSON"):
        PrometheusClient().query(url(prom), "up")


def test_a_huge_answer_is_refused_unread(prom: Scripted) -> None:
    prom.body = b"[" + b" " * (MAX_BODY + 10) + b"]"
    with pytest.raises(AnalysisUnavailable, match="larger than"):
        PrometheusClient().query(url(prom), "up")


def test_a_stalled_prometheus_costs_the_deadline_and_no_more(prom: Scripted) -> None:
    """It answers after 3 s; the client gives up at its 0.5 s deadline (or the read timeout
    of the same length, whichever a loaded machine lets fire first)."""
    prom.stall = 3.0
    answer(prom, {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}})
    gave_up = r"did not answer: (no complete answer within 0\.5 s|.*read timeout=0\.5)"
    with pytest.raises(AnalysisUnavailable, match=gave_up):
        PrometheusClient(timeout=0.5).query(url(prom), "up")


def test_a_prometheus_away_opens_its_breaker() -> None:
    """Three refused connections, then it is not asked again until the reset timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    client = PrometheusClient(fail_max=3, reset_timeout=600)
    for _ in range(3):
        with pytest.raises(AnalysisUnavailable, match="did not answer"):
            client.query(f"http://127.0.0.1:{port}", "up")
    with pytest.raises(AnalysisUnavailable, match="did not answer 3 times in a row: not asked"):
        client.query(f"http://127.0.0.1:{port}", "up")
