"""paid import compose|quadlet and paid export kube: what maps, what is refused, where."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from paid.cli import main
from paid.storage.loading import load_directory
from paid.translate import compose_keys, quadlet
from paid.translate.compose import import_compose
from paid.translate.kube import export
from paid.translate.quadlet import import_quadlet

README = Path(__file__).resolve().parents[2] / "README.md"
KUBERNETES_VALIDATE = str(Path(sys.executable).parent / "kubernetes-validate")

SHOP = """\
name: shop
x-common: &common
  restart: unless-stopped
services:
  proxy:
    <<: *common
    image: localhost/paid-test/busybox:${TAG}
    command: httpd -f -p 8080 -h "/www root"
    ports: ["127.0.0.1:${PROXY_PORT:-18080}:8080", "9000-9001:9000-9001/udp"]
    networks: [front]
    depends_on:
      api: {condition: service_healthy}
    volumes: ["./site/index.html:/www/index.html:ro"]
  api:
    image: redis:7.2
    entrypoint: ["docker-entrypoint.sh"]
    environment:
      - MODE=production
      - GREETING=hello world
    env_file: api.env
    healthcheck:
      test: ["CMD-SHELL", "redis-cli ping"]
      interval: 1m30s
      timeout: 500ms
      retries: 5
      start_period: 10s
    volumes: [api-data:/data, /srv/shared:/shared]
    networks:
      front: {}
      back: {aliases: [backend-api]}
    cap_drop: [ALL]
    cap_add: [CAP_NET_BIND_SERVICE]
    user: "999:999"
    read_only: true
    tmpfs: ["/run:size=64m"]
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    logging: {driver: json-file, options: {max-size: 5m}}
    stop_grace_period: 1m
    labels: {team: shop}
  worker_1:
    image: localhost/paid-test/busybox:1
    command: sleep 3600
    environment: {QUEUE: jobs, WORKERS: 4, DEBUG: false}
    networks: [back]
    depends_on: [api]
    deploy: {resources: {limits: {memory: 64M, cpus: "0.5"}}}
    secrets: [db_password]
networks:
  front: {}
  back: {internal: true, ipam: {config: [{subnet: 10.89.60.0/24}]}}
volumes:
  api-data: {}
secrets:
  db_password: {file: ./secrets/db_password.txt}
"""


def _project(tmp_path: Path, text: str = SHOP) -> Path:
    (tmp_path / "site").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<h1>shop</h1>\n")
    (tmp_path / "api.env").write_text("DB_URL=postgres://db/app\n")
    (tmp_path / ".env").write_text("TAG=1\n")
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _specs(translation: Any) -> dict[str, dict[str, Any]]:
    return {
        o.documents[0]["metadata"]["name"]: o.documents[0].get("spec", {})
        for o in translation.outputs
    }


def test_compose_keys_map_to_paids_fields(tmp_path: Path) -> None:
    """command → args, entrypoint → command, healthcheck → readinessProbe, and the rest."""
    translation = import_compose(_project(tmp_path), environ={})

    assert [] == translation.problems
    specs = _specs(translation)
    proxy, api, worker = specs["proxy"], specs["api"], specs["worker-1"]
    assert ["httpd", "-f", "-p", "8080", "-h", "/www root"] == proxy["args"]
    assert "localhost/paid-test/busybox:1" == proxy["image"]  # ${TAG} from .env
    assert ["127.0.0.1:18080:8080", "9000:9000/udp", "9001:9001/udp"] == proxy["ports"]
    assert ["api"] == proxy["dependsOn"]
    assert [{"source": "site/index.html", "target": "/www/index.html"}] == proxy["configs"]
    assert "Always" == proxy["restartPolicy"]
    assert "docker.io/library/redis:7.2" == api["image"]
    assert ["docker-entrypoint.sh"] == api["command"]
    assert {"MODE": "production", "GREETING": "hello world"} == api["env"]
    assert ["api.env"] == api["envFiles"]
    assert {
        "exec": {"command": ["/bin/sh", "-c", "redis-cli ping"]},
        "periodSeconds": 90,
        "timeoutSeconds": 1,
        "startPeriodSeconds": 10,
        "failureThreshold": 5,
    } == api["readinessProbe"]
    assert ["shop_api-data:/data", "/srv/shared:/shared"] == api["volumes"]
    assert ["shop_front", {"name": "shop_back", "aliases": ["backend-api"]}] == api["networks"]
    assert {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]} == api["capabilities"]
    assert [{"path": "/run", "size": "64m"}] == api["tmpfs"]
    assert {"driver": "k8s-file", "maxSize": "5m"} == api["logging"]
    assert 60 == api["terminationGracePeriodSeconds"]
    assert {"QUEUE": "jobs", "WORKERS": "4", "DEBUG": "false"} == worker["env"]
    assert {"memory": "64m", "cpus": 0.5} == worker["resources"]
    assert [{"file": "db_password.txt", "target": "/run/secrets/db_password"}] == worker["secrets"]
    assert {"internal": True, "subnet": "10.89.60.0/24"} == specs["shop_back"]


def test_notes_say_what_a_human_must_decide(tmp_path: Path) -> None:
    """Host paths, renamed services, secrets to copy and interpolation are commented."""
    translation = import_compose(_project(tmp_path), environ={})

    notes = {o.filename: "\n".join(o.notes) for o in translation.outputs}
    assert "--allow-host-path /srv/shared" in notes["api.yaml"]
    assert "worker_1 is named worker-1" in notes["worker-1.yaml"]
    assert "secrets directory as db_password.txt" in notes["worker-1.yaml"]
    assert "${TAG}" in notes["proxy.yaml"]
    assert "${TAG}=" not in notes["proxy.yaml"]  # names, never values: .env holds passwords


def test_the_import_is_valid_paid_and_copies_project_files(tmp_path: Path) -> None:
    """Import, then paid's own loader: valid; configs and env files came along."""
    out = tmp_path / "out"
    code = main(["import", "compose", str(_project(tmp_path / "p")), "-o", str(out)])

    assert 0 == code
    assert load_directory(out, offline=True).ok, load_directory(out, offline=True).errors
    assert "<h1>shop</h1>\n" == (out / "site" / "index.html").read_text()
    assert (out / "api.env").is_file()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("build: {context: ./x, ssh: [default]}", "services.web.build: ssh: no paid equivalent"),
        ("image: a:1\n    scale: 3", "services.web.scale: paid runs one container"),
        ("image: a:1\n    network_mode: service:db", "services.web.network_mode: 'service:db'"),
        ("image: a:1\n    ports: ['8080']", "services.web.ports: 8080: give a host port"),
        ("image: a:1\n    deploy: {replicas: 3}", "services.web.deploy: replicas: 3"),
        ("image: a:1\n    pid: host", "services.web.pid: no paid equivalent"),
        ("image: a:1\n    frobnicate: yes", "services.web.frobnicate: no paid equivalent"),
        (
            "image: a:1\n    depends_on: {db: {condition: service_completed_successfully}}",
            "services.web.depends_on: db: paid has no one-shot jobs",
        ),
    ],
)
def test_what_cannot_be_translated_is_file_line_key_why(
    tmp_path: Path, service: str, expected: str
) -> None:
    """Each refusal names the file, the line and the key; with it, the CLI writes nothing."""
    path = _write(tmp_path, f"services:\n  web:\n    {service}\n")

    translation = import_compose(path, environ={})

    assert any(
        str(p).startswith(f"{path}:") and expected in str(p) for p in translation.problems
    ), [str(p) for p in translation.problems]
    out = tmp_path / "out"
    assert 1 == main(["import", "compose", str(path), "-o", str(out)])
    assert not out.exists()


def test_an_unset_variable_is_a_problem_and_a_default_is_not(tmp_path: Path) -> None:
    """${VAR} with nothing to resolve it is refused; ${VAR:-x} and $$ are fine."""
    bad = _write(tmp_path, "services:\n  web:\n    image: a:${MISSING}\n")
    assert ["interpolation: ${MISSING} is not set (in the environment or in .env)"] == [
        f"{p.key}: {p.why}" for p in import_compose(bad, environ={}).problems
    ]
    good = _write(tmp_path, "services:\n  web:\n    image: a:${V:-2}\n    command: echo $$HOME\n")
    specs = _specs(import_compose(good, environ={}))
    assert ("docker.io/library/a:2", ["echo", "$HOME"]) == (
        specs["web"]["image"],
        specs["web"]["args"],
    )


def test_partial_writes_what_it_can_and_lists_the_rest(tmp_path: Path, capsys: Any) -> None:
    """--partial: the good service is written, the refused key listed, exit 1."""
    path = _write(
        tmp_path, "services:\n  web:\n    image: a:1\n    pid: host\n  db:\n    image: b:1\n"
    )
    out = tmp_path / "out"

    assert 1 == main(["import", "compose", str(path), "-o", str(out), "--partial"])

    assert {"web.yaml", "db.yaml"} == {p.name for p in out.iterdir()}
    assert "services.web.pid: no paid equivalent" in capsys.readouterr().err


def test_an_import_never_overwrites(tmp_path: Path) -> None:
    """A file already in the output directory stops the import before anything is written."""
    path = _write(tmp_path, "services:\n  web:\n    image: a:1\n  db:\n    image: b:1\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "web.yaml").write_text("mine\n")

    assert 1 == main(["import", "compose", str(path), "-o", str(out)])
    assert "mine\n" == (out / "web.yaml").read_text()
    assert not (out / "db.yaml").exists()


def test_hostile_compose_files_are_errors_not_tracebacks(tmp_path: Path) -> None:
    """A FIFO, a billion laughs, a non-mapping: located errors."""
    fifo = tmp_path / "fifo.yaml"
    import os  # noqa: PLC0415

    os.mkfifo(fifo)
    assert import_compose(fifo).problems
    bomb = _write(tmp_path, "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    ))  # fmt: skip
    assert import_compose(bomb).problems
    listed = _write(tmp_path, "- services\n")
    assert ["services: no services: not a compose file"] == [
        f"{p.key}: {p.why}" for p in import_compose(listed).problems
    ]


def test_the_readme_mapping_tables_are_generated_from_the_importers() -> None:
    """The README shows exactly the tables the importers dispatch on."""
    text = README.read_text()
    assert compose_keys.mapping_table() in text
    assert quadlet.mapping_table() in text


# -- Quadlet -------------------------------------------------------------------------

UNITS = {
    "web.container": """\
        [Unit]
        Description=web
        Requires=db.service
        After=db.service

        [Container]
        Image=localhost/paid-test/busybox:1
        Exec=httpd -f -p 8080 -h /www
        Environment=MODE=prod "GREETING=hello world"
        PublishPort=127.0.0.1:18081:8080
        Volume=web-data.volume:/data:Z
        Network=backend.network
        User=1000
        Group=1000
        ReadOnly=true
        DropCapability=ALL
        HealthCmd=test -f /www/index.html
        HealthInterval=5s
        HealthRetries=2

        [Service]
        Restart=always
        TimeoutStopSec=15

        [Install]
        WantedBy=default.target
        """,
    "db.container": """\
        [Container]
        Image=localhost/paid-test/busybox:1
        Exec=sleep 3600
        Network=backend.network
        PodmanArgs=--memory 1g
        """,
    "backend.network": "[Network]\nSubnet=10.89.61.0/24\nInternal=true\n",
    "web-data.volume": "[Volume]\n",
}


def _units(tmp_path: Path) -> Path:
    for name, text in UNITS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def test_quadlet_units_map_to_paids_fields_and_name_what_they_cannot(tmp_path: Path) -> None:
    """A .container, .network and .volume; PodmanArgs is refused at its line."""
    translation = import_quadlet(_units(tmp_path))

    specs = _specs(translation)
    web = specs["web"]
    assert ["httpd", "-f", "-p", "8080", "-h", "/www"] == web["args"]
    assert {"MODE": "prod", "GREETING": "hello world"} == web["env"]
    assert ["127.0.0.1:18081:8080"] == web["ports"]
    assert ["web-data:/data"] == web["volumes"]
    assert ["backend"] == web["networks"]
    assert "1000:1000" == web["user"]
    assert ["db"] == web["dependsOn"]
    assert ("Always", 15) == (web["restartPolicy"], web["terminationGracePeriodSeconds"])
    assert {"exec": {"command": ["/bin/sh", "-c", "test -f /www/index.html"]},
            "periodSeconds": 5, "failureThreshold": 2} == web["readinessProbe"]  # fmt: skip
    assert {"subnet": "10.89.61.0/24", "internal": True} == specs["backend"]
    assert [f"{tmp_path / 'db.container'}:5: Container.PodmanArgs"] == [
        str(p).split(": raw")[0] for p in translation.problems
    ]


# -- Kubernetes ----------------------------------------------------------------------


def _exported(tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "desired"
    assert 0 == main(["import", "compose", str(_project(tmp_path / "p")), "-o", str(out)])
    desired = load_directory(out, offline=True).desired
    assert desired is not None
    return export(desired).objects


def test_export_kube_has_a_deployment_service_claim_config_map_and_policies(
    tmp_path: Path,
) -> None:
    """One Deployment (Recreate) per service, Services for published ports, PVCs, ConfigMaps."""
    objects = _exported(tmp_path)

    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "proxy"), ("Deployment", "api"), ("Deployment", "worker-1")} <= kinds
    assert ("Service", "proxy") in kinds
    assert ("PersistentVolumeClaim", "shop-api-data") in kinds
    assert ("ConfigMap", "proxy-config-0") in kinds
    assert {
        ("NetworkPolicy", "paid-network-shop-front"),
        ("NetworkPolicy", "paid-network-shop-back"),
    } <= kinds
    api = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    assert "Recreate" == api["spec"]["strategy"]["type"]
    pod = api["spec"]["template"]["spec"]
    container = pod["containers"][0]
    capabilities = {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}
    assert {
        "runAsUser": 999,
        "runAsGroup": 999,
        "capabilities": capabilities,
        "readOnlyRootFilesystem": True,
    } == container["securityContext"]
    assert 60 == pod["terminationGracePeriodSeconds"]
    assert "postgres://db/app" in json.dumps(container["env"])  # the env file's value
    worker = next(
        o for o in objects if o["metadata"]["name"] == "worker-1" and o["kind"] == "Deployment"
    )
    secret_volumes = [v for v in worker["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert [{"secretName": "paid-db-password-txt", "defaultMode": 0o444}] == [
        v["secret"] for v in secret_volumes
    ]
    assert "s3cret" not in yaml.safe_dump_all(objects)


def test_export_kube_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    """The real consumer: kubernetes-validate --strict for a current Kubernetes."""
    objects = _exported(tmp_path)
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))

    result = subprocess.run(
        [KUBERNETES_VALIDATE, "--strict", "--kubernetes-version", "1.37.0", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, result.stdout + result.stderr


def test_top_level_networks_volumes_configs_are_read_or_refused_at_their_line(
    tmp_path: Path,
) -> None:
    """An external network, a volume driver and a config outside the project are refused;
    a file config is copied and mounted."""
    (tmp_path / "app.conf").write_text("x = 1\n")
    path = _write(
        tmp_path,
        """\
        services:
          web:
            image: a:1
            networks: [ext]
            configs: [{source: conf, target: /etc/app.conf}]
        networks:
          ext: {external: true}
        volumes:
          data: {driver: nfs}
        configs:
          conf: {file: ./app.conf}
          far: {file: ../../etc/passwd}
        """,
    )

    translation = import_compose(path, environ={})

    assert [
        (7, "networks.ext"),
        (9, "volumes.data"),
        (12, "configs.far"),
    ] == sorted((p.line, p.key) for p in translation.problems)
    assert [{"source": "app.conf", "target": "/etc/app.conf"}] == _specs(translation)["web"][
        "configs"
    ]
    assert {"app.conf"} == set(translation.copies)


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        pytest.param("${A:-${B:-deep}}", {}, "deep", id="nested-defaults"),
        pytest.param("${A:-${B:-deep}}", {"B": "b"}, "b", id="nested-inner-set"),
        pytest.param("${A:-x}", {"A": ""}, "x", id="colon-dash-empty"),
        pytest.param("${A-x}", {"A": ""}, "", id="dash-empty-is-set"),
        pytest.param("${A:+on}", {"A": "1"}, "on", id="colon-plus-set"),
        pytest.param("${A:+on}", {"A": ""}, "", id="colon-plus-empty"),
        pytest.param("${A+on}", {"A": ""}, "on", id="plus-empty-is-set"),
        pytest.param("${A+on}", {}, "", id="plus-unset"),
        pytest.param("$$A ${A}$A", {"A": "v"}, "$A vv", id="dollar-and-bare"),
        pytest.param("a $ b", {}, "a $ b", id="lone-dollar"),
        pytest.param("${A:-${B:+${C}}}", {"B": "1", "C": "c"}, "c", id="three-deep"),
    ],
)
def test_interpolation_is_the_compose_spec_s(
    text: str, variables: dict[str, str], expected: str
) -> None:
    """Every Compose Spec form, nested words included, gives what `docker compose` gives."""
    from paid.translate.compose import interpolate  # noqa: PLC0415

    assert expected == interpolate(text, variables, set())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("${A:?give A}", "${A}: give A", id="colon-question"),
        pytest.param("${A?}", "${A}: required", id="question-no-message"),
        pytest.param("${A:-x", "without its closing", id="unclosed"),
        pytest.param("${1A}", "is not a variable", id="bad-name"),
        pytest.param("${A:=x}", "not a form compose knows", id="unknown-operator"),
    ],
)
def test_interpolation_refusals_say_why(text: str, message: str) -> None:
    """A required variable, an unclosed brace or an unknown form is a located refusal."""
    from paid.translate.compose import interpolate  # noqa: PLC0415

    with pytest.raises(ValueError, match=re.escape(message)):
        interpolate(text, {}, set())


def test_a_moving_tag_is_followed_by_digest(tmp_path: Path) -> None:
    """`nginx` and `:latest` import as imageUpdate, and the result validates."""
    path = _write(
        tmp_path, "services:\n  web:\n    image: nginx\n  db:\n    image: postgres:latest\n"
    )
    out = tmp_path / "out"

    assert 0 == main(["import", "compose", str(path), "-o", str(out)])

    web = yaml.safe_load((out / "web.yaml").read_text())["spec"]
    assert {"image": "docker.io/library/nginx", "imageUpdate": {"policy": "registry"}} == web
    db = yaml.safe_load((out / "db.yaml").read_text())["spec"]
    assert "docker.io/library/postgres:latest" == db["image"]
    assert load_directory(out, offline=True).ok


def test_a_refusal_is_printed_once() -> None:
    """A key the importer refused is not reported again by the loader; another key still is."""
    from paid.cli.migrate import reported  # noqa: PLC0415
    from paid.translate.output import Problem  # noqa: PLC0415

    importer = [Problem("compose.yaml", 5, "services.web.image", "moves", output="web.yaml")]
    loader = [
        Problem("web.yaml", 5, "spec.image", "paid refuses the result: moves"),
        Problem("web.yaml", 7, "spec.user", "paid refuses the result: not a user"),
    ]

    assert [importer[0], loader[1]] == reported(importer, loader)


def test_the_project_directory_bound_as_code_is_copied_once(tmp_path: Path) -> None:
    """`.:/code` (flask-redis) copies the project, without the output or hidden files."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "app.py").write_text("print('hi')\n")
    (project / ".env").write_text("A=1\n")
    path = project / "compose.yaml"
    path.write_text("services:\n  web:\n    image: a:1\n    volumes: ['.:/code']\n")
    out = project / "desired"

    assert 0 == main(["import", "compose", str(path), "-o", str(out)])

    web = yaml.safe_load((out / "web.yaml").read_text())["spec"]
    assert [{"source": "app-files", "target": "/code"}] == web["configs"]
    copied = sorted(
        p.relative_to(out / "app-files").as_posix() for p in (out / "app-files").rglob("*")
    )
    assert ["app.py", "compose.yaml"] == copied
    assert load_directory(out, offline=True).ok  # the copied compose.yaml is content, not paid's


def test_yaml_configs_in_the_tree_are_not_documents(tmp_path: Path) -> None:
    """A prometheus.yml named as a config is the container's; an unnamed stray YAML is an error."""
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    (tmp_path / "grafana.yml").write_text("datasources: [{name: prom}]\n")
    service = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": {"name": "prom"},
        "spec": {
            "image": "docker.io/prom/prometheus:v2.53.0",
            "configs": [
                {"source": "prometheus", "target": "/etc/prometheus"},
                {"source": "grafana.yml", "target": "/etc/grafana.yml"},
            ],
        },
    }
    (tmp_path / "prom.yaml").write_text(yaml.safe_dump(service))
    assert load_directory(tmp_path, offline=True).ok

    (tmp_path / "stray.yaml").write_text("global: {scrape_interval: 15s}\n")
    result = load_directory(tmp_path, offline=True)
    assert not result.ok
    assert {e.file.rsplit("/", 1)[-1] for e in result.errors} == {"stray.yaml"}


def test_two_apps_volumes_and_networks_are_their_own(tmp_path: Path) -> None:
    """Two projects' `db-data` and `backend` import as two volumes and two networks, as compose."""
    text = (
        "services:\n  db:\n    image: localhost/a:1\n"
        "    volumes: [db-data:/var/lib/db, /var/cache]\n"
        "    networks: [backend]\nvolumes:\n  db-data: {}\n  kept: {external: true}\n"
        "networks:\n  backend: {}\n"
    )
    specs = {}
    for app in ("shop", "blog"):
        (tmp_path / app).mkdir()
        path = tmp_path / app / "compose.yaml"
        path.write_text(text)
        out = tmp_path / f"{app}-out"
        assert 0 == main(["import", "compose", str(path), "-o", str(out)])
        specs[app] = yaml.safe_load((out / "db.yaml").read_text())["spec"]

    assert ["shop_db-data:/var/lib/db", "shop_db-var-cache:/var/cache"] == specs["shop"]["volumes"]
    assert ["blog_db-data:/var/lib/db", "blog_db-var-cache:/var/cache"] == specs["blog"]["volumes"]
    assert (["shop_backend"], ["blog_backend"]) == (
        specs["shop"]["networks"],
        specs["blog"]["networks"],
    )


def test_an_undeclared_named_volume_is_a_located_refusal(tmp_path: Path) -> None:
    """`data:/x` with no top-level `data` is compose's own error, here at its line."""
    path = _write(tmp_path, "services:\n  web:\n    image: a:1\n    volumes: [data:/x]\n")

    problems = [str(p) for p in import_compose(path, environ={}).problems]

    assert [f"{path}:4: services.web.volumes: data: not declared under the top-level volumes"] == (
        problems
    )


def test_a_build_app_imports_and_validates(tmp_path: Path) -> None:
    """flask-redis' shape: `build: .` beside `.:/code`, an image name, args and a target."""
    project = tmp_path / "counter"
    project.mkdir()
    (project / "Containerfile").write_text("FROM localhost/base:1 AS app\nCOPY . /code\n")
    (project / "app.py").write_text("print('count')\n")
    (project / "compose.yaml").write_text(
        textwrap.dedent(
            """\
            services:
              web:
                build:
                  context: .
                  dockerfile: Containerfile
                  args: {MODE: prod}
                  target: app
                image: counter-web:latest
                volumes: [".:/code"]
              redis:
                image: redis:7.2
            """
        )
    )
    out = project / "desired-state"

    assert 0 == main(["import", "compose", str(project / "compose.yaml"), "-o", str(out)])

    spec = yaml.safe_load((out / "web.yaml").read_text())["spec"]
    expected = {
        "context": "counter-files",
        "containerfile": "Containerfile",
        "args": {"MODE": "prod"},
        "target": "app",
    }
    assert expected == spec["build"]
    assert "image" not in spec
    assert (out / "counter-files" / "app.py").is_file()
    assert not (out / "counter-files" / "desired-state").exists()
    loaded = load_directory(out, offline=True)
    assert loaded.ok, loaded.errors
    assert loaded.desired is not None
    web = loaded.desired.services["web"]  # type: ignore[index]
    assert web.spec.image.startswith("localhost/paid/web:")


def test_the_override_file_beside_compose_yaml_is_merged(tmp_path: Path) -> None:
    """compose.override.yaml: mappings merge, command is replaced, ports add, volumes by target."""
    _write(
        tmp_path,
        """\
        services:
          web:
            image: localhost/web:1
            command: ["serve", "--prod"]
            environment: [MODE=prod, LEVEL=info]
            ports: ["8080:80"]
            volumes: ["data:/data", "logs:/logs"]
        volumes: {data: {}, logs: {}, other: {}}
        """,
    )
    (tmp_path / "compose.override.yaml").write_text(
        textwrap.dedent(
            """\
            services:
              web:
                command: ["serve", "--debug"]
                environment: {LEVEL: debug, EXTRA: "1"}
                ports: ["9090:90"]
                volumes: ["other:/data"]
            """
        )
    )

    [web] = import_compose(tmp_path / "compose.yaml", environ={}).outputs
    spec = web.documents[0]["spec"]

    assert ["serve", "--debug"] == spec["args"]
    assert {"MODE": "prod", "LEVEL": "debug", "EXTRA": "1"} == spec["env"]
    assert ["8080:80", "9090:90"] == spec["ports"]
    project = tmp_path.name
    assert sorted([f"{project}_other:/data", f"{project}_logs:/logs"]) == sorted(spec["volumes"])


def test_files_given_in_order_are_merged_and_a_refusal_points_at_its_file(
    tmp_path: Path, capsys: Any
) -> None:
    """-f a -f b: b's keys win; a key b adds that paid refuses is reported at b's line."""
    base = _write(tmp_path, "services:\n  web:\n    image: localhost/web:1\n")
    extra = tmp_path / "prod.yaml"
    extra.write_text("services:\n  web:\n    image: localhost/web:2\n    pid: host\n")

    assert 1 == main(["import", "compose", str(base), str(extra), "-o", str(tmp_path / "out")])

    assert f"{extra}:4: services.web.pid: no paid equivalent" in capsys.readouterr().err
    translation = import_compose([base, extra], environ={})
    assert "localhost/web:2" == translation.outputs[0].documents[0]["spec"]["image"]


def test_export_kube_gives_every_service_and_alias_a_name_others_resolve(tmp_path: Path) -> None:
    """No published port still gets a (headless) Service; an alias is a Service of its own."""
    objects = _exported(tmp_path)
    services = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Service"}

    assert {"proxy", "api", "worker-1", "backend-api"} <= set(services)
    assert "None" == services["api"]["clusterIP"]  # api publishes nothing: headless
    assert {"app.kubernetes.io/name": "api"} == services["backend-api"]["selector"]
    assert "ports" in services["proxy"]


def test_export_kube_carries_annotations_and_numeric_groups(tmp_path: Path, capsys: Any) -> None:
    """annotations reach the pod; numeric groupAdd is supplementalGroups, a name is said."""
    directory = tmp_path / "desired"
    directory.mkdir()
    doc = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "image": "localhost/web:1",
            "groupAdd": ["2000", "video"],
            "annotations": {"team": "payments"},
        },
    }
    (directory / "web.yaml").write_text(yaml.safe_dump(doc))

    assert 0 == main(["export", "kube", str(directory), "-o", str(tmp_path / "out.yaml")])

    deployment = next(
        o
        for o in yaml.safe_load_all((tmp_path / "out.yaml").read_text())
        if o["kind"] == "Deployment"
    )
    template = deployment["spec"]["template"]
    assert {"team": "payments"} == template["metadata"]["annotations"]
    assert [2000] == template["spec"]["securityContext"]["supplementalGroups"]
    assert "web: groupAdd 'video' (Kubernetes takes numeric ids)" in capsys.readouterr().err


def test_compose_tmpfs_keeps_size_mode_uid_and_gid(tmp_path: Path) -> None:
    """Short and long forms: size, mode, uid, gid kept (they were dropped); others noted."""
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        textwrap.dedent(
            """\
            services:
              web:
                image: localhost/web:1
                tmpfs: ["/run:size=64m,mode=1770,uid=1000,gid=1000,noexec"]
                volumes:
                  - type: tmpfs
                    target: /cache
                    tmpfs: {size: 1048576, mode: 0o1777}
            """
        )
    )

    translation = import_compose(compose, environ={})

    spec = _specs(translation)["web"]
    assert [
        {"path": "/run", "size": "64m", "mode": "1770", "uid": 1000, "gid": 1000},
        {"path": "/cache", "size": "1048576", "mode": "1777"},
    ] == spec["tmpfs"]
    assert any("noexec dropped" in n for o in translation.outputs for n in o.notes)
    assert [] == translation.problems
