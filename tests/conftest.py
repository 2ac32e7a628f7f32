"""Fixtures shared by the whole suite.

``podman`` is the suite's own Podman service (see ``tests/harness.py``),
started once per session and wiped between tests. Tests that use it are
marked ``podman`` automatically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.harness import PodmanService


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "podman" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.podman)


@pytest.fixture(scope="session")
def podman_session() -> Iterator[PodmanService]:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run scripts/install-deps (CI does)")
    # A short base path: unix socket paths are limited to 108 bytes.
    base = Path(
        tempfile.mkdtemp(prefix="paid-podman-", dir=os.environ.get("PAID_TEST_TMP", "/tmp"))
    )
    service = PodmanService.start(base)
    try:
        service.build_images()
        yield service
    finally:
        service.stop()


@pytest.fixture
def podman(podman_session: PodmanService) -> Iterator[PodmanService]:
    if not podman_session.ping():  # a test took it away; bring it back
        podman_session.resume()
    podman_session.clean()
    yield podman_session
    if not podman_session.ping():
        podman_session.resume()
    podman_session.clean()


@pytest.fixture
def daemon(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path
) -> Iterator[Daemon]:
    """A `paid run` on the suite's Podman, not started yet; stopped after the test."""
    d = Daemon(podman, desired_dir, state_dir, tmp_path / "daemon.log")
    yield d
    d.stop()


@pytest.fixture
def desired_dir(tmp_path: Path) -> Path:
    path = tmp_path / "desired-state"
    path.mkdir()
    return path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
