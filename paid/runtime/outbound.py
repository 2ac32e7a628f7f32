"""The HTTP requests paid makes itself: to registries and to Prometheus.

Each one is bounded, because a server on the other end can be slow, stall
or lie, and one fault must not spread to the loop that asked:

- a **deadline** for the whole exchange (``within``): requests' own timeout
  bounds each read, not the whole, so the exchange runs on a thread of its
  own that is abandoned at the deadline;
- a **bounded body** (``bounded``): at most ``MAX_BODY`` bytes, and
  ``MAX_REDIRECTS`` redirects;
- a **breaker per host** (``Breakers``): after ``fail_max`` unreachable
  answers in a row the host is not asked again for ``reset_timeout``
  seconds, then one request probes it;
- errors told **briefly** (``brief``), without URLs' query strings.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests

MAX_BODY = 4 << 20  # an answer larger than this is refused
MAX_REDIRECTS = 5
T = TypeVar("T")


class Abandoned(Exception):
    """A request that did not finish within its deadline (its thread is left to end alone)."""


@dataclass
class HostBreaker:
    """One host's breaker: open after ``fail_max`` unreachable answers in a row."""

    fail_max: int = 3
    reset_timeout: float = 60.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None

    def allows(self) -> bool:
        """Closed, or open long enough that one request may probe (half-open)."""
        return self.opened_at is None or self.clock() - self.opened_at >= self.reset_timeout

    def record(self, *, reachable: bool) -> None:
        if reachable:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.fail_max:
            self.opened_at = self.clock()


@dataclass
class Breakers:
    fail_max: int
    reset_timeout: float
    by_host: dict[str, HostBreaker] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, host: str) -> HostBreaker:
        with self.lock:
            if host not in self.by_host:
                self.by_host[host] = HostBreaker(self.fail_max, self.reset_timeout)
            return self.by_host[host]


def within(deadline: float, exchange: Callable[[requests.Session], T]) -> T:
    """``exchange`` on a session of its own, in a thread given ``deadline`` seconds in all.

    requests' timeout bounds each read, not the whole: a server that trickles
    its headers a byte at a time would hold the caller for ever. The
    session is the exchange's own, so nothing it still holds is shared.
    """

    def run() -> T:
        session = requests.Session()
        session.max_redirects = MAX_REDIRECTS
        try:
            return exchange(session)
        finally:
            session.close()

    return in_time(deadline, run)


def in_time(deadline: float, call: Callable[[], T], *, name: str = "outbound-request") -> T:
    """``call()`` on a thread of its own, given ``deadline`` seconds; ``Abandoned`` after.

    The thread is a daemon and is abandoned at the deadline (never joined),
    so neither a reconcile nor SIGTERM waits for it.
    """
    box: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the caller, raised there
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    if not done.wait(deadline):
        raise Abandoned(f"no complete answer within {deadline:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def bounded(response: requests.Response) -> requests.Response:
    """The response with its body read, at most ``MAX_BODY`` bytes (else an error)."""
    try:
        data = response.raw.read(MAX_BODY + 1, decode_content=True) if response.raw else b""
    finally:
        response.close()
    if len(data) > MAX_BODY:
        raise requests.exceptions.ContentDecodingError(
            f"the answer is larger than {MAX_BODY} bytes: refused"
        )
    response._content = data  # requests' own slot for a body already read
    return response


def brief(err: Exception | None) -> str:
    """An exception's last line, without URLs' query strings (a token could be in one)."""
    text = str(err).strip().splitlines()[-1] if err is not None and str(err).strip() else "?"
    return re.sub(r"\?[^\s'\")]*", "?…", text)[:300]
