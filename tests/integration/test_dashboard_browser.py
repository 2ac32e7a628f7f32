"""The dashboard in a real browser: Debian's Chromium, driven headless by Playwright, on a real
`paid run` on the suite's Podman."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, IMAGE_V2, PodmanService, service_doc, write_services

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
HOSTILE_LINE = '<script>alert("owned")</script><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/install-deps (CI does)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, browser: Any, *, width: int = 1280) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.errors.append(f"{r.status}: {r.url}")
        )


def _web(image: str, command: list[str], *, min_ready: int = 1) -> dict[str, Any]:
    return service_doc(
        "web",
        image=image,
        command=command,
        readinessProbe={"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
        rollout={"minReadySeconds": min_ready, "progressDeadlineSeconds": 60},
        slo={"availability": 99.5},
    )


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("PAID_TEST_ARTIFACTS", tmp_path / "artifacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_overview_lists_services_and_the_gate_progress_moves(
    podman: PodmanService, daemon: Daemon, browser: Any, tmp_path: Path
) -> None:
    """While revision 2 bakes (20 s), the page refreshes itself and the gate's count goes up."""
    db = service_doc("db", command=["sleep", "100000"])
    write_services(daemon.directory, _web(IMAGE, HTTPD), db)
    daemon.start()
    seen = Watched(browser)
    seen.page.goto(daemon.url + "/")
    rows = seen.page.locator("#services tbody tr")
    assert ["db", "web"] == [rows.nth(i).get_attribute("data-service") for i in range(2)]

    write_services(daemon.directory, _web(IMAGE_V2, HTTPD, min_ready=20), db)
    gate = seen.page.locator('#services [data-gate="web"]')
    wait_until(lambda: "ready" in (gate.text_content(timeout=1000) or ""), 30)
    first = gate.text_content()
    wait_until(lambda: gate.text_content(timeout=1000) != first, 20)  # no reload: the script

    assert "rolling out 2" in (seen.page.locator('tr[data-service="web"]').text_content() or "")
    seen.page.screenshot(path=str(_artifacts(tmp_path) / "dashboard-overview.png"), full_page=True)
    assert [] == seen.errors


def test_a_quarantine_an_invalid_desired_state_and_hostile_log_lines(
    podman: PodmanService, daemon: Daemon, browser: Any, tmp_path: Path
) -> None:
    """Rolled back and quarantined, then a broken file: both stand out; the log line is text."""
    write_services(daemon.directory, _web(IMAGE, HTTPD))
    daemon.start()
    failing = ["sh", "-c", f"echo '{HOSTILE_LINE}'; exit 3"]
    write_services(daemon.directory, _web(IMAGE_V2, failing))
    wait_until(lambda: "quarantined" in str(daemon.service("web").get("note")), 60)
    (daemon.directory / "broken.yaml").write_text("apiVersion: paid/v1\nkind: Servce\n")
    wait_until(lambda: daemon.metric("paid_desired_state_valid") == 0, 30)

    seen = Watched(browser, width=390)  # a phone's width
    seen.page.goto(daemon.url + "/")
    attention = seen.page.locator("#attention-h + ul")
    assert seen.page.locator("#desired-invalid").is_visible()
    assert "broken.yaml" in (attention.text_content() or "")
    assert "quarantined" in (attention.text_content() or "")

    seen.page.goto(daemon.url + "/timeline?service=web")
    journal = seen.page.locator("#timeline").text_content() or ""
    assert HOSTILE_LINE in journal  # shown as the text it is
    assert 1 == seen.page.locator("script").count()  # the dashboard's own, only
    assert 0 == seen.page.locator("img").count()
    assert seen.page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    seen.page.screenshot(path=str(_artifacts(tmp_path) / "dashboard-phone.png"), full_page=True)
    assert [] == seen.errors


def test_the_charts_draw_real_data_and_the_page_works_without_javascript(
    podman: PodmanService, daemon: Daemon, browser: Any, tmp_path: Path
) -> None:
    """Two kills healed: the activity chart has bars; with JavaScript off the page is whole."""
    write_services(daemon.directory, _web(IMAGE, HTTPD))
    daemon.start()
    for _ in range(2):
        before = podman.inspect("web")["Id"]
        podman.podman("kill", "web")
        wait_until(lambda b=before: podman.inspect("web")["Id"] != b, 30)  # type: ignore[misc]
        wait_until(lambda: daemon.service("web")["phase"] == "Running", 30)

    seen = Watched(browser)
    seen.page.goto(daemon.url + "/")
    bars = seen.page.locator("#activity-chart rect.restarts")
    heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())]
    assert 24 == len(heights)
    assert any(h > 0 for h in heights)
    assert 1 == seen.page.locator("#slo-chart rect.budget").count()
    seen.page.screenshot(path=str(_artifacts(tmp_path) / "dashboard-charts.png"), full_page=True)

    context = browser.new_context(java_script_enabled=False)
    bare = context.new_page()
    bare.goto(daemon.url + "/services/web")
    assert "Revisions" in (bare.locator("#revisions-h").text_content() or "")
    assert bare.locator("#revisions tbody tr").count() >= 1
    context.close()
    assert [] == seen.errors
