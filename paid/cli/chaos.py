"""``paid chaos``: break managed services under the running daemon and time the recovery."""

from __future__ import annotations

import argparse
import json
import re

from paid.cli.common import (
    DEFAULT_LISTEN,
    EXIT_ERROR,
    EXIT_OK,
    daemon_get,
    daemon_status,
    env,
    load,
    out,
    podman,
    print_errors,
    stderr,
    table,
)
from paid.cli.options import Parents, Subparsers
from paid.controllers.chaos import Breakage, Chaos, ChaosReport, Round
from paid.state.specs import RestartPolicy, ServiceSpec
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    common, loading = parents.common, parents.loading
    chaos = sub.add_parser(
        "chaos",
        parents=[common, loading, parents.output],
        help="break managed services under the running daemon; time each recovery",
    )
    chaos.add_argument("--rounds", type=int, default=5, help="default 5")
    chaos.add_argument(
        "--action", choices=[str(b) for b in Breakage], default="kill", help="default kill"
    )
    chaos.add_argument(
        "--service", action="append", default=[], help="only these services (repeatable)"
    )
    chaos.add_argument("--seed", type=int, help="make the choices repeatable")
    chaos.add_argument(
        "--deadline",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a round that takes longer fails the run (default 60)",
    )
    chaos.add_argument(
        "--listen",
        default=env("LISTEN", DEFAULT_LISTEN),
        help="where the daemon answers (env PAID_LISTEN)",
    )
    chaos.set_defaults(handler=_chaos)


class _Daemon:
    """The daemon as chaos sees it: its /status, over HTTP."""

    def __init__(self, listen: str) -> None:
        self.listen = listen

    def ready_container(self, service: str) -> str | None:
        doc = daemon_status(self.listen) or {}
        for entry in doc.get("services", []):
            if entry.get("name") == service:
                health = entry.get("health") or {}
                return str(health["containerId"]) if health.get("ready") else None
        return None


def _chaos(args: argparse.Namespace) -> int:
    if args.rounds < 1:
        stderr("paid: --rounds must be at least 1")
        return EXIT_ERROR
    problem = _daemon_problem(args.listen)
    if problem:
        stderr(f"paid: {problem}")
        return EXIT_ERROR
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    # Only what the daemon is meant to bring back: enabled, restartPolicy Always.
    names = [
        s.name
        for s in result.desired
        if s.spec.enabled and s.spec.restart_policy is RestartPolicy.ALWAYS
    ]
    if args.service:
        unknown = sorted(set(args.service) - set(names))
        if unknown:
            stderr(
                f"paid: not services of {args.dir} that paid keeps running "
                f"(enabled, restartPolicy Always): {', '.join(unknown)}"
            )
            return EXIT_ERROR
        names = list(args.service)
    if not names:
        stderr("paid: no enabled service with restartPolicy Always to break")
        return EXIT_ERROR
    specs: dict[str, ServiceSpec] = {s.name: s.spec for s in result.desired}
    runtime = podman(args)

    def show(r: Round) -> None:
        if args.output == "json":
            return
        took = f"{r.seconds:.2f} s" if r.seconds is not None else f"MISSED ({r.detail})"
        out(f"round {r.number}: {r.action} {r.service}: {took}")

    try:
        with Store.open(args.state_dir) as store:
            report = Chaos(
                runtime=runtime, daemon=_Daemon(args.listen), store=store, seed=args.seed
            ).run(
                names,
                rounds=args.rounds,
                action=Breakage(args.action),
                deadline=args.deadline,
                grace=lambda name: specs[name].termination_grace_period_seconds,
                progress=show,
            )
    finally:
        runtime.close()
    if args.output == "json":
        out(json.dumps(_report_json(report, args.deadline), indent=2))
        return EXIT_ERROR if report.missed else EXIT_OK
    table(
        ("ROUND", "SERVICE", "ACTION", "RECOVERY", "RESULT"),
        [
            (
                str(r.number),
                r.service,
                r.action,
                "-" if r.seconds is None else f"{r.seconds:.2f} s",
                "ok" if r.recovered else f"MISSED: {r.detail}",
            )
            for r in report.rounds
        ],
    )
    if report.median is not None and report.maximum is not None:
        out(
            f"recovered {len(report.recovered)}/{len(report.rounds)}: "
            f"median {report.median:.2f} s, max {report.maximum:.2f} s "
            f"(deadline {args.deadline:g} s)"
        )
    return EXIT_ERROR if report.missed else EXIT_OK


def _report_json(report: ChaosReport, deadline: float) -> dict[str, object]:
    """``paid chaos --output json``: every round, and the summary."""
    return {
        "rounds": [
            {
                "round": r.number,
                "service": r.service,
                "action": r.action,
                "recovered": r.recovered,
                "seconds": r.seconds,
                "detail": r.detail or None,
            }
            for r in report.rounds
        ],
        "recovered": len(report.recovered),
        "medianSeconds": report.median,
        "maxSeconds": report.maximum,
        "deadlineSeconds": deadline,
    }


def _daemon_problem(listen: str) -> str | None:
    """Why chaos must not start: no daemon, not ready, or the chaos flag off."""
    ready = daemon_get(listen, "/readyz")
    if ready is None:
        return f"no paid daemon answers on {listen}: chaos needs one to heal what it breaks"
    if ready[0] != 200:
        return f"the daemon on {listen} is not ready ({ready[1].strip()}): fix that first"
    metrics = daemon_get(listen, "/metrics")
    text = metrics[1] if metrics else ""
    flag = re.search(r'^paid_feature_flag\{flag="chaos"\} (\S+)$', text, re.MULTILINE)
    if flag is not None and float(flag[1]) == 0:
        return "the daemon's chaos feature flag is off"
    return None
