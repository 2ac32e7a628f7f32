"""Small constructors for desired and actual values in unit tests."""

from __future__ import annotations

from typing import Any

from paid.controllers.requests import container_request
from paid.runtime.fake import FakeRuntime
from paid.settings import BackoffPolicy, Timings
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService, DesiredState
from paid.state.specs import ServiceDocument

# Gates that pass as soon as the container is ready, and a loop that polls fast.
FAST = Timings(
    requeue=BackoffPolicy(0.01, 0.05),
    dependency_poll=0.01,
    hold_poll=0.01,
    rollout_poll=0.01,
    probe_tick=0.01,
)


def desired_service(name: str, **spec: Any) -> DesiredService:
    spec.setdefault("image", "localhost/app:1")
    doc = ServiceDocument.model_validate(
        {"apiVersion": "paid/v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}
    )
    return DesiredService.of(doc)


def desired(*services: DesiredService) -> DesiredState:
    return DesiredState.of({s.name: s for s in services})


def networks_made(runtime: FakeRuntime, state: DesiredState) -> FakeRuntime:
    """``runtime`` with the networks of ``state`` made, as paid makes them."""
    for network in state.networks.values():
        runtime.add_network(
            network.name,
            {labels.MANAGED: "true", labels.SPEC_HASH: network.spec_hash},
        )
    return runtime


def paid_network(runtime: FakeRuntime) -> FakeRuntime:
    """``runtime`` with paid's default network made (for tests that bypass the full pass)."""
    return networks_made(runtime, desired(desired_service("any")))


def running(
    service: DesiredService, *, state: str = "running", exit_code: int = 0
) -> ActualContainer:
    """The container paid would have made for ``service``, in ``state``."""
    request = container_request(service, revision=1)
    return ActualContainer(
        id=f"id-{service.name}",
        name=service.name,
        image=request.image,
        state=state,
        exit_code=exit_code,
        labels=dict(request.labels),
    )


def unmanaged(name: str, state: str = "running") -> ActualContainer:
    return ActualContainer(id=f"id-{name}", name=name, image="docker.io/x:1", state=state)
