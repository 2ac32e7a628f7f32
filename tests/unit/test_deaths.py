"""The death watch: a pidfd per running managed container, woken when its process exits."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from paid.daemon.deaths import DeathWatch, supported
from paid.state import labels
from paid.state.actual import ActualContainer

pytestmark = pytest.mark.skipif(not supported(), reason="no pidfds here")

CID = "c0ffee" * 10 + "abcd"


class Deaths:
    def __init__(self) -> None:
        self.services: list[str] = []
        self.happened = threading.Event()

    def __call__(self, service: str) -> None:
        self.services.append(service)
        self.happened.set()


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


def _proc(tmp_path: Path, pid: int, cgroup: str) -> str:
    """A /proc with one process whose cgroup file says ``cgroup``."""
    (tmp_path / str(pid)).mkdir()
    (tmp_path / str(pid) / "cgroup").write_text(f"0::{cgroup}\n")
    return str(tmp_path)


def _container(pid: int | None, *, state: str = "running", managed: bool = True) -> ActualContainer:
    owned = {labels.MANAGED: "true", labels.SERVICE: "web"} if managed else {}
    return ActualContainer(CID, "web", "img", state, labels=owned, pid=pid)


def test_the_exit_of_a_watched_process_wakes_its_service_at_once(
    tmp_path: Path, process: subprocess.Popen[bytes]
) -> None:
    """Killed: ``on_death("web")`` within moments, and the process is no longer watched."""
    deaths = Deaths()
    watch = DeathWatch(deaths, proc=_proc(tmp_path, process.pid, f"/libpod_parent/libpod-{CID}"))
    watch.start()
    try:
        watch.observed([_container(process.pid)])
        assert {CID: process.pid} == watch.watched
        assert [] == deaths.services

        process.kill()

        assert deaths.happened.wait(5)
        assert ["web"] == deaths.services
        assert {} == watch.watched
    finally:
        watch.stop()


def test_a_process_of_another_cgroup_is_never_taken_for_the_container(
    tmp_path: Path, process: subprocess.Popen[bytes]
) -> None:
    """A reused process ID (its cgroup names another container) is not watched."""
    watch = DeathWatch(Deaths(), proc=_proc(tmp_path, process.pid, "/libpod_parent/libpod-other"))
    watch.observed([_container(process.pid)])
    assert {} == watch.watched
    watch.stop()


def test_a_process_not_in_this_namespace_is_neither_watched_nor_woken(tmp_path: Path) -> None:
    """Gone since the list call, or a host PID seen from paid's own container: nothing is
    watched and nothing woken (a wake would observe the same PID again, for ever); Podman's
    event stream tells of a real death."""
    child = subprocess.Popen(["true"])
    child.wait()
    deaths = Deaths()
    watch = DeathWatch(deaths, proc=str(tmp_path))
    watch.observed([_container(child.pid)])
    assert [] == deaths.services
    assert {} == watch.watched
    watch.stop()


def test_stopped_and_foreign_containers_are_not_watched(
    tmp_path: Path, process: subprocess.Popen[bytes]
) -> None:
    """A container seen stopped is dropped; one that is not paid's is never watched."""
    deaths = Deaths()
    watch = DeathWatch(deaths, proc=_proc(tmp_path, process.pid, f"/machine.slice/libpod-{CID}"))
    watch.observed([_container(process.pid, managed=False)])
    assert {} == watch.watched
    watch.observed([_container(process.pid)])
    assert {CID: process.pid} == watch.watched
    watch.observed([_container(None, state="exited")])
    assert {} == watch.watched
    assert [] == deaths.services
    watch.stop()
