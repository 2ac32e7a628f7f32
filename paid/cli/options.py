"""The options commands share, declared once as argparse parent parsers.

A command module's ``register(sub, parents)`` adds its commands with the
parents it needs and names its handler (``set_defaults(handler=...)``).
Every option has an environment variable, ``PAID_<OPTION>``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paid import settings
from paid.cli.common import DEFAULT_DIR, DEFAULT_LISTEN, env
from paid.settings import Timings
from paid.state.labels import DEFAULT_INSTANCE
from paid.state.specs import NAME_PATTERN

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction


@dataclass(frozen=True, slots=True)
class Parents:
    common: argparse.ArgumentParser  # --podman-url, --state-dir, --log-format
    host_paths: argparse.ArgumentParser  # --allow-host-path, --secrets-dir
    directory: argparse.ArgumentParser  # DIR
    loading: argparse.ArgumentParser  # DIR and what loading it needs
    guard: argparse.ArgumentParser  # --allow-mass-prune
    output: argparse.ArgumentParser  # --output text|json
    backups: argparse.ArgumentParser  # --backup-dir, --backup-upload-command
    slo: argparse.ArgumentParser  # --slo-default
    workers: argparse.ArgumentParser  # --workers


def parents() -> Parents:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--podman-url",
        default=env("PODMAN_URL") or settings.default_podman_url(),
        help="Podman API URL (env PAID_PODMAN_URL; default CONTAINER_HOST, else the usual socket)",
    )
    common.add_argument(
        "--state-dir",
        default=env("STATE_DIR") or settings.default_state_dir(),
        help="directory of the SQLite store (env PAID_STATE_DIR)",
    )
    common.add_argument(
        "--instance",
        type=_instance,
        default=env("INSTANCE") or DEFAULT_INSTANCE,
        help="which desired state this is: paid only changes and prunes its own instance's "
        "containers (env PAID_INSTANCE; default: default)",
    )
    common.add_argument(
        "--authfile",
        default=env("AUTHFILE"),
        metavar="FILE",
        help="registry credentials as `podman login` writes them (env PAID_AUTHFILE or "
        "REGISTRY_AUTH_FILE; default: Podman's own)",
    )
    common.add_argument(
        "-q", "--quiet", action="count", default=0, help="fewer log lines (repeatable)"
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log lines (repeatable)"
    )
    common.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=env("LOG_LEVEL"),
        help="log level (env PAID_LOG_LEVEL; default info; overrides -q/-v)",
    )
    common.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default=env("LOG_FORMAT", "auto"),
        help="log lines on stderr: console on a tty, JSON otherwise (env PAID_LOG_FORMAT)",
    )
    host_paths = argparse.ArgumentParser(add_help=False)
    host_paths.add_argument(
        "--allow-host-path",
        action="append",
        default=[p for p in (env("ALLOW_HOST_PATHS") or "").split(":") if p],
        metavar="PREFIX",
        help="host paths under PREFIX may be mounted "
        "(repeatable; env PAID_ALLOW_HOST_PATHS, ':'-separated)",
    )
    host_paths.add_argument(
        "--allow-device",
        action="append",
        default=[p for p in (env("ALLOW_DEVICES") or "").split(":") if p],
        metavar="PATH",
        help="devices at or under PATH may be passed to containers "
        "(repeatable; env PAID_ALLOW_DEVICES, ':'-separated)",
    )
    host_paths.add_argument(
        "--default-network",
        default=env("DEFAULT_NETWORK"),
        metavar="NAME",
        help="the network (DNS on) of services that name none "
        "(env PAID_DEFAULT_NETWORK; default paid, or paid-INSTANCE with --instance)",
    )
    host_paths.add_argument(
        "--secrets-dir",
        default=env("SECRETS_DIR") or settings.default_secrets_dir(),
        metavar="DIR",
        help="where secretEnv files are read (env PAID_SECRETS_DIR; default /etc/paid/secrets "
        "as root, else ~/.config/paid/secrets)",
    )
    host_paths.add_argument(
        "--age-identity",
        default=env("AGE_IDENTITY"),
        metavar="FILE",
        help="the age key file that decrypts the repository's encrypted secrets "
        "(env PAID_AGE_IDENTITY)",
    )
    directory = argparse.ArgumentParser(add_help=False)
    directory.add_argument(
        "dir",
        nargs="?",
        default=DEFAULT_DIR,
        help="the desired state: a directory (default desired-state), one file, or - for stdin",
    )
    loading = argparse.ArgumentParser(add_help=False, parents=[directory, host_paths])
    guard = argparse.ArgumentParser(add_help=False)
    guard.add_argument(
        "--allow-mass-prune",
        action="store_true",
        help="remove services even when more than half of the managed ones would go",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text for people (default), or json for scripts: errors included, on stdout",
    )
    backups = argparse.ArgumentParser(add_help=False)
    backups.add_argument(
        "--backup-dir",
        default=env("BACKUP_DIR"),
        metavar="DIR",
        help="where backups are kept (env PAID_BACKUP_DIR; default <state dir>/backups)",
    )
    backups.add_argument(
        "--backup-upload-command",
        default=env("BACKUP_UPLOAD_COMMAND"),
        metavar="COMMAND",
        help="run after each backup, with PAID_BACKUP_DIR, PAID_BACKUP_ID and "
        "PAID_BACKUP_SERVICE set (env PAID_BACKUP_UPLOAD_COMMAND)",
    )
    slo = argparse.ArgumentParser(add_help=False)
    slo.add_argument(
        "--slo-default",
        type=float,
        default=float(env("SLO_DEFAULT") or 0) or None,
        metavar="PERCENT",
        help="availability objective for services without an slo section (env PAID_SLO_DEFAULT)",
    )
    workers = argparse.ArgumentParser(add_help=False)
    workers.add_argument(
        "--workers",
        type=int,
        default=int(env("WORKERS", "4") or 4),
        help="services reconciled in parallel (env PAID_WORKERS; default 4)",
    )
    return Parents(
        common=common,
        host_paths=host_paths,
        directory=directory,
        loading=loading,
        guard=guard,
        output=output,
        backups=backups,
        slo=slo,
        workers=workers,
    )


def _instance(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: 1-63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    return value


def listen_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--listen", default=env("LISTEN", DEFAULT_LISTEN), help=help_text)


def timings() -> Timings:
    """The loop's timings: the documented defaults, or ``PAID_TIMINGS`` (tests, tuning)."""
    return Timings.parse(env("TIMINGS") or "")
