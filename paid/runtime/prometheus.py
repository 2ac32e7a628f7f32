"""Asks a Prometheus server an instant query: what a canary's analysis is judged by.

The request goes through ``paid.runtime.outbound``: a deadline for the
whole exchange, a bounded answer and a breaker per server, so a Prometheus
that is slow or away costs a canary at most ``timeout`` seconds per look
and is then not asked again for a while. Every way it can fail is one
exception, ``AnalysisUnavailable``, with the reason in words; the caller
decides (a canary is never promoted on an answer it did not get).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from paid.runtime.outbound import Abandoned, Breakers, bounded, brief, within

TIMEOUT = 5.0  # seconds for one query, all of it


class AnalysisUnavailable(Exception):
    """The query has no answer to judge: Prometheus away, refusing it, or answering badly."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of an instant query: its series' labels (as PromQL writes them) and value."""

    series: str
    value: float


class PrometheusClient:
    def __init__(
        self, *, timeout: float = TIMEOUT, fail_max: int = 3, reset_timeout: float = 30.0
    ) -> None:
        self.timeout = timeout
        self.breakers = Breakers(fail_max, reset_timeout)

    def query(self, server: str, promql: str) -> list[Sample]:
        """The values of ``promql`` now; NaN values are left out (no data)."""
        host = urlsplit(server).netloc
        breaker = self.breakers.of(host)
        if not breaker.allows():
            raise AnalysisUnavailable(
                f"{server} did not answer {breaker.failures} times in a row: not asked again for "
                f"{breaker.reset_timeout:g} s"
            )
        try:
            answer = within(
                self.timeout,
                lambda session: bounded(
                    session.get(
                        f"{server}/api/v1/query",
                        params={"query": promql},
                        timeout=self.timeout,
                        stream=True,
                    )
                ),
            )
        except (requests.ConnectionError, requests.Timeout, Abandoned) as err:
            breaker.record(reachable=False)
            raise AnalysisUnavailable(f"{server} did not answer: {brief(err)}") from err
        except requests.RequestException as err:
            breaker.record(reachable=True)
            raise AnalysisUnavailable(f"{server} answered badly: {brief(err)}") from err
        breaker.record(reachable=answer.status_code < 500)
        return _samples(server, answer)


def _samples(server: str, answer: requests.Response) -> list[Sample]:
    try:
        body = json.loads(answer.content)
    except ValueError as err:
        raise AnalysisUnavailable(
            f"{server} answered HTTP {answer.status_code}, not Prometheus JSON"
        ) from err
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise AnalysisUnavailable(
            f"{server} refused the query (HTTP {answer.status_code}): {str(error or '?')[:300]}"
        )
    data = body.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    try:
        if kind == "scalar" and isinstance(result, list):
            samples = [Sample("", float(result[1]))]
        elif kind == "vector" and isinstance(result, list):
            samples = [Sample(_series(r["metric"]), float(r["value"][1])) for r in result]
        else:
            raise AnalysisUnavailable(
                f"the query returns a {kind or 'malformed answer'}; "
                "an instant vector or a scalar is needed"
            )
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise AnalysisUnavailable(f"{server} answered a malformed {kind}: {brief(err)}") from err
    return [s for s in samples if not math.isnan(s.value)]


def _series(metric: object) -> str:
    if not isinstance(metric, dict):
        raise TypeError("a series' labels are not a mapping")
    name = str(metric.get("__name__", ""))
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{pairs}}}" if pairs else name
