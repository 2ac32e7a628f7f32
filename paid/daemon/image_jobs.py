"""The daemon's image jobs: checking followed tags, and collecting unused images.

Both run on the scheduler, outside any reconcile. A check learns what the
registries say and records moved tags; the next full pass rolls them out.
Collection removes only images paid ran that nothing desired uses, and only
against a valid desired state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from paid.controllers.images import ImageController
from paid.daemon.status import Knowledge
from paid.runtime.base import RuntimeFailure
from paid.storage.flags import Flags
from paid.storage.store import Store, StoreError

log = structlog.get_logger("paid.daemon")


class ImageJobs:
    def __init__(
        self,
        images: ImageController,
        *,
        knowledge: Knowledge,
        store: Store,
        flags: Callable[[], Flags],
        busy: Callable[[], set[str]],
        moved: Callable[[], None],
    ) -> None:
        self.images = images
        self._knowledge = knowledge
        self._store = store
        self._flags = flags
        self._busy = busy  # services with a rollout under way: not updated under it
        self._moved = moved  # asks for a full pass

    def check(self) -> None:
        """Ask the registries about followed tags; a moved one is rolled out by the next pass.

        A registry that does not answer is reported (``/status``, the log, the
        ``check_failed`` count) and asked again at the next check; what runs
        keeps running.
        """
        desired = self._knowledge.desired
        if desired is None or not self._flags().image_updates:
            return
        try:
            updates = self.images.check(desired, pinned=set(self._store.pins()), busy=self._busy())
            moved = self.images.apply(updates)
        except (RuntimeFailure, StoreError) as err:
            log.warning("image_check_failed", error=str(err))
            return
        self._knowledge.update(image_checks=tuple(updates), image_checked_at=time.time())
        if moved:
            self._moved()

    def collect(self) -> None:
        """``--image-gc``: remove the images paid ran that nothing uses any more."""
        desired = self._knowledge.desired
        if desired is None or self._knowledge.load_errors:
            return  # only against a valid desired state: what it needs is known
        try:
            report = self.images.prune(desired)
        except (RuntimeFailure, StoreError) as err:
            log.warning("image_gc_failed", error=str(err))
            return
        log.info("image_gc", removed=len(report.removed), skipped=len(report.skipped))
