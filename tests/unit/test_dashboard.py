"""The dashboard's pages, rendered from a status document and a real store, without a browser.

The browser tests (Chromium through Playwright, on a real `paid run`) are
in tests/integration/test_dashboard_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from paid.daemon.dashboard import CSP, Dashboard
from paid.daemon.http import Endpoints, Probe, answer
from paid.storage.store import Store

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Elements(HTMLParser):
    """Every element's tag and attributes: what a browser would build, roughly."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def _elements(html: bytes) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html.decode())
    return parser.found


def _service(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "phase": "Running", "desired": True, "state": "running",
        "image": f"localhost/{name}:1", "desiredImage": f"localhost/{name}:1",
        "runningRevision": 1, "desiredRevision": 1, "ports": [], "createdAt": None,
        "startedAt": None, "restarts": 0, "waitingFor": [], "crashLoopBackOff": False,
        "rollout": None, "health": {}, "note": None, **extra,
    }  # fmt: skip


def _status(*services: dict[str, Any], errors: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "desiredState": {
            "directory": "/srv/desired-state",
            "valid": not errors,
            "errors": list(errors),
            "enforcedSince": 1_800_000_000.0,
        },
        "podman": {"reachable": True, "breaker": "closed"},
        "services": list(services),
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


def _dashboard(store: Store, status: dict[str, Any]) -> Dashboard:
    return Dashboard(status=lambda: status, steps=dict, desired=lambda: None, store=store)


def test_hostile_names_reasons_and_log_lines_render_as_text(store: Store) -> None:
    """Markup in a service name, a note, an error, a reason and a log line is never markup."""
    store.revision_for(service=HOSTILE, spec_hash="h", spec={}, image=f"x/{HOSTILE}")
    store.set_outcome(HOSTILE, 1, "rolled_back", f"probe said {HOSTILE}", quarantine=True)
    store.record("rollout_failed", f"log: {HOSTILE}", service=HOSTILE)
    status = _status(
        _service(HOSTILE, note=f"quarantined: {HOSTILE}"), errors=(f"a.yaml:1: {HOSTILE}",)
    )
    dashboard = _dashboard(store, status)

    pages = [dashboard.page("/", ""), dashboard.page("/timeline", "")]
    pages.append(dashboard.page("/services/" + HOSTILE.replace("/", "%2F"), ""))

    for page in pages:
        assert page is not None
        assert 200 == page.code
        tags = [tag for tag, _ in _elements(page.body)]
        assert 1 == tags.count("script")  # our own dashboard.js, and nothing else
        assert "img" not in tags
        assert all("onerror" not in attrs for _, attrs in _elements(page.body))
        assert b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.body


def test_pages_carry_a_strict_content_security_policy_and_only_get_and_head(store: Store) -> None:
    """CSP with no inline script or style; POST is 405, an unknown page 404."""
    endpoints = Endpoints(
        metrics=lambda: b"",
        healthz=lambda: Probe(True, ""),
        readyz=lambda: Probe(True, ""),
        status=dict,
        pages=_dashboard(store, _status(_service("web"))).page,
    )

    got = answer(endpoints, "GET", "/")

    assert 200 == got.code
    assert ("Content-Security-Policy", CSP) in got.headers
    assert "'unsafe-inline'" not in CSP
    assert "script-src 'self'" in CSP
    assert 405 == answer(endpoints, "POST", "/").code
    assert 404 == answer(endpoints, "GET", "/services/nobody").code
    assert 404 == answer(endpoints, "GET", "/static/../paid.db").code


def test_the_overview_shows_what_needs_a_person_first(store: Store) -> None:
    """An invalid desired state, a quarantine and a crash loop are listed; healthy ones not."""
    status = _status(
        _service("api", note="quarantined: revision 3 failed its gate"),
        _service("db", crashLoopBackOff=True),
        _service("web"),
        errors=("web.yaml:4: spec.image: required field is missing",),
    )

    page = _dashboard(store, status).page("/", "")

    assert page is not None
    text = page.body.decode()
    attention = text.split('id="attention-h"', 1)[1].split("</section>", 1)[0]
    assert 'id="desired-invalid"' in attention
    assert "web.yaml:4: spec.image: required field is missing" in attention
    assert "quarantined: revision 3 failed its gate" in attention
    assert "backing off (crash loop)" in attention
    assert ">web</a>" not in attention


def test_a_rollout_under_way_shows_the_gate_progress(store: Store) -> None:
    """Ready for 3.5 s of 10 s, deadline in 590 s: on the overview and the service page."""
    rollout = {
        "revision": 2, "phase": "Baking", "previousRevision": 1,
        "readyFor": 3.5, "minReadySeconds": 10.0, "deadlineIn": 590.0,
    }  # fmt: skip
    dashboard = _dashboard(store, _status(_service("web", rollout=rollout)))

    for path in ("/", "/services/web"):
        page = dashboard.page(path, "")
        assert page is not None
        assert b"3.5 s of 10.0 s" in page.body
        assert b"590.0 s" in page.body


def test_the_timeline_filters_by_service_kind_and_time(store: Store) -> None:
    """?service=api&kind=rollout_failed&hours=1 lists only those entries, newest first."""
    store.record("rollout_failed", "api: revision 2 failed", service="api")
    store.record("rollout_failed", "web: revision 5 failed", service="web")
    store.record("container_replaced", "api: replaced", service="api")
    store.record("rollout_failed", "api: revision 3 failed", service="api")
    dashboard = _dashboard(store, _status(_service("api"), _service("web")))

    page = dashboard.page("/timeline", "service=api&kind=rollout_failed&hours=1")

    assert page is not None
    listed = page.body.decode().split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    assert listed.index("revision 3 failed") < listed.index("revision 2 failed")
    assert "web: revision 5" not in listed
    assert "replaced" not in listed


def test_the_activity_chart_counts_restarts_and_rollouts_per_hour(store: Store) -> None:
    """Two restarts and one rollout in the last hour: the chart's last bars say so."""
    for _ in range(2):
        store.record("container_replaced", "web: replaced", service="web")
    store.record("rollout_started", "web: revision 2", service="web")
    page = _dashboard(store, _status(_service("web"))).page("/", "")

    assert page is not None
    chart = page.body.decode().split('id="activity-chart"', 1)[1].split("</svg>", 1)[0]
    assert "2 restarts and 1 rollouts in the last 24 hours" in chart
    assert "<title>2 restarts</title>" in chart
    assert "<title>1 rollouts</title>" in chart


def test_five_hundred_services_render_every_row(store: Store) -> None:
    """The overview of 500 services lists 500 rows (its time is measured in bench/)."""
    status = _status(*(_service(f"svc-{i:03d}") for i in range(500)))

    page = _dashboard(store, status).page("/", "")

    assert page is not None
    assert 500 == page.body.count(b'<tr data-service="svc-')


def test_the_overview_names_the_desired_states_git_commit(store: Store) -> None:
    """The checkout's commit (and whether it has changes not committed) is on the overview."""
    from paid.storage.checkout import Checkout  # noqa: PLC0415

    dashboard = Dashboard(
        status=lambda: _status(_service("web")),
        steps=dict,
        desired=lambda: None,
        store=store,
        checkout=lambda: Checkout("0123456789abcdef0123", dirty=True),
    )

    page = dashboard.page("/", "")

    assert page is not None
    assert b'<code id="commit">0123456789ab</code> with changes not committed' in page.body
