"""The ``paid`` command line: parsing, dispatch, and errors → exit codes.

Each command module registers its commands (``register(sub, parents)``)
with the shared options of ``paid.cli.options`` and names its handler.
Exit codes are part of the contract: ``validate`` 0/1, ``plan`` and
``apply --dry-run`` 0 nothing to do / 2 changes / 1 error, ``apply`` 0
converged / 1 not. Output meant for people or scripts goes to stdout;
logs go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from paid import __version__, logs
from paid.cli import (
    backups,
    chaos,
    completion,
    daemon,
    desired,
    images,
    migrate,
    reports,
    revisions,
)
from paid.cli.common import EXIT_ERROR, stderr
from paid.cli.options import parents
from paid.controllers.timings import TimingsError
from paid.runtime.base import RuntimeFailure, RuntimeUnavailable
from paid.state.secrets import SecretUnavailable
from paid.state.store import StoreError

COMMANDS = (desired, images, revisions, daemon, backups, reports, chaos, migrate, completion)
EXIT_USAGE = 64  # sysexits' EX_USAGE: never 2, which means "changes pending"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 64, not 2 (plan's "changes pending")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paid", description="Keep Podman converged to a declarative desired state."
    )
    parser.add_argument("--version", action="version", version=f"paid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = parents()
    for module in COMMANDS:
        module.register(sub, shared)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logs.level_of(
        name=getattr(args, "log_level", None),
        quiet=getattr(args, "quiet", 0),
        verbose=getattr(args, "verbose", 0),
    )
    logs.configure(getattr(args, "log_format", "auto"), level=level)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        # `paid ... | head`: the reader is gone; end quietly, as a filter should.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except RuntimeUnavailable as err:
        stderr(f"paid: cannot reach Podman at {args.podman_url}: {err}{_socket_hint(args)}")
        return EXIT_ERROR
    except RuntimeFailure as err:  # Podman answered, and said no
        stderr(f"paid: Podman at {args.podman_url} refused: {err}")
        return EXIT_ERROR
    except (StoreError, SecretUnavailable) as err:
        stderr(f"paid: {err}")
        return EXIT_ERROR
    except TimingsError as err:
        stderr(f"paid: PAID_TIMINGS: {err}")
        return EXIT_ERROR
    return code


def _socket_hint(args: argparse.Namespace) -> str:
    """How to get a Podman API socket, when the one named is not there."""
    url = str(getattr(args, "podman_url", ""))
    if not url.startswith("unix://"):
        return ""
    path = url.removeprefix("unix://")
    if os.path.exists(path):
        return ""
    user = "" if os.getuid() == 0 else " --user"
    return (
        f"\npaid: no Podman API socket at {path}: start one with "
        f"`systemctl{user} enable --now podman.socket` (or `podman system service --time=0 "
        f"unix://{path} &`), or point --podman-url / PAID_PODMAN_URL at yours"
    )
