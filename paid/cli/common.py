"""What every command shares: exit codes, output, loading the desired state."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paid.state.desired import DesiredService
from paid.state.labels import DEFAULT_INSTANCE
from paid.state.networks import default_network_of
from paid.state.reading import MAX_FILE_BYTES
from paid.storage.loading import LoadResult, load_directory
from paid.storage.secret_files import SecretSource, repository_of

if TYPE_CHECKING:  # imported where used: a command that never asks Podman never loads them
    from paid.runtime.podman import PodmanRuntime
    from paid.runtime.registry import RegistryClient
    from paid.runtime.registry_config import AuthFile

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
DEFAULT_DIR = "desired-state"
DEFAULT_LISTEN = "127.0.0.1:9707"


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"PAID_{name}", default)


def load(args: argparse.Namespace) -> LoadResult:
    """The desired state DIR names: a directory, one file, or ``-`` for standard input."""
    stdin = None
    if args.dir == "-":
        stdin = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)  # over the limit: refused as too big
    return load_directory(
        args.dir,
        stdin=stdin,
        allowed_host_paths=args.allow_host_path,
        secrets=secret_source(args),
        allowed_devices=getattr(args, "allow_device", ()),
        offline=getattr(args, "offline", False),
        default_network=default_network(args),
    )


def podman(args: argparse.Namespace) -> PodmanRuntime:
    """The Podman API client, pulling with ``--authfile``'s credentials when one is named."""
    from paid.runtime.podman import PodmanRuntime  # noqa: PLC0415 -- see TYPE_CHECKING

    return PodmanRuntime(args.podman_url, instance=args.instance, auth=auth_file(args))


def auth_file(args: argparse.Namespace) -> AuthFile:
    from paid.runtime.registry_config import AuthFile  # noqa: PLC0415

    return AuthFile(getattr(args, "authfile", None))


def registry(args: argparse.Namespace) -> RegistryClient:
    """The registry client of update checks and pre-flight, with the same credentials."""
    from paid.runtime.registry import RegistryClient  # noqa: PLC0415

    return RegistryClient(auth=auth_file(args))


def default_network(args: argparse.Namespace) -> str:
    """--default-network, else the instance's own default network."""
    given = getattr(args, "default_network", None)
    return given or default_network_of(getattr(args, "instance", DEFAULT_INSTANCE))


def secret_source(args: argparse.Namespace) -> SecretSource:
    """Secret values under the host key; without a state dir (validate), only checked."""
    state_dir = getattr(args, "state_dir", None)
    identity = getattr(args, "age_identity", None)
    where = {
        "repo": repository_of(getattr(args, "dir", ".")),
        "identity": Path(identity) if identity else None,
    }
    if state_dir is None:
        return SecretSource.checking_only(args.secrets_dir, **where)
    return SecretSource.open(args.secrets_dir, state_dir=state_dir, **where)


def print_errors(result: LoadResult, args: argparse.Namespace | None = None) -> None:
    """Why the desired state does not load: on stderr, and as JSON on stdout with --output json."""
    for error in result.errors:
        stderr(str(error))
    stderr(f"paid: {args_dir_summary(result)}")
    if args is not None and getattr(args, "output", None) == "json":
        out(
            json.dumps(
                {
                    "valid": False,
                    "errors": [
                        {"file": e.file, "line": e.line, "field": e.field, "message": e.message}
                        for e in result.errors
                    ],
                },
                indent=2,
            )
        )


def fail(args: argparse.Namespace, message: str) -> None:
    """A command's failure: on stderr, and as ``{"error": ...}`` on stdout with --output json."""
    stderr(message)
    if getattr(args, "output", None) == "json":
        out(json.dumps({"error": message.removeprefix("paid: ")}, indent=2))


def args_dir_summary(result: LoadResult) -> str:
    count = len(result.errors)
    return f"{count} error{'s' if count != 1 else ''}; nothing was changed"


def named_service(args: argparse.Namespace) -> DesiredService | None:
    """The desired service ``args.service`` names, or None after saying why."""
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return None
    service = result.desired.services.get(args.service)
    if service is None:
        stderr(f"paid: {args.service!r} is not in {args.dir}")
    return service


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def out(text: str) -> None:
    """A line of the command's answer. A reader gone (``| head``) ends the output, not the work:
    the command finishes and exits with its own code."""
    try:
        print(text, file=sys.stdout, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later lines, and the flush at exit, go nowhere
        os.close(devnull)


def stderr(text: str) -> None:
    """A line for the person at the terminal; a reader gone ends these lines, not the work."""
    try:
        print(text, file=sys.stderr, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)


def daemon_get(listen: str, path: str, *, timeout: float = 2.0) -> tuple[int, str] | None:
    """GET ``path`` from the daemon listening on ``listen``: (status, body), or None."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # noqa: S104 -- a wildcard listener answers on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()
    except OSError:
        return None


def daemon_status(listen: str) -> dict[str, Any] | None:
    """The running daemon's /status, if one answers on ``listen``."""
    answer = daemon_get(listen, "/status")
    if answer is None or answer[0] != 200:
        return None
    try:
        doc = json.loads(answer[1])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
