"""The journal the controllers write to: revisions numbered, happenings recorded.

A protocol, so the executor and its helpers name what they need of the
store and nothing more (``paid.storage.store.Store`` is the one in use).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Journal(Protocol):
    """Where revisions are numbered and actions recorded (the store)."""

    def revision_for(
        self,
        *,
        service: str,
        spec_hash: str,
        spec: Mapping[str, object],
        image: str,
        document: Mapping[str, object] | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
    ) -> int: ...

    def record(
        self, kind: str, message: str, *, service: str | None = None, **data: object
    ) -> None: ...
