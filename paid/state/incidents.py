"""Postmortems: a Markdown incident report drafted from the journal and the readiness record.

paid fills in what it knows — the timeline (rollouts, failures, rollbacks,
restarts, probe transitions, invalid desired state, daemon starts, stops and
losses, backups, chaos rounds), the downtime of each service computed from
the readiness record, and the revisions involved — and leaves the sections
only a person can write as headings to fill: root cause, resolution, action
items, lessons learned.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from paid import __version__
from paid.state.slo import Mark, Span, Watch, spans

# What a timeline shows, and how it names it.
TIMELINE_KINDS: Mapping[str, str] = {
    "daemon_started": "paid started",
    "daemon_stopped": "paid stopped",
    "desired_state_invalid": "desired state invalid",
    "rollout_started": "rollout started",
    "rollout_succeeded": "rollout succeeded",
    "rollout_failed": "rollout failed",
    "rollout_rolled_back": "rolled back",
    "rollout_interrupted": "rollout interrupted",
    "rollback_requested": "rollback requested",
    "rollout_retry": "retry requested",
    "canary_started": "canary started",
    "canary_promoted": "canary promoted",
    "canary_analysis_failed": "canary analysis failed",
    "container_replaced": "restarted",
    "action_failed": "action failed",
    "probe_transition": "probe",
    "backup_succeeded": "backup",
    "backup_failed": "backup failed",
    "restore_succeeded": "restored",
    "restore_failed": "restore failed",
    "restore_not_ready": "restored, not ready",
    "chaos_break": "chaos break",
    "chaos_round": "chaos result",
    "flags_changed": "flags changed",
    "git_pull_failed": "git pull failed",
    "git_pulled": "git pulled",
}
LOST_AFTER = 30.0  # a watch ending this long before the next start, unannounced: lost


class Journal(Protocol):
    path: Any

    def events(self, *, service: str | None = None, since: float = 0.0) -> list[Any]: ...

    def readiness(self, service: str, *, since: float = 0.0) -> list[Mark]: ...

    def watches(self, *, since: float = 0.0) -> list[Watch]: ...

    def revision(self, service: str, number: int) -> Any: ...


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    service: str
    what: str
    detail: str


def parse_time(text: str, *, now: float) -> float:
    """``2026-12-01T09:00:00Z`` (a time without zone is local), or an age: ``90s 15m 2h 3d``."""
    age = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if age:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[age[2]]
        return now - float(age[1]) * factor
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO time nor an age such as 2h") from None


@dataclass(frozen=True, slots=True)
class Incident:
    """What the journal says of a period: per service its outages, and the timeline."""

    since: float
    until: float
    names: list[str]
    outages: dict[str, list[Span]]
    unknown: dict[str, float]
    timeline: list[Entry]
    events: list[Any]

    def to_json(self) -> dict[str, Any]:
        """``paid postmortem --output json``: the facts, without the sections to fill."""
        return {
            "since": self.since,
            "until": self.until,
            "services": [
                {
                    "name": name,
                    "downtimeSeconds": sum(s.end - s.start for s in self.outages[name]),
                    "outages": [{"start": s.start, "end": s.end} for s in self.outages[name]],
                    "unknownSeconds": self.unknown[name],
                }
                for name in self.names
            ],
            "timeline": [
                {"at": e.at, "service": e.service or None, "event": e.what, "detail": e.detail}
                for e in self.timeline
            ],
        }


def incident(
    journal: Journal, *, since: float, until: float, services: Sequence[str] = ()
) -> Incident:
    """The facts of ``since``..``until`` from the journal and the readiness record."""
    events = [e for e in journal.events(since=since) if e.at <= until]
    wanted = set(services)
    if wanted:
        events = [e for e in events if e.service is None or e.service in wanted]
    watches = journal.watches(since=since)
    entries = _entries(events, watches, since=since, until=until)
    names = sorted(wanted or {e.service for e in events if e.service})
    outages: dict[str, list[Span]] = {}
    unknown: dict[str, float] = {}
    for name in names:
        known = spans(journal.readiness(name, since=since), watches, start=since, end=until)
        outages[name] = [s for s in known if not s.ready]
        unknown[name] = (until - since) - sum(s.end - s.start for s in known)
    timeline = _with_outages(entries, outages)
    return Incident(since, until, names, outages, unknown, timeline, events)


def postmortem(
    journal: Journal, *, since: float, until: float, services: Sequence[str] = ()
) -> str:
    """The Markdown report: the facts filled in, the rest as headings to fill."""
    facts = incident(journal, since=since, until=until, services=services)
    names, outages, unknown, events = facts.names, facts.outages, facts.unknown, facts.events
    lines = [
        f"# Incident report: {', '.join(names) or 'paid'}, {_when(since)} to {_when(until)}",
        "",
        f"_Drafted by paid {__version__} on {_when(time.time())} from {journal.path}. "
        "paid filled in the timeline, the downtime and the revisions; "
        "the sections marked *(to fill)* need a person._",
        "",
        "## Summary",
        "",
        *_summary(names, outages, events),
        "",
        "## Impact",
        "",
        "Downtime is time the daemon saw the service not ready; unknown is time no "
        "daemon was watching (counted neither way).",
        "",
        "| Service | Downtime | Outages | Longest | Unknown |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {_span(sum(s.end - s.start for s in outages[name]))} | "
            f"{len(outages[name])} | "
            f"{_span(max((s.end - s.start for s in outages[name]), default=0.0))} | "
            f"{_span(unknown[name])} |"
            for name in names
        ),
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Service | Event | Detail |",
        "|---|---|---|---|",
        *(
            f"| {_when(e.at, precise=True)} | {e.service or '-'} | {e.what} | {_cell(e.detail)} |"
            for e in facts.timeline
        ),
        "",
        "## Revisions involved",
        "",
        *_revisions(journal, events),
        "",
        "## Root cause",
        "",
        "*(to fill)*",
        "",
        "## Resolution",
        "",
        "*(to fill)*",
        "",
        "## Action items",
        "",
        "| Action | Owner | Due |",
        "|---|---|---|",
        "| *(to fill)* | | |",
        "",
        "## Lessons learned",
        "",
        "*(to fill)*",
        "",
    ]
    return "\n".join(lines)


def _entries(
    events: Sequence[Any], watches: Sequence[Watch], *, since: float, until: float
) -> list[Entry]:
    found = [
        Entry(e.at, e.service or "", TIMELINE_KINDS[e.kind], e.message)
        for e in events
        if e.kind in TIMELINE_KINDS
    ]
    stops = [e.at for e in events if e.kind == "daemon_stopped"]
    for i, watch in enumerate(watches):
        later = watches[i + 1].start if i + 1 < len(watches) else None
        announced = any(abs(at - watch.end) < LOST_AFTER for at in stops)
        if later is not None and not announced and since <= watch.end <= until:
            found.append(
                Entry(
                    watch.end,
                    "",
                    "paid lost",
                    "last sign of life of a daemon that did not stop cleanly",
                )
            )
    return sorted(found, key=lambda e: e.at)


def _with_outages(entries: list[Entry], outages: Mapping[str, list[Span]]) -> list[Entry]:
    marks = [
        entry
        for name, found in outages.items()
        for span in found
        for entry in (
            Entry(span.start, name, "not ready", "outage begins"),
            Entry(span.end, name, "ready", f"outage ends after {_span(span.end - span.start)}"),
        )
    ]
    return sorted([*entries, *marks], key=lambda e: e.at)


def _summary(
    names: Sequence[str], outages: Mapping[str, list[Span]], events: Sequence[Any]
) -> list[str]:
    def count(*kinds: str) -> int:
        return sum(1 for e in events if e.kind in kinds)

    total = {name: sum(s.end - s.start for s in outages[name]) for name in names}
    down = ", ".join(f"{name} {_span(total[name])}" for name in names if total[name] > 0)
    return [
        f"- Services: {', '.join(names) or 'none'}",
        f"- Downtime: {down or 'none recorded'}",
        f"- Rollouts: {count('rollout_started')} started, {count('rollout_succeeded')} succeeded, "
        f"{count('rollout_failed')} failed, {count('rollout_rolled_back')} rolled back",
        f"- Restarts: {count('container_replaced')}; chaos rounds: {count('chaos_round')}; "
        f"invalid desired state: {count('desired_state_invalid')} times",
        "- Detection: *(to fill: how did you find out?)*",
    ]


def _revisions(journal: Journal, events: Sequence[Any]) -> list[str]:
    numbers: set[tuple[str, int]] = set()
    for e in events:
        for key in ("revision", "previous"):
            value = e.data.get(key) if isinstance(e.data, Mapping) else None
            if e.service and isinstance(value, int):
                numbers.add((e.service, value))
    if not numbers:
        return ["No revision changed in this window."]
    rows = [
        "| Service | Revision | Image | Git commit | Outcome | Reason |",
        "|---|---|---|---|---|---|",
    ]
    for service, number in sorted(numbers):
        rev = journal.revision(service, number)
        if rev is None:
            rows.append(f"| {service} | {number} | (pruned from the history) | | | |")
            continue
        commit = (rev.git_commit or "-")[:12] + (" (dirty)" if rev.git_dirty else "")
        reason = _cell(rev.reason)
        rows.append(f"| {service} | {number} | {rev.image} | {commit} | {rev.outcome} | {reason} |")
    return rows


def _when(at: float, *, precise: bool = False) -> str:
    stamp = datetime.fromtimestamp(at, UTC)
    if precise:
        return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]
