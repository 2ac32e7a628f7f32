"""Pre-flight asks registries at once and waits a bounded time: a stalled one is a WARN."""

from __future__ import annotations

import threading
from pathlib import Path

from paid.controllers.preflight import preflight
from paid.runtime.base import ImageUnavailable
from paid.runtime.fake import FakeRuntime
from paid.state.checks import Status
from tests.unit.builders import desired, desired_service

STALLED = "registry.stalled.test/app:1"
FINE = "registry.fine.test/app:1"


class OneStalledRegistry:
    """Answers FINE at once; STALLED only when released (as a registry trickling its headers)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def digest(self, image: str) -> str:
        if image == STALLED:
            self.release.wait(30)
            raise ImageUnavailable(image, "released", reason="unreachable")
        return "sha256:" + "a" * 64


def test_a_stalled_registry_is_a_warn_and_the_others_answer(tmp_path: Path) -> None:
    """The stalled one is WARN (its image is here) once the budget is spent; the fine one is OK."""
    state = desired(
        desired_service("slow", image=STALLED, imagePullPolicy="Always"),
        desired_service("fast", image=FINE, imagePullPolicy="Always"),
    )
    registry = OneStalledRegistry()
    runtime = FakeRuntime(images={STALLED, FINE})

    try:
        checks = preflight(
            state,
            runtime=runtime,
            state_dir=str(tmp_path),
            registry=registry,
            registry_budget=0.2,
        )
    finally:
        registry.release.set()

    by_image = {c.subject: c for c in checks if c.check == "registry"}
    assert Status.OK == by_image[FINE].status
    assert Status.WARN == by_image[STALLED].status
    assert "did not answer within pre-flight's 0.2 s" in by_image[STALLED].reason
