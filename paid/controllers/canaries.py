"""A canary: the new revision beside the stable one, judged for its duration, then removed.

The rollout controller decides when a canary starts and reads its gate;
this module makes it, watches it, judges its analysis and takes it away.
Its container is ``<name>-canary``. A service that publishes no host
ports gets its canary under the service's DNS names, beside the stable
copy, so it takes a real share of the requests; one that publishes ports
gets it on the canary's own ports. The stable copy is never touched, so a
failed canary needs no rollback.

**Analysis.** Each ``canary.analysis`` query is evaluated every
``intervalSeconds`` while the canary runs: one value out of bounds ends it
at once. At the end of the window every query is asked once more and must
pass: a Prometheus that does not answer, or a query with no data, keeps
the canary from promotion (it fails safe, and says so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import structlog

from paid.controllers.health import HealthController
from paid.controllers.services import ServiceController
from paid.controllers.verdicts import ActiveRollout, Verdicts
from paid.runtime.base import RuntimeFailure
from paid.runtime.prometheus import AnalysisUnavailable, PrometheusClient
from paid.state.actual import ActualContainer
from paid.state.analysis import Judgement, Verdict, judge, unavailable
from paid.state.desired import DesiredService
from paid.state.labels import canary_name
from paid.storage.store import Store

log = structlog.get_logger("paid.rollouts")


class Canaries:
    def __init__(
        self,
        store: Store,
        services: ServiceController,
        health: HealthController | None,
        verdicts: Verdicts,
        *,
        prometheus: PrometheusClient | None = None,
        on_analysis: Callable[[str, str], None] = lambda service, judgement: None,
    ) -> None:
        self.store = store
        self.services = services
        self.health = health
        self.verdicts = verdicts
        self.prometheus = prometheus or PrometheusClient()
        self.on_analysis = on_analysis  # (service, judgement): for the metrics

    def start(self, service: DesiredService, revision: int) -> str | None:
        """Create, start and watch the canary; why it could not start, or None."""
        name = service.name
        self.store.record(
            "canary_started", f"{name}: revision {revision} as {canary_name(name)}", service=name
        )
        try:
            container_id = self.services.create(
                self.services.request_for(service, revision=revision, canary=True), service.spec
            )
            self.services.start(canary_name(name))
        except RuntimeFailure as err:
            return f"canary could not start: {err}"
        if self.health is not None:
            self.health.watch(
                canary_name(name),
                container_id=container_id,
                name=canary_name(name),
                spec=service.spec,
            )
        return None

    def end(self, service: DesiredService, active: ActiveRollout, failed: str | None) -> None:
        """Remove the canary; a failed one finishes the rollout (the stable copy untouched)."""
        name = service.name
        if self.health is not None:
            self.health.unwatch(canary_name(name))
        with contextlib.suppress(RuntimeFailure):
            grace = service.spec.termination_grace_period_seconds
            self.services.retire(canary_name(name), service=name, timeout=grace)
        if failed is not None:
            self.verdicts.finish(
                name,
                active.gate.revision,
                active.previous_revision,
                failed=f"canary: {failed}",
                restore=None,
            )
            return
        self.store.record(
            "canary_promoted",
            f"{name}: canary of revision {active.gate.revision} passed",
            service=name,
        )
        log.info("canary_promoted", service=name, revision=active.gate.revision)

    def analyse(self, service: DesiredService, *, final: bool) -> str | None:
        """Ask each analysis query once: why the canary fails, or None.

        ``final``: the window has ended and promotion waits on this answer,
        so only a pass passes.
        """
        name = service.name
        settings = service.spec.rollout.canary
        for check in settings.analysis if settings else ():
            try:
                found = self.prometheus.query(check.prometheus, check.query)
                verdict = judge(check, [(s.series, s.value) for s in found])
            except AnalysisUnavailable as err:
                verdict = unavailable(check, str(err))
            self.on_analysis(name, str(verdict.judgement))
            if verdict.judgement is Judgement.PASSED:
                continue
            if verdict.judgement is Judgement.FAILED or final:
                return self._analysis_failed(service, check.prometheus, verdict)
            log.warning("canary_analysis_unjudged", service=name, detail=verdict.detail)
        return None

    def _analysis_failed(self, service: DesiredService, server: str, verdict: Verdict) -> str:
        why = f"analysis: {verdict.detail}"
        if verdict.judgement is not Judgement.FAILED:
            why += "; not promoted on an answer it did not get"
        self.store.record(
            "canary_analysis_failed",
            f"{service.name}: {why}",
            service=service.name,
            prometheus=server,
            judgement=str(verdict.judgement),
            value=verdict.value,
        )
        return why

    def clean(self, service: DesiredService, canary: ActualContainer) -> None:
        """A canary nobody is judging (paid restarted): abort it; the stable copy is untouched."""
        log.warning("canary_abandoned", service=service.name)
        grace = service.spec.termination_grace_period_seconds
        self.services.retire(canary.id, service=service.name, timeout=grace)
