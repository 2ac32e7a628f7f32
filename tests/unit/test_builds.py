"""spec.build on the fake runtime: the tag names the context, a build happens once per digest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paid.controllers.converging import converge
from paid.runtime.fake import FakeRuntime
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.unit.builders import FAST

SERVICE = {
    "apiVersion": "paid/v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"build": {"context": "app"}, "rollout": {"minReadySeconds": 0}},
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "desired"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Containerfile").write_text("FROM localhost/base:1\nCOPY . /app\n")
    (root / "app" / "main.py").write_text("v1\n")
    (root / "web.yaml").write_text(yaml.safe_dump(SERVICE))
    return root


def _builds(runtime: FakeRuntime) -> int:
    return sum(1 for call in runtime.calls if call[0] == "build")


def test_the_tag_follows_the_context_and_nothing_else(tree: Path) -> None:
    """Same tree, same tag; an edited file or an argument is another tag."""
    first = load_directory(tree).desired
    again = load_directory(tree).desired
    (tree / "app" / "main.py").write_text("v2\n")
    edited = load_directory(tree).desired
    assert first is not None
    assert again is not None
    assert edited is not None

    image = first.services["web"].spec.image  # type: ignore[index]
    assert image.startswith("localhost/paid/web:")
    assert image == again.services["web"].spec.image  # type: ignore[index]
    assert image != edited.services["web"].spec.image  # type: ignore[index]


def test_built_once_then_run_and_a_failed_build_changes_nothing(tree: Path, tmp_path: Path) -> None:
    """Converging twice builds once; a failing build leaves the running container."""
    runtime = FakeRuntime()
    with Store.open(tmp_path / "state") as store:
        state = load_directory(tree).desired
        assert state is not None
        assert converge(state, runtime=runtime, store=store, timings=FAST).converged
        assert converge(state, runtime=runtime, store=store, timings=FAST).converged
        assert 1 == _builds(runtime)
        running = runtime.containers["web"].id

        (tree / "app" / "main.py").write_text("broken\n")
        broken = load_directory(tree).desired
        assert broken is not None
        runtime.failing_builds.add(broken.services["web"].spec.image)  # type: ignore[index]
        report = converge(broken, runtime=runtime, store=store, timings=FAST)

    assert not report.converged
    assert running == runtime.containers["web"].id
    assert "running" == runtime.containers["web"].state


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param({"context": "../outside"}, "leads out of the desired-state", id="escape"),
        pytest.param({"context": "missing"}, "is not a directory", id="missing"),
        pytest.param({"context": "app", "containerfile": "Nope"}, "inside the build", id="no-file"),
    ],
)
def test_bad_contexts_are_located_errors(tree: Path, build: dict[str, str], message: str) -> None:
    """A context outside the tree, missing, or without its Containerfile: file:line: field."""
    (tree / "web.yaml").write_text(yaml.safe_dump({**SERVICE, "spec": {"build": build}}))

    result = load_directory(tree)

    assert [("spec.build.context", True)] == [
        (e.field, message in e.message) for e in result.errors
    ], result.errors


def test_a_fifo_in_the_context_is_refused_unread(tree: Path) -> None:
    """A FIFO would hang a reader: it is named as what it is, never opened."""
    import os  # noqa: PLC0415

    os.mkfifo(tree / "app" / "pipe")

    result = load_directory(tree)

    assert any("is a FIFO" in e.message for e in result.errors), result.errors
