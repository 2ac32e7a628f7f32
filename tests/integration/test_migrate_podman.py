"""Compose in, Kubernetes out, on the suite's real Podman.

The round trip: a compose file of the real shapes (a proxy, an API with a
healthcheck and a named volume, a worker, two networks, ``depends_on``
with ``service_healthy``, list and map environments, a quoted string
command) is imported, validated and applied; the wiring is then checked
from inside the containers. The way out: ``paid export kube`` is played
with ``podman kube play`` and answers on its host port.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from paid.cli import main
from tests.daemon import wait_until
from tests.harness import IMAGE, PodmanService, free_port, service_doc, write_services
from tests.integration.test_networks_podman import fetch, resolve

COMPOSE = """\
services:
  proxy:
    image: {image}
    command: httpd -f -p 8080 -h "/www"
    ports: ["127.0.0.1:{port}:8080"]
    volumes: ["./site/index.html:/www/index.html:ro"]
    networks: [front]
    depends_on:
      api: {{condition: service_healthy}}
  api:
    image: {image}
    command:
      - sh
      - -c
      - mkdir -p /data/w && echo api > /data/w/index.html && exec httpd -f -p 8080 -h /data/w
    environment:
      - MODE=production
      - GREETING=hello world
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/w/index.html"]
      interval: 1s
      timeout: 1s
      retries: 3
    volumes: [api-data:/data]
    networks:
      front: {{}}
      back: {{aliases: [backend-api]}}
    init: true
    stop_grace_period: 2s
  worker:
    image: {image}
    command: sleep 3600
    environment: {{QUEUE: jobs, WORKERS: 4}}
    networks: [back]
    depends_on: [api]
    init: true
    stop_grace_period: 2s
networks:
  front: {{}}
  back: {{}}
volumes:
  api-data: {{}}
"""


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def test_a_compose_app_imports_validates_and_runs_with_the_same_wiring(
    podman: PodmanService, tmp_path: Path, capsys: Any
) -> None:
    """import → validate → apply: names, aliases, networks, env, volume, readiness order."""
    project = tmp_path / "project"
    (project / "site").mkdir(parents=True)
    (project / "site" / "index.html").write_text("<h1>proxy</h1>\n")
    port = free_port()
    (project / "compose.yaml").write_text(COMPOSE.format(image=IMAGE, port=port))
    out, state = tmp_path / "desired-state", tmp_path / "state"

    assert 0 == main(["import", "compose", str(project / "compose.yaml"), "-o", str(out)])
    assert 0 == main(["validate", str(out)])
    assert 0 == paid(podman, state, "apply", str(out))

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        assert b"<h1>proxy</h1>\n" == answer.read()
    assert (0, "api\n") == fetch(podman, "proxy", "api")  # front, by name
    assert resolve(podman, "worker", "backend-api") is not None  # back, by alias
    assert resolve(podman, "proxy", "worker") is None  # worker is on back only
    worker = podman.inspect("worker")
    assert {"project_back"} == set(worker["NetworkSettings"]["Networks"])
    env = dict(e.split("=", 1) for e in worker["Config"]["Env"])
    assert ("jobs", "4") == (env["QUEUE"], env["WORKERS"])
    api = podman.inspect("api")
    env = dict(e.split("=", 1) for e in api["Config"]["Env"])
    assert ("production", "hello world") == (env["MODE"], env["GREETING"])
    assert {"project_api-data"} == {m["Name"] for m in api["Mounts"] if m["Type"] == "volume"}
    started = {n: podman.inspect(n)["State"]["StartedAt"] for n in ("api", "proxy")}
    assert started["api"] < started["proxy"]  # depends_on: service_healthy (ns timestamps)


def test_export_kube_plays_on_podman_and_serves_on_its_host_port(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    """The way out: podman kube play runs the exported manifests; the config is served.

    The config is a directory: Podman 4.3's kube play cannot mount one key
    of a ConfigMap by subPath, which a single-file config exports as.
    """
    (desired_dir / "www").mkdir(parents=True)
    (desired_dir / "www" / "index.html").write_text("<h1>from kube</h1>\n")
    port = free_port()
    write_services(
        desired_dir,
        service_doc(
            "web",
            command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            ports=[f"{port}:8080"],
            configs=[{"source": "www", "target": "/www"}],
            volumes=["web-data:/data"],
            readinessProbe={"httpGet": {"path": "/", "port": 8080}},
        ),
    )
    manifest = tmp_path / "app.yaml"
    capsys.readouterr()

    assert 0 == main(["export", "kube", str(desired_dir), "-o", str(manifest)])

    kinds = [d["kind"] for d in yaml.safe_load_all(manifest.read_text())]
    assert {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"} <= set(kinds)
    played = podman.podman("kube", "play", str(manifest))
    try:
        assert "Pod:" in played
        # kube play returns once the container started, not once httpd listens: ask until it does.
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _page(url) == b"<h1>from kube</h1>\n", 15, 0.1)
    finally:
        podman.podman("kube", "down", str(manifest), check=False)


def test_quadlet_units_import_and_run(podman: PodmanService, tmp_path: Path) -> None:
    """A .container and a .network: imported, applied, on their network with their env."""
    units = tmp_path / "units"
    units.mkdir()
    (units / "app.network").write_text("[Network]\nInternal=true\n")
    (units / "web.container").write_text(
        textwrap.dedent(
            f"""\
            [Container]
            Image={IMAGE}
            Exec=sleep 3600
            Environment=MODE=prod "GREETING=hello world"
            Network=app.network
            RunInit=true

            [Service]
            Restart=always
            TimeoutStopSec=2
            """
        )
    )
    out, state = tmp_path / "desired-state", tmp_path / "state"

    assert 0 == main(["import", "quadlet", str(units), "-o", str(out)])
    assert 0 == paid(podman, state, "apply", str(out))

    web = podman.inspect("web")
    assert {"app"} == set(web["NetworkSettings"]["Networks"])
    env = dict(e.split("=", 1) for e in web["Config"]["Env"])
    assert ("prod", "hello world") == (env["MODE"], env["GREETING"])
    network = json.loads(podman.podman("network", "inspect", "app"))[0]
    assert network["internal"]


def test_exported_pods_reach_each_other_by_name_under_kube_play(
    podman: PodmanService, desired_dir: Path, tmp_path: Path
) -> None:
    """`export kube --pods` played on a network with DNS: client fetches from api by its name.

    Podman 4.3's kube play names a Deployment's pod itself and ignores
    Services, so the Deployment form cannot be reached by name there; the
    Pod form can. The same manifests' Deployment form is checked by
    kubernetes-validate in the unit tests.
    """
    write_services(
        desired_dir,
        service_doc("api", command=["httpd", "-f", "-p", "8080", "-h", "/www"]),
        service_doc("client", command=["sleep", "600"]),
    )
    manifest = tmp_path / "pods.yaml"
    assert 0 == main(["export", "kube", str(desired_dir), "--pods", "-o", str(manifest)])
    podman.podman("network", "create", "played")

    podman.podman("kube", "play", "--network", "played", str(manifest))
    try:
        client = next(
            c["Names"][0] for c in podman.containers() if c["Names"][0].startswith("client-")
        )
        # busybox's own resolver finds the name; static busybox's wget crashes in a
        # kube-play pod on this host (glibc's resolver, even for an address), nc does not.
        script = (
            "ip=$(nslookup api | awk '/^Address: /{print $2}' | tail -1); "
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 \"$ip\" 8080"
        )
        fetched = podman.podman("exec", client, "sh", "-c", script, check=False)
        assert "paid test" in fetched
    finally:
        podman.podman("kube", "down", str(manifest), check=False)


def _page(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 -- http on loopback
        return bytes(answer.read())
