"""The rules as a table: one observation (world and facts) in, one step out.

Every step kind, and the precedence between them, from values alone: no
store, runtime or clock is involved (``paid.controllers.rules`` imports
none, which import-linter checks).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from paid.controllers.rules import Facts, step
from paid.controllers.worlds import StepKind, World
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredService
from paid.state.plans import ActionKind
from paid.storage.store import Hold
from tests.unit.builders import desired, desired_service, running, unmanaged

DB = desired_service("db")
WEB = desired_service("web", dependsOn=["db"])
WEB_V2 = desired_service("web", dependsOn=["db"], env={"V": "2"})
WEB_PROBED = desired_service(
    "web", dependsOn=["db"], readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 5}
)


def _world(
    *containers: ActualContainer, services: tuple[DesiredService, ...] = (DB, WEB), **kw: Any
) -> World:
    return World.of(desired(*services), list(containers), **kw)


def _aside(service: DesiredService) -> ActualContainer:
    old = running(service, state="exited")
    return replace(old, id="id-aside", name=labels.aside_name(service.name))


def _canary(service: DesiredService) -> ActualContainer:
    return replace(running(service), id="id-canary", name=labels.canary_name(service.name))


def _beside(service: DesiredService) -> ActualContainer:
    return replace(running(service), id="id-next", name=labels.next_name(service.name))


READY = Facts(ready=frozenset({"db", "web"}), proven=frozenset({"db", "web"}))
HOLD = Hold("web", "backup", pid=1, at=0.0)

# (id, world, facts, expected kind, expected action kind or None)
TABLE: list[tuple[str, World, Facts, StepKind, ActionKind | None]] = [
    ("idle", _world(running(DB), running(WEB)), READY, StepKind.IDLE, None),
    ("create through the gate", _world(running(DB)), Facts(ready=frozenset({"db"})),
     StepKind.ROLL_OUT, ActionKind.CREATE),
    ("a proven revision is created at once", _world(running(DB)),
     Facts(ready=frozenset({"db"}), proven=frozenset({"web"})),
     StepKind.EXECUTE, ActionKind.CREATE),
    ("a spec change rolls out", _world(running(DB), running(WEB), services=(DB, WEB_V2)), READY,
     StepKind.ROLL_OUT, ActionKind.RECREATE),
    ("an exited container is restarted", _world(running(DB), running(WEB, state="exited")),
     READY, StepKind.EXECUTE, ActionKind.RESTART),
    ("a stranger holds the name", _world(running(DB), unmanaged("web")), READY,
     StepKind.EXECUTE, ActionKind.CONFLICT),
    ("a dependency not ready: wait", _world(running(DB)), Facts(),
     StepKind.WAIT, ActionKind.CREATE),
    ("a failed first deploy backs off",
     _world(running(DB)), Facts(ready=frozenset({"db"}), first_deploy_wait={"web": 7.0}),
     StepKind.BACK_OFF, ActionKind.CREATE),
    ("an unhealthy container restarts", _world(running(DB), running(WEB)),
     replace(READY, unhealthy={"web": "liveness failed"}), StepKind.EXECUTE, ActionKind.RESTART),
    ("a crash loop backs off", _world(running(DB), running(WEB)),
     replace(READY, unhealthy={"web": "liveness failed"}, crash_wait={"web": 4.0}),
     StepKind.BACK_OFF, ActionKind.RESTART),
    ("quarantined with nothing to go back to",
     _world(running(DB), running(WEB), services=(DB, WEB_V2), frozen=frozenset({"web"}),
            notes={"web": "revision 2 is quarantined"}),
     READY, StepKind.QUARANTINED, ActionKind.RECREATE),
    ("a rollout under way", _world(running(DB), running(WEB)),
     replace(READY, rolling_out={"web": "Baking"}), StepKind.ROLLOUT, None),
    ("a canary nobody judges", _world(running(DB), running(WEB), _canary(WEB)), READY,
     StepKind.CANARY_CLEANUP, ActionKind.REMOVE),
    ("an interrupted rollout resumes", _world(running(DB), running(WEB), _aside(WEB)), READY,
     StepKind.RESUME, ActionKind.RECREATE),
    ("a StartFirst copy nobody judges", _world(running(DB), running(WEB), _beside(WEB)), READY,
     StepKind.RESUME_BESIDE, ActionKind.RECREATE),
    ("held by a backup", _world(running(DB), services=(DB, WEB), holds={"web": HOLD}), READY,
     StepKind.HELD, ActionKind.CREATE),
    ("no longer desired", _world(running(DB), running(WEB), services=(DB,)), READY,
     StepKind.ORPHAN, None),
    ("steering fields changed: recorded, nothing replaced",
     _world(running(DB), running(WEB), services=(DB, WEB_PROBED)),
     replace(READY, recorded={"web": {"image": WEB.spec.image}}), StepKind.EXECUTE,
     ActionKind.UPDATE),
    # Precedence: the first rule that applies wins.
    ("a hold beats a rollout", _world(running(DB), running(WEB), holds={"web": HOLD}),
     replace(READY, rolling_out={"web": "Baking"}), StepKind.HELD, None),
    ("a rollout beats a canary left behind", _world(running(DB), running(WEB), _canary(WEB)),
     replace(READY, rolling_out={"web": "Baking"}), StepKind.ROLLOUT, None),
    ("a canary left behind beats a StartFirst copy",
     _world(running(DB), running(WEB), _canary(WEB), _beside(WEB)), READY,
     StepKind.CANARY_CLEANUP, ActionKind.REMOVE),
    ("a StartFirst copy beats a container kept aside",
     _world(running(DB), _aside(WEB), _beside(WEB)), READY,
     StepKind.RESUME_BESIDE, ActionKind.RECREATE),
    ("a rollout beats a StartFirst copy", _world(running(DB), running(WEB), _beside(WEB)),
     replace(READY, rolling_out={"web": "Baking"}), StepKind.ROLLOUT, None),
    ("a quarantine beats waiting",
     _world(running(WEB), services=(DB, WEB_V2), frozen=frozenset({"web"})), Facts(),
     StepKind.QUARANTINED, ActionKind.RECREATE),
    ("waiting beats a first-deploy back-off", _world(running(DB)),
     Facts(first_deploy_wait={"web": 7.0}), StepKind.WAIT, ActionKind.CREATE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("world", "facts", "kind", "action"),
    [pytest.param(w, f, k, a, id=i) for i, w, f, k, a in TABLE],
)
def test_one_observation_one_step(
    world: World, facts: Facts, kind: StepKind, action: ActionKind | None
) -> None:
    """The step kind and the change it carries, for each row of the table."""
    taken = step("web", world, facts)

    assert kind == taken.kind, taken.reason
    assert action == (taken.action.kind if taken.action else None)


def test_every_step_kind_is_in_the_table() -> None:
    """The table covers every kind there is."""
    assert set(StepKind) == {row[3] for row in TABLE}


def test_the_same_observation_gives_the_same_step() -> None:
    """Pure: asking twice, or in another order, changes nothing."""
    world = _world(running(DB))
    facts = Facts(ready=frozenset({"db"}), first_deploy_wait={"web": 3.0})

    assert step("web", world, facts) == step("web", world, facts)
