"""Pins and quarantines on a real SQLite store: what paid enforces instead of the desired spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from paid.cli import main
from paid.controllers import wiring
from paid.controllers.effective import effective_state
from paid.controllers.reconciling import FULL
from paid.controllers.wiring import Mode
from paid.controllers.worlds import Wants
from paid.runtime.fake import FakeRuntime
from paid.storage.documents import to_document
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.harness import service_doc, write_services
from tests.unit.builders import desired, desired_service

V1 = desired_service("web", image="localhost/app:1")
V2 = desired_service("web", image="localhost/app:2")
V3 = desired_service("web", image="localhost/app:3")


def _record(store: Store, svc: object, outcome: str, *, quarantine: bool = False) -> int:
    state = desired(svc)  # type: ignore[arg-type]
    doc = to_document(state.services["web"])  # type: ignore[index]
    s = state.services["web"]  # type: ignore[index]
    number = store.revision_for(
        service="web", spec_hash=s.spec_hash, spec=s.shape, image=s.spec.image, document=doc
    )
    store.set_outcome("web", number, outcome, "test", quarantine=quarantine)
    return number


def test_quarantined_desired_revision_runs_the_last_good_one(tmp_path: Path) -> None:
    """v2 was rolled back: paid keeps enforcing v1 and says why."""
    with Store.open(tmp_path) as store:
        _record(store, V1, "succeeded")
        _record(store, V2, "rolled_back", quarantine=True)

        effective = effective_state(desired(V2), store)

    assert V1.spec_hash == effective.state.services["web"].spec_hash  # type: ignore[index]
    assert "revision 2 is quarantined" in effective.notes["web"]


def test_a_new_desired_spec_is_not_held_back_by_an_old_quarantine(tmp_path: Path) -> None:
    """v3 was never tried: it is enforced as written."""
    with Store.open(tmp_path) as store:
        _record(store, V1, "succeeded")
        _record(store, V2, "rolled_back", quarantine=True)

        effective = effective_state(desired(V3), store)

    assert (V3.spec_hash, {}) == (effective.state.services["web"].spec_hash, effective.notes)  # type: ignore[index]


def test_pin_holds_until_the_desired_spec_changes(tmp_path: Path) -> None:
    """`paid rollback` pins to v1 while v2 is desired; desiring v3 ends the pin."""
    with Store.open(tmp_path) as store:
        _record(store, V1, "superseded")
        _record(store, V2, "succeeded")
        store.pin("web", revision=1, desired_hash=V2.spec_hash, reason="test")

        pinned = effective_state(desired(V2), store)
        moved_on = effective_state(desired(V3), store)
        pins_after_reads = store.pins()
        reconciler = wiring.build(
            FakeRuntime(), store, Wants(desired=lambda: desired(V3)), mode=Mode.PLAN
        )
        world = reconciler.observe()
        assert world is not None
        reconciler.reconcile(FULL, world)
        pins_after_reconcile = store.pins()
        reconciler.close()

    assert V1.spec_hash == pinned.state.services["web"].spec_hash  # type: ignore[index]
    assert V3.spec_hash == moved_on.state.services["web"].spec_hash  # type: ignore[index]
    assert ("web",) == moved_on.expired_pins
    assert ["web"] == list(pins_after_reads)  # reading is pure: the pin is still there
    assert {} == pins_after_reconcile  # a reconcile ends it


def test_status_never_writes_the_store(tmp_path: Path) -> None:
    """`paid status` is a read: an expired pin it sees stays in the store."""
    directory = tmp_path / "desired"
    write_services(directory, service_doc("web", image="localhost/app:3", command=None, init=False))
    with Store.open(tmp_path / "state") as store:
        _record(store, V1, "superseded")
        store.pin("web", revision=1, desired_hash=V2.spec_hash, reason="test")
        version = store.data_version()

    main(
        [
            "status",
            str(directory),
            "--state-dir",
            str(tmp_path / "state"),
            "--podman-url",
            "unix:///nonexistent.sock",
            "--listen",
            "127.0.0.1:9",
        ]
    )

    with Store.open(tmp_path / "state") as store:
        assert ["web"] == list(store.pins())
        assert version == store.data_version()


def test_rollout_retry_releases_the_quarantine(tmp_path: Path, capsys: object) -> None:
    """The CLI clears the quarantine of the desired revision; paid then enforces it again."""
    directory = tmp_path / "desired"
    write_services(directory, service_doc("web", image="localhost/app:2", command=None, init=False))
    loaded = load_directory(directory).desired
    assert loaded is not None
    with Store.open(tmp_path / "state") as store:
        _record(store, V1, "succeeded")
        doc = to_document(loaded.services["web"])  # type: ignore[index]
        s = loaded.services["web"]  # type: ignore[index]
        n = store.revision_for(
            service="web", spec_hash=s.spec_hash, spec=s.shape, image=s.spec.image, document=doc
        )
        store.set_outcome("web", n, "rolled_back", "never ready", quarantine=True)

    code = main(["rollout", "retry", "web", str(directory), "--state-dir", str(tmp_path / "state")])

    with Store.open(tmp_path / "state") as store:
        effective = effective_state(loaded, store)
        revision = store.revision("web", n)
    assert 0 == code
    assert revision is not None
    assert (False, "pending") == (revision.quarantined, revision.outcome)
    assert s.spec_hash == effective.state.services["web"].spec_hash  # type: ignore[index]


def test_rollback_and_retry_speak_json(tmp_path: Path, capsys: Any) -> None:
    """`--output json` on rollback and rollout retry: one document each, with the revision."""
    directory = tmp_path / "desired"
    write_services(directory, service_doc("web", image="localhost/app:2", command=None, init=False))
    loaded = load_directory(directory).desired
    assert loaded is not None
    with Store.open(tmp_path / "state") as store:
        _record(store, V1, "succeeded")
    state = ["--state-dir", str(tmp_path / "state"), "--output", "json"]

    capsys.readouterr()
    assert 0 == main(["rollback", "web", str(directory), "--pin-only", *state])
    rolled = json.loads(capsys.readouterr().out)
    assert 0 == main(["rollout", "retry", "web", str(directory), *state])
    retried = json.loads(capsys.readouterr().out)

    assert {"service": "web", "pinnedRevision": 1, "from": None} == rolled
    assert (False, "web") == (retried["released"], retried["service"])
