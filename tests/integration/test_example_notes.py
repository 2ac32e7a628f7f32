"""examples/notes: a compose app with PostgreSQL from Debian packages, imported and run by paid.

As a user brings it: ``paid import compose``, then ``paid apply``. paid
builds both images from the example's Containerfiles, publishes the port as
compose files write it, waits out the database's start period the compose
way, and, when the database is killed while notes are being written,
heals it without losing one acknowledged note: the image's ``VOLUME`` is a
volume of paid's, not an anonymous one left behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness import PodmanService, build_example_images, free_port, run_paid

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notes"


@pytest.fixture(scope="module")
def images(podman_session: PodmanService) -> None:
    build_example_images(podman_session, EXAMPLE)


def _paid(podman: PodmanService, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_paid(podman, state, *args, timeout=600)


def _call(port: int, body: str | None = None) -> tuple[int, object]:
    data = body.encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, None
    except OSError:
        return 0, None


def test_notes_survive_a_database_killed_mid_write(
    images: None, podman: PodmanService, tmp_path: Path
) -> None:
    """Import, apply, write notes while `podman kill db`: every acknowledged note is kept."""
    project = tmp_path / "notes"
    shutil.copytree(EXAMPLE, project)
    port = free_port()
    compose = project / "compose.yaml"
    compose.write_text(compose.read_text().replace('"8089:8000"', f'"{port}:8000"'))
    out, state = tmp_path / "desired-state", tmp_path / "state"

    imported = _paid(podman, state, "import", "compose", str(compose), "-o", str(out))
    assert 0 == imported.returncode, imported.stdout + imported.stderr
    applied = _paid(podman, state, "apply", str(out))
    assert 0 == applied.returncode, applied.stdout + applied.stderr
    assert (201, {"added": "first"}) == _call(port, "first")

    acknowledged = ["first"]
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            status, _ = _call(port, f"note-{n}")
            if status == 201:
                acknowledged.append(f"note-{n}")
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.0)
        before = podman.inspect("db")["Id"]
        podman.podman("kill", "db")
        healed = _paid(podman, state, "apply", str(out))
        assert 0 == healed.returncode, healed.stdout + healed.stderr
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join()

    assert before != podman.inspect("db")["Id"]  # a fresh container
    status, notes = _call(port)
    assert 200 == status
    assert isinstance(notes, list)
    missing = [note for note in acknowledged if note not in notes]
    assert [] == missing, f"{len(missing)} of {len(acknowledged)} acknowledged notes lost"
    assert len(acknowledged) > 10  # writes happened before and after the kill
