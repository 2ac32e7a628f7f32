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
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from paid import __version__
from paid.cli import manual
from paid.cli.commands import COMMANDS

EVERY = "*"  # build_parser's argument: every command's own parser
EXIT_USAGE = 64  # sysexits' EX_USAGE: never 2, which means "changes pending"


class _Parser(argparse.ArgumentParser):
    """argparse, as a command line people type should behave.

    - A usage error exits 64, not 2 (plan's "changes pending").
    - A misspelt command or option gets "did you mean".
    - Options are never abbreviated: ``--output json`` is not ``--output-dir json``.
    - Descriptions and examples keep their line breaks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Unknown arguments are the (sub)command's own error, with its usage and options.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            wrong, known = choice[1], re.findall(r"'([^']*)'", choice[2])
        else:
            unknown = re.search(r"unrecognized arguments: (\S+)", message)
            if not unknown or not unknown[1].startswith("-"):
                return ""
            wrong = unknown[1].split("=", 1)[0]
            known = [o for a in self._actions for o in a.option_strings]
        close = difflib.get_close_matches(wrong, known, n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else ""


def build_parser(command: str | None = EVERY) -> argparse.ArgumentParser:
    """The parser: ``command``'s own (and its module's other commands) in full.

    Every other command is only named, with its line of help (``COMMANDS``),
    so a command imports only its own module. ``EVERY``: all in full (shell
    completion, the tests); None: none (``paid --help``, a misspelt command).
    """
    parser = _Parser(
        prog="paid", description="Keep Podman converged to a declarative desired state."
    )
    parser.add_argument("--version", action="version", version=f"paid {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    wanted = sorted({m for m, _ in COMMANDS.values()}) if command == EVERY else []
    if command in COMMANDS:
        wanted = [COMMANDS[command][0]]
    modules = [_module(name) for name in wanted]
    if modules:
        from paid.cli.options import parents  # noqa: PLC0415 -- only when a command runs

        shared = parents()
        for module in modules:
            module.register(sub, shared)
    for name, (module_name, line) in COMMANDS.items():
        if module_name not in wanted:
            sub.add_parser(name, help=line, add_help=False)
    _order(sub)
    manual.describe(parser)
    return parser


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"paid.cli.{name}")


def _order(sub: Any) -> None:
    """Commands listed in ``COMMANDS``' order, whichever were built in full."""
    rank = {name: i for i, name in enumerate(COMMANDS)}
    sub._choices_actions.sort(key=lambda a: rank.get(a.dest, len(rank)))


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_of(words)).parse_args(words)
    if getattr(args, "logs", True):  # validate and schema log nothing: no structlog for them
        from paid import logs  # noqa: PLC0415

        level = logs.level_of(
            name=getattr(args, "log_level", None),
            quiet=getattr(args, "quiet", 0),
            verbose=getattr(args, "verbose", 0),
        )
        logs.configure(getattr(args, "log_format", "auto"), level=level)
    from paid.cli.common import EXIT_ERROR, fail  # noqa: PLC0415
    from paid.runtime.base import RuntimeFailure, RuntimeUnavailable  # noqa: PLC0415
    from paid.settings import TimingsError  # noqa: PLC0415
    from paid.state.secrets import SecretUnavailable  # noqa: PLC0415
    from paid.storage.store import StoreError  # noqa: PLC0415

    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        # `paid ... | head`: the reader is gone; end quietly, as a filter should.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except RuntimeUnavailable as err:
        fail(args, f"paid: cannot reach Podman at {args.podman_url}: {err}{_socket_hint(args)}")
        return EXIT_ERROR
    except RuntimeFailure as err:  # Podman answered, and said no
        fail(args, f"paid: Podman at {args.podman_url} refused: {err}")
        return EXIT_ERROR
    except (StoreError, SecretUnavailable) as err:
        fail(args, f"paid: {err}")
        return EXIT_ERROR
    except TimingsError as err:
        fail(args, f"paid: PAID_TIMINGS: {err}")
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
