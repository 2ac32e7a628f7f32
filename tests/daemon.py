"""Running ``paid run`` as a real process in tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import PodmanService, free_port


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> float:
    """Poll until ``predicate()`` is truthy; return the seconds it took. Fails on timeout."""
    start = time.monotonic()
    last: object = None
    while time.monotonic() - start < timeout:
        try:
            last = predicate()
            if last:
                return time.monotonic() - start
        except Exception as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")


@dataclass
class Daemon:
    podman: PodmanService
    directory: Path
    state_dir: Path
    log_path: Path
    resync: float = 300.0
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True) -> Daemon:
        env = {
            **os.environ,
            "PAID_PODMAN_URL": self.podman.url,
            "PAID_STATE_DIR": str(self.state_dir),
            **self.env,
        }
        env.pop("NOTIFY_SOCKET", None)
        argv = [
            sys.executable,
            "-m",
            "paid",
            "run",
            str(self.directory),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--resync-interval",
            str(self.resync),
            "--watch-interval",
            "0.2",
            "--log-format",
            "json",
            *self.extra,
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.get("/healthz")[0] == 200, 20)
        if wait_ready:
            wait_until(self.ready, 30)
        return self

    def get(self, path: str, method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/status")[1]))

    def service(self, name: str) -> dict[str, Any]:
        """One service's entry in /status."""
        return dict(next(s for s in self.status()["services"] if s["name"] == name))

    def metric(self, name: str, labels: str = "") -> float | None:
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return None

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "<raw>", "line": line})
        return out

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None
