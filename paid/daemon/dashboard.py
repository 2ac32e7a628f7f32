"""The dashboard at ``/``: what runs, what changed, what broke, rendered on the server.

Read-only, and it never calls Podman: every page is made from what the
daemon already knows (the ``/status`` document, the last steps of the
reconciler) and from the store (revisions, the journal, the readiness
record). Templates are Jinja2 with autoescaping on, so every value from
the desired state, Podman or a log line is text, never markup; pages are
sent with a strict Content-Security-Policy (scripts and styles from this
server only, no inline ones). Charts are SVG drawn here, so they need no
script; ``dashboard.js`` only refreshes the page's content in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote

import jinja2

from paid.controllers.worlds import StepKind
from paid.state.desired import DesiredState
from paid.state.slo import measure
from paid.storage.checkout import Checkout
from paid.storage.store import Store

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
STATIC = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
TIMELINE_LIMIT = 500
RESTART_KINDS = frozenset({"container_replaced", "container_repaired"})
ROLLOUT_KINDS = frozenset({"rollout_started"})
HOURS = 24


@dataclass(frozen=True, slots=True)
class Page:
    code: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"


class Dashboard:
    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        steps: Callable[[], Mapping[str, Any]],
        desired: Callable[[], DesiredState | None],
        store: Store,
        slo_default: float | None = None,
        checkout: Callable[[], Checkout | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._steps = steps
        self._desired = desired
        self._store = store
        self._slo_default = slo_default
        self._checkout = checkout
        self._clock = clock
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("paid.daemon", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["when"] = _when
        self._templates.filters["ago"] = lambda at: _ago(self._clock() - at)
        self._templates.filters["short"] = _short

    def page(self, path: str, query: str) -> Page | None:
        """The page at ``path``, or None (not the dashboard's)."""
        if path == "/":
            return self._render("overview.html", self.overview())
        if path.startswith("/services/"):
            found = self.service(unquote(path.removeprefix("/services/")))
            if found is None:
                return Page(404, b"no such service\n", "text/plain")
            return self._render("service.html", found)
        if path == "/timeline":
            return self._render("timeline.html", self.timeline(parse_qs(query)))
        if path == "/favicon.ico":  # asked by browsers whatever the page says
            path = "/static/favicon.svg"
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in STATIC:
                return Page(404, b"not found\n", "text/plain")
            body = resources.files("paid.daemon").joinpath("static", name).read_bytes()
            return Page(200, body, STATIC[name])
        return None

    def _render(self, template: str, context: dict[str, Any]) -> Page:
        html = self._templates.get_template(template).render(now=self._clock(), **context)
        return Page(200, html.encode())

    # -- what each page shows ---------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        status = self._status()
        last = self._store.latest_event_per_service()
        services = [{**s, "last": last.get(s["name"])} for s in status["services"]]
        attention = [s for s in services if _needs_a_person(s)]
        desired = self._desired()
        plan = [
            {
                "service": name,
                "kind": str(step.kind),
                "action": str(step.action.kind) if step.action is not None else "",
                "why": step.action.reason if step.action is not None else step.reason,
            }
            for name, step in sorted(self._steps().items())
            if step.kind is not StepKind.IDLE
        ]
        return {
            "title": "paid",
            "status": status,
            "services": services,
            "attention": attention,
            "networks": sorted(desired.networks) if desired is not None else [],
            "checkout": self._checkout(),
            "plan": plan,
            "slos": self._slos(desired),
            "activity": self._activity(),
        }

    def service(self, name: str) -> dict[str, Any] | None:
        status = self._status()
        entry = next((s for s in status["services"] if s["name"] == name), None)
        revisions = self._store.revisions(name)
        if entry is None and not revisions:
            return None
        return {
            "title": f"{name} — paid",
            "name": name,
            "entry": entry,
            "revisions": list(reversed(revisions)),
            "events": self._store.recent_events(limit=100, service=name),
            "backups": self._store.recent_events(limit=10, service=name, kind="backup_succeeded"),
        }

    def timeline(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        service = (query.get("service") or [""])[0] or None
        kind = (query.get("kind") or [""])[0] or None
        hours = _number((query.get("hours") or ["24"])[0], default=24.0, high=24 * 365)
        since = self._clock() - hours * 3600
        events = self._store.recent_events(
            limit=TIMELINE_LIMIT, service=service, kind=kind, since=since
        )
        desired = self._desired()
        return {
            "title": "timeline — paid",
            "events": events,
            "service": service or "",
            "kind": kind or "",
            "hours": hours,
            "services": sorted(desired.services) if desired is not None else [],
            "limit": TIMELINE_LIMIT,
        }

    def _slos(self, desired: DesiredState | None) -> list[dict[str, Any]]:
        if desired is None:
            return []
        found = []
        for report in measure(
            self._store, desired, default_percent=self._slo_default, now=self._clock()
        ):
            availability = report.tally.availability
            found.append(
                {
                    "service": report.objective.service,
                    "objective": report.objective.target,
                    "availability": availability,
                    "budget_left": report.budget_remaining_ratio,
                    "burn": report.burn_rates.get(3600.0),
                }
            )
        return found

    def _activity(self) -> dict[str, Any]:
        """Restarts and rollouts per hour over the last day: bars of an SVG chart."""
        now = self._clock()
        start = now - HOURS * 3600
        restarts, rollouts = [0] * HOURS, [0] * HOURS
        for event in self._store.recent_events(limit=20_000, since=start):
            slot = min(HOURS - 1, int((event.at - start) // 3600))
            if event.kind in RESTART_KINDS:
                restarts[slot] += 1
            elif event.kind in ROLLOUT_KINDS:
                rollouts[slot] += 1
        top = max([1, *restarts, *rollouts])
        return {
            "hours": HOURS,
            "top": top,
            "restarts": _bars(restarts, top),
            "rollouts": _bars(rollouts, top),
            "total_restarts": sum(restarts),
            "total_rollouts": sum(rollouts),
        }


def _bars(counts: list[int], top: int, *, height: float = 80.0) -> list[dict[str, float]]:
    return [
        {"x": i * 10.0, "h": round(height * c / top, 1), "y": round(height - height * c / top, 1),
         "n": c}
        for i, c in enumerate(counts)
    ]  # fmt: skip


def _needs_a_person(service: Mapping[str, Any]) -> bool:
    return bool(
        service.get("note")
        or service.get("crashLoopBackOff")
        or service.get("phase") in ("Conflict", "Drifted", "Orphan")
    )


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(0.0, seconds):.0f} s ago"


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, rest = digest.partition(":")
    return f"{algorithm}:{rest[:12]}" if rest else digest[:19]


def _number(text: str, *, default: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return default if not 0 < value <= high else value
