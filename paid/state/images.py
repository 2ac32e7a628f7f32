"""Image references and digests, and following a tag (``imageUpdate``): the pure part.

A service with ``imageUpdate: {policy: registry}`` runs its image *by
digest*. The digest it runs is its **target** (kept in the store): the
tag's digest when it was first deployed, then each new digest an update
check found. The target is part of the service's shape (``imageDigest``),
so a moved tag is a new revision, rolled out through the health gate
like any other change, and a rollback rebuilds its revision with the
digest it ran.

A digest whose rollout failed is **bad** for that service: the target
goes back to the digest before it, and no check picks the bad one again.
A later push of another digest is tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_REGISTRY = "docker.io"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Reference:
    """``registry/repository[:tag][@digest]``, with Docker's defaults filled in."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def by_digest(self, digest: str) -> str:
        """The reference that pulls exactly ``digest``, whatever the tag points at."""
        return f"{self.name}@{digest}"


def parse_reference(image: str) -> Reference:
    """Split an image reference; a name without a registry is Docker Hub's, as Podman does.

    ``redis:7`` is ``docker.io/library/redis:7``; a first component with a
    dot or a colon, or ``localhost``, is a registry.
    """
    rest, _, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    last = path.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry, path, tag, digest or None)


def is_digest(value: str) -> bool:
    return _DIGEST.fullmatch(value) is not None


def short(digest: str | None) -> str:
    """``sha256:0123456789ab`` (12 hex digits), or ``-``."""
    if not digest:
        return "-"
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}"


def update_reason(
    old: str | None,
    new: str,
    *,
    image: str | None = None,
    old_tag: str | None = None,
    new_tag: str | None = None,
) -> str:
    """The reason a revision made by an image update carries.

    ``image updated: app:1.4.2 (sha256:0123…) → app:1.4.3 (sha256:4567…)``
    """
    if image is None:
        return f"image updated: {short(old)} → {short(new)}"
    before = f"{with_tag(image, old_tag)} ({short(old)})"
    return f"image updated: {before} → {with_tag(image, new_tag)} ({short(new)})"


def with_tag(image: str, tag: str | None) -> str:
    """``image`` at ``tag`` (None: as written)."""
    if tag is None:
        return image
    head, slash, last = image.rpartition("/")
    return f"{head}{slash}{last.split('@', 1)[0].split(':', 1)[0]}:{tag}"


def repo_digest(repo_digests: Sequence[str], image: str) -> str | None:
    """Of an image's ``RepoDigests``, the digest it has in ``image``'s repository."""
    wanted = parse_reference(image).name
    for entry in repo_digests:
        name, _, digest = entry.partition("@")
        if digest and parse_reference(name + ":x").name == wanted:
            return digest
    return None


@dataclass(frozen=True, slots=True)
class ImageTarget:
    """The digest a service with ``imageUpdate`` is to run, and why."""

    service: str
    image: str  # the tag it was resolved for: a target for another tag does not apply
    digest: str
    previous: str | None  # the digest before this one (an update), None for the first
    reason: str
    settled: bool  # its rollout succeeded (or it was the first): a failure no longer undoes it
    tag: str | None = None  # the tag ``digest`` is of, when not the image's own (semver)
    previous_tag: str | None = None

    def applies_to(self, image: str) -> bool:
        return self.image == image

    def runs(self) -> str:
        """``app:1.4.3 (sha256:0123…)``: what it runs, for people."""
        return f"{self.reference()} ({short(self.digest)})"

    def reference(self) -> str:
        """The image at the tag it runs (the image's own tag, or the version semver chose)."""
        return with_tag(self.image, self.tag)


@dataclass(frozen=True, slots=True)
class Update:
    """What one check found for one service."""

    service: str
    image: str
    current: str | None  # the digest it runs (its target)
    latest: str | None  # what the tag points at now (None: the check failed)
    state: str  # current | moved | waiting | bad | pinned | busy | error
    detail: str = ""
    current_tag: str | None = None  # semver: the versions, when not the image's own tag
    latest_tag: str | None = None
    waits_until: float | None = None  # waiting: when minimumAge lets it roll out

    @property
    def moved(self) -> bool:
        return self.state == "moved"


def judge(
    *,
    service: str,
    image: str,
    current: str | None,
    latest: str,
    bad: Iterable[str],
    pinned: bool,
    busy: bool,
    tags: tuple[str | None, str | None] = (None, None),
    published: float | None = None,
    minimum_age: float | None = None,
    now: float = 0.0,
) -> Update:
    """One service's check: what the registry offers against what it runs. Pure.

    ``tags``: the current and the latest version (semver; None: the image's
    own tag). ``published``: when the latest digest was published (its
    image's creation or its first sighting, whichever is later); with
    ``minimum_age`` it waits until that old.
    """
    current_tag, latest_tag = tags

    def found(state: str, detail: str = "", waits_until: float | None = None) -> Update:
        return Update(
            service, image, current, latest, state, detail, current_tag, latest_tag, waits_until
        )

    if latest == current:
        return found("current")
    if latest in set(bad):
        return found("bad", "this digest failed its rollout here before")
    if pinned:
        return found("pinned", "pinned by paid rollback: not updated")
    if busy:
        return found("busy", "a rollout is under way")
    if minimum_age and published is not None and now - published < minimum_age:
        until = published + minimum_age
        return found(
            "waiting",
            f"published {_when(published)}; minimumAge {_span(minimum_age)}: "
            f"rolled out from {_when(until)}",
            until,
        )
    reason = update_reason(current, latest, image=image, old_tag=current_tag, new_tag=latest_tag)
    return found("moved", reason)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image in the runtime's store."""

    id: str
    tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    size: int = 0
    volumes: tuple[str, ...] = ()  # the paths its config declares as VOLUME (inspect only)


def prunable(
    images: Iterable[LocalImage],
    *,
    ours: Mapping[str, str],
    in_use: Iterable[str],
    kept: Iterable[str],
    desired: Iterable[str],
) -> list[LocalImage]:
    """Images paid may remove: ones it ran (``ours``: ID -> image), that nothing uses.

    Kept: an image any container uses (``in_use``, by ID: also strangers'),
    one a kept revision ran (``kept``), one a desired service names
    (``desired``: tags and ``name@digest`` references), and one with a tag
    paid never ran (someone else named it). An image paid never ran is not
    paid's, whatever it is.
    """
    used, keep = set(in_use), set(kept)
    wanted = {_normal(r) for r in desired}
    ran = {_normal(r) for r in ours.values()}
    found = []
    for image in images:
        if image.id not in ours or image.id in used or image.id in keep:
            continue
        tags = {_normal(t) for t in image.tags}
        names = tags | {_normal(d) for d in image.repo_digests}
        if names & wanted or not tags <= ran:
            continue
        found.append(image)
    return sorted(found, key=lambda i: i.id)


def _normal(reference: str) -> str:
    ref = parse_reference(reference)
    return ref.by_digest(ref.digest) if ref.digest else f"{ref.name}:{ref.tag}"
