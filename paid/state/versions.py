"""Image tags as semantic versions, and version ranges (``imageUpdate: {policy: semver}``).

Ranges are npm's (``>=1.4 <2``, ``~1.4``, ``^1.4``, ``1.4.x``, ``||``),
read by ``semantic_version``'s ``NpmSpec``, which also keeps npm's rule for
pre-releases: a range takes ``2.0.0-rc.1`` only when it names a
pre-release of that same version itself. A tag is a version when it is
``MAJOR.MINOR.PATCH`` with an optional ``v`` in front and optional
pre-release and build parts; ``1.4`` and ``latest`` are not (they move).
"""

from __future__ import annotations

from collections.abc import Iterable

import semantic_version


def version_range(text: str) -> semantic_version.NpmSpec:
    """``text`` as a range; ``ValueError`` says what is wrong."""
    try:
        return semantic_version.NpmSpec(text)
    except ValueError:
        raise ValueError(
            f"range {text!r} is not a version range (npm's syntax: >=1.4 <2, ~1.4, ^1.4, 1.4.x)"
        ) from None


def version_of(tag: str) -> semantic_version.Version | None:
    """The version a tag names, or None (not a full MAJOR.MINOR.PATCH)."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return semantic_version.Version(text)
    except ValueError:
        return None


def highest(tags: Iterable[str], text: str) -> str | None:
    """The tag of the highest version in range ``text`` (None: none is)."""
    spec = version_range(text)
    found = [(v, t) for t in tags if (v := version_of(t)) is not None and spec.match(v)]
    return max(found)[1] if found else None


def in_range(tag: str, text: str) -> bool:
    version = version_of(tag)
    return version is not None and version_range(text).match(version)


def newer(tag: str, than: str) -> bool:
    """Whether ``tag`` is a higher version than ``than`` (False when either is not one)."""
    a, b = version_of(tag), version_of(than)
    return a is not None and b is not None and a > b
