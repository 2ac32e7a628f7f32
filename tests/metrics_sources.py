"""A real Prometheus for tests and benchmarks, and an exporter whose value they set.

Prometheus is Debian's package (``scripts/install-deps``), started on a free
loopback port with its own data directory, scraping every second. The
exporter stands for an application's metrics: one gauge, ``app_errors``,
served on loopback.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.harness import free_port


class Exporter:
    """``app_errors <errors>`` on ``http://127.0.0.1:<port>/metrics``; set ``errors`` at will."""

    def __init__(self) -> None:
        self.errors = 0.0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"app_errors {exporter.errors:g}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def exporter() -> Iterator[Exporter]:
    found = Exporter()
    try:
        yield found
    finally:
        found.close()


@contextmanager
def prometheus(base: Path, *targets: str) -> Iterator[str]:
    """Prometheus scraping ``targets`` (host:port) every second; yields its URL."""
    if shutil.which("prometheus") is None:
        raise RuntimeError("prometheus is missing: scripts/install-deps installs it")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": list(targets)}]}],
    }
    (base / "prometheus.yml").write_text(yaml.safe_dump(config))
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(base / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
