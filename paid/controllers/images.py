"""The image controller: following tags (``imageUpdate``) and collecting unused images.

Updates, in three steps (``paid.state.images`` has the pure rules):

1. **resolve** — a service that follows its tag and has no target yet
   gets the tag's digest now (a full pass does this before it plans), so
   even its first container runs by digest;
2. **check** — ask the registry what the tag points at now (``paid
   update --check``, the daemon every ``--image-update-interval`` and on
   SIGHUP); a read, nothing is changed;
3. **apply** — a moved tag becomes the service's target. The target is
   in the service's shape, so the reconcile sees a new revision and rolls
   it out through the health gate, with the reason ``image updated: old →
   new``. ``finished`` hears how that rollout ended: success settles the
   target; a rollback makes the digest bad for the service and puts the
   previous target back, so no check picks it again.

Everything is journalled, so ``paid postmortem`` shows it.

Collection (``paid images prune``, the daemon's ``--image-gc``) removes
images paid ran that no container, no kept revision and no desired
service uses. It never forces a removal: Podman refuses to remove an
image a container uses, whoever's container it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from paid.runtime.base import ContainerMissing, ImageUnavailable, RequestRejected, Runtime
from paid.state.desired import DesiredService, DesiredState
from paid.state.images import (
    ImageTarget,
    LocalImage,
    Update,
    judge,
    parse_reference,
    prunable,
    short,
    update_reason,
    with_tag,
)
from paid.state.versions import highest, newer
from paid.storage.store import Store

log = structlog.get_logger("paid.images")


class Registry(Protocol):
    def digest(self, image: str) -> str:
        """The digest ``image``'s tag points at now; ``ImageUnavailable`` when it cannot say."""
        ...

    def tags(self, image: str) -> list[str]:
        """Every tag of ``image``'s repository (``policy: semver``)."""
        ...

    def created(self, image: str, digest: str) -> float | None:
        """When the image ``digest`` was made, as it says (``minimumAge``)."""
        ...


def followers(desired: DesiredState) -> list[DesiredService]:
    """The services that follow their tag, in dependency order."""
    return [s for s in desired if s.spec.image_update is not None]


@dataclass
class PruneReport:
    removed: list[LocalImage] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # image ID -> why it stayed
    dry_run: bool = False


class ImageController:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: Store,
        registry: Registry,
        on_result: Callable[[str, str], None] = lambda service, result: None,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.retry_after = retry_after  # a tag the registry did not resolve is asked again then
        self.store = store
        self.registry = registry
        self._on_result = on_result  # (service, result): updated | rolled_back | failed | ...
        self._clock = clock
        self._unresolved: dict[tuple[str, str], float] = {}  # (service, image) -> when it failed

    # -- updates -------------------------------------------------------------

    def unresolved(self, desired: DesiredState) -> tuple[dict[str, ImageTarget], dict[str, str]]:
        """For each following service without a target for its tag: the tag's digest now.

        A read: nothing is written (``paid plan`` uses it as is). Returns the
        targets learnt, and why the others could not be (a registry that did
        not answer is asked again after ``Timings.registry_retry``).
        """
        targets = self.store.image_targets()
        learnt: dict[str, ImageTarget] = {}
        unknown: dict[str, str] = {}
        for service in followers(desired):
            name, image = service.name, service.spec.image
            target = targets.get(name)
            if target is not None and target.applies_to(image):
                continue
            failed_at = self._unresolved.get((name, image))
            if failed_at is not None and self._clock() - failed_at < self.retry_after:
                unknown[name] = f"{image}: the registry did not answer a moment ago"
                continue
            try:
                digest = self.registry.digest(image)
            except ImageUnavailable as err:
                # It runs by tag until the registry answers; its pull says the same.
                self._unresolved[(name, image)] = self._clock()
                log.warning("image_unresolved", service=name, image=image, error=str(err))
                unknown[name] = f"{image}: {err}"
                continue
            self._unresolved.pop((name, image), None)
            learnt[name] = ImageTarget(
                name, image, digest, None, f"{image} was {digest}", settled=True
            )
        return learnt, unknown

    def record(self, learnt: Mapping[str, ImageTarget]) -> None:
        """Make each digest an observation learnt (``unresolved``) its service's target."""
        targets = self.store.image_targets()
        for name, target in learnt.items():
            if targets.get(name) == target:
                continue
            self.store.set_image_target(target)
            self.store.record(
                "image_resolved",
                f"{name}: {target.image} is {target.digest}",
                service=name,
                digest=target.digest,
            )

    def check(
        self,
        desired: DesiredState,
        *,
        pinned: Collection[str] = (),
        busy: Collection[str] = (),
    ) -> list[Update]:
        """What each following service's tag points at now, against what it runs. Reads only."""
        targets = self.store.image_targets()
        found = []
        for service in followers(desired):
            name, image = service.name, service.spec.image
            target = targets.get(name)
            applies = target is not None and target.applies_to(image)
            current = target.digest if target is not None and applies else None
            current_tag = target.tag if target is not None and applies else None
            try:
                latest_tag, latest = self._offered(service, current_tag)
                published = self._published(service, latest, current)
            except ImageUnavailable as err:
                found.append(Update(name, image, current, None, "error", str(err), current_tag))
                self._on_result(name, "check_failed")
                log.warning("image_check_failed", service=name, image=image, error=str(err))
                continue
            unsettled = target is not None and not target.settled
            found.append(
                judge(
                    service=name,
                    image=image,
                    current=current,
                    latest=latest,
                    bad=self.store.bad_digests(name),
                    pinned=name in pinned,
                    busy=name in busy or unsettled,
                    tags=(current_tag, latest_tag),
                    published=published,
                    minimum_age=_minimum_age(service),
                    now=time.time(),
                )
            )
        return found

    def _offered(self, service: DesiredService, current_tag: str | None) -> tuple[str | None, str]:
        """The tag (None: the image's own) and digest the registry offers the service now.

        ``semver``: the highest version of the repository in the range, never
        one below the version it runs (a tag removed from the registry does
        not take a service back down).
        """
        rule, image = service.spec.image_update, service.spec.image
        if rule is None or rule.policy != "semver" or rule.range is None:
            return None, self.registry.digest(image)
        tags = self.registry.tags(image)
        best = highest(tags, rule.range)
        running = current_tag or parse_reference(image).tag or ""
        if best is None:
            raise ImageUnavailable(
                image,
                f"no tag of the {len(tags)} in the repository is in range {rule.range!r}",
                reason="not_found",
            )
        chosen = best if newer(best, running) else running
        tag = None if chosen == parse_reference(image).tag else chosen
        return tag, self.registry.digest(with_tag(image, chosen))

    def _published(self, service: DesiredService, latest: str, current: str | None) -> float | None:
        """When ``latest`` was published, for ``minimumAge``: the later of its image's
        creation time and paid's first sighting of it (a creation time is the pusher's
        to set; the first sighting is not)."""
        if _minimum_age(service) is None or latest == current:
            return None
        repository = parse_reference(service.spec.image).name
        first, created = self.store.seen(repository, latest, created=None)
        if created is None:
            try:
                made = self.registry.created(service.spec.image, latest)
            except ImageUnavailable:
                made = None  # the first sighting alone says
            if made is not None:
                first, created = self.store.seen(repository, latest, created=made)
        return max(first, created or first)

    def apply(self, updates: list[Update]) -> list[Update]:
        """Make each moved tag its service's target; the reconcile rolls them out."""
        moved = [u for u in updates if u.moved and u.latest is not None]
        for update in moved:
            assert update.latest is not None  # noqa: S101 -- filtered above
            reason = update_reason(
                update.current,
                update.latest,
                image=update.image,
                old_tag=update.current_tag,
                new_tag=update.latest_tag,
            )
            self.store.set_image_target(
                ImageTarget(
                    update.service,
                    update.image,
                    update.latest,
                    update.current,
                    reason,
                    settled=update.current is None,
                    tag=update.latest_tag,
                    previous_tag=update.current_tag,
                )
            )
            self.store.record(
                "image_update_found",
                f"{update.service}: {update.image} moved; {reason}",
                service=update.service,
                old=update.current,
                new=update.latest,
            )
            log.info(
                "image_update_found", service=update.service, old=update.current, new=update.latest
            )
        return moved

    def finished(self, service: str, outcome: str, why: str) -> None:
        """A rollout of ``service`` ended: settle its new target, or reject the digest."""
        target = self.store.image_targets().get(service)
        if target is None or target.settled:
            return
        log.info("image_update_finished", service=service, outcome=outcome, digest=target.digest)
        if outcome == "succeeded":
            self.store.set_image_target(replace(target, settled=True))
            self.store.record(
                "image_updated",
                f"{service}: runs {target.digest} ({target.reason})",
                service=service,
                digest=target.digest,
            )
            self._on_result(service, "updated")
        elif outcome == "rolled_back":
            self.store.reject_digest(target, why)
            self.store.record(
                "image_update_rolled_back",
                f"{service}: {target.digest} failed ({why}); back on {target.previous}; "
                "this digest is not tried again (`paid rollout retry` forgives it)",
                service=service,
                digest=target.digest,
                previous=target.previous,
            )
            self._on_result(service, "rolled_back")
        else:  # not rolled back (its pull failed, or autoRollback is off): tried again later
            self._on_result(service, "failed")

    # -- collection ------------------------------------------------------------

    def prune(self, desired: DesiredState | None, *, dry_run: bool = False) -> PruneReport:
        """Remove images paid ran that nothing uses or may use again (``prunable``)."""
        images = self.runtime.list_images()
        containers = self.runtime.list_containers()
        wanted: list[str] = []
        targets = self.store.image_targets()
        for service in desired or ():
            target = targets.get(service.name)
            if target is not None and target.applies_to(service.spec.image):
                # It runs the digest, never the tag: a stale local tag is not kept for it.
                wanted.append(parse_reference(service.spec.image).by_digest(target.digest))
            else:
                wanted.append(service.spec.image)
        doomed = prunable(
            images,
            ours={_plain(i): ref for i, ref in self.store.images_run().items()},
            in_use={_plain(c.image_id) for c in containers},
            kept={_plain(i) for i in self.store.kept_image_ids()},
            desired=wanted,
        )
        report = PruneReport(dry_run=dry_run)
        for image in doomed:
            if dry_run:
                report.removed.append(image)
                continue
            try:
                # Several tags (all paid's: ``prunable`` keeps any other): Podman removes an
                # image by ID only with force, so each tag goes, and the image with the last.
                for name in image.tags if len(image.tags) > 1 else (image.id,):
                    now = self.runtime.inspect_image(name)  # a tag moved meanwhile is not ours
                    if name != image.id and (now is None or now.id != image.id):
                        raise RequestRejected(f"{name} names another image now")
                    self.runtime.remove_image(name)
            except RequestRejected as err:  # a container took it since the listing
                report.skipped[image.id] = str(err)
                continue
            except ContainerMissing:
                continue  # gone already
            report.removed.append(image)
            self.store.record(
                "image_pruned",
                f"image {image.id[:12]} ({', '.join(image.tags) or 'untagged'}) removed",
                image_id=image.id,
            )
        if report.removed and not dry_run:
            log.info("images_pruned", count=len(report.removed))
        return report


def _minimum_age(service: DesiredService) -> float | None:
    rule = service.spec.image_update
    return None if rule is None or not rule.minimum_age else float(rule.minimum_age)


def _plain(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def describe(update: Update) -> str:
    """One line for ``paid update``: old → new, or why not."""
    if update.state == "error":
        return update.detail
    if update.state == "current":
        return f"{short(update.current)} (the tag's digest)"
    before = f"{update.current_tag} " if update.current_tag else ""
    after = f"{update.latest_tag} " if update.latest_tag else ""
    arrow = f"{before}{short(update.current)} → {after}{short(update.latest)}"
    return arrow if update.state == "moved" else f"{arrow} ({update.detail})"
