"""Notifications from the journal to a real webhook on loopback, through Apprise.

The worker is driven a turn at a time with a clock the test moves, so
retries and grouping are shown without waiting. The store is a real
SQLite file; the target is a real HTTP server that Apprise's ``json://``
plugin posts to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from paid.daemon.notifications import Notifications
from paid.metrics import Metrics
from paid.runtime.notify import AppriseSender
from paid.settings import BackoffPolicy
from paid.state.desired import DesiredState
from paid.storage.loading import LoadResult, load_directory
from paid.storage.outbox import Outbox
from paid.storage.secret_files import SecretSource
from paid.storage.store import Store
from tests.receivers import Receiver, receiving


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def _desired(tmp_path: Path, url: str, **spec: Any) -> tuple[DesiredState, SecretSource]:
    """A desired state with service web (tier: web), api (tier: api) and notifier ops."""
    repo = tmp_path / "desired-state"
    repo.mkdir(exist_ok=True)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "ops-webhook").write_text(url + "\n")
    docs = [
        {
            "apiVersion": "paid/v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {"tier": name}},
            "spec": {"image": "localhost/x:1"},
        }
        for name in ("web", "api")
    ]
    docs.append(
        {
            "apiVersion": "paid/v1",
            "kind": "Notifier",
            "metadata": {"name": "ops"},
            "spec": {"targets": [{"urlFile": "ops-webhook"}], **spec},
        }
    )
    (repo / "all.yaml").write_text(yaml.safe_dump_all(docs))
    source = SecretSource.open(secrets_dir, state_dir=tmp_path / "state", repo=repo)
    result: LoadResult = load_directory(repo, secrets=source)
    assert result.desired is not None, result.errors
    return result.desired, source


def _worker(
    store: Store, desired: DesiredState, secrets: SecretSource, clock: Clock, **kw: Any
) -> Notifications:
    return Notifications(
        store,
        desired=lambda: desired,
        secrets=secrets,
        metrics=kw.pop("metrics", Metrics()),
        sender=AppriseSender(deadline=kw.pop("deadline", 5.0)),
        outbox=Outbox(store, group_seconds=60.0, clock=clock),
        retry=BackoffPolicy(5.0, 60.0),
        host="host-1",
        clock=clock,
    )


def _rollback(store: Store, service: str = "web") -> None:
    """Revisions 1 (good) and 2 (failed and rolled back), journalled as the gate does."""
    for number, image in ((1, "localhost/web:1.4"), (2, "localhost/web:1.5")):
        got = store.revision_for(service=service, spec_hash=f"h{number}", spec={}, image=image)
        assert number == got
    store.set_outcome(
        service,
        2,
        "rolled_back",
        "readiness probe failed",
        quarantine=True,
        event=(
            "rollout_rolled_back",
            f"{service}: revision 2 failed: readiness probe failed; back on revision 1",
            {"revision": 2, "previous": 1, "last_log_lines": ["panic: no config"]},
        ),
    )


def test_a_rollback_reaches_the_webhook_saying_what_happened_and_what_paid_did(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Title, service, both revisions' images, the reason, the log, the host."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    worker = _worker(store, desired, secrets, Clock())
    worker.outbox.start_cursor()

    _rollback(store)
    worker.turn()

    assert ["paid: web: rolled back"] == receiver.titles()
    body = receiver.messages[0]["message"]
    for words in (
        "revision 2 failed: readiness probe failed; back on revision 1",
        "revision 2: localhost/web:1.5",
        "back on revision 1: localhost/web:1.4",
        "panic: no config",
        "host host-1",
    ):
        assert words in body
    assert f"/hooks/{receiver.token}" == receiver.messages[0]["path"]


def test_only_the_events_and_services_a_notifier_selects_are_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    """events: [image_updated], services: tier=web — api's rollback and web's rollback are not."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(
        tmp_path,
        receiver.url,
        events=["image_updated", "desired_state_invalid"],
        services={"matchLabels": {"tier": "web"}},
    )
    worker = _worker(store, desired, secrets, Clock())
    worker.outbox.start_cursor()

    _rollback(store, "web")
    store.record("image_updated", "api: runs sha256:bbb (tag moved)", service="api")
    store.record("image_updated", "web: runs sha256:aaa (tag moved)", service="web")
    store.record("desired_state_invalid", "2 validation errors", errors=["a.yaml:3: x"])
    store.record("container_replaced", "web: replaced", service="web")
    worker.turn()

    assert ["paid: web: image updated", "paid: host-1: desired state invalid"] == (
        receiver.titles()
    )


def test_a_target_that_is_down_gets_the_message_once_it_is_back(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Failed sends are retried with back-off, counted, and the message arrives once."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    clock, metrics = Clock(), Metrics()
    worker = _worker(store, desired, secrets, clock, metrics=metrics)
    worker.outbox.start_cursor()
    receiver.down()

    _rollback(store)
    worker.turn()
    clock.now += 1  # before the retry is due: not tried again
    worker.turn()
    receiver.up()
    worker.turn()
    assert [] == receiver.titles()

    clock.now += 5
    worker.turn()
    clock.now += 600
    worker.turn()

    assert ["paid: web: rolled back"] == receiver.titles()
    counted = metrics.registry.get_sample_value
    assert 0 == counted("paid_notifications_waiting", {"target": "ops/ops-webhook"})
    failed = {"target": "ops/ops-webhook", "result": "failed"}
    assert 1 == counted("paid_notifications_total", failed)
    sent = {"target": "ops/ops-webhook", "result": "delivered"}
    assert 1 == counted("paid_notifications_total", sent)


def test_a_stalled_target_costs_its_deadline_and_the_message_waits(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A webhook that answers after 3 s: given up at 0.3 s, retried later, delivered then."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    clock = Clock()
    worker = _worker(store, desired, secrets, clock, deadline=0.3)
    worker.outbox.start_cursor()
    receiver.stall = 3.0

    _rollback(store)
    worker.turn()

    ((_message, sent, error),) = worker.outbox.history()
    assert (None, "no complete answer within 0.3 s") == (sent, error)
    receiver.stall = 0.0
    clock.now += 10
    worker.turn()
    assert worker.outbox.history()[0][1] is not None


def test_a_message_queued_before_a_restart_is_delivered_after_it_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Queued while the target is down, daemon gone; the next daemon delivers it, once."""
    desired, secrets = _desired(tmp_path, receiver.url)
    first = Store.open(tmp_path / "state")
    clock = Clock()
    worker = _worker(first, desired, secrets, clock)
    worker.outbox.start_cursor()
    receiver.down()
    _rollback(first)
    worker.turn()
    first.close()  # the daemon is gone; the message waits in the store

    receiver.up()
    again = Store.open(tmp_path / "state")
    clock.now += 30
    restarted = _worker(again, desired, secrets, clock)
    restarted.outbox.start_cursor()
    restarted.turn()
    clock.now += 3600
    restarted.turn()

    assert ["paid: web: rolled back"] == receiver.titles()


def test_two_readers_of_one_journal_queue_each_entry_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Two connections read the same entries; the cursor's transaction lets one queue them."""
    desired, secrets = _desired(tmp_path, receiver.url)
    a, b = Store.open(tmp_path / "state"), Store.open(tmp_path / "state")
    clock = Clock()
    one, two = _worker(a, desired, secrets, clock), _worker(b, desired, secrets, clock)
    one.outbox.start_cursor()
    _rollback(a)

    seen_one, seen_two = one.outbox.unread(), two.outbox.unread()
    assert [e.id for e in seen_one] == [e.id for e in seen_two]
    one.read_journal(desired, list(desired.notifiers.values()))
    two.read_journal(desired, list(desired.notifiers.values()))
    one.turn()
    two.turn()

    assert ["paid: web: rolled back"] == receiver.titles()


def test_a_flapping_service_is_one_message_then_one_with_a_count(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Five failures in a minute: the first at once, the other four as one after the minute."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    clock = Clock()
    worker = _worker(store, desired, secrets, clock)
    worker.outbox.start_cursor()

    for i in range(5):
        store.record("rollout_failed", f"web: revision {i + 2} failed: exited 1", service="web")
        worker.turn()
        clock.now += 5
    assert ["paid: web: rollout failed"] == receiver.titles()

    clock.now += 60
    worker.turn()

    assert ["paid: web: rollout failed", "paid: web: rollout failed (4 times)"] == (
        receiver.titles()
    )
    assert "4 times since" in receiver.messages[1]["message"]
    assert "revision 6 failed" in receiver.messages[1]["message"]


def test_service_down_is_told_after_down_for_seconds_once_per_outage(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Not ready 30 s: nothing; 61 s: one message; still down: no more; a new outage: again."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url, events=["service_down"])
    clock = Clock()
    worker = _worker(store, desired, secrets, clock)
    worker.outbox.start_cursor()
    store.mark_readiness("web", False, at=clock.now)

    clock.now += 30
    worker.turn()
    assert [] == receiver.titles()
    clock.now += 31
    worker.turn()
    clock.now += 300
    worker.turn()
    assert ["paid: web: down"] == receiver.titles()
    assert "has not been ready for 61 s" in receiver.messages[0]["message"]

    store.mark_readiness("web", True, at=clock.now)
    store.mark_readiness("web", False, at=clock.now + 1)
    clock.now += 100
    worker.turn()
    assert ["paid: web: down", "paid: web: down"] == receiver.titles()


def test_the_first_start_does_not_replay_the_journal(tmp_path: Path, receiver: Receiver) -> None:
    """An upgrade to a paid with notifications tells of what happens from now on."""
    store = Store.open(tmp_path / "state")
    _rollback(store)
    desired, secrets = _desired(tmp_path, receiver.url)
    worker = _worker(store, desired, secrets, Clock())
    worker.outbox.start_cursor()
    worker.turn()
    assert [] == receiver.titles()


def test_the_url_and_its_token_never_leak(tmp_path: Path, receiver: Receiver) -> None:
    """Refused sends: the error is kept and logged with the URL's parts hidden."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    metrics = Metrics()
    worker = _worker(store, desired, secrets, Clock(), metrics=metrics)
    worker.outbox.start_cursor()
    receiver.status = 403

    with capture_logs() as logs:
        _rollback(store)
        worker.turn()
    store.close()

    assert [] == receiver.titles()
    failed = [e for e in logs if e["event"] == "notification_failed"]
    assert 1 == len(failed)
    assert "403" in failed[0]["error"] or "Forbidden" in failed[0]["error"]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    exported = metrics.registry.collect()
    for text in (repr(logs), stored.decode("latin-1"), repr(list(exported))):
        assert receiver.token not in text


def test_a_target_file_that_cannot_be_read_is_a_failed_send_not_a_crash(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The URL file is removed after loading: the send fails, says which file, is retried."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    worker = _worker(store, desired, secrets, Clock())
    worker.outbox.start_cursor()
    os.unlink(tmp_path / "secrets" / "ops-webhook")
    os.mkfifo(tmp_path / "secrets" / "ops-webhook")

    _rollback(store)
    worker.turn()

    ((_, sent, error),) = worker.outbox.history()
    assert sent is None
    assert "ops-webhook" in error
    assert "FIFO" in error


def test_a_notifier_whose_url_file_is_missing_is_an_error_at_its_line(tmp_path: Path) -> None:
    """file:line: spec.targets[0].urlFile names the file; the state does not load."""
    repo = tmp_path / "desired-state"
    repo.mkdir()
    (repo / "notify.yaml").write_text(
        "apiVersion: paid/v1\nkind: Notifier\nmetadata: {name: ops}\nspec:\n"
        "  targets:\n    - urlFile: ops-webhook\n"
        "---\napiVersion: paid/v1\nkind: Notifier\nmetadata: {name: ops}\nspec:\n"
        "  targets: [{urlFile: other}]\n"
    )
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "other").write_text("json://127.0.0.1:9/x\n")
    source = SecretSource.open(tmp_path / "secrets", state_dir=tmp_path / "state", repo=repo)

    result = load_directory(repo, secrets=source)

    assert result.desired is None
    assert [
        f"{repo / 'notify.yaml'}:6: spec.targets[0].urlFile: secret file "
        f"{tmp_path / 'secrets' / 'ops-webhook'}: No such file or directory",
        f"{repo / 'notify.yaml'}:10: metadata.name: notifier 'ops' is already defined at "
        f"{repo / 'notify.yaml'}:1",
    ] == [str(e) for e in result.errors]


def test_a_notifier_is_not_a_service_and_survives_the_snapshot(
    tmp_path: Path, receiver: Receiver
) -> None:
    """depends_on cannot name it; the last-good snapshot keeps it (told while invalid)."""
    from paid.storage.documents import from_documents, to_documents  # noqa: PLC0415

    desired, secrets = _desired(tmp_path, receiver.url, events=["desired_state_invalid"])
    assert {"web", "api"} == set(desired.services)

    rebuilt = from_documents(to_documents(desired), origin="snapshot", secrets=secrets)

    assert rebuilt.desired is not None, rebuilt.errors
    assert ["ops"] == list(rebuilt.desired.notifiers)
    assert desired.notifiers["ops"].spec == rebuilt.desired.notifiers["ops"].spec


def test_sent_messages_are_forgotten_after_thirty_days(tmp_path: Path, receiver: Receiver) -> None:
    """The outbox does not grow for ever: a message sent 31 days ago is gone, a new one kept."""
    store = Store.open(tmp_path / "state")
    desired, secrets = _desired(tmp_path, receiver.url)
    clock = Clock()
    worker = _worker(store, desired, secrets, clock)
    worker.outbox.start_cursor()
    _rollback(store)
    worker.turn()
    assert 1 == len(worker.outbox.history())

    clock.now += 31 * 86400
    store.record("rollout_failed", "web: revision 3 failed: exited 1", service="web")
    worker.turn()

    assert ["paid: web: rollout failed"] == [m.title for m, _, _ in worker.outbox.history()]
