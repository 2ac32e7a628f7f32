"""imageUpdate's safer forms: versions in a range (semver) and a minimum age, pure and with a store.

The registry here is a table the test fills; the real distribution
registry is in tests/integration/test_image_updates_podman.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paid.controllers.images import ImageController
from paid.runtime.base import ImageUnavailable
from paid.runtime.fake import FakeRuntime
from paid.state.desired import DesiredService, DesiredState
from paid.state.images import ImageTarget, judge
from paid.state.specs import ServiceDocument, ServiceName
from paid.state.versions import highest, newer, version_range
from paid.storage.store import Store

REPO = "registry.test/app"
D = {n: "sha256:" + f"{n}" * 64 for n in range(1, 8)}


class TagRegistry:
    """Tags → digests, and digests → creation times, as the test says."""

    def __init__(self, tags: dict[str, str], created: dict[str, float] | None = None) -> None:
        self.table = tags
        self.made = created or {}
        self.created_asked = 0

    def digest(self, image: str) -> str:
        tag = image.rsplit(":", 1)[1]
        if tag not in self.table:
            raise ImageUnavailable(image, "manifest unknown", reason="not_found")
        return self.table[tag]

    def tags(self, image: str) -> list[str]:
        return list(self.table)

    def created(self, image: str, digest: str) -> float | None:
        self.created_asked += 1
        return self.made.get(digest)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


def _service(tag: str, **rule: object) -> DesiredState:
    doc = ServiceDocument.model_validate(
        {
            "apiVersion": "paid/v1",
            "kind": "Service",
            "metadata": {"name": "app"},
            "spec": {"image": f"{REPO}:{tag}", "imageUpdate": rule},
        }
    )
    service = DesiredService.of(doc)
    return DesiredState.of({ServiceName("app"): service})


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [
        (">=1.4 <2", ["1.3.9", "1.4.0", "1.9.9", "2.0.0"], "1.9.9"),
        ("~1.4", ["1.4.0", "1.4.7", "1.5.0"], "1.4.7"),
        ("^1.4", ["1.4.0", "1.9.1", "2.0.0"], "1.9.1"),
        ("^0.4", ["0.4.5", "0.5.0"], "0.4.5"),
        ("1.4.x", ["1.4.2", "1.5.0"], "1.4.2"),
        (">=1 <2 || >=3", ["1.2.0", "2.5.0", "3.1.0"], "3.1.0"),
        (">=1.4 <2", ["1.5.0", "1.6.0-rc.1"], "1.5.0"),  # no pre-release unless asked
        (">=1.6.0-rc.0 <2", ["1.5.0", "1.6.0-rc.1"], "1.6.0-rc.1"),
        ("~1.4", ["v1.4.3", "1.4.2", "latest", "1.4", "stable"], "v1.4.3"),
        ("~1.4", ["1.3.0", "2.0.0", "latest"], None),
    ],
)
def test_the_highest_version_in_a_range(text: str, tags: list[str], expected: str | None) -> None:
    """npm's ranges and pre-release rule; tags that are not full versions never count."""
    assert expected == highest(tags, text)


def test_a_range_that_is_not_one_says_so() -> None:
    """A typo in a range is a ValueError naming it and the syntax."""
    with pytest.raises(ValueError, match=r"range '>>1' is not a version range \(npm's syntax"):
        version_range(">>1")
    assert newer("1.10.0", "1.9.0")
    assert not newer("latest", "1.0.0")


def test_judge_holds_a_digest_younger_than_minimum_age_and_says_until_when() -> None:
    """Published 10 h ago with minimumAge 72h: waiting until published + 72 h; older: moved."""
    now = 2_000_000_000.0
    young = judge(
        service="app", image=f"{REPO}:1", current=D[1], latest=D[2], bad=(), pinned=False,
        busy=False, published=now - 36_000, minimum_age=72 * 3600, now=now,
    )  # fmt: skip
    assert ("waiting", now - 36_000 + 72 * 3600) == (young.state, young.waits_until)
    assert "minimumAge 3d" in young.detail
    old = judge(
        service="app", image=f"{REPO}:1", current=D[1], latest=D[2], bad=(), pinned=False,
        busy=False, published=now - 80 * 3600, minimum_age=72 * 3600, now=now,
    )  # fmt: skip
    assert "moved" == old.state
    bad = judge(
        service="app", image=f"{REPO}:1", current=D[1], latest=D[2], bad=(D[2],), pinned=False,
        busy=False, published=now, minimum_age=72 * 3600, now=now,
    )  # fmt: skip
    assert "bad" == bad.state  # a rejected digest stays rejected, whatever its age


def test_semver_check_moves_to_the_highest_in_range_and_never_down(store: Store) -> None:
    """From 1.4.0: 1.9.9 (not 2.0.0); once there, a registry that lost 1.9.9 keeps it there."""
    registry = TagRegistry({"1.4.0": D[1], "1.9.9": D[2], "2.0.0": D[3]})
    images = ImageController(runtime=FakeRuntime(), store=store, registry=registry)
    desired = _service("1.4.0", policy="semver", range=">=1.4 <2")
    images.record(images.unresolved(desired)[0])

    (update,) = images.check(desired)
    assert ("moved", "1.9.9", D[2]) == (update.state, update.latest_tag, update.latest)
    assert update.detail == (
        f"image updated: {REPO}:1.4.0 ({D[1][:19]}) → {REPO}:1.9.9 ({D[2][:19]})"
    )
    images.apply([update])
    target = store.image_targets()["app"]
    assert ("1.9.9", None, D[1]) == (target.tag, target.previous_tag, target.previous)

    images.finished("app", "succeeded", "")
    registry.table = {"1.4.0": D[1], "1.5.0": D[4]}  # 1.9.9 was deleted from the registry
    (again,) = images.check(desired)
    assert ("error", None) == (again.state, again.latest)  # 1.9.9 cannot be asked for now


def test_a_rolled_back_semver_update_goes_back_to_the_version_before(store: Store) -> None:
    """The rejected digest's version is left; the target is the previous version again."""
    registry = TagRegistry({"1.4.0": D[1], "1.5.0": D[2]})
    images = ImageController(runtime=FakeRuntime(), store=store, registry=registry)
    desired = _service("1.4.0", policy="semver", range="~1")
    images.record(images.unresolved(desired)[0])
    images.apply(images.check(desired))

    images.finished("app", "rolled_back", "readiness probe failed")

    target = store.image_targets()["app"]
    assert (D[1], None) == (target.digest, target.tag)
    (after,) = images.check(desired)
    assert ("bad", "1.5.0") == (after.state, after.latest_tag)


def test_minimum_age_counts_from_the_later_of_first_sighting_and_creation(store: Store) -> None:
    """A creation time a week ago does not shorten the wait: paid first saw it now.

    A creation time in the future (a pusher's clock, or a lie) lengthens it.
    """
    now = time.time()
    registry = TagRegistry({"stable": D[1]}, created={D[2]: now - 7 * 86400, D[3]: now + 3600})
    images = ImageController(runtime=FakeRuntime(), store=store, registry=registry)
    desired = _service("stable", minimumAge="1h")
    images.record(images.unresolved(desired)[0])

    registry.table["stable"] = D[2]
    (backdated,) = images.check(desired)
    assert "waiting" == backdated.state
    assert backdated.waits_until is not None
    assert backdated.waits_until == pytest.approx(now + 3600, abs=60)
    asked = registry.created_asked
    images.check(desired)
    assert asked == registry.created_asked  # the creation time is asked once per digest

    registry.table["stable"] = D[3]
    (future,) = images.check(desired)
    assert future.waits_until == pytest.approx(now + 7200, abs=60)


def test_minimum_age_survives_a_restart_of_the_counting(tmp_path: Path) -> None:
    """The first sighting is in the store: a new controller does not start the wait again."""
    registry = TagRegistry({"stable": D[1]})
    with Store.open(tmp_path / "state") as store:
        images = ImageController(runtime=FakeRuntime(), store=store, registry=registry)
        desired = _service("stable", minimumAge="2h")
        images.record(images.unresolved(desired)[0])
        registry.table["stable"] = D[2]
        (first,) = images.check(desired)
    with Store.open(tmp_path / "state") as store:
        again = ImageController(runtime=FakeRuntime(), store=store, registry=registry)
        (second,) = again.check(desired)
    assert first.waits_until == second.waits_until


def test_a_target_made_before_tags_were_kept_reads_as_the_image_tag(store: Store) -> None:
    """A store from before migration 8: its targets have no tag; they run the image's own."""
    store.set_image_target(ImageTarget("app", f"{REPO}:1", D[1], None, "first", settled=True))
    target = store.image_targets()["app"]
    assert (None, f"{REPO}:1") == (target.tag, target.reference())
