"""Chaos, SLOs and postmortems under a real daemon on the suite's real Podman."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from paid.cli import main
from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, free_port, service_doc, write_services

pytestmark = pytest.mark.slow

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
READY = {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}


def web(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"command": HTTPD, "readinessProbe": READY}
    body.update(spec)
    return service_doc("web", **body)


def paid(daemon: Daemon, *args: str) -> int:
    return main([*args, "--podman-url", daemon.podman.url, "--state-dir", str(daemon.state_dir)])


def chaos(daemon: Daemon, *args: str) -> int:
    return paid(
        daemon, "chaos", str(daemon.directory), "--listen", f"127.0.0.1:{daemon.port}", *args
    )


def rounds(daemon: Daemon) -> list[dict[str, Any]]:
    with Store.open(daemon.state_dir) as store:
        return [{**e.data, "service": e.service} for e in store.events() if e.kind == "chaos_round"]


def test_chaos_needs_a_daemon(
    daemon: Daemon, desired_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a daemon to heal what it breaks, chaos breaks nothing."""
    write_services(desired_dir, web())

    code = paid(daemon, "chaos", str(desired_dir), "--listen", f"127.0.0.1:{free_port()}")

    assert 1 == code
    assert "no paid daemon answers" in capsys.readouterr().err


def test_chaos_rounds_recover_and_the_flag_switches_chaos_at_run_time(
    podman: PodmanService,
    daemon: Daemon,
    desired_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Off by flag: refused. On (same daemon, no restart): every round heals, timed."""
    flags = tmp_path / "flags.yaml"
    flags.write_text("chaos: false\n")
    write_services(desired_dir, web(), service_doc("worker"))
    daemon.extra += ["--flags", str(flags)]
    daemon.env["PAID_TIMINGS"] = "crash=1"  # a service broken twice waits 1 s, not 10
    daemon.start()
    wait_until(lambda: daemon.service("web")["health"].get("ready"), 30)

    assert 1 == chaos(daemon, "--rounds", "1")
    assert "chaos feature flag is off" in capsys.readouterr().err
    flags.write_text("chaos: true\n")
    wait_until(lambda: daemon.metric("paid_feature_flag", 'flag="chaos"') == 1, 10)

    code = chaos(daemon, "--rounds", "4", "--action", "random", "--seed", "4", "--deadline", "30")

    output = capsys.readouterr().out
    assert 0 == code, output
    found = rounds(daemon)
    assert 4 == len(found)
    assert all(0 < r["seconds"] < 30 for r in found)
    # seed 4 breaks both services, in all three ways
    assert {"web", "worker"} == {r["service"] for r in found}
    assert {"kill", "rm", "stop"} == {r["action"] for r in found}
    assert re.search(r"recovered 4/4: median \d+\.\d\d s, max \d+\.\d\d s", output)
    assert all(c["State"] == "running" for c in podman.containers())


def test_slo_counts_downtime_and_unknown_time(
    daemon: Daemon, desired_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chaos kill is downtime; time with no daemon is unknown, not up and not down."""
    write_services(desired_dir, web(slo={"availability": 99.9, "windowDays": 1}))
    daemon.start()
    wait_until(lambda: daemon.service("web")["health"].get("ready"), 30)
    assert 0 == chaos(daemon, "--rounds", "1", "--action", "kill")
    (kill,) = rounds(daemon)

    def slo() -> dict[str, Any]:
        capsys.readouterr()
        assert 0 == paid(daemon, "slo", str(desired_dir), "--output", "json")
        (entry,) = json.loads(capsys.readouterr().out)["services"]
        return dict(entry)

    first = slo()
    first_at = time.time()
    wait_until(
        lambda: daemon.metric("paid_slo_availability_ratio", 'service="web"') is not None, 20
    )
    exported = daemon.metric("paid_slo_availability_ratio", 'service="web"')
    daemon.stop()
    watched = time.time() - first_at  # the daemon watched this much longer, then stopped
    time.sleep(2)
    later = slo()

    assert 0.999 == first["target"]
    assert first["downSeconds"] == pytest.approx(kill["seconds"], abs=0.75)
    assert first["errorBudget"]["totalSeconds"] == pytest.approx(86.4)
    assert first["errorBudget"]["spentSeconds"] == first["downSeconds"]
    assert first["availability"] < 1
    assert exported is not None
    assert exported < 1
    assert later["downSeconds"] == first["downSeconds"]
    # The 2 s without a daemon are known neither up nor down.
    known = later["upSeconds"] + later["downSeconds"]
    assert known == pytest.approx(first["upSeconds"] + first["downSeconds"] + watched, abs=0.5)


def test_postmortem_after_a_rollback_and_chaos(
    podman: PodmanService,
    daemon: Daemon,
    desired_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report lists the rollout, its rollback and the chaos rounds in order, with the
    downtime of each chaos round as measured by chaos itself."""
    write_services(desired_dir, web(rollout={"minReadySeconds": 1, "progressDeadlineSeconds": 6}))
    daemon.start()
    wait_until(lambda: daemon.service("web")["health"].get("ready"), 30)
    write_services(
        desired_dir,
        web(command=["false"], rollout={"minReadySeconds": 1, "progressDeadlineSeconds": 6}),
    )
    wait_until(lambda: daemon.metric("paid_rollbacks_total", 'service="web"') == 1, 40)
    wait_until(lambda: daemon.service("web")["health"].get("ready"), 30)
    capsys.readouterr()
    assert 0 == chaos(
        daemon, "--rounds", "2", "--action", "kill", "--service", "web", "--output", "json"
    )
    said = json.loads(capsys.readouterr().out)
    assert [(1, "web", True), (2, "web", True)] == [
        (r["round"], r["service"], r["recovered"]) for r in said["rounds"]
    ]
    assert 2 == said["recovered"]
    report_path = tmp_path / "incident.md"

    assert 0 == paid(
        daemon, "postmortem", "--since", "10m", "--service", "web", "--file", str(report_path)
    )
    json_path = tmp_path / "incident.json"
    assert 0 == paid(
        daemon, "postmortem", "--since", "10m", "--service", "web", "--output", "json",
        "--file", str(json_path),
    )  # fmt: skip
    facts = json.loads(json_path.read_text())
    assert ["web"] == [s["name"] for s in facts["services"]]
    assert 2 <= len(facts["services"][0]["outages"])  # the two chaos kills at least
    assert "chaos break" in [e["event"] for e in facts["timeline"]]

    text = report_path.read_text()
    timeline = text.split("## Timeline")[1].split("## Revisions involved")[0]
    events = [row.split(" | ")[2] for row in timeline.splitlines() if row.startswith("| 20")]
    order = [e for e in events if e in ("rollout started", "rolled back") or "chaos" in e]
    chaos_pair = ["chaos break", "not ready", "ready", "chaos result"]
    assert ["rollout started", "rolled back"] == order[-6:-4]
    assert ["chaos break", "chaos result"] * 2 == order[-4:]
    # Each break is followed by its outage and its end before chaos reports the result.
    first_break = events.index("chaos break")
    assert chaos_pair == [e for e in events[first_break:] if e in chaos_pair][:4]
    outages = [float(m) for m in re.findall(r"outage ends after (\d+\.\d) s", timeline)]
    for measured in (r["seconds"] for r in rounds(daemon)):
        assert any(abs(o - measured) < 0.75 for o in outages), (measured, outages)
    revisions = text.split("## Revisions involved")[1].split("## Root cause")[0]
    assert re.search(r"\| web \| 2 \| .* \| rolled_back \|", revisions)
    for heading in ("## Root cause", "## Resolution", "## Action items", "## Lessons learned"):
        assert heading in text
