"""A canary's analysis, judged: the values one query returned against its bounds.

Pure: the values are read elsewhere (``paid.runtime.prometheus``); this
says whether they pass and how to say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from paid.state.steering import CanaryAnalysis


class Judgement(StrEnum):
    PASSED = "pass"
    FAILED = "fail"  # a value out of bounds: the canary ends
    NO_DATA = "no_data"  # the query returned nothing to judge
    UNAVAILABLE = "unavailable"  # Prometheus did not answer it


@dataclass(frozen=True, slots=True)
class Verdict:
    judgement: Judgement
    detail: str  # the query, the value and the bound, in words
    value: float | None = None


def judge(check: CanaryAnalysis, values: Sequence[tuple[str, float]]) -> Verdict:
    """The first value out of bounds fails; no value at all is no data."""
    if not values:
        return Verdict(Judgement.NO_DATA, f"{check.query} returned no data")
    for series, value in values:
        where = f" ({series})" if series else ""
        if check.max is not None and value > check.max:
            return Verdict(
                Judgement.FAILED,
                f"{check.query} = {value:g}{where}, above max {check.max:g}",
                value,
            )
        if check.min is not None and value < check.min:
            return Verdict(
                Judgement.FAILED,
                f"{check.query} = {value:g}{where}, below min {check.min:g}",
                value,
            )
    worst = max(v for _, v in values) if check.max is not None else min(v for _, v in values)
    return Verdict(Judgement.PASSED, f"{check.query} = {worst:g}, within bounds", worst)


def unavailable(check: CanaryAnalysis, why: str) -> Verdict:
    return Verdict(Judgement.UNAVAILABLE, f"{check.query}: {why}")
