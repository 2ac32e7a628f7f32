"""``paid logs`` and ``paid exec``: a service's container, found by its labels.

Both look the container up by the service's name, check by its ID that it
is paid's and this instance's, and then use that ID: another tool's
container of the same name is never read or entered.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from paid.cli.common import EXIT_ERROR, EXIT_OK, podman, stderr
from paid.cli.options import Parents, Subparsers
from paid.runtime.base import ContainerMissing
from paid.runtime.podman import PodmanRuntime
from paid.state.actual import ActualContainer
from paid.state.incidents import parse_time

REPLACED_POLL = 0.5  # seconds between looks for the next container while following


def register(sub: Subparsers, parents: Parents) -> None:
    logs = sub.add_parser(
        "logs",
        parents=[parents.common],
        help="what a service's container wrote (stdout and stderr)",
    )
    logs.add_argument("service", help="the service's name")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing, across heals and rollouts"
    )
    logs.add_argument(
        "--since", metavar="TIME", help="from this time: ISO 8601, or an age such as 10m or 2h"
    )
    logs.add_argument("-n", "--tail", type=int, metavar="N", help="only the last N lines")
    logs.add_argument(
        "-t", "--timestamps", action="store_true", help="each line with the time it was written"
    )
    logs.set_defaults(handler=_logs)

    enter = sub.add_parser(
        "exec",
        parents=[parents.common],
        help="run a command in a service's container",
    )
    enter.add_argument("service", help="the service's name")
    enter.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command and args")
    enter.add_argument(
        "-T", "--no-tty", action="store_true", help="no terminal, even when stdin is one"
    )
    enter.add_argument("-u", "--user", help="as this user (name or UID[:GID])")
    enter.add_argument("-w", "--workdir", help="in this directory")
    enter.add_argument(
        "-e", "--env", action="append", default=[], metavar="NAME=VALUE", help="(repeatable)"
    )
    enter.set_defaults(handler=_exec)


def _own_container(runtime: PodmanRuntime, service: str) -> ActualContainer | None:
    """The service's container, if it is paid's and this instance's (else None, said why)."""
    container = runtime.inspect_container(service)
    if container is None:
        stderr(f"paid: service {service!r} has no container on this host")
        return None
    if not container.managed:
        owner = "another paid instance's" if container.foreign else "not paid's"
        stderr(f"paid: the container named {service!r} ({container.id[:12]}) is {owner}")
        return None
    return container


def _logs(args: argparse.Namespace) -> int:
    try:
        since = parse_time(args.since, now=time.time()) if args.since else None
    except ValueError as err:
        stderr(f"paid: --since: {err}")
        return EXIT_ERROR
    if args.tail is not None and args.tail < 0:
        stderr("paid: --tail: a number of lines, 0 or more")
        return EXIT_ERROR
    runtime = podman(args)
    try:
        container = _own_container(runtime, args.service)
        if container is None:
            return EXIT_ERROR
        tail = args.tail
        while True:
            try:
                for stream, data in runtime.stream_logs(
                    container.id,
                    follow=args.follow,
                    since=since,
                    tail=tail,
                    timestamps=args.timestamps,
                ):
                    target = sys.stdout if stream == 1 else sys.stderr
                    target.buffer.write(data)
                    target.flush()
            except ContainerMissing:
                pass  # removed while we read: the next one, if following
            if not args.follow:
                return EXIT_OK
            ended = time.time()
            following = _next_container(runtime, args.service, container)
            # The same container restarted: what it wrote since; a new one: all of it.
            since = ended if following.id == container.id else None
            container, tail = following, None
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        runtime.close()


def _next_container(
    runtime: PodmanRuntime, service: str, previous: ActualContainer
) -> ActualContainer:
    """Wait until the service runs again (the same container restarted, or a new one of paid's)."""
    said = False
    while True:
        found = runtime.inspect_container(service)
        if found is not None and found.managed and found.state == "running":
            restarted = (found.started_at or 0) > (previous.started_at or 0)
            if found.id != previous.id or restarted:
                stderr(f"--- paid logs: {service} is running again ({found.id[:12]}) ---")
                return found
        if not said:
            stderr(f"--- paid logs: {service} stopped; waiting for paid to bring it back ---")
            said = True
        time.sleep(REPLACED_POLL)


def _exec(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        stderr("paid: exec: name the command after --, e.g. paid exec web -- sh")
        return EXIT_ERROR
    runtime = podman(args)
    try:
        container = _own_container(runtime, args.service)
        if container is None:
            return EXIT_ERROR
        if container.state != "running":
            stderr(f"paid: {args.service} ({container.id[:12]}) is {container.state}, not running")
            return EXIT_ERROR
        flags = ["--interactive"]
        if sys.stdin.isatty() and not args.no_tty:
            flags.append("--tty")
        if args.user:
            flags += ["--user", args.user]
        if args.workdir:
            flags += ["--workdir", args.workdir]
        for pair in args.env:
            flags += ["--env", pair]
        argv = runtime.handover_argv("exec", *flags, container.id, *command)
    finally:
        runtime.close()
    sys.stdout.flush()
    try:
        os.execv(argv[0], argv)  # noqa: S606 -- podman's own client, with its exit code
    except OSError as err:
        stderr(f"paid: cannot run {argv[0]}: {err.strerror or err}")
    return EXIT_ERROR
