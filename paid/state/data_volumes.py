"""Data that outlives a container: a named volume for each ``VOLUME`` an image declares.

Every heal replaces the container (the writable layer is fresh each
time). Left to Podman, a ``VOLUME`` the image declares (postgres, mariadb,
redis and wordpress all declare one) becomes an *anonymous* volume: the
replacement gets an empty one and the old one is orphaned, so a database
lost its tables on its first crash restart. Compose keeps them by reusing
the container; paid keeps them by naming them.

This module is pure: which declared paths the spec leaves unmounted, and
the name and labels of the volume each one gets. The executor
(``paid.controllers.services``) asks Podman what the image declares and
makes the volumes.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
from typing import Final

from paid.state import labels
from paid.state.specs import ServiceSpec

PATH_LABEL: Final = "paid.volume-path"
CONTAINER_LABEL: Final = "paid.data-volumes"  # on the container: the volumes it mounts


def data_volume_name(service: str, path: str) -> str:
    """``<service>-data-<path as words>-<8 hex>``: readable, and one per (service, path).

    The hash keeps ``/a-b`` and ``/a/b`` apart; the words say what it holds.
    """
    words = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:40].strip("-") or "root"
    digest = hashlib.sha256(f"{service}\0{path}".encode()).hexdigest()[:8]
    return f"{service}-data-{words}-{digest}"


def data_volume_labels(service: str, path: str) -> dict[str, str]:
    """What marks a data volume as paid's, for which service and path."""
    return {labels.MANAGED: "true", labels.SERVICE: service, PATH_LABEL: path}


def unmounted(declared: Iterable[str], spec: ServiceSpec) -> list[str]:
    """The image's ``VOLUME`` paths the spec mounts nothing at, sorted.

    A path the spec already mounts (a volume, a tmpfs, a config or a
    secret file at it or above it) is the spec's to decide.
    """
    taken = [v.destination for v in spec.volumes]
    taken += [t.path for t in spec.tmpfs]
    taken += [c.target for c in spec.configs]
    taken += [m.path for m in spec.secrets]
    out: set[str] = set()
    for path in declared:
        if not path.startswith("/") or "\0" in path:
            continue  # an image can say anything; only absolute paths are paths
        normal = posixpath.normpath(path)
        if not any(normal == t or normal.startswith(t.rstrip("/") + "/") for t in taken):
            out.add(normal)
    return sorted(out)
