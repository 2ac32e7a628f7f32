"""Every Prometheus metric paid exports, defined in this one place.

Labels come from small fixed sets (action kinds, outcomes, runtime
operations, breaker states), never from container IDs or free text, and
every label combination is initialised at start so that a rate() over a
counter that has not moved yet is 0, not absent.

Metrics live on their own registry (not prometheus_client's global one)
so that each daemon, and each test, has a clean set.
"""

from __future__ import annotations

import platform
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from paid import __version__

# Fixed label values. Kept here, not imported from the layers that use
# them, so this module stays a leaf everyone may import.
ACTION_KINDS: Final = ("create", "recreate", "start", "restart", "remove", "conflict", "stop")
ACTION_RESULTS: Final = ("done", "failed", "skipped", "conflict", "withheld")
PASS_RESULTS: Final = ("success", "failure")
PASS_SCOPES: Final = ("full", "service")
RUNTIME_OPERATIONS: Final = (
    "list",
    "image_present",
    "pull",
    "create",
    "start",
    "unpause",
    "stop",
    "remove",
    "events",
    "version",
    "rename",
    "inspect",
    "exec",
    "logs",
    "info",
    "list_secrets",
    "create_secret",
    "remove_secret",
    "pause",
    "kill",
    "volume",
)
# object: Podman answered about one container's broken state (never counted by the breaker)
RUNTIME_RESULTS: Final = ("ok", "error", "unavailable", "rejected", "object")
BREAKER_STATES: Final = ("closed", "open", "half_open")
TRIGGERS: Final = (
    "resync",
    "podman_event",
    "process_exit",
    "desired_state_change",
    "signal",
    "requeue",
    "startup",
    "probe",
    "image_update",
)
PROBE_KINDS: Final = ("startup", "liveness", "readiness")
PREFLIGHT_CHECKS: Final = (  # as paid.controllers.preflight.CHECKS (a test holds them equal)
    "podman", "state", "disk", "image", "registry", "port", "host_path", "volume", "secret",
    "backup_dir",
)  # fmt: skip
ROLLOUT_RESULTS: Final = ("succeeded", "failed", "rolled_back")

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The daemon's metrics, bound to one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Info("paid_build", "Version of paid and of its Python", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})

        self.passes = Counter(
            "paid_reconcile_passes_total",
            "Reconcile passes, by scope (full resync or one service) and result.",
            ["scope", "result"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "paid_reconcile_duration_seconds",
            "Duration of reconcile passes, by scope and result.",
            ["scope", "result"],
            buckets=_FAST,
            registry=r,
        )
        self.triggers = Counter(
            "paid_reconcile_triggers_total",
            "What asked for a reconcile (before coalescing).",
            ["trigger"],
            registry=r,
        )
        self.actions = Counter(
            "paid_actions_total",
            "Actions taken on containers, by kind and result.",
            ["kind", "result"],
            registry=r,
        )
        self.last_pass_success = Gauge(
            "paid_last_successful_pass_timestamp_seconds",
            "Unix time of the last full reconcile pass that succeeded.",
            registry=r,
        )
        self.services_desired = Gauge(
            "paid_services_desired", "Services in the enforced desired state.", registry=r
        )
        self.services_running = Gauge(
            "paid_services_running", "Desired services whose container is running.", registry=r
        )
        self.services_converged = Gauge(
            "paid_services_converged",
            "Desired services running the desired revision.",
            registry=r,
        )
        self.service_up = Gauge(
            "paid_service_up",
            "1 when the service's container runs the desired revision, else 0.",
            ["service"],
            registry=r,
        )
        self.desired_valid = Gauge(
            "paid_desired_state_valid",
            "1 when the desired-state directory validates; 0 while the last good one is enforced.",
            registry=r,
        )
        self.desired_errors = Gauge(
            "paid_desired_state_errors",
            "Validation errors in the desired-state directory.",
            registry=r,
        )
        self.desired_load_failures = Counter(
            "paid_desired_state_load_failures_total",
            "Loads of the desired-state directory that failed validation.",
            registry=r,
        )
        self.desired_last_load = Gauge(
            "paid_desired_state_last_load_success_timestamp_seconds",
            "Unix time of the last successful load of the desired-state directory.",
            registry=r,
        )
        self.runtime_requests = Counter(
            "paid_podman_requests_total",
            "Podman API operations, by operation and result.",
            ["operation", "result"],
            registry=r,
        )
        self.runtime_latency = Histogram(
            "paid_podman_request_duration_seconds",
            "Latency of Podman API operations (retries included).",
            ["operation"],
            buckets=_FAST,
            registry=r,
        )
        self.runtime_retries = Counter(
            "paid_podman_retries_total",
            "Retries of Podman operations after a transient error.",
            ["operation"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "paid_circuit_breaker_state",
            "1 for the current state of the breaker around Podman.",
            ["state"],
            registry=r,
        )
        self.podman_up = Gauge(
            "paid_podman_up", "1 when the last Podman operation reached Podman.", registry=r
        )
        self.queue_depth = Gauge(
            "paid_reconcile_queue_depth", "Reconcile requests waiting.", registry=r
        )
        self.ready = Gauge("paid_ready", "1 when /readyz answers 200.", registry=r)
        self.preflight = Gauge(
            "paid_preflight_checks",
            "Results of the pre-flight checks run at start, by check and status.",
            ["check", "status"],
            registry=r,
        )
        self.feature_flag = Gauge(
            "paid_feature_flag", "1 when the feature flag is on.", ["flag"], registry=r
        )
        self.service_ready = Gauge(
            "paid_service_ready",
            "1 when the service's container passes its readiness (and startup) probes.",
            ["service"],
            registry=r,
        )
        self.crash_loop = Gauge(
            "paid_service_crash_loop_backoff",
            "1 while the service waits out a restart back-off (CrashLoopBackOff).",
            ["service"],
            registry=r,
        )
        self.restarts = Counter(
            "paid_service_restarts_total",
            "Containers replaced by a fresh one of the same revision, by reason.",
            ["service", "reason"],
            registry=r,
        )
        self.rollouts = Counter(
            "paid_rollouts_total", "Finished rollouts, by result.", ["result"], registry=r
        )
        self.canary_analysis = Counter(
            "paid_canary_analysis_total",
            "Canary analysis queries evaluated, by service and judgement: pass, fail (a "
            "value out of bounds: the canary ends), no_data, unavailable (Prometheus did "
            "not answer).",
            ["service", "judgement"],
            registry=r,
        )
        self.image_updates = Counter(
            "paid_image_updates_total",
            "Image updates (imageUpdate) by service and result: updated, rolled_back, "
            "failed (its rollout did not finish; tried again), check_failed (the registry "
            "did not answer).",
            ["service", "result"],
            registry=r,
        )
        self.rollbacks = Counter(
            "paid_rollbacks_total", "Automatic rollbacks, by service.", ["service"], registry=r
        )
        self.last_rollout = Gauge(
            "paid_last_successful_rollout_timestamp_seconds",
            "Unix time of the service's last successful rollout.",
            ["service"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "paid_probe_duration_seconds",
            "Duration of probe attempts, by kind.",
            ["kind"],
            buckets=_FAST,
            registry=r,
        )
        self.probe_failures = Counter(
            "paid_probe_failures_total",
            "Probes that crossed their failure threshold, by kind.",
            ["kind"],
            registry=r,
        )
        self.backup_last_success = Gauge(
            "paid_backup_last_success_timestamp_seconds",
            "Unix time of the service's last successful backup.",
            ["service"],
            registry=r,
        )
        self.backup_duration = Gauge(
            "paid_backup_duration_seconds",
            "How long the service's last successful backup took.",
            ["service"],
            registry=r,
        )
        self.notifications = Counter(
            "paid_notifications_total",
            "Notification sends, by target (notifier/file) and result: delivered, failed (to "
            "be retried), dropped (undeliverable for a day, or its target removed).",
            ["target", "result"],
            registry=r,
        )
        self.notifications_waiting = Gauge(
            "paid_notifications_waiting",
            "Notifications queued and not yet delivered, by target.",
            ["target"],
            registry=r,
        )
        self.backup_failures = Counter(
            "paid_backup_failures_total",
            "Backups that failed, by service.",
            ["service"],
            registry=r,
        )
        self.backup_interval = Gauge(
            "paid_backup_interval_seconds",
            "Time between two scheduled backups of the service (from its cron schedule).",
            ["service"],
            registry=r,
        )
        self.slo_objective = Gauge(
            "paid_slo_objective_ratio",
            "The service's availability objective (0.999 for 99.9 %).",
            ["service"],
            registry=r,
        )
        self.slo_availability = Gauge(
            "paid_slo_availability_ratio",
            "Availability over the SLO window: ready time over known time.",
            ["service"],
            registry=r,
        )
        self.slo_budget_remaining = Gauge(
            "paid_slo_error_budget_remaining_ratio",
            "Share of the window's error budget not yet spent (negative: overspent).",
            ["service"],
            registry=r,
        )
        self.git_pulls = Counter(
            "paid_git_pulls_total",
            "Pulls of the desired-state checkout, by result (updated, unchanged, failed).",
            ["result"],
            registry=r,
        )
        self.git_last_pull = Gauge(
            "paid_git_last_successful_pull_timestamp_seconds",
            "Unix time of the last pull that reached the remote (and fast-forwarded, if needed).",
            registry=r,
        )
        self._initialise()

    def _initialise(self) -> None:
        for scope in PASS_SCOPES:
            for result in PASS_RESULTS:
                self.passes.labels(scope, result)
                self.pass_duration.labels(scope, result)
        for trigger in TRIGGERS:
            self.triggers.labels(trigger)
        for kind in ACTION_KINDS:
            for outcome in ACTION_RESULTS:
                self.actions.labels(kind, outcome)
        for op in RUNTIME_OPERATIONS:
            self.runtime_latency.labels(op)
            self.runtime_retries.labels(op)
            for result in RUNTIME_RESULTS:
                self.runtime_requests.labels(op, result)
        for check in PREFLIGHT_CHECKS:
            for status in ("OK", "WARN", "FAIL"):
                self.preflight.labels(check, status)
        for kind in PROBE_KINDS:
            self.probe_duration.labels(kind)
            self.probe_failures.labels(kind)
        for result in ROLLOUT_RESULTS:
            self.rollouts.labels(result)
        for result in ("updated", "unchanged", "failed"):
            self.git_pulls.labels(result)
        self.set_breaker("closed")
        self.desired_valid.set(0)
        self.podman_up.set(0)
        self.ready.set(0)

    def set_breaker(self, state: str) -> None:
        for name in BREAKER_STATES:
            self.breaker_state.labels(name).set(1 if name == state else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
