"""Following tags in a real registry (``imageUpdate``), credentials, and pruning images.

Debian's docker-registry serves on loopback, twice: open, and with
htpasswd auth. Each "edition" is a different image (one file differs);
a bad edition lacks the file its readiness probe looks for, so its
rollout fails the health gate. Digests are the registry's own, as
``podman push --digestfile`` reports them.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from paid.cli import main
from paid.storage.store import Store
from tests.daemon import Daemon, wait_until
from tests.harness import IMAGE, PodmanService, Registry, service_doc, use_registry, write_services

PASSWORD = "s3cret-Pa55"  # noqa: S105 -- a test registry's


@pytest.fixture(scope="module")
def registries(
    podman_session: PodmanService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Registry]]:
    opened = Registry.start(tmp_path_factory.mktemp("registry-open"))
    locked = Registry.start(tmp_path_factory.mktemp("registry-auth"), users={"alice": PASSWORD})
    use_registry(podman_session, opened, locked)
    try:
        yield {"open": opened, "auth": locked}
    finally:
        opened.stop()
        locked.stop()


@pytest.fixture
def registry(registries: dict[str, Registry]) -> Registry:
    return registries["open"]


@dataclass
class Host:
    """The suite's Podman, a desired-state directory and a state directory, driven by paid."""

    podman: PodmanService
    desired_dir: Path
    state_dir: Path
    tmp: Path
    capsys: Any

    def paid(self, *args: str) -> int:
        state = ["--podman-url", self.podman.url, "--state-dir", str(self.state_dir)]
        words = 2 if args[0] == "images" else 1  # a command and its verb come first
        return main([*args[:words], *state, *args[words:]])

    def check(self, *extra: str) -> tuple[int, Any]:
        """``paid update --check``: its exit code and its JSON."""
        self.capsys.readouterr()
        code = self.paid("update", str(self.desired_dir), "--check", "--output", "json", *extra)
        return code, json.loads(self.capsys.readouterr().out)

    def history(self, service: str) -> list[Any]:
        self.capsys.readouterr()
        assert 0 == self.paid("history", service, "--output", "json")
        return list(json.loads(self.capsys.readouterr().out)["revisions"])

    def push(self, local: str, remote: str, *extra: str) -> str:
        """Push ``local`` as ``remote``; the manifest digest the registry now has for it."""
        digest_file = self.tmp / "digest"
        self.podman.podman("push", "--tls-verify=false", "--digestfile", str(digest_file),
                           *extra, local, remote)  # fmt: skip
        return digest_file.read_text().strip()


@pytest.fixture
def host(
    podman: PodmanService, desired_dir: Path, state_dir: Path, tmp_path: Path, capsys: Any
) -> Host:
    return Host(podman, desired_dir, state_dir, tmp_path, capsys)


def edition(podman: PodmanService, number: int, *, ready: bool = True) -> str:
    """A local image that says ``number`` in /edition; with /ready unless it is a bad one."""
    name = f"localhost/paid-test/edition:{number}{'' if ready else '-bad'}"
    podman.podman("rm", "--force", "--time", "0", "make-edition", check=False)
    script = f"echo {number} > /edition" + (" && touch /ready" if ready else "")
    podman.podman("run", "--name", "make-edition", IMAGE, "sh", "-c", script)
    podman.podman("commit", "--quiet", "make-edition", name)
    podman.podman("rm", "--force", "--time", "0", "make-edition")
    return name


def follower(name: str, image: str, **spec: Any) -> dict[str, Any]:
    """A service following ``image``'s tag, ready when /ready exists; bad ones fail in 4 s."""
    return service_doc(
        name,
        image=image,
        imageUpdate={"policy": "registry"},
        readinessProbe={"exec": {"command": ["test", "-f", "/ready"]}, "periodSeconds": 1},
        rollout={"minReadySeconds": 1, "progressDeadlineSeconds": 4},
        **spec,
    )


def running_edition(podman: PodmanService, name: str) -> str:
    return podman.podman("exec", name, "cat", "/edition").strip()


def test_a_moved_tag_is_found_by_check_and_rolled_out_by_update(
    registry: Registry, host: Host
) -> None:
    """--check says old → new and exits 2; update rolls it out; each revision has its digest."""
    remote = f"{registry.host}/paid-test/follow:stable"
    first = host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, follower("web", remote))
    assert 0 == host.paid("apply", str(host.desired_dir))
    assert f"{registry.host}/paid-test/follow@{first}" == host.podman.inspect("web")["ImageName"]
    code, said = host.check()
    assert (0, "current", first) == (
        code,
        said["services"][0]["state"],
        said["services"][0]["latest"],
    )

    second = host.push(edition(host.podman, 2), remote)
    code, said = host.check()
    assert 2 == code
    assert (["web"], first, second) == (
        said["moved"],
        said["services"][0]["current"],
        said["services"][0]["latest"],
    )
    assert "1" == running_edition(host.podman, "web")  # a check changes nothing

    assert 0 == host.paid("update", str(host.desired_dir))

    assert "2" == running_edition(host.podman, "web")
    revisions = host.history("web")
    assert [first, second] == [r["digest"] for r in revisions]
    expected = f"image updated: {remote} ({first[:19]}) → {remote} ({second[:19]})"
    assert revisions[1]["reason"].startswith(expected)
    assert ["superseded", "succeeded"] == [r["outcome"] for r in revisions]
    assert 0 == host.check()[0]


def test_plan_learns_the_digest_apply_will_run_and_records_nothing(
    registry: Registry, host: Host
) -> None:
    """A service starts following its tag: plan shows the digest apply then runs; no write.

    Before, plan had no image controller: it showed no digest, and apply ran one.
    """
    remote = f"{registry.host}/paid-test/follow:planned"
    digest = host.push(edition(host.podman, 1), remote)
    plain = follower("web", remote)
    del plain["spec"]["imageUpdate"]
    write_services(host.desired_dir, plain)
    assert 0 == host.paid("apply", str(host.desired_dir))
    write_services(host.desired_dir, follower("web", remote))
    with Store.open(host.state_dir) as store:
        before = (store.data_version(), store.image_targets())
    host.capsys.readouterr()

    planned_code = host.paid("plan", str(host.desired_dir), "-o", "json")
    planned = json.loads(host.capsys.readouterr().out)
    with Store.open(host.state_dir) as store:
        after = (store.data_version(), store.image_targets())
    assert 0 == host.paid("apply", str(host.desired_dir))
    again = host.paid("plan", str(host.desired_dir))

    assert 2 == planned_code
    (action,) = planned["actions"]
    assert ("recreate", "web") == (action["action"], action["service"])
    assert digest in json.dumps(action["changes"])
    assert before == after  # the plan wrote nothing, not even the target it learnt
    assert f"{registry.host}/paid-test/follow@{digest}" == host.podman.inspect("web")["ImageName"]
    assert 0 == again  # apply did what the plan said: nothing is left


def test_a_bad_digest_is_rolled_back_and_never_retried_and_a_good_push_after_it_rolls_out(
    registry: Registry, host: Host
) -> None:
    """The bad digest fails its gate: back on the old digest; later checks skip it; a fix lands."""
    remote = f"{registry.host}/paid-test/follow:risky"
    good = host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, follower("web", remote))
    assert 0 == host.paid("apply", str(host.desired_dir))
    bad = host.push(edition(host.podman, 2, ready=False), remote)

    assert 1 == host.paid("update", str(host.desired_dir))

    assert "1" == running_edition(host.podman, "web")
    assert f"{registry.host}/paid-test/follow@{good}" == host.podman.inspect("web")["ImageName"]
    code, said = host.check()
    assert (0, "bad", good, bad) == (
        code, said["services"][0]["state"], said["services"][0]["current"],
        said["services"][0]["latest"],
    )  # fmt: skip
    before = host.podman.inspect("web")["Id"]
    assert 0 == host.paid("update", str(host.desired_dir))  # nothing to try
    assert 0 == host.paid("apply", str(host.desired_dir))  # nor for apply
    assert before == host.podman.inspect("web")["Id"]
    # An edit of the spec keeps the good digest: the bad one is the service's, not the spec's.
    write_services(host.desired_dir, follower("web", remote, env={"EDIT": "1"}))
    assert 0 == host.paid("apply", str(host.desired_dir))
    assert "1" == running_edition(host.podman, "web")

    fixed = host.push(edition(host.podman, 3), remote)
    assert 0 == host.paid("update", str(host.desired_dir))

    assert "3" == running_edition(host.podman, "web")
    outcomes = {r["digest"]: r["outcome"] for r in host.history("web")}
    assert "rolled_back" == outcomes[bad]
    assert "succeeded" == outcomes[fixed]
    with sqlite3.connect(host.state_dir / "paid.db") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events WHERE kind LIKE 'image_%'")]
    assert ["image_resolved", "image_update_found", "image_update_rolled_back",
            "image_update_found", "image_updated"] == kinds  # fmt: skip


def test_a_rollback_to_a_revision_runs_its_digest_after_the_tag_moved(
    registry: Registry, host: Host
) -> None:
    """`paid rollback --to-revision 1` runs revision 1's digest, not the tag's new one."""
    remote = f"{registry.host}/paid-test/follow:back"
    first = host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, follower("web", remote))
    assert 0 == host.paid("apply", str(host.desired_dir))
    host.push(edition(host.podman, 2), remote)
    assert 0 == host.paid("update", str(host.desired_dir))
    assert "2" == running_edition(host.podman, "web")

    assert 0 == host.paid("rollback", "web", str(host.desired_dir), "--to-revision", "1")
    assert 0 == host.paid("apply", str(host.desired_dir))

    assert "1" == running_edition(host.podman, "web")
    assert "1" == host.podman.inspect("web")["Config"]["Labels"]["paid.revision"]
    host.push(edition(host.podman, 3), remote)
    code, said = host.check()
    assert (0, "pinned") == (code, said["services"][0]["state"])  # the pin holds
    assert 0 == host.paid("update", str(host.desired_dir))
    assert "1" == running_edition(host.podman, "web")
    assert first == host.history("web")[0]["digest"]


def test_credentials_from_the_auth_file_podman_login_writes(
    registries: dict[str, Registry], host: Host
) -> None:
    """Right password: pull and check work; wrong or none: unauthorized; never printed or kept."""
    locked = registries["auth"]
    remote = f"{locked.host}/paid-test/private:1"
    host.push(edition(host.podman, 1), remote, "--creds", f"alice:{PASSWORD}")
    good, wrong = host.tmp / "good.json", host.tmp / "wrong.json"
    for path, password in ((good, PASSWORD), (wrong, "not-it")):
        host.podman.podman("login", "--tls-verify=false", "--authfile", str(path), "-u", "alice",
                      "-p", password, locked.host, check=password == PASSWORD)  # fmt: skip
    if not wrong.exists():  # login checks the password: write what a stale login leaves
        wrong.write_text(_auth_json(locked.host))
    write_services(host.desired_dir, follower("web", remote))
    said = []
    for authfile in (wrong, None):
        extra = ["--authfile", str(authfile)] if authfile else []
        host.capsys.readouterr()
        assert 1 == host.paid("apply", str(host.desired_dir), *extra)
        out = host.capsys.readouterr()
        said.append(out.out + out.err)
        code, checked = host.check(*extra)
        assert (1, "error") == (code, checked["services"][0]["state"])
        assert "refused the credentials" in checked["services"][0]["detail"]
    assert all("refused the credentials" in text for text in said), said
    assert [] == host.podman.containers()

    host.capsys.readouterr()
    assert 0 == host.paid("apply", str(host.desired_dir), "--authfile", str(good))
    assert "1" == running_edition(host.podman, "web")
    assert 0 == host.check("--authfile", str(good))[0]
    said.append(host.capsys.readouterr().out)
    stored = (host.state_dir / "paid.db").read_bytes() + b"".join(
        p.read_bytes() for p in host.state_dir.glob("paid.db-*")
    )
    assert PASSWORD.encode() not in stored
    assert not any(PASSWORD in text for text in said)


def _auth_json(host: str) -> str:
    import base64  # noqa: PLC0415

    token = base64.b64encode(b"alice:not-it").decode()
    return json.dumps({"auths": {host: {"auth": token}}})


def test_the_daemon_follows_a_tag_and_says_why_when_the_registry_goes_away(
    registry: Registry, host: Host
) -> None:
    """--image-update-interval 1: a push is rolled out; a registry gone: up, ready, and why."""
    remote = f"{registry.host}/paid-test/follow:daemon"
    host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, follower("web", remote))
    daemon = Daemon(
        host.podman, host.desired_dir, host.state_dir, host.tmp / "daemon.log",
        extra=["--image-update-interval", "1"],
    ).start()  # fmt: skip
    try:
        wait_until(lambda: running_edition(host.podman, "web") == "1", 30)
        host.push(edition(host.podman, 2), remote)
        updated = 'paid_image_updates_total{result="updated",service="web"} 1.0'
        wait_until(lambda: updated in daemon.get("/metrics")[1], 60)  # through its gate
        assert "2" == running_edition(host.podman, "web")

        registry.stop()
        try:

            def said_why() -> Any:
                checks = daemon.status()["imageUpdates"]["services"]
                return checks and checks[0]["state"] == "error" and checks[0]["detail"]

            wait_until(said_why, 30)
            detail = daemon.status()["imageUpdates"]["services"][0]["detail"]
            assert "cannot be reached" in detail
            assert daemon.ready()
            assert "2" == running_edition(host.podman, "web")
            metrics = daemon.get("/metrics")[1]
            assert updated in metrics
            assert 'paid_image_updates_total{result="check_failed",service="web"}' in metrics
        finally:  # back on its port, for the module's other tests
            registry.process = Registry.start(registry.base, port=registry.port).process
    finally:
        daemon.stop()


def test_sighup_checks_at_once_with_the_interval_off(registry: Registry, host: Host) -> None:
    """--image-update-interval 0 never checks by itself; a SIGHUP checks and rolls out."""
    remote = f"{registry.host}/paid-test/follow:hup"
    host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, follower("web", remote))
    daemon = Daemon(
        host.podman, host.desired_dir, host.state_dir, host.tmp / "daemon.log",
        extra=["--image-update-interval", "0"],
    ).start()  # fmt: skip
    try:
        wait_until(lambda: running_edition(host.podman, "web") == "1", 30)
        assert daemon.status()["imageUpdates"]["checkedAt"] is None
        host.push(edition(host.podman, 2), remote)

        daemon.signal(signal.SIGHUP)

        wait_until(lambda: running_edition(host.podman, "web") == "2", 60)
        assert daemon.status()["imageUpdates"]["services"][0]["state"] == "moved"
    finally:
        daemon.stop()


def test_prune_removes_only_unused_images_paid_ran(registry: Registry, host: Host) -> None:
    """An image only a dropped revision ran goes; kept revisions', running and others' stay."""
    remote = f"{registry.host}/paid-test/follow:prune"

    def publish(number: int) -> None:
        """Push an edition, then drop its local name: paid's pull is all that names it."""
        host.push(edition(host.podman, number), remote)
        host.podman.podman("untag", f"localhost/paid-test/edition:{number}")

    publish(1)
    write_services(host.desired_dir, follower("web", remote, revisionHistoryLimit=1))
    assert 0 == host.paid("apply", str(host.desired_dir))
    first_id = host.podman.inspect("web")["Image"]
    publish(2)
    assert 0 == host.paid("update", str(host.desired_dir))
    second_id = host.podman.inspect("web")["Image"]
    stranger = edition(host.podman, 9)  # never run by paid
    stranger_id = host.podman.podman("image", "inspect", "--format", "{{.Id}}", stranger).strip()

    host.capsys.readouterr()
    assert 0 == host.paid("images", "prune", str(host.desired_dir), "--dry-run",
                          "--output", "json")  # fmt: skip
    listed = [i["id"] for i in json.loads(host.capsys.readouterr().out)["removed"]]
    assert [first_id] == listed
    assert first_id in host.podman.podman("images", "--format", "{{.ID}}", "--no-trunc")  # kept

    assert 0 == host.paid("images", "prune", str(host.desired_dir))

    remaining = host.podman.podman("images", "--format", "{{.ID}}", "--no-trunc").split()
    ids = {i.removeprefix("sha256:") for i in remaining}
    assert first_id not in ids
    assert {second_id, stranger_id} <= ids


def semver_follower(name: str, image: str, range_: str, **rule: Any) -> dict[str, Any]:
    doc = follower(name, image)
    doc["spec"]["imageUpdate"] = {"policy": "semver", "range": range_, **rule}
    return doc


def test_semver_takes_the_highest_version_in_range_by_digest(
    registry: Registry, host: Host
) -> None:
    """Tags 1.4.0 1.4.2 1.5.0 1.6.0-rc.1 2.0.0 v1.5.1 latest: ">=1.4 <2" from 1.4.0 runs v1.5.1.

    Not 2.0.0 (out of range), not the pre-release (the range names none), and
    the revision's reason names both versions and digests.
    """
    repo = f"{registry.host}/paid-test/semver"
    pushed = {}
    for number, tag in enumerate(["1.4.0", "1.4.2", "1.5.0", "1.6.0-rc.1", "2.0.0", "v1.5.1"]):
        pushed[tag] = host.push(edition(host.podman, number + 10), f"{repo}:{tag}")
    host.push(edition(host.podman, 99), f"{repo}:latest")
    write_services(host.desired_dir, semver_follower("app", f"{repo}:1.4.0", ">=1.4 <2"))
    assert 0 == host.paid("apply", str(host.desired_dir))
    assert "10" == running_edition(host.podman, "app")

    code, said = host.check()
    assert 2 == code
    service = said["services"][0]
    assert ("moved", "v1.5.1", pushed["v1.5.1"]) == (
        service["state"],
        service["latestTag"],
        service["latest"],
    )

    assert 0 == host.paid("update", str(host.desired_dir))

    assert "15" == running_edition(host.podman, "app")
    reason = host.history("app")[-1]["reason"]
    assert reason.startswith(
        f"image updated: {repo}:1.4.0 ({pushed['1.4.0'][:19]}) → "
        f"{repo}:v1.5.1 ({pushed['v1.5.1'][:19]})"
    )
    assert 0 == host.check()[0]  # v1.5.1 is the highest in range: nothing more


def test_semver_with_no_version_left_in_range_is_a_check_error_and_runs_on(
    registry: Registry, host: Host
) -> None:
    """The running 1.0.0 deleted from the registry, 2.0.0 left: "~1.0" matches nothing.

    --check exits 1 and says so; update changes nothing; the service runs on.
    """
    repo = f"{registry.host}/paid-test/semver-none"
    first = host.push(edition(host.podman, 1), f"{repo}:1.0.0")
    host.push(edition(host.podman, 2), f"{repo}:2.0.0")
    write_services(host.desired_dir, semver_follower("app", f"{repo}:1.0.0", "~1.0"))
    assert 0 == host.paid("apply", str(host.desired_dir))
    deleted = requests.delete(
        f"http://{registry.host}/v2/paid-test/semver-none/manifests/{first}", timeout=10
    )
    assert 202 == deleted.status_code

    code, said = host.check()

    service = said["services"][0]
    assert (1, "error") == (code, service["state"])
    assert "no tag of the 1 in the repository is in range '~1.0'" in service["detail"]
    assert 1 == host.paid("update", str(host.desired_dir))
    assert "1" == running_edition(host.podman, "app")


def test_minimum_age_holds_a_new_digest_until_it_is_old_enough(
    registry: Registry, host: Host
) -> None:
    """minimumAge 72h: a digest pushed now waits, --check says until when; 1s: it goes."""
    remote = f"{registry.host}/paid-test/cooldown:stable"
    host.push(edition(host.podman, 1), remote)
    write_services(host.desired_dir, _with_rule(follower("web", remote), minimumAge="72h"))
    assert 0 == host.paid("apply", str(host.desired_dir))
    second = host.push(edition(host.podman, 2), remote)

    code, said = host.check()

    service = said["services"][0]
    assert (0, "waiting", second) == (code, service["state"], service["latest"])
    assert service["waitsUntil"] > time.time() + 71 * 3600
    assert "minimumAge 3d" in service["detail"]
    assert 0 == host.paid("update", str(host.desired_dir))
    assert "1" == running_edition(host.podman, "web")

    write_services(host.desired_dir, _with_rule(follower("web", remote), minimumAge="1s"))
    wait_until(lambda: host.check()[1]["services"][0]["state"] == "moved", 10)
    assert 0 == host.paid("update", str(host.desired_dir))
    assert "2" == running_edition(host.podman, "web")


def _with_rule(doc: dict[str, Any], **rule: Any) -> dict[str, Any]:
    doc["spec"]["imageUpdate"] = {"policy": "registry", **rule}
    return doc
