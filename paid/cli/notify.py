"""``paid notify test``: send a test message to every notifier's targets, and say who answered."""

from __future__ import annotations

import argparse
import json
import socket

from paid.cli.common import EXIT_ERROR, EXIT_OK, load, out, print_errors, secret_source, table
from paid.cli.options import Parents, Subparsers
from paid.runtime.notify import AppriseSender, DeliveryFailed
from paid.state.secrets import SecretUnavailable


def register(sub: Subparsers, parents: Parents) -> None:
    group = sub.add_parser("notify", help="notifications: send a test message")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    test = verbs.add_parser(
        "test",
        parents=[parents.loading, parents.output],
        help="send a test message to each target of each Notifier (0 all answered, 1 not)",
    )
    test.add_argument(
        "--deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long each target has to take the message (default 10)",
    )
    test.set_defaults(handler=_test)


def _test(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    notifiers = result.desired.notifiers
    if not notifiers:
        out("no Notifier documents in the desired state: nothing to test")
        return EXIT_OK
    secrets = secret_source(args)
    sender = AppriseSender(deadline=args.deadline)
    host = socket.gethostname()
    rows: list[tuple[str, str, str]] = []
    for name in sorted(notifiers):
        for target_name, target in notifiers[name].target_names().items():
            secret = target.secret
            try:
                url = secrets.read(secret.source, encrypted=secret.is_encrypted)[0]
                sender.send(
                    url.decode("utf-8", errors="replace").strip(),
                    f"paid: test message from {host}",
                    f"Notifier {name} reaches this target. Sent by `paid notify test` on {host}.",
                )
            except (SecretUnavailable, DeliveryFailed) as err:
                rows.append((target_name, "failed", str(err)))
            else:
                rows.append((target_name, "delivered", ""))
    if getattr(args, "output", "text") == "json":
        out(json.dumps([{"target": t, "result": r, "detail": d} for t, r, d in rows]))
    else:
        table(("TARGET", "RESULT", "DETAIL"), rows)
    return EXIT_OK if all(r == "delivered" for _, r, _ in rows) else EXIT_ERROR
