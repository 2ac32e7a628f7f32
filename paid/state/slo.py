"""Service level objectives: availability from the readiness record, and error budgets.

A service is *up* while the daemon records it ready, *down* while it records
it not ready, and *unknown* while no daemon was watching (stopped, killed,
or not yet observed since it started). Availability is up / (up + down):
unknown time counts neither way.

The error budget of a window is the downtime the target allows over the
whole window: (1 - target) * window; downtime spends it. The burn rate over
a shorter span is the fraction of known time that was down, divided by
(1 - target): 1 spends the budget exactly over the window, 14.4 spends a
30-day budget in about two days (the Google SRE workbook's fast-burn page).

Pure functions of the record and a clock: the daemon, ``paid slo`` and
``paid postmortem`` compute from the same data the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from paid.state.desired import DesiredService
from paid.state.specs import ServiceSpec

BURN_WINDOWS = (3600.0, 6 * 3600.0)  # the 1 h and 6 h burn rates paid slo shows
FAST_BURN = 14.4  # 2 % of a 30-day budget in one hour: the SRE workbook's page
FAST_BURN_CHECK = 300.0  # ... when the last 5 minutes burn as fast (it is still going on)


@dataclass(frozen=True, slots=True)
class Mark:
    """The daemon saw the service turn ready (True) or not ready (False) at ``at``."""

    at: float
    ready: bool | None  # None: not counted from here on (the service was disabled)


@dataclass(frozen=True, slots=True)
class Watch:
    """A daemon run: it watched from ``start`` to ``end`` (its last sign of life)."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Tally:
    up: float = 0.0
    down: float = 0.0
    unknown: float = 0.0

    @property
    def known(self) -> float:
        return self.up + self.down

    @property
    def availability(self) -> float | None:
        return self.up / self.known if self.known > 0 else None


@dataclass(frozen=True, slots=True)
class Objective:
    service: str
    target: float  # a ratio: 0.999
    window_seconds: float


@dataclass(frozen=True, slots=True)
class SloReport:
    objective: Objective
    tally: Tally
    burn_rates: dict[float, float | None]  # span seconds -> rate (None: nothing known)

    @property
    def budget_seconds(self) -> float:
        return (1.0 - self.objective.target) * self.objective.window_seconds

    @property
    def budget_spent_seconds(self) -> float:
        return self.tally.down

    @property
    def budget_remaining_seconds(self) -> float:
        return self.budget_seconds - self.tally.down

    @property
    def budget_remaining_ratio(self) -> float:
        return self.budget_remaining_seconds / self.budget_seconds if self.budget_seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.objective.service,
            "target": self.objective.target,
            "windowSeconds": self.objective.window_seconds,
            "availability": self.tally.availability,
            "upSeconds": round(self.tally.up, 3),
            "downSeconds": round(self.tally.down, 3),
            "unknownSeconds": round(self.tally.unknown, 3),
            "errorBudget": {
                "totalSeconds": round(self.budget_seconds, 3),
                "spentSeconds": round(self.budget_spent_seconds, 3),
                "remainingSeconds": round(self.budget_remaining_seconds, 3),
                "remainingRatio": round(self.budget_remaining_ratio, 6),
            },
            "burnRates": {
                f"{int(span // 3600)}h": (None if rate is None else round(rate, 4))
                for span, rate in self.burn_rates.items()
            },
        }


def objective_of(
    service: str, spec: ServiceSpec, *, default_percent: float | None = None
) -> Objective | None:
    """The service's objective, or the default one, or None (no SLO)."""
    if spec.slo is not None:
        target = round(spec.slo.availability / 100, 9)  # 99.9 % is 0.999, not 0.99900...01
        return Objective(service, target, spec.slo.window_days * 86400.0)
    if default_percent is not None:
        return Objective(service, round(default_percent / 100, 9), 30 * 86400.0)
    return None


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    ready: bool  # a known stretch: up or down


def spans(
    marks: Sequence[Mark], watches: Iterable[Watch], *, start: float, end: float
) -> list[Span]:
    """The known stretches of one service between ``start`` and ``end``, in order.

    Within a watch, the state is the last mark made *in that watch*; before
    the first one it is unknown (a new daemon knows nothing until it looks).
    """
    ordered = sorted(marks, key=lambda m: m.at)
    found: list[Span] = []

    def add(lo: float, hi: float, state: bool | None) -> None:
        if state is None or hi <= lo:
            return
        if found and found[-1].ready == state and found[-1].end == lo:
            found[-1] = Span(found[-1].start, hi, state)
        else:
            found.append(Span(lo, hi, state))

    for watch in sorted(watches, key=lambda w: w.start):
        lo, hi = max(watch.start, start), min(watch.end, end)
        if hi <= lo:
            continue
        state: bool | None = None
        cursor = lo
        for mark in ordered:
            if mark.at < watch.start:
                continue
            if mark.at > hi:
                break
            if mark.at > cursor:
                add(cursor, mark.at, state)
                cursor = mark.at
            state = mark.ready
        add(cursor, hi, state)
    return found


def tally(marks: Sequence[Mark], watches: Iterable[Watch], *, start: float, end: float) -> Tally:
    """Up, down and unknown seconds of one service between ``start`` and ``end``."""
    known = spans(marks, watches, start=start, end=end)
    up = sum(s.end - s.start for s in known if s.ready)
    down = sum(s.end - s.start for s in known if not s.ready)
    return Tally(up=up, down=down, unknown=max(0.0, (end - start) - up - down))


def report(
    objective: Objective, marks: Sequence[Mark], watches: Sequence[Watch], *, now: float
) -> SloReport:
    whole = tally(marks, watches, start=now - objective.window_seconds, end=now)
    rates: dict[float, float | None] = {}
    for span in BURN_WINDOWS:
        recent = tally(marks, watches, start=now - span, end=now)
        rates[span] = burn_rate(recent, objective.target)
    return SloReport(objective, whole, rates)


def fast_burn(
    found: SloReport, marks: Sequence[Mark], watches: Sequence[Watch], *, now: float
) -> float | None:
    """The last hour's burn rate when it and the last 5 minutes' are both over
    ``FAST_BURN`` (the alert rule PaidErrorBudgetBurnFast's condition), else None."""
    hour = found.burn_rates.get(3600.0)
    if hour is None or hour <= FAST_BURN:
        return None
    recent = burn_rate(
        tally(marks, watches, start=now - FAST_BURN_CHECK, end=now), found.objective.target
    )
    return hour if recent is not None and recent > FAST_BURN else None


class Record(Protocol):
    """Where the readiness record is kept (the store)."""

    def readiness(self, service: str, *, since: float = 0.0) -> list[Mark]: ...

    def watches(self, *, since: float = 0.0) -> list[Watch]: ...


def measure(
    record: Record,
    services: Iterable[DesiredService],
    *,
    default_percent: float | None,
    now: float,
) -> Iterator[SloReport]:
    """A report for every service that has an objective (its own or the default)."""
    for svc in services:
        objective = objective_of(svc.name, svc.spec, default_percent=default_percent)
        if objective is None:
            continue
        since = now - objective.window_seconds
        marks = record.readiness(svc.name, since=since)
        yield report(objective, marks, record.watches(since=since), now=now)


def burn_rate(recent: Tally, target: float) -> float | None:
    if recent.known <= 0:
        return None
    return (recent.down / recent.known) / (1.0 - target)
