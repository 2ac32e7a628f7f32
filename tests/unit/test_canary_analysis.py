"""Canaries judged by Prometheus queries, on the fake runtime, a real store and a fake clock.

The Prometheus here is a stand-in that answers what each test scripts; the
real client is tested on loopback HTTP (``test_prometheus_client``) and
against a real Prometheus (``test_canary_podman``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paid.controllers.health import HealthController
from paid.controllers.rollouts import RolloutController
from paid.controllers.services import ServiceController
from paid.runtime.fake import FakeRuntime
from paid.runtime.prometheus import AnalysisUnavailable, PrometheusClient, Sample
from paid.state.analysis import Judgement, judge
from paid.state.desired import DesiredService
from paid.state.labels import canary_name, next_name
from paid.state.steering import CanaryAnalysis
from paid.storage.store import Store
from tests.unit.builders import desired_service, paid_network

PROM = "http://127.0.0.1:9090"
ERRORS = "sum(rate(http_errors_total[1m]))"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedPrometheus(PrometheusClient):
    """Answers each query with the next scripted value; an exception is raised instead."""

    def __init__(self, *answers: float | Exception | None) -> None:
        super().__init__()
        self.answers = list(answers)
        self.asked: list[str] = []

    def query(self, server: str, promql: str) -> list[Sample]:
        self.asked.append(promql)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return [] if answer is None else [Sample('{instance="web"}', answer)]


def service(image: str, **canary: Any) -> DesiredService:
    settings = {"durationSeconds": 30, "intervalSeconds": 5, **canary}
    rollout = {"strategy": "Canary", "minReadySeconds": 2, "canary": settings}
    return desired_service("web", image=image, rollout=rollout)


ANALYSED = {"analysis": [{"prometheus": PROM, "query": ERRORS, "max": 0.5}]}
V1 = service("localhost/app:1", **ANALYSED)
V2 = service("localhost/app:2", **ANALYSED)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


def deployed(
    store: Store, prometheus: PrometheusClient, judged: list[tuple[str, str]]
) -> tuple[FakeRuntime, RolloutController, Clock, str]:
    runtime = paid_network(FakeRuntime(images={"localhost/app:1", "localhost/app:2"}))
    clock = Clock()
    controller = RolloutController(
        runtime=runtime,
        store=store,
        services=ServiceController(runtime=runtime, journal=store),
        ready=lambda name: True,
        health=HealthController(runtime, on_transition=lambda *args: None, clock=clock),
        clock=clock,
        prometheus=prometheus,
        on_analysis=lambda svc, judgement: judged.append((svc, judgement)),
    )
    controller.begin(V1, None)
    roll(runtime, controller, clock, V1, seconds=10)
    return runtime, controller, clock, runtime.containers["web"].id


def roll(
    runtime: FakeRuntime,
    controller: RolloutController,
    clock: Clock,
    svc: DesiredService,
    *,
    seconds: int,
) -> None:
    for _ in range(seconds):
        if svc.name not in controller.active:
            return
        clock.now += 1
        c = runtime.containers
        controller.step(svc, c.get("web"), c.get(canary_name("web")), c.get(next_name("web")))


def test_judge_names_the_query_the_value_and_the_bound() -> None:
    """Every value is held to the bounds; none at all is no data, not a pass."""
    check = CanaryAnalysis(prometheus=PROM, query=ERRORS, max=0.5, min=0.0)
    assert Judgement.PASSED == judge(check, [("a", 0.1), ("b", 0.4)]).judgement
    over = judge(check, [("a", 0.1), ('{pod="b"}', 0.75)])
    assert (Judgement.FAILED, 0.75) == (over.judgement, over.value)
    assert '= 0.75 ({pod="b"}), above max 0.5' in over.detail
    under = judge(check, [("", -1.0)])
    assert "below min 0" in under.detail
    assert Judgement.NO_DATA == judge(check, []).judgement


def test_a_canary_with_a_value_out_of_bounds_ends_at_its_next_evaluation(store: Store) -> None:
    """0.1, then 0.9 > 0.5: removed 5 s later (one interval); v1 never touched; quarantined."""
    judged: list[tuple[str, str]] = []
    runtime, controller, clock, v1 = deployed(store, ScriptedPrometheus(0.1, 0.9), judged)
    controller.begin(V2, runtime.containers["web"])
    started = clock.now
    assert canary_name("web") in runtime.containers

    roll(runtime, controller, clock, V2, seconds=60)

    assert ["web"] == list(runtime.containers)
    assert (v1, "running") == (runtime.containers["web"].id, runtime.containers["web"].state)
    (revision,) = [r for r in store.revisions("web") if r.number == 2]
    assert (revision.outcome, revision.quarantined) == ("rolled_back", True)
    assert f"canary: analysis: {ERRORS} = 0.9" in revision.reason
    (event,) = [e for e in store.events(service="web") if e.kind == "canary_analysis_failed"]
    assert (event.data["value"], event.data["prometheus"]) == (0.9, PROM)
    assert [("web", "pass"), ("web", "fail")] == judged
    ended = [e.at for e in store.events(service="web") if e.kind == "rollout_rolled_back"]
    assert ended
    assert clock.now - started <= 2 * 5  # within the interval after the bad value


def test_a_canary_within_bounds_is_promoted_start_first(store: Store) -> None:
    """Every look passes: after the window v2 starts beside v1 (StartFirst), then holds web."""
    judged: list[tuple[str, str]] = []
    prometheus = ScriptedPrometheus(0.0)
    runtime, controller, clock, v1 = deployed(store, prometheus, judged)
    controller.begin(V2, runtime.containers["web"])

    roll(runtime, controller, clock, V2, seconds=35)  # the canary's window
    assert {"web", next_name("web")} == set(runtime.containers)  # promoted beside v1
    roll(runtime, controller, clock, V2, seconds=30)

    assert ["web"] == list(runtime.containers)
    assert "localhost/app:2" == runtime.containers["web"].image
    assert runtime.containers["web"].id != v1
    assert len(prometheus.asked) >= 30 // 5  # every interval, and once more at the end
    assert {j for _, j in judged} == {"pass"}
    assert (2, "succeeded") in [(r.number, r.outcome) for r in store.revisions("web")]


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        ((AnalysisUnavailable("http://127.0.0.1:9090 did not answer: refused"),), "did not answer"),
        ((None,), "returned no data"),
        ((0.0, 0.0, AnalysisUnavailable("HTTP 503")), "HTTP 503"),
    ],
    ids=["prometheus away", "no data", "away from the third look on"],
)
def test_a_canary_without_an_answer_is_not_promoted(
    store: Store, answers: tuple[float | Exception | None, ...], why: str
) -> None:
    """Fail safe: no answer at the end of the window, no promotion; v1 is never touched."""
    runtime, controller, clock, v1 = deployed(store, ScriptedPrometheus(*answers), [])
    controller.begin(V2, runtime.containers["web"])

    roll(runtime, controller, clock, V2, seconds=60)

    assert (["web"], v1) == (list(runtime.containers), runtime.containers["web"].id)
    (revision,) = [r for r in store.revisions("web") if r.number == 2]
    assert revision.outcome == "rolled_back"
    assert why in revision.reason
    assert "not promoted on an answer it did not get" in revision.reason


def test_the_canary_of_a_service_without_host_ports_answers_to_its_name(store: Store) -> None:
    """No host ports: the canary joins the service's networks under its name (real traffic)."""
    runtime, controller, _, _ = deployed(store, ScriptedPrometheus(0.0), [])
    controller.begin(V2, runtime.containers["web"])

    assert "web" in runtime.requests[canary_name("web")].networks["paid"]
    assert () == runtime.requests[canary_name("web")].ports
