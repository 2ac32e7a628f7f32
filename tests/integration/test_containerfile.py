"""The Containerfile builds offline from a local Debian base, keeps its HEALTHCHECK, and runs paid.

The base is the guestbook example's Python image (debootstrap and apt-get,
see ``examples/guestbook/build-images``; cached between runs), so no
registry is needed. The built image then converges a service on the
suite's Podman through its socket, and its health check passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.daemon import wait_until
from tests.harness import PodmanService, free_port, service_doc, write_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a fresh machine builds the base

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/guestbook/python:1"
IMAGE = "localhost/paid-test/paid:containerfile"
CACHE = os.environ.get("PAID_EXAMPLE_CACHE", "/var/tmp/paid-example-cache")
HOST_CA = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 -- http only
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


@pytest.fixture(scope="module")
def image(podman_session: PodmanService) -> str:
    subprocess.run(
        [str(ROOT / "examples" / "guestbook" / "build-images")],
        env={
            **podman_session.env,
            "PODMAN": "podman " + " ".join(podman_session.global_args()),
            "PAID_EXAMPLE_CACHE": CACHE,
        },
        check=True,
        timeout=1200,
    )
    podman_session.podman(
        # The host's network and its CA bundle: containers here reach no mirror
        # or index but through the host's (TLS-intercepting) egress.
        "build", "--network", "host", "--format", "docker", "--build-arg", f"BASE={BASE}",
        "--volume", f"{HOST_CA}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt",
        "-t", IMAGE,
        "-f", str(ROOT / "Containerfile"), str(ROOT),
    )  # fmt: skip
    return IMAGE


def test_the_image_keeps_its_healthcheck_and_has_git(image: str, podman: PodmanService) -> None:
    """--format docker keeps HEALTHCHECK; git is there for commit recording and pull mode."""
    config = json.loads(podman.podman("image", "inspect", image))[0]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    said = podman.podman("run", "--rm", "--entrypoint", "git", image, "--version")
    assert said.startswith("git version")
    version = podman.podman("run", "--rm", "--entrypoint", "paid", image, "--version")
    assert version.startswith("paid ")


def test_the_image_converges_the_host_and_reports_healthy(
    image: str, podman: PodmanService, desired_dir: Path
) -> None:
    """paid in its container drives the suite's Podman, answers /readyz; its health check passes."""
    write_services(desired_dir, service_doc("web"))
    port = free_port()
    podman.podman(
        "run", "-d", "--name", "paid-in-a-container", "--network", "host",
        "-e", f"PAID_LISTEN=127.0.0.1:{port}", "-e", "PAID_PODMAN_URL=unix:///run/podman.sock",
        "-v", f"{podman.socket}:/run/podman.sock", "-v", f"{desired_dir}:/desired-state:ro",
        image,
    )  # fmt: skip
    try:
        wait_until(lambda: "web" in {c["Names"][0] for c in podman.containers()}, 60)
        wait_until(lambda: _status(f"http://127.0.0.1:{port}/readyz") == 200, 30, 0.2)
        wait_until(
            lambda: (
                podman.podman("healthcheck", "run", "paid-in-a-container", check=False).strip()
                in ("", "healthy")
            ),
            30,
            0.5,
        )
        labels = podman.inspect("paid-in-a-container")["Config"]["Labels"] or {}
        assert "paid.managed" not in labels  # paid's own container is not one it manages
    finally:
        podman.podman("rm", "--force", "--time", "0", "paid-in-a-container", check=False)
