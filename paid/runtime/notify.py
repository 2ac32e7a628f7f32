"""Sending one message to one target, through Apprise: the edge notifications leave by.

Apprise turns one URL into a client of the service it names (``slack://``,
``discord://``, ``matrix://``, ``ntfy://``, ``gotify://``, ``msteams://``,
``mailto://``, ``json://`` a generic webhook, and a hundred more), so paid
writes none of them. The URL carries a token: it is passed in, used, and
never kept; every error is told with the URL's parts blotted out.

Each send has a deadline for the whole exchange (``in_time``): a target
that stalls costs the sending thread that long, never a reconcile.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from paid.runtime.outbound import Abandoned, in_time

DEADLINE = 10.0
HIDDEN = "***"


class DeliveryFailed(Exception):
    """The target did not take the message; the message says why, without the URL's secrets."""


class AppriseSender:
    """Sends with Apprise; imported on first use (the CLI's other commands never load it)."""

    def __init__(self, *, deadline: float = DEADLINE) -> None:
        self.deadline = deadline

    def known(self, url: str) -> str | None:
        """Why Apprise cannot use ``url`` (None: it can), checked without sending."""
        apprise = _apprise()
        if apprise.Apprise().add(url):
            return None
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if not scheme:
            return "not a URL (an Apprise URL such as json://host/path or ntfy://topic)"
        return f"not a URL Apprise can use ({scheme}://: unknown, or its parts are wrong)"

    def send(self, url: str, title: str, body: str) -> None:
        """Deliver, or ``DeliveryFailed`` with the reason (the URL's parts hidden)."""
        apprise = _apprise()
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryFailed(redact(self.known(url) or "not a usable URL", url))
        captured = io.StringIO()
        handler = logging.StreamHandler(captured)
        handler.setLevel(logging.WARNING)
        logger = logging.getLogger("apprise")
        logger.addHandler(handler)
        try:
            ok = in_time(
                self.deadline,
                lambda: bool(notifier.notify(title=title, body=body)),
                name="notify-send",
            )
        except Abandoned as err:
            raise DeliveryFailed(str(err)) from None
        except Exception as err:
            raise DeliveryFailed(redact(f"{type(err).__name__}: {err}", url)) from None
        finally:
            logger.removeHandler(handler)
        if not ok:
            said = [line for line in captured.getvalue().splitlines() if line.strip()]
            raise DeliveryFailed(redact(said[-1] if said else "the target refused it", url))


def _apprise() -> Any:
    import apprise  # noqa: PLC0415 -- heavy; loaded only where a message is sent

    # Apprise logs what it sends to whom; none of it reaches paid's own log,
    # which says what it must itself, redacted.
    logging.getLogger("apprise").propagate = False
    return apprise


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` and each of its parts (host, user, password, path, query) hidden.

    Tokens sit in different parts for different services (Slack's in the
    host position, a webhook's in its path or query), so every part of at
    least 4 characters goes, in its plain and its percent-encoded form.
    """
    parts = {url}
    try:
        split = urlsplit(url)
        parts.update(
            p
            for p in (split.netloc, split.username, split.password, split.hostname, split.query)
            if p
        )
        parts.update(re.split(r"[/#]", split.path + "#" + split.fragment))
        parts.update(v for _, v in parse_qsl(split.query))
    except ValueError:
        pass
    secrets = {p for p in parts | {unquote(p) for p in parts} if p and len(p) >= 4}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
