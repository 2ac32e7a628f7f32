"""The whole daemon loop in process: the manager on the fake runtime, its events and a real store.

Timings are shortened through ``Settings.timings`` (the same object the
CLI fills from ``PAID_TIMINGS``), so back-offs are measured, not slept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from paid.daemon.manager import Manager
from paid.metrics import Metrics
from paid.runtime.fake import FakeRuntime
from paid.runtime.resilient import ResilientRuntime
from paid.settings import BackoffPolicy, Settings, Timings
from paid.storage.store import Store
from tests.harness import free_port, service_doc, write_services

IMAGE = "localhost/app:1"
TIMINGS = Timings(
    requeue=BackoffPolicy(0.05, 0.2),
    crash=BackoffPolicy(0.5, 2.0, reset_after=60.0),
    first_deploy=BackoffPolicy(0.5, 2.0),
    dependency_poll=0.05,
    hold_poll=0.05,
    rollout_poll=0.02,
    probe_tick=0.02,
)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class Running:
    def __init__(self, manager: Manager, thread: threading.Thread, fake: FakeRuntime) -> None:
        self.manager, self.thread, self.fake = manager, thread, fake

    def running_id(self, name: str) -> str | None:
        container = self.fake.containers.get(name)
        return container.id if container is not None and container.state == "running" else None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*docs: dict[str, object]) -> Running:
        directory = tmp_path / "desired-state"
        write_services(directory, *docs)
        fake = FakeRuntime(images={IMAGE})
        store = Store.open(tmp_path / "state")
        settings = Settings(
            directory=directory,
            listen=f"127.0.0.1:{free_port()}",
            watch_interval=0.05,
            resync_interval=300,
            secrets_dir=tmp_path / "secrets",
            timings=TIMINGS,
        )
        manager = Manager(
            settings,
            runtime=ResilientRuntime(fake),
            events=fake,
            store=store,
            metrics=Metrics(),
        )
        thread = threading.Thread(target=manager.run, kwargs={"install_signals": False})
        thread.start()
        running = Running(manager, thread, fake)
        started.append(running)
        wait_for(lambda: manager.knowledge.first_pass_done)
        return running

    yield start
    for running in started:
        running.manager.stop()
        running.thread.join(timeout=30)
        running.manager.store.close()


def _doc(name: str, **spec: object) -> dict[str, object]:
    spec.setdefault("rollout", {"minReadySeconds": 0})
    return service_doc(name, image=IMAGE, **spec)


def test_a_crashed_container_is_replaced_through_the_event_stream(
    daemon: Callable[..., Running],
) -> None:
    """died on the stream → a fresh container of the same revision, counted as a crash restart."""
    d = daemon(_doc("web"))
    first = d.running_id("web")
    assert first is not None

    d.fake.crash("web")

    wait_for(lambda: d.running_id("web") not in (None, first))
    assert "1" == d.fake.containers["web"].labels["paid.revision"]
    restarts = d.manager.metrics.restarts.labels("web", "crash")._value.get()
    assert 1.0 == restarts


def test_crash_restarts_back_off_as_configured(daemon: Callable[..., Running]) -> None:
    """The first restart is at once; the second waits the crash back-off's base (0.5 s here)."""
    d = daemon(_doc("web"))
    created: list[float] = []
    original = d.fake.create_container

    def timed_create(request):  # type: ignore[no-untyped-def]
        created.append(time.monotonic())
        return original(request)

    d.fake.create_container = timed_create  # type: ignore[method-assign]
    for _ in range(2):
        before = d.running_id("web")
        d.fake.crash("web")
        wait_for(lambda before=before: d.running_id("web") not in (None, before))

    assert 2 == len(created)
    assert created[1] - created[0] >= 0.9 * TIMINGS.crash.base  # at once would be ~0
    assert d.manager.views.status()["services"][0]["name"] == "web"


def test_a_removed_container_is_recreated_and_a_dependency_waits(
    daemon: Callable[..., Running],
) -> None:
    """`podman rm -f` behind paid's back heals; a dependent is created only after db is ready."""
    d = daemon(_doc("db"), _doc("api", dependsOn=["db"]))
    creates = [name for op, name in d.fake.calls if op == "create"]
    assert ["db", "api"] == creates

    d.fake.vanish("db")

    wait_for(lambda: d.running_id("db") is not None)
    assert d.running_id("api") is not None


def test_an_invalid_edit_keeps_the_last_good_state_and_says_so(
    daemon: Callable[..., Running], tmp_path: Path
) -> None:
    """A broken file never stops what runs; /readyz says why; fixing it is picked up."""
    d = daemon(_doc("web"))
    running = d.running_id("web")
    (tmp_path / "desired-state" / "services.yaml").write_text("apiVersion: paid/v1\nkind: [\n")

    wait_for(lambda: not d.manager.views.readyz().ok)
    assert "desired state invalid" in d.manager.views.readyz().reason
    assert running == d.running_id("web")
    assert 0.0 == d.manager.metrics.desired_valid._value.get()

    write_services(tmp_path / "desired-state", _doc("web"))
    wait_for(lambda: d.manager.views.readyz().ok)


def test_a_directory_change_counts_one_trigger(
    daemon: Callable[..., Running], tmp_path: Path
) -> None:
    """One edit is one `desired_state_change` trigger (it was counted twice)."""
    d = daemon(_doc("web"))
    counter = d.manager.metrics.triggers.labels("desired_state_change")
    before = counter._value.get()

    write_services(tmp_path / "desired-state", _doc("web"), _doc("extra"))
    wait_for(lambda: d.running_id("extra") is not None)

    assert before + 1 == counter._value.get()


def test_readiness_is_recorded_on_a_probe_transition(
    daemon: Callable[..., Running],
) -> None:
    """A readiness probe that starts failing is in the readiness record without a reconcile."""
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
    d = daemon(_doc("web", readinessProbe=probe))
    wait_for(lambda: d.manager.reconciler.health.ready("web"))
    marks_before = d.manager.store.readiness("web")
    assert marks_before
    assert marks_before[-1].ready

    d.fake.exec_codes["web"] = 1

    wait_for(lambda: not d.manager.store.readiness("web")[-1].ready, timeout=5)


class _Registry:
    """A registry whose one tag points where the test says."""

    def __init__(self, digest: str) -> None:
        self.now, self.asked = digest, 0

    def digest(self, image: str) -> str:
        self.asked += 1
        return self.now


def test_the_image_updates_flag_stops_checks_and_turning_it_on_rolls_a_moved_tag_out(
    tmp_path: Path,
) -> None:
    """imageUpdates: false → a check asks no registry; true → the moved tag is rolled out."""
    tag = "registry.example:5000/app:stable"
    first, second = (f"sha256:{c * 64}" for c in "ab")
    directory = tmp_path / "desired-state"
    write_services(
        directory,
        service_doc(
            "web", image=tag, imageUpdate={"policy": "registry"}, rollout={"minReadySeconds": 0}
        ),
    )
    flags = tmp_path / "flags.yaml"
    flags.write_text("imageUpdates: false\n")
    fake = FakeRuntime(pullable={f"registry.example:5000/app@{d}" for d in (first, second)})
    registry = _Registry(first)
    store = Store.open(tmp_path / "state")
    manager = Manager(
        Settings(
            directory=directory,
            listen=f"127.0.0.1:{free_port()}",
            watch_interval=0.05,
            resync_interval=300,
            secrets_dir=tmp_path / "secrets",
            timings=TIMINGS,
            flags_path=flags,
            image_update_interval=0,
        ),
        runtime=ResilientRuntime(fake),
        events=fake,
        store=store,
        metrics=Metrics(),
        registry=registry,
    )
    thread = threading.Thread(target=manager.run, kwargs={"install_signals": False})
    thread.start()
    try:
        wait_for(lambda: manager.knowledge.first_pass_done)
        assert f"registry.example:5000/app@{first}" == fake.containers["web"].image
        asked = registry.asked  # the first deploy resolved the tag
        registry.now = second

        manager.image_jobs.check()

        assert (asked, None) == (registry.asked, manager.knowledge.image_checked_at)
        flags.write_text("imageUpdates: true\n")
        manager.flags_file.reload()
        manager.image_jobs.check()
        assert registry.asked == asked + 1
        wait_for(lambda: fake.containers["web"].image == f"registry.example:5000/app@{second}")
    finally:
        manager.stop()
        thread.join(timeout=30)
        store.close()
