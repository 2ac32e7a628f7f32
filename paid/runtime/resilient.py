"""A ``Runtime`` wrapped in the resilience a daemon needs around Podman.

Each operation is timed and counted, retried with tenacity when the error
is transient (exponential backoff with jitter, a few attempts, a few
seconds at most), and guarded by a pybreaker circuit breaker: after
``fail_max`` consecutive transient failures the breaker opens and calls
fail fast with ``RuntimeUnavailable`` until ``reset_timeout`` has passed;
then one call is let through (half-open) to probe whether Podman is back.

Only transient failures (Podman unreachable, 5xx) count against the
breaker; a rejected request or a missing image is an answer, not an
outage. ``create`` is never retried: if the first attempt reached Podman
but its answer was lost, a retry would fail on the name; the next
reconcile, which reads the actual state afresh, is the safe retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import pybreaker
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from paid.metrics import Metrics
from paid.runtime.base import (
    BuildRequest,
    ContainerRequest,
    ImageUnavailable,
    ObjectFault,
    RequestRejected,
    Runtime,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.settings import BackoffPolicy, Timings
from paid.state.actual import ActualContainer
from paid.state.images import LocalImage
from paid.state.networks import ActualNetwork, NetworkSpec
from paid.state.podman_host import PodmanHost

T = TypeVar("T")

_BREAKER_STATE_NAMES = {"closed": "closed", "open": "open", "half-open": "half_open"}


class CircuitOpen(RuntimeUnavailable):
    """The breaker is open: Podman failed repeatedly; not even trying."""


class _BreakerMetrics(pybreaker.CircuitBreakerListener):
    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    def state_change(self, cb: pybreaker.CircuitBreaker, old: object, new: object) -> None:
        if self._metrics is not None:
            self._metrics.set_breaker(
                _BREAKER_STATE_NAMES.get(str(getattr(new, "name", new)), "closed")
            )


class ResilientRuntime:
    """Retries, a circuit breaker and metrics around another ``Runtime``."""

    def __init__(
        self,
        inner: Runtime,
        *,
        metrics: Metrics | None = None,
        attempts: int = 3,
        max_delay: float = 5.0,
        retry: BackoffPolicy | None = None,
        fail_max: int = 5,
        reset_timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self._metrics = metrics
        self._attempts = attempts
        self._max_delay = max_delay
        policy = retry or Timings().podman_retry  # the one back-off rule, waited by tenacity
        self._wait = wait_exponential_jitter(
            multiplier=policy.base, max=policy.maximum, jitter=policy.base
        )
        self._sleep = sleep
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            # A registry that does not answer is retried, but it is not Podman
            # failing: it never opens the breaker on everything else.
            exclude=[
                lambda err: (
                    not getattr(err, "transient", False) or isinstance(err, ImageUnavailable)
                )
            ],
            listeners=[_BreakerMetrics(metrics)],
            name="podman",
        )

    @property
    def breaker_state(self) -> str:
        return _BREAKER_STATE_NAMES.get(str(self.breaker.current_state), "closed")

    def _call(self, operation: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        start = time.perf_counter()
        result = "ok"
        try:
            if not retry:
                return self._guarded(fn)
            retrying = Retrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(self._attempts) | stop_after_delay(self._max_delay),
                wait=self._wait,
                sleep=self._sleep,
                before_sleep=lambda state: self._count_retry(operation, state),
                reraise=True,
            )
            outcome: T = retrying(self._guarded, fn)
            return outcome
        except RequestRejected:
            result = "rejected"
            raise
        except ObjectFault:
            result = "object"
            raise
        except RuntimeUnavailable:
            result = "unavailable"
            raise
        except RuntimeFailure:
            result = "error"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.runtime_requests.labels(operation, result).inc()
                self._metrics.runtime_latency.labels(operation).observe(time.perf_counter() - start)
                self._metrics.podman_up.set(0 if result == "unavailable" else 1)

    def _guarded(self, fn: Callable[[], T]) -> T:
        # breaker.call() holds the breaker's lock for the whole call, which
        # would serialise every Podman request behind a slow one (a 30 s
        # stop). calling() takes the lock only to check and to record.
        try:
            with self.breaker.calling():
                return fn()
        except pybreaker.CircuitBreakerError as err:
            raise CircuitOpen(
                f"circuit breaker open after repeated Podman failures ({err})"
            ) from err

    def _count_retry(self, operation: str, state: RetryCallState) -> None:
        if self._metrics is not None:
            self._metrics.runtime_retries.labels(operation).inc()

    # -- Runtime ---------------------------------------------------------

    def list_containers(self) -> list[ActualContainer]:
        return self._call("list", self.inner.list_containers)

    def version(self) -> str:
        return self._call("version", self.inner.version)

    def host(self) -> PodmanHost:
        return self._call("info", self.inner.host)

    def image_present(self, image: str) -> bool:
        return self._call("image_present", lambda: self.inner.image_present(image))

    def pull_image(self, image: str, *, always: bool = False) -> None:
        self._call("pull", lambda: self.inner.pull_image(image, always=always))

    def build_image(self, request: BuildRequest) -> list[str]:
        return self._call("build", lambda: self.inner.build_image(request), retry=False)

    def inspect_image(self, image: str) -> LocalImage | None:
        return self._call("inspect_image", lambda: self.inner.inspect_image(image))

    def list_images(self) -> list[LocalImage]:
        return self._call("list_images", self.inner.list_images)

    def remove_image(self, image_id: str) -> None:
        self._call("remove_image", lambda: self.inner.remove_image(image_id))

    def create_container(self, request: ContainerRequest) -> str:
        return self._call("create", lambda: self.inner.create_container(request), retry=False)

    def inspect_container(self, name: str) -> ActualContainer | None:
        return self._call("inspect", lambda: self.inner.inspect_container(name))

    def start_container(self, name: str) -> None:
        self._call("start", lambda: self.inner.start_container(name))

    def unpause_container(self, name: str) -> None:
        self._call("unpause", lambda: self.inner.unpause_container(name))

    def stop_container(self, name: str, *, timeout: int) -> None:
        self._call("stop", lambda: self.inner.stop_container(name, timeout=timeout))

    def remove_container(self, name: str) -> None:
        self._call("remove", lambda: self.inner.remove_container(name))

    def rename_container(self, name: str, new_name: str) -> None:
        self._call("rename", lambda: self.inner.rename_container(name, new_name))

    def container_address(self, name: str) -> str | None:
        return self._call("inspect", lambda: self.inner.container_address(name))

    def exec_in(self, name: str, command: Sequence[str], *, timeout: float) -> int:
        # A probe's own timeout is the bound: no retries, which would stretch it.
        return self._call(
            "exec", lambda: self.inner.exec_in(name, command, timeout=timeout), retry=False
        )

    def kill_container(self, name: str, *, signal: str = "SIGKILL") -> None:
        self._call("kill", lambda: self.inner.kill_container(name, signal=signal), retry=False)

    def pause_container(self, name: str) -> None:
        self._call("pause", lambda: self.inner.pause_container(name))

    def volume_mountpoint(self, name: str) -> str:
        return self._call("volume", lambda: self.inner.volume_mountpoint(name))

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        self._call("volume", lambda: self.inner.create_volume(name, labels=labels), retry=False)

    def volume_users(self, name: str) -> list[ActualContainer]:
        return self._call("volume", lambda: self.inner.volume_users(name))

    def volume_labels(self, name: str) -> dict[str, str] | None:
        return self._call("volume", lambda: self.inner.volume_labels(name))

    def list_secrets(self) -> dict[str, float]:
        return self._call("list_secrets", self.inner.list_secrets)

    def create_secret(self, name: str, value: bytes) -> None:
        self._call("create_secret", lambda: self.inner.create_secret(name, value))

    def remove_secret(self, name: str) -> None:
        self._call("remove_secret", lambda: self.inner.remove_secret(name))

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        return self._call("logs", lambda: self.inner.logs_tail(name, lines=lines))

    def list_networks(self) -> list[ActualNetwork]:
        return self._call("list_networks", self.inner.list_networks)

    def create_network(self, name: str, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        # Not retried, as a container create: a lost answer would fail on the name.
        return self._call(
            "create_network", lambda: self.inner.create_network(name, spec, labels), retry=False
        )

    def remove_network(self, name: str) -> None:
        self._call("remove_network", lambda: self.inner.remove_network(name))

    def connect_network(
        self,
        network: str,
        container: str,
        *,
        aliases: Sequence[str],
        addresses: Sequence[str] = (),
    ) -> None:
        self._call(
            "connect_network",
            lambda: self.inner.connect_network(
                network, container, aliases=aliases, addresses=addresses
            ),
        )

    def disconnect_network(self, network: str, container: str) -> None:
        self._call("disconnect_network", lambda: self.inner.disconnect_network(network, container))


def _not_podman_failing(err: BaseException) -> bool:
    """Errors the breaker does not count: answers, and a registry that does not answer."""
    return not getattr(err, "transient", False) or isinstance(err, ImageUnavailable)


def _retryable(err: BaseException) -> bool:
    return isinstance(err, RuntimeFailure) and err.transient and not isinstance(err, CircuitOpen)
