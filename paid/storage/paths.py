"""Host paths against the allow-list, resolved: a symlink cannot lead out of it."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable


def within(path: str, prefixes: Iterable[str]) -> bool:
    """Whether ``path``, symlinks resolved, lies under one of ``prefixes`` (also resolved).

    Both the path as written and the path it resolves to must be inside:
    ``/srv/etc-link -> /etc`` is refused under ``/srv``.
    """
    written = posixpath.normpath(path)
    real = os.path.realpath(path)
    for allowed in prefixes:
        prefix = posixpath.normpath(allowed)
        real_prefix = os.path.realpath(allowed)
        if _under(written, prefix) and _under(real, real_prefix):
            return True
    return False


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")
