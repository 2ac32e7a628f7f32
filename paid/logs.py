"""structlog set-up: JSON lines for machines, readable lines for people.

Logs go to stderr so that a command's own output (a plan, a table, JSON)
stays alone on stdout.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "console", "json"]


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip


def level_of(*, name: str | None, quiet: int, verbose: int) -> int:
    """``--log-level`` wins; else each ``-q`` raises and each ``-v`` lowers it from info."""
    if name:
        return LEVELS[name]
    steps = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]
    index = min(max(1 + quiet - verbose, 0), len(steps) - 1)
    return steps[index]


def configure(fmt: LogFormat = "auto", *, level: int = logging.INFO) -> None:
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and not os.environ.get("NO_COLOR"))
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_none,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_StderrLogger.factory,
        cache_logger_on_first_use=False,
    )


def _drop_none(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return {k: v for k, v in event.items() if v is not None}


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is *now* (tests swap it), one line a call."""

    @classmethod
    def factory(cls, *args: object) -> _StderrLogger:
        return cls()

    def msg(self, message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (BrokenPipeError, ValueError):
            # The reader is gone (``paid apply 2>&1 | head``) or stderr is closed: the work
            # goes on, unlogged. Raised here, it would end whatever thread logged, mid-task.
            silence_stderr()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def silence_stderr() -> None:
    """Send what is still written to stderr nowhere (its reader is gone)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 -- for the rest of the process
