"""The reconcile core against the suite's own real Podman.

Each test drives the real CLI (in-process, so exit codes and output are
the user's) and checks the outcome with the podman command and the
service's events log, independently of what paid says about itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer

from paid.cli import main
from paid.controllers.converging import converge
from paid.runtime.base import ContainerRequest, NameInUse
from paid.runtime.podman import PodmanRuntime
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.harness import (
    IMAGE,
    IMAGE_V2,
    MUTATING_EVENTS,
    PodmanService,
    free_port,
    service_doc,
    write_services,
)


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def three_services(directory: Path, web_port: int, *, web_image: str = IMAGE) -> None:
    write_services(
        directory,
        service_doc("db", volumes=["db-data:/data"]),
        service_doc(
            "web",
            image=web_image,
            command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            ports=[f"127.0.0.1:{web_port}:8080"],
            dependsOn=["db"],
        ),
        service_doc("worker"),
    )


def running_ids(podman: PodmanService) -> dict[str, str]:
    return {c["Names"][0]: c["Id"] for c in podman.containers() if c["State"] == "running"}


def test_converges_from_empty(podman: PodmanService, desired_dir: Path, state_dir: Path) -> None:
    """From nothing to three running, labelled containers; the web one serves on its port."""
    port = free_port()
    three_services(desired_dir, port)

    code = paid(podman, state_dir, "apply", str(desired_dir))

    assert 0 == code
    assert {"db", "web", "worker"} == set(running_ids(podman))
    labels = podman.inspect("web")["Config"]["Labels"]
    assert ("true", "web", "1") == (
        labels["paid.managed"],
        labels["paid.service"],
        labels["paid.revision"],
    )
    assert 64 == len(labels["paid.spec-hash"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert 200 == response.status


def test_second_apply_makes_zero_mutating_calls(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Idempotence seen twice: paid's own request counter and Podman's events log.

    A new `paid apply` lists the containers and, once, the networks.
    """
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    mark = podman.event_mark()
    runtime = PodmanRuntime(podman.url)
    desired = load_directory(desired_dir).desired
    assert desired is not None

    with Store.open(state_dir) as store:
        report = converge(desired, runtime=runtime, store=store)  # what `paid apply` runs

    assert ([], {}) == (report.results, report.rollouts)
    assert {("GET", "containers/json"): 1, ("GET", "networks/json"): 1} == dict(runtime.requests)
    assert [] == [e for e in podman.container_events_since(mark) if e[0] in MUTATING_EVENTS]
    assert [] == podman.network_events_since(mark)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert [] == [e for e in podman.container_events_since(mark) if e[0] in MUTATING_EVENTS]


def test_image_change_recreates_only_that_service(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """web moves to a new image and revision 2; db and worker keep their containers."""
    port = free_port()
    three_services(desired_dir, port)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    before = running_ids(podman)

    three_services(desired_dir, port, web_image=IMAGE_V2)
    assert 2 == paid(podman, state_dir, "plan", str(desired_dir))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    after = running_ids(podman)
    assert before["db"] == after["db"]
    assert before["worker"] == after["worker"]
    assert before["web"] != after["web"]
    web = podman.inspect("web")
    assert (IMAGE_V2, "2") == (web["ImageName"], web["Config"]["Labels"]["paid.revision"])
    assert 1 == sum(1 for c in podman.containers() if c["Names"][0] == "web")


def test_stopped_container_is_replaced_by_a_fresh_one_of_the_same_revision(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`podman stop` behind paid's back: a new container (not the old layer), same revision."""
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    worker_id = running_ids(podman)["worker"]
    podman.podman("exec", "worker", "sh", "-c", "echo scribble > /tmp/mark; echo last words")
    podman.podman("stop", "--time", "1", "worker")

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert worker_id != running_ids(podman)["worker"]
    assert "1" == podman.inspect("worker")["Config"]["Labels"]["paid.revision"]
    assert "" == podman.podman("exec", "worker", "sh", "-c", "cat /tmp/mark 2>/dev/null || true")
    with Store.open(state_dir) as store:
        replaced = [e for e in store.events(service="worker") if e.kind == "container_replaced"]
    assert 1 == len(replaced)
    assert replaced[0].message.startswith("worker: exited with code ")
    assert "last_log_lines" in replaced[0].data


def test_removed_container_is_recreated(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """`podman rm -f` behind paid's back: a new container of the same revision."""
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    podman.podman("rm", "--force", "--time", "0", "db")

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert "1" == podman.inspect("db")["Config"]["Labels"]["paid.revision"]
    assert {"db", "web", "worker"} == set(running_ids(podman))


def test_orphan_is_pruned_and_bystander_untouched(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """A service dropped from the directory goes; an unmanaged container stays."""
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    os.environ["DOCKER_HOST"] = podman.url
    try:
        with DockerContainer(IMAGE).with_command("sleep 3600").with_name("bystander") as bystander:
            three_services(desired_dir, free_port())
            assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
            write_services(
                desired_dir, service_doc("db", volumes=["db-data:/data"]), service_doc("worker")
            )

            assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

            names = set(running_ids(podman))
            assert {"db", "worker", "bystander"} == names
            assert bystander.get_wrapped_container().id == podman.inspect("bystander")["Id"]
    finally:
        os.environ.pop("DOCKER_HOST", None)


def test_name_conflict_is_reported_and_left_alone(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unmanaged `web` is never stopped or replaced; apply says so and exits 1."""
    podman.podman("run", "-d", "--name", "web", IMAGE, "sleep", "3600")
    own_id = podman.inspect("web")["Id"]
    three_services(desired_dir, free_port())
    mark = podman.event_mark()

    code = paid(podman, state_dir, "apply", str(desired_dir))

    assert 1 == code
    assert own_id == running_ids(podman)["web"]
    assert "web" not in {n for s, n in podman.container_events_since(mark) if s in MUTATING_EVENTS}
    assert "CONFLICT" in capsys.readouterr().out


def test_mass_prune_guard_holds_on_real_podman(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An emptied directory removes nothing without --allow-mass-prune."""
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    (desired_dir / "services.yaml").unlink()
    capsys.readouterr()

    assert 1 == paid(podman, state_dir, "apply", str(desired_dir))
    assert {"db", "web", "worker"} == set(running_ids(podman))
    assert "--allow-mass-prune" in capsys.readouterr().out

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir), "--allow-mass-prune")
    assert {} == running_ids(podman)


def test_invalid_directory_changes_nothing(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken file stops the whole apply before Podman is touched: no events at all."""
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    (desired_dir / "broken.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: x}\nspec: {image: nope}\n"
    )
    (desired_dir / "services.yaml").unlink()
    mark = podman.event_mark()
    capsys.readouterr()

    code = paid(podman, state_dir, "apply", str(desired_dir))

    assert 1 == code
    assert [] == podman.container_events_since(mark)
    assert {"db", "web", "worker"} == set(running_ids(podman))
    assert "broken.yaml:4: spec.image: 'nope' has no tag" in capsys.readouterr().err


def test_missing_image_is_reported_by_name_and_others_converge(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No registry is reachable: the pull fails fast and the message names the image.

    (Pre-flight would stop the apply before anything; skipped here to see the executor.)"""
    write_services(
        desired_dir,
        service_doc("ghost", image="localhost/paid-test/absent:9.9"),
        service_doc("fine"),
    )

    code = paid(podman, state_dir, "apply", str(desired_dir), "--skip-preflight")

    out = capsys.readouterr().out
    assert 1 == code
    assert "image localhost/paid-test/absent:9.9 is not present and could not be pulled" in out
    assert {"fine"} == set(running_ids(podman))


def test_podman_away_is_a_clear_error(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the API socket gone, plan and apply exit 1 with one readable line."""
    three_services(desired_dir, free_port())
    podman.pause()
    try:
        assert 1 == paid(podman, state_dir, "apply", str(desired_dir))
        assert 1 == paid(podman, state_dir, "plan", str(desired_dir))
    finally:
        podman.resume()
    err = capsys.readouterr().err
    assert f"cannot reach Podman at {podman.url}" in err
    assert "Traceback" not in err


def test_plan_json_shape_and_exit_codes(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan: 2 with pending changes (JSON per DESIGN.md), 0 once converged."""
    three_services(desired_dir, free_port())
    capsys.readouterr()

    assert 2 == paid(podman, state_dir, "plan", str(desired_dir), "--output", "json")
    doc = json.loads(capsys.readouterr().out)
    assert [("create", "db"), ("create", "worker"), ("create", "web")] == [
        (a["action"], a["service"]) for a in doc["actions"]
    ]
    assert all(set(a) >= {"action", "service", "reason"} for a in doc["actions"])

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == paid(podman, state_dir, "plan", str(desired_dir), "--output", "json")


def test_status_reports_phases_and_revisions(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status --output json: Running with revision 1, Stopped after a stop, Pending when missing."""
    three_services(desired_dir, free_port())
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    podman.podman("stop", "--time", "1", "worker")
    podman.podman("rm", "--force", "--time", "0", "db")
    capsys.readouterr()

    no_daemon = f"127.0.0.1:{free_port()}"
    assert 2 == paid(  # 2: not as desired
        podman, state_dir, "status", str(desired_dir), "--output", "json", "--listen", no_daemon
    )

    doc = json.loads(capsys.readouterr().out)
    phases = {
        s["name"]: (s["phase"], s["runningRevision"], s["desiredRevision"]) for s in doc["services"]
    }
    assert {
        "db": ("Pending", None, 1),
        "web": ("Running", 1, 1),
        "worker": ("Stopped", 1, 1),
    } == phases


def test_container_gets_the_spec_it_was_given(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """command/args, env, limits, stop signal and mounts reach Podman as written."""
    host_dir = podman.base / "allowed" / "web"
    host_dir.mkdir(parents=True)
    write_services(
        desired_dir,
        service_doc(
            "shaped",
            command=["sh", "-c"],
            args=["echo $GREETING > /host/out; sleep 3600"],
            env={"GREETING": "hello"},
            resources={"memory": "64Mi", "cpus": "500m"},
            stopSignal="SIGINT",
            volumes=[f"{host_dir}:/host", "named-vol:/data:ro"],
        ),
    )

    code = paid(
        podman,
        state_dir,
        "apply",
        str(desired_dir),
        "--allow-host-path",
        str(podman.base / "allowed"),
    )

    assert 0 == code
    info = podman.inspect("shaped")
    assert 64 * 1024 * 1024 == info["HostConfig"]["Memory"]
    assert (50_000, 100_000) == (info["HostConfig"]["CpuQuota"], info["HostConfig"]["CpuPeriod"])
    assert "GREETING=hello" in info["Config"]["Env"]
    assert "SIGINT" in str(info["Config"]["StopSignal"]) or 2 == info["Config"]["StopSignal"]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert str(host_dir) == mounts["/host"]["Source"]
    assert ("named-vol", False) == (mounts["/data"]["Name"], mounts["/data"]["RW"])
    deadline = time.monotonic() + 10
    while not (host_dir / "out").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "hello\n" == (host_dir / "out").read_text()


@pytest.mark.slow
def test_kill_during_apply_then_apply_again_converges_without_duplicates(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """kill -9 of `paid apply` at several points of a recreate; the next apply finishes the job."""
    names = [f"s{i}" for i in range(6)]
    write_services(desired_dir, *(service_doc(n) for n in names))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}

    for round_, delay in enumerate([0.3, 0.5, 0.7, 0.9]):
        image = IMAGE_V2 if round_ % 2 == 0 else IMAGE
        write_services(desired_dir, *(service_doc(n, image=image) for n in names))
        proc = subprocess.Popen(
            [sys.executable, "-m", "paid", "apply", str(desired_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

        containers = podman.containers()
        assert sorted(names) == sorted(c["Names"][0] for c in containers)
        assert {"running"} == {c["State"] for c in containers}
        assert {image} == {podman.inspect(n)["ImageName"] for n in names}


def test_a_taken_name_is_reported_as_such(podman: PodmanService) -> None:
    """Podman 4.3 answers 500 for a name in use; paid says NameInUse, not a generic error."""
    podman.podman("create", "--name", "taken", IMAGE, "sleep", "1")
    runtime = PodmanRuntime(podman.url)
    request = ContainerRequest(name="taken", image=IMAGE, labels={}, command=["sleep", "1"])

    with pytest.raises(NameInUse, match="already in use"):
        runtime.create_container(request)


def test_apply_output_json_reports_what_it_did(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One JSON document on stdout (progress goes to stderr): converged, rollouts, the plan."""
    three_services(desired_dir, free_port())
    capsys.readouterr()

    code = paid(podman, state_dir, "apply", str(desired_dir), "--output", "json")

    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert 0 == code
    assert (True, False) == (doc["converged"], doc["refused"])
    assert {"db", "web", "worker"} == set(doc["rollouts"])
    assert {"succeeded"} == {r["result"] for r in doc["rollouts"].values()}
    assert ["create"] * 3 == [a["action"] for a in doc["plan"]["actions"]]
    assert "rolling out" in captured.err


def test_a_probe_change_is_planned_as_an_update_and_keeps_the_container(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field-level plan on real Podman: image old → new for a recreate; a probe path is an
    update that apply records without replacing the container, after which plan is empty."""
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 30}
    write_services(desired_dir, service_doc("web", livenessProbe=probe))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    before = running_ids(podman)["web"]
    write_services(
        desired_dir, service_doc("web", livenessProbe={**probe, "exec": {"command": ["id"]}})
    )
    capsys.readouterr()

    assert 2 == paid(podman, state_dir, "plan", str(desired_dir), "--output", "json")
    (action,) = json.loads(capsys.readouterr().out)["actions"]
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert 0 == paid(podman, state_dir, "plan", str(desired_dir))
    write_services(desired_dir, service_doc("web", image=IMAGE_V2, livenessProbe=probe))
    capsys.readouterr()
    assert 2 == paid(podman, state_dir, "plan", str(desired_dir), "--output", "json")
    (recreate,) = json.loads(capsys.readouterr().out)["actions"]

    assert "update" == action["action"]
    assert [{"path": "spec.livenessProbe.exec.command", "old": ["true"], "new": ["id"]}] == action[
        "changes"
    ]
    assert before == running_ids(podman)["web"]
    assert "recreate" == recreate["action"]
    assert {"path": "spec.image", "old": IMAGE, "new": IMAGE_V2} in recreate["changes"]
