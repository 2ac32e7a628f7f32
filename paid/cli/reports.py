"""``paid slo`` and ``paid postmortem``: reports from the journal and the readiness record."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from paid.cli.common import EXIT_ERROR, EXIT_OK, load, out, print_errors, stderr, table
from paid.cli.options import Parents, Subparsers
from paid.state.incidents import incident, parse_time, postmortem
from paid.state.slo import measure
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    common, loading, output = parents.common, parents.loading, parents.output
    slo = sub.add_parser(
        "slo",
        parents=[common, loading, output, parents.slo],
        help="availability, error budget and burn rates per service",
    )
    slo.set_defaults(handler=_slo)
    pm = sub.add_parser(
        "postmortem",
        parents=[common],
        help="a Markdown incident report, its timeline filled in from the journal",
    )
    pm.add_argument("--since", default="24h", help="ISO time, or an age such as 2h (default 24h)")
    pm.add_argument("--until", default=None, help="ISO time, or an age (default: now)")
    pm.add_argument("--service", action="append", default=[], help="only these (repeatable)")
    pm.add_argument("--file", metavar="FILE", help="write the report here, not to stdout")
    pm.add_argument(
        "--output",
        default="markdown",
        metavar="markdown|json",
        help="markdown (default) or json; a file name here is the old spelling of --file",
    )
    pm.set_defaults(handler=_postmortem)


def _slo(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    now = time.time()
    with Store.open(args.state_dir) as store:
        reports = list(measure(store, result.desired, default_percent=args.slo_default, now=now))
    if not reports:
        stderr("paid: no service has an slo section (or give --slo-default)")
        return EXIT_ERROR
    if args.output == "json":
        out(json.dumps({"at": now, "services": [r.to_json() for r in reports]}, indent=2))
        return EXIT_OK

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.3f} %"

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    table(
        ("SERVICE", "TARGET", "WINDOW", "AVAILABILITY", "BUDGET", "SPENT", "LEFT", "BURN 1H", "6H"),
        [
            (
                r.objective.service,
                pct(r.objective.target),
                f"{r.objective.window_seconds / 86400:g}d",
                pct(r.tally.availability),
                _duration(r.budget_seconds),
                _duration(r.budget_spent_seconds),
                f"{100 * r.budget_remaining_ratio:.1f} %",
                rate(r.burn_rates[3600.0]),
                rate(r.burn_rates[6 * 3600.0]),
            )
            for r in reports
        ],
    )
    unknown = [r for r in reports if r.tally.unknown > 0]
    if unknown:
        out("(time no daemon was watching counts as unknown, neither up nor down)")
    return EXIT_OK


def _postmortem(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        since = parse_time(args.since, now=now)
        until = parse_time(args.until, now=now) if args.until else now
    except ValueError as err:
        stderr(f"paid: {err}")
        return EXIT_ERROR
    if until <= since:
        stderr("paid: --until must be after --since")
        return EXIT_ERROR
    form, target = args.output, args.file
    if form not in ("markdown", "json"):  # the spelling before --file: --output FILE
        stderr("paid: --output FILE is deprecated and goes in the next release; use --file FILE")
        form, target = "markdown", target or form
    with Store.open(args.state_dir) as store:
        if form == "json":
            facts = incident(store, since=since, until=until, services=args.service)
            text = json.dumps(facts.to_json(), indent=2) + "\n"
        else:
            text = postmortem(store, since=since, until=until, services=args.service)
    if target:
        Path(target).write_text(text)
        out(f"wrote {target}")
    else:
        out(text.rstrip())
    return EXIT_OK


def _duration(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{sign}{seconds:.0f}s"
    if seconds < 7200:
        return f"{sign}{seconds / 60:.1f}m"
    return f"{sign}{seconds / 3600:.1f}h"
