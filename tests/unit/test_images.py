"""Image references, following tags, registry credentials and configuration, pruning.

The controller runs through ``converge`` on the fake runtime and a real
store, with a registry that is a dict of tag -> digest; the real registry
is in ``tests/integration/test_image_updates_podman.py``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paid.controllers.converging import converge
from paid.controllers.effective import following
from paid.controllers.images import ImageController
from paid.runtime.base import ImageUnavailable
from paid.runtime.fake import FakeRuntime
from paid.runtime.registry_config import AuthFile, ConfigFileError, Credentials, RegistriesConf
from paid.state.images import ImageTarget, LocalImage, judge, parse_reference, prunable
from paid.storage.store import Store
from tests.unit.builders import FAST, desired
from tests.unit.builders import desired_service as _service

TAG = "registry.example:5000/team/app:stable"
D1, D2, D3 = (f"sha256:{c * 64}" for c in "123")


def follower(**spec: Any) -> Any:
    spec.setdefault("rollout", {"minReadySeconds": 0, "progressDeadlineSeconds": 1})
    return _service("web", image=TAG, imageUpdate={"policy": "registry"}, **spec)


class DictRegistry:
    """A registry whose tags point where the test says; None: it does not answer."""

    def __init__(self, digest: str | None) -> None:
        self.now = digest
        self.asked = 0

    def digest(self, image: str) -> str:
        self.asked += 1
        if self.now is None:
            raise ImageUnavailable(image, "connection refused", reason="unreachable")
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


def by_digest(digest: str) -> str:
    return parse_reference(TAG).by_digest(digest)


def test_references_get_docker_defaults_and_keep_registry_ports() -> None:
    """Short names are Docker Hub's library; a host:port is a registry, not a tag."""
    hub = parse_reference("redis:7")
    assert ("docker.io", "library/redis", "7") == (hub.registry, hub.repository, hub.tag)
    ref = parse_reference("127.0.0.1:5000/a/b")
    assert ("127.0.0.1:5000", "a/b", "latest", None) == (
        ref.registry, ref.repository, ref.tag, ref.digest
    )  # fmt: skip
    pinned = parse_reference(f"localhost/x:1@{D1}")
    assert (pinned.tag, pinned.digest, pinned.by_digest(D2)) == ("1", D1, f"localhost/x@{D2}")


def test_the_digest_is_in_the_shape_so_a_moved_tag_is_a_new_revision() -> None:
    """Following a target changes the hash; the same digest twice is the same hash."""
    service = follower()
    one = following(service, ImageTarget("web", TAG, D1, None, "first", settled=True))
    two = following(service, ImageTarget("web", TAG, D2, D1, "image updated", settled=False))
    assert len({service.spec_hash, one.spec_hash, two.spec_hash}) == 3
    assert one.spec_hash == following(service, ImageTarget("web", TAG, D1, D2, "", True)).spec_hash
    assert ("", "image updated") == (one.cause, two.cause)
    other_tag = ImageTarget("web", "registry.example:5000/team/app:old", D1, None, "", True)
    assert following(service, other_tag) is service  # a target for another tag does not apply


def test_judging_a_check() -> None:
    """Current, moved, bad, pinned and busy, in that order of precedence."""
    args: dict[str, Any] = {"service": "web", "image": TAG, "current": D1, "pinned": False}
    assert "current" == judge(latest=D1, bad=[], busy=False, **args).state
    assert "moved" == judge(latest=D2, bad=[], busy=False, **args).state
    assert "bad" == judge(latest=D2, bad=[D2], busy=True, **args).state
    assert "busy" == judge(latest=D2, bad=[], busy=True, **args).state
    assert "pinned" == judge(**{**args, "pinned": True}, latest=D2, bad=[], busy=False).state


def test_prune_keeps_what_is_used_kept_desired_or_not_ours() -> None:
    """Only an image paid ran, untagged or tagged only as paid ran it, and unused, goes."""
    images = [
        LocalImage("a", (), (by_digest(D1),)),  # ran by paid, nothing uses it: goes
        LocalImage("b", (), (by_digest(D2),)),  # a container uses it
        LocalImage("c", (), (by_digest(D3),)),  # a kept revision ran it
        LocalImage("d", ("localhost/mine:1",), ()),  # paid ran it, but someone tagged it
        LocalImage("e", (), ()),  # not paid's
        LocalImage("f", (TAG,), ()),  # the desired tag
    ]
    ours = dict.fromkeys("abcdf", TAG)
    found = prunable(images, ours=ours, in_use=["b"], kept=["c"], desired=[TAG])
    assert ["a"] == [i.id for i in found]


def _auth(path: Path, entries: dict[str, str]) -> Path:
    auths = {k: {"auth": base64.b64encode(v.encode()).decode()} for k, v in entries.items()}
    path.write_text(json.dumps({"auths": auths}, indent=2))
    return path


def test_auth_file_lookup_is_most_specific_first_and_never_shows_the_password(
    tmp_path: Path,
) -> None:
    """host/repo beats host; docker's https://index.docker.io/v1/ key is docker.io."""
    path = _auth(tmp_path / "auth.json", {
        "registry.example:5000": "all:one",
        "registry.example:5000/team/app": "app:two",
        "https://index.docker.io/v1/": "hub:three",
    })  # fmt: skip
    auth = AuthFile(path)
    assert Credentials("app", "two") == auth.lookup(TAG)
    assert Credentials("all", "one") == auth.lookup("registry.example:5000/other:1")
    assert Credentials("hub", "three") == auth.lookup("redis:7")
    assert auth.lookup("quay.io/x:1") is None
    assert "two" not in repr(auth.lookup(TAG))
    header = json.loads(base64.urlsafe_b64decode(Credentials("u", "p").header()))
    assert {"username": "u", "password": "p"} == header


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"auths": {"h": {"auth": "x"}},\n  oops}', ":2: auth file"),
        ('{"auths": []}', "auths: a mapping"),
        ('{"auths": {"h": {"auth": "*notbase64*"}}}', "auths.h.auth: not base64"),
        ("\xff", "auth file"),
    ],
)
def test_a_malformed_auth_file_says_where(tmp_path: Path, content: str, words: str) -> None:
    """Bad JSON (with its line), a wrong shape, bad base64: one clear error each."""
    path = tmp_path / "auth.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigFileError, match=words.replace(".", r"\.")):
        AuthFile(path).check()


def test_hostile_auth_files_are_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO (no writer), a device, a huge file, a missing named file: errors, no hang."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (2 << 20))
    for path, words in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (huge, "larger than"),
        (tmp_path / "missing.json", "cannot read"),
    ):
        done = threading.Event()
        errors: list[str] = []

        def read(p: Path = path, out: list[str] = errors, end: threading.Event = done) -> None:
            try:
                AuthFile(p).check()
            except ConfigFileError as err:
                out.append(str(err))
            end.set()

        threading.Thread(target=read, daemon=True).start()
        assert done.wait(5), f"{path} blocked"
        assert len(errors) == 1
        assert words in errors[0], (path, errors)


def test_registries_conf_insecure_blocked_and_prefix_rewrites(tmp_path: Path) -> None:
    """v2 tables (longest prefix wins, location rewrites) and v1's insecure and block lists."""
    conf = tmp_path / "registries.conf"
    conf.write_text(
        '[[registry]]\nlocation = "registry.example:5000"\ninsecure = true\n'
        '[[registry]]\nprefix = "registry.example:5000/team"\nlocation = "mirror.local/team"\n'
        '[registries.block]\nregistries = ["evil.example"]\n'
    )
    entries = RegistriesConf.load(conf)
    assert entries.entry("registry.example:5000/other").insecure
    team = entries.entry("registry.example:5000/team/app")
    assert ("mirror.local/team", False) == (team.location, team.insecure)
    assert entries.entry("evil.example/x").blocked
    assert not entries.entry("quay.io/x").insecure
    conf.write_text("[[registry]\n")
    with pytest.raises(ConfigFileError, match=r"registries\.conf"):
        RegistriesConf.load(conf)


def test_follow_a_tag_through_converge_update_then_reject_a_bad_digest(store: Store) -> None:
    """First deploy by digest; a moved tag rolls out; a failing one is rejected for good."""
    registry = DictRegistry(D1)
    runtime = FakeRuntime(pullable={by_digest(d) for d in (D1, D2, D3)})
    results: list[tuple[str, str]] = []
    images = ImageController(
        runtime=runtime, store=store, registry=registry, on_result=lambda *r: results.append(r)
    )
    state = desired(follower(readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1}))

    def update() -> Any:
        """`paid update`: check, then converge with the moved tags as targets."""
        moved = [u for u in images.check(state) if u.moved]
        return converge(
            state, runtime=runtime, store=store, timings=FAST, registry=registry, updates=moved
        )

    def journal() -> list[str]:
        kinds = ("image_resolved", "image_updated", "image_update_rolled_back")
        return [e.kind for e in store.events(service="web") if e.kind in kinds]

    assert update().converged
    assert by_digest(D1) == runtime.containers["web"].image
    assert [u.state for u in images.check(state)] == ["current"]

    registry.now = D2
    assert update().converged
    assert by_digest(D2) == runtime.containers["web"].image
    assert ["image_updated"] == journal()

    registry.now = D3
    runtime.exec_codes["web"] = 1  # D3 never gets ready
    report = update()
    runtime.exec_codes["web"] = 0
    assert "rolled_back" == report.rollouts["web"]
    assert by_digest(D2) == runtime.containers["web"].image
    assert "image_update_rolled_back" == journal()[-1]
    assert D2 == store.image_targets()["web"].digest
    assert "bad" == images.check(state)[0].state
    assert [] == images.apply(images.check(state))

    registry.now = None  # the registry goes away: a check says so, nothing changes
    checked = images.check(state)
    assert ("error", None) == (checked[0].state, checked[0].latest)
    assert "cannot be reached" in checked[0].detail
    assert ("web", "check_failed") == results[-1]


def test_prune_removes_an_image_with_two_of_paids_tags_tag_by_tag(store: Store) -> None:
    """Podman refuses an ID with two tags unless forced: paid removes each tag, never forces;
    an image also tagged by someone else keeps that tag and the image."""
    runtime = FakeRuntime(images={"localhost/app:2", "localhost/other:1"})
    runtime.tag_image("localhost/app:2", "localhost/app:latest")  # both names paid ran
    runtime.tag_image("localhost/other:1", "localhost/theirs:1")  # a stranger's second name
    found = {ref: runtime.inspect_image(ref) for ref in ("localhost/app:2", "localhost/other:1")}
    ids = {ref: image.id for ref, image in found.items() if image is not None}
    store.set_image("web", 1, image="localhost/app:latest", image_id="0" * 64, digest=None)
    store.set_image("web", 2, image="localhost/app:2", image_id=ids["localhost/app:2"], digest=None)
    store.set_image(
        "job", 1, image="localhost/other:1", image_id=ids["localhost/other:1"], digest=None
    )
    images = ImageController(runtime=runtime, store=store, registry=DictRegistry(D1))

    report = images.prune(desired())

    assert [ids["localhost/app:2"]] == [i.id for i in report.removed]
    assert {} == report.skipped
    assert {"localhost/other:1", "localhost/theirs:1"} == runtime.images
