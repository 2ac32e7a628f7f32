"""spec.build on real Podman: built before anything is touched, rebuilt when the source moves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness import IMAGE, PodmanService, run_paid

pytestmark = pytest.mark.slow

SERVICE = {
    "apiVersion": "paid/v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {
        "build": {"context": "app", "args": {"GREETING": "hello"}},
        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "init": True,
        "terminationGracePeriodSeconds": 2,
        "rollout": {"minReadySeconds": 0},
    },
}
CONTAINERFILE = f"""\
FROM {IMAGE}
ARG GREETING
COPY index.html /www/index.html
RUN echo "$GREETING" > /www/greeting
"""


def _paid(podman: PodmanService, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=300)


@pytest.fixture
def app(desired_dir: Path) -> Path:
    """A desired-state tree with web built from app/ (Containerfile, index.html)."""
    (desired_dir / "app").mkdir(parents=True)
    (desired_dir / "app" / "Containerfile").write_text(CONTAINERFILE)
    (desired_dir / "app" / "index.html").write_text("v1\n")
    (desired_dir / "app" / "settings.yaml").write_text("not: [a paid document]\n")
    (desired_dir / "web.yaml").write_text(yaml.safe_dump(SERVICE))
    return desired_dir


def _built(podman: PodmanService) -> list[str]:
    listed = json.loads(podman.podman("images", "--format", "json", "localhost/paid/web"))
    return sorted(name for image in listed for name in image.get("Names") or ())


def _in_web(podman: PodmanService, path: str) -> str:
    return podman.podman("exec", "web", "cat", path).strip()


def test_a_built_image_runs_and_a_source_edit_rolls_out(
    podman: PodmanService, app: Path, state_dir: Path
) -> None:
    """Built, run, served; an unchanged tree builds nothing; an edit is a new revision."""
    first = _paid(podman, state_dir, "apply", str(app))
    assert 0 == first.returncode, first.stdout + first.stderr
    assert ("v1", "hello") == (_in_web(podman, "/www/index.html"), _in_web(podman, "/www/greeting"))
    [tag] = _built(podman)
    started = podman.inspect("web")["Id"]

    again = _paid(podman, state_dir, "apply", str(app))
    assert 0 == again.returncode, again.stdout + again.stderr
    assert [tag] == _built(podman)  # nothing rebuilt
    assert started == podman.inspect("web")["Id"]

    (app / "app" / "index.html").write_text("v2\n")
    edited = _paid(podman, state_dir, "apply", str(app))
    assert 0 == edited.returncode, edited.stdout + edited.stderr
    assert "v2" == _in_web(podman, "/www/index.html")
    assert 2 == len(_built(podman))
    assert tag != podman.inspect("web")["ImageName"]


def test_a_failed_build_touches_nothing(podman: PodmanService, app: Path, state_dir: Path) -> None:
    """A Containerfile that fails: the apply says why, and the running container stays."""
    assert 0 == _paid(podman, state_dir, "apply", str(app)).returncode
    running = podman.inspect("web")["Id"]
    (app / "app" / "Containerfile").write_text(CONTAINERFILE + "RUN echo broken-step && false\n")

    failed = _paid(podman, state_dir, "apply", str(app))

    assert 1 == failed.returncode
    assert "could not be built" in failed.stdout, failed.stdout
    assert running == podman.inspect("web")["Id"]
    assert "running" == podman.inspect("web")["State"]["Status"]
