"""The shipped alert rules and dashboard, checked with the real tools.

promtool lints and unit-tests the rules; a real Prometheus scrapes a real
daemon and fires the service-down alert when a managed service stays down.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from paid.metrics import Metrics
from tests.daemon import Daemon, wait_until
from tests.harness import PodmanService, free_port, service_doc, write_services

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


def _promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: scripts/install-deps installs Debian's prometheus")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    """`promtool check rules` and `promtool test rules` on what we ship."""
    check = _promtool("check", "rules", "paid-rules.yml")
    unit = _promtool("test", "rules", "paid-rules.test.yml", cwd=MONITORING / "tests")

    assert 0 == check.returncode, check.stdout + check.stderr
    assert 0 == unit.returncode, unit.stdout + unit.stderr


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        if family.type == "counter":  # per-service counters have no samples until they count
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_rules_and_dashboard_use_only_metrics_paid_exports() -> None:
    """A renamed metric breaks this test, not the on-call engineer's night."""
    exported = _exported_names()
    rules = yaml.safe_load((MONITORING / "paid-rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]

    used = {m for e in exprs for m in re.findall(r"\bpaid_[a-z_]+", e)}

    assert used
    assert set() == used - exported


def test_every_alert_has_a_promtool_test() -> None:
    """Each rule is exercised by paid-rules.test.yml, firing at least once."""
    rules = yaml.safe_load((MONITORING / "paid-rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "tests" / "paid-rules.test.yml").read_text())
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }

    assert set() == alerts - fired


def test_the_dashboard_graphs_every_metric_family_per_service() -> None:
    """A panel for every family paid exports; per-service ones follow the $service variable."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    families = {f.name: f for f in Metrics().registry.collect()}
    per_service = {
        name
        for name, family in families.items()
        for sample in family.samples
        if "service" in sample.labels
    } | {
        n
        for n, c in Metrics().registry._names_to_collectors.items()
        if "service" in getattr(c, "_labelnames", ())
    }

    ungraphed = {
        name for name in families if not any(re.search(rf"\b{name}(_[a-z]+)?\b", e) for e in exprs)
    }
    unfiltered = [
        e
        for e in exprs
        for name in per_service
        if re.search(rf"\b{name}(_total|_bucket)?\{{", e) and 'service=~"$service"' not in e
    ]

    assert set() == ungraphed
    assert "paid_service_up" in variables["service"]["query"]
    assert [] == unfiltered


@pytest.fixture
def prometheus(tmp_path: Path) -> tuple[Path, int]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: scripts/install-deps installs it")
    return tmp_path / "prometheus", free_port()


@pytest.mark.slow
def test_prometheus_scrapes_the_daemon_and_fires_service_down(
    podman: PodmanService,
    desired_dir: Path,
    state_dir: Path,
    tmp_path: Path,
    prometheus: tuple[Path, int],
) -> None:
    """A Never-restart service is killed and stays down: PaidServiceDown fires in Prometheus.

    The shipped rules are used as they are except for `for:`, shortened so
    the test does not wait two minutes.
    """
    write_services(desired_dir, service_doc("web", restartPolicy="Never"), service_doc("db"))
    daemon = Daemon(podman, desired_dir, state_dir, tmp_path / "daemon.log").start()
    base, port = prometheus
    base.mkdir()
    rules = yaml.safe_load((MONITORING / "paid-rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "2s"
    (base / "rules.yml").write_text(yaml.safe_dump(rules))
    (base / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(base / "rules.yml")],
                "scrape_configs": [
                    {
                        "job_name": "paid",
                        "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}],
                    }
                ],
            }
        )
    )
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(base / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )

    def api(path: str) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return dict(json.loads(response.read()))

    def firing() -> list[str]:
        alerts = api("/api/v1/alerts")["data"]["alerts"]
        return [
            a["labels"].get("service", "")
            for a in alerts
            if a["labels"]["alertname"] == "PaidServiceDown" and a["state"] == "firing"
        ]

    try:
        wait_until(
            lambda: api("/api/v1/query?query=up")["data"]["result"][0]["value"][1] == "1", 60, 0.5
        )
        time.sleep(3)
        assert [] == firing()

        podman.podman("kill", "web")

        wait_until(lambda: firing() == ["web"], 60, 0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
        daemon.stop()
