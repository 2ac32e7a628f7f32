"""What a person is told, and who is told: journal entries become notices, pure.

The journal is the one record of what happened; a notice is a journal
entry a person should hear of, worded for a chat message or an e-mail:
what happened, to which service, the revision and image (old → new), the
reason, and what paid did about it. ``route`` says which notifiers'
targets hear it. Delivery (the outbox, retries, Apprise) lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from paid.state.notifiers import DesiredNotifier

# Journal kinds a person hears of, and the notifier events each one is.
# The first is the notice's own event; the others are what it also means
# (a rollback quarantines the revision), so a notifier that lists any of
# them hears it, once.
JOURNAL_EVENTS: Final[Mapping[str, tuple[str, ...]]] = {
    "rollout_failed": ("rollout_failed",),
    "rollout_rolled_back": ("rolled_back", "quarantined", "rollout_failed"),
    "canary_analysis_failed": ("quarantined", "rollout_failed"),
    "image_updated": ("image_updated",),
    "image_update_rolled_back": ("image_update_rolled_back", "rolled_back"),
    "desired_state_invalid": ("desired_state_invalid",),
    "daemon_lost": ("daemon_lost",),
    "slo_burn": ("slo_burn",),
    "service_down": ("service_down",),
    "backup_failed": ("backup_failed",),
    "restore_failed": ("backup_failed",),
}

HEADLINES: Final[Mapping[str, str]] = {
    "rollout_failed": "rollout failed",
    "rolled_back": "rolled back",
    "quarantined": "revision quarantined",
    "image_updated": "image updated",
    "image_update_rolled_back": "image update rolled back",
    "service_down": "down",
    "slo_burn": "burning its error budget",
    "desired_state_invalid": "desired state invalid",
    "daemon_lost": "paid was not running",
    "backup_failed": "backup failed",
}
MAX_BODY_CHARS: Final = 3500  # under Slack's, Discord's (4000) and Matrix's limits


@dataclass(frozen=True, slots=True)
class RevisionFacts:
    """What the store knows of one revision, for the message."""

    number: int
    image: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell: its event, service, a title and a body."""

    event: str
    aliases: tuple[str, ...]
    service: str | None
    title: str
    body: str
    at: float
    labels: Mapping[str, str] = field(default_factory=dict)


def notice_of(
    kind: str,
    *,
    service: str | None,
    message: str,
    data: Mapping[str, Any],
    at: float,
    host: str,
    revisions: Mapping[int, RevisionFacts] | None = None,
) -> Notice | None:
    """The notice of one journal entry, or None if it is not one a person hears of."""
    events = JOURNAL_EVENTS.get(kind)
    if events is None:
        return None
    event = events[0]
    subject = service or host
    lines = [message]
    lines.extend(_revision_lines(data, revisions or {}))
    lines.extend(_detail_lines(kind, data))
    lines.append(f"host {host}")
    return Notice(
        event=event,
        aliases=events,
        service=service,
        title=f"paid: {subject}: {HEADLINES[event]}",
        body=_bounded("\n".join(lines)),
        at=at,
    )


def _revision_lines(data: Mapping[str, Any], revisions: Mapping[int, RevisionFacts]) -> list[str]:
    new, old = _int(data.get("revision")), _int(data.get("previous"))
    lines = []
    if new is not None and new in revisions:
        lines.append(f"revision {new}: {_image(revisions[new])}")
    if old is not None and old in revisions:
        lines.append(f"back on revision {old}: {_image(revisions[old])}")
    if "digest" in data and data.get("previous"):
        lines.append(f"image {data['previous']} → {data['digest']}")
    return lines


def _detail_lines(kind: str, data: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if kind == "canary_analysis_failed" and "prometheus" in data:
        lines.append(f"judged by {data['prometheus']}: {data.get('judgement')} {data.get('value')}")
    logs = data.get("last_log_lines")
    if isinstance(logs, list) and logs:
        lines.append("last log lines:")
        lines.extend(f"  {str(line)[:300]}" for line in logs[-5:])
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        lines.extend(f"  {str(e)[:300]}" for e in errors[:10])
    if "error" in data:
        lines.append(f"error: {str(data['error'])[:500]}")
    return lines


def _image(facts: RevisionFacts) -> str:
    return f"{facts.image} ({facts.digest})" if facts.digest else facts.image


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bounded(text: str) -> str:
    if len(text) <= MAX_BODY_CHARS:
        return text
    return text[: MAX_BODY_CHARS - 20] + "\n… (cut; see the journal)"


def route(
    notice: Notice,
    notifiers: Iterable[DesiredNotifier],
    service_labels: Mapping[str, str] | None,
) -> list[str]:
    """The targets (by their safe names) that hear ``notice``, each once, in order."""
    found: list[str] = []
    for notifier in notifiers:
        if any(notifier.wants(event, service_labels) for event in notice.aliases):
            found.extend(n for n in notifier.target_names() if n not in found)
    return found


def grouped_title(title: str, count: int) -> str:
    """A title standing for ``count`` happenings of one kind to one service."""
    return title if count <= 1 else f"{title} ({count} times)"
