"""examples/guestbook: nginx → a Python app → redis, built from Debian packages, on real Podman.

The images come from ``examples/guestbook/build-images`` (debootstrap and
apt-get; the trees are cached in ``PAID_EXAMPLE_CACHE``). The example is
applied as a user would, from a copy whose host port is a free one.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from paid.cli import main
from paid.storage.store import Store
from tests.daemon import wait_until
from tests.harness import PodmanService, build_example_images, free_port

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guestbook"


@pytest.fixture(scope="module")
def images(podman_session: PodmanService) -> None:
    build_example_images(podman_session, EXAMPLE)


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def copy_of_example(into: Path, port: int) -> Path:
    shutil.copytree(EXAMPLE, into)
    proxy = into / "proxy.yaml"
    doc = yaml.safe_load(proxy.read_text())
    doc["spec"]["ports"] = [f"127.0.0.1:{port}:80"]
    proxy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return into


def request(port: int, method: str = "GET", body: bytes | None = None) -> tuple[int, Any, Any]:
    """(status, JSON body, headers) of a request through nginx."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read()), answer.headers
    except urllib.error.HTTPError as err:
        return err.code, None, err.headers


def test_guestbook_runs_rolls_its_config_out_and_rolls_back(
    images: None, podman: PodmanService, tmp_path: Path
) -> None:
    """nginx → app → redis; redis off nginx's network; an nginx.conf edit rolls, then rolls back."""
    port = free_port()
    app = copy_of_example(tmp_path / "guestbook", port)
    state = tmp_path / "state"

    assert 0 == paid(podman, state, "apply", str(app))

    assert 201 == request(port, "POST", b"hello from the test")[0]
    status, page, _ = request(port)
    assert (200, "paid guestbook") == (status, page["title"])
    assert "hello from the test" in page["entries"]  # nginx → app → redis and back
    # redis is on backend only: the proxy neither resolves nor reaches it.
    resolved = podman.podman("exec", "proxy", "getent", "hosts", "redis", check=False)
    assert "" == resolved.strip()
    assert podman.podman("exec", "app", "getent", "hosts", "redis", check=False).strip()
    assert {"frontend"} == set(podman.inspect("proxy")["NetworkSettings"]["Networks"])

    conf = app / "proxy" / "nginx.conf"
    conf.write_text(
        conf.read_text().replace("listen 80;", "listen 80;\n        add_header X-Edition 2;")
    )
    before = podman.inspect("proxy")["Id"]
    assert 0 == paid(podman, state, "apply", str(app))
    assert before != podman.inspect("proxy")["Id"]
    wait_until(lambda: request(port)[2].get("X-Edition") == "2", 20)
    assert "hello from the test" in request(port)[1]["entries"]  # redis kept its data

    assert 0 == paid(podman, state, "rollback", "proxy", str(app), "--to-revision", "1")
    assert 0 == paid(podman, state, "apply", str(app))
    assert "1" == podman.inspect("proxy")["Config"]["Labels"]["paid.revision"]
    wait_until(lambda: request(port)[0] == 200, 20)
    assert request(port)[2].get("X-Edition") is None  # the old nginx.conf, from its kept copy

    # The app rolls out StartFirst while a client asks through nginx every 20 ms.
    env = app / "app" / "app.env"
    env.write_text(env.read_text().replace('"paid guestbook"', '"paid guestbook 2"'))
    old_app = podman.inspect("app")["Id"]
    with asking(port) as statuses:
        assert 0 == paid(podman, state, "apply", str(app))
        wait_until(lambda: request(port)[1]["title"] == "paid guestbook 2", 20)
    assert old_app not in [c["Id"] for c in podman.containers()]
    assert "hello from the test" in request(port)[1]["entries"]
    with Store.open(state) as store:
        assert "rollout_draining" in [e.kind for e in store.events(service="app")]
    failed = [s for s in statuses if s != 200]
    assert [] == failed, f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"


@contextmanager
def asking(port: int) -> Iterator[list[int]]:
    """GET / every 20 ms in a thread; the statuses (0: no answer) once the block ends."""
    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                statuses.append(request(port)[0])
            except OSError:
                statuses.append(0)
            stop.wait(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=10)
