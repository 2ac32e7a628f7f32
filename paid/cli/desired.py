"""``paid validate``, ``plan``, ``apply`` and ``preflight``: the desired state against this host.

``plan`` and ``apply --dry-run`` ask the reconciler what it would do
(``Reconciler.plan``, the same steps ``apply`` takes), so a plan says
exactly what ``apply`` does; both exit 2 when that changes anything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence

from paid.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    load,
    out,
    podman,
    print_errors,
    registry,
    secret_source,
    stderr,
    table,
)
from paid.cli.options import Parents, Subparsers, timings
from paid.controllers import wiring
from paid.controllers.converging import ConvergeReport, converge
from paid.controllers.preflight import DiskThresholds, failed, preflight
from paid.controllers.reconciling import World
from paid.controllers.services import Outcome
from paid.controllers.wiring import Mode
from paid.controllers.worlds import Wants
from paid.runtime.resilient import ResilientRuntime
from paid.state.checks import Check
from paid.state.desired import DesiredState
from paid.state.images import Update
from paid.state.plans import ActionKind, Plan
from paid.storage.checkout import describe
from paid.storage.lock import LockHeld, WriterLock
from paid.storage.store import Store

_SYMBOLS = {
    ActionKind.CREATE: "+",
    ActionKind.RECREATE: "~",
    ActionKind.START: ">",
    ActionKind.RESTART: "↻",
    ActionKind.REMOVE: "-",
    ActionKind.CONFLICT: "!",
    ActionKind.STOP: "■",
    ActionKind.UPDATE: "~",
}


def register(sub: Subparsers, parents: Parents) -> None:
    p = parents
    sub.add_parser(
        "plan",
        parents=[p.common, p.loading, p.guard, p.output],
        help="show what apply would do (0 nothing, 2 changes, 1 error)",
    ).set_defaults(handler=_plan)
    apply = sub.add_parser(
        "apply",
        parents=[p.common, p.loading, p.guard, p.backups, p.workers, p.output],
        help="converge once and exit (0 converged, 1 not)",
    )
    apply.add_argument(
        "--dry-run", action="store_true", help="print the plan, change nothing (exit as plan)"
    )
    apply.add_argument(
        "--skip-preflight", action="store_true", help="do not run the pre-flight checks first"
    )
    apply.add_argument(
        "--wait",
        action="store_true",
        help="when another apply holds the state, wait for it instead of stopping "
        "(a daemon holds it for good: without --wait, apply hands its work to it)",
    )
    apply.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --wait, stop waiting after this long (exit 1); default: as long as it takes",
    )
    apply.set_defaults(handler=_apply)
    checks = sub.add_parser(
        "preflight",
        parents=[p.common, p.loading, p.output, p.backups],
        help="check that this host can run the desired state (1 on any FAIL)",
    )
    checks.add_argument(
        "--disk-warn",
        type=float,
        default=DiskThresholds().warn_percent,
        metavar="PERCENT",
        help="WARN below this much free disk (default 10)",
    )
    checks.add_argument(
        "--disk-fail",
        type=float,
        default=DiskThresholds().fail_percent,
        metavar="PERCENT",
        help="FAIL below this much free disk (default 2)",
    )
    checks.set_defaults(handler=_preflight)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 365 * 86400:
        raise argparse.ArgumentTypeError(f"{value!r}: between 0 and a year of seconds")
    return seconds


def _plan(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    plan = _compute_plan(args, result.desired)
    if args.output == "json":
        out(json.dumps(plan.to_json(), indent=2))
    else:
        _print_plan(plan)
    return _plan_code(plan)


def _plan_code(plan: Plan) -> int:
    """2 when apply would change something or holds a change back; 0 when all is as desired."""
    return EXIT_CHANGES if plan.mutating or plan.withheld else EXIT_OK


def _compute_plan(args: argparse.Namespace, desired: DesiredState) -> Plan:
    """What ``paid apply`` would do: the reconciler's own steps, taken by nobody.

    Built as apply builds it, image controller included: a following service's
    tag is resolved as apply would resolve it (read, not recorded).
    """
    runtime = podman(args)
    checker = registry(args)
    try:
        with Store.open(args.state_dir) as store:
            reconciler = wiring.build(
                runtime,
                store,
                Wants(desired=lambda: desired, allow_mass_prune=args.allow_mass_prune),
                secrets=secret_source(args),
                registry=checker,
                mode=Mode.PLAN,
            )
            try:
                world = reconciler.observe()
                assert world is not None  # noqa: S101 -- desired is given
                return reconciler.plan(world)
            finally:
                reconciler.close()
    finally:
        runtime.close()
        checker.close()


def _print_plan(plan: Plan) -> None:
    if plan.empty:
        out("No changes: the host matches the desired state.")
        return
    paint = _painter()
    for network in plan.networks:
        kind = ActionKind(str(network.kind))  # the same words: create, recreate, remove, conflict
        symbol = paint(_SYMBOLS[kind], _COLOURS.get(kind, ""))
        out(f"{symbol} {network.kind:<8} network {network.network}: {network.reason}")
    for action in plan.actions:
        symbol = paint(_SYMBOLS[action.kind], _COLOURS.get(action.kind, ""))
        out(f"{symbol} {action.kind:<8} {action.service}: {action.reason}")
        for change in action.changes:
            out(f"    {change.path}: {_shown(change.old)} → {_shown(change.new)}")
    for action in plan.withheld:
        out(f"  (withheld) {action.kind} {action.service}: {action.reason}")
    for note in plan.notes:
        out(f"note: {note}")


_COLOURS = {
    ActionKind.CREATE: "32",  # green
    ActionKind.REMOVE: "31",  # red
    ActionKind.CONFLICT: "31",
    ActionKind.RECREATE: "33",  # yellow
    ActionKind.UPDATE: "33",
}


def _painter() -> Callable[[str, str], str]:
    """ANSI colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return lambda text, colour: text
    return lambda text, colour: f"\033[{colour}m{text}\033[0m" if colour else text


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _apply(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    if args.dry_run:
        plan = _compute_plan(args, result.desired)
        _print_plan(plan)
        return _plan_code(plan)
    lock, code = take_writer_lock(args, "apply")
    if lock is None:
        return code
    with lock:
        return converge_once(args, result.desired)


def take_writer_lock(args: argparse.Namespace, role: str) -> tuple[WriterLock | None, int]:
    """The writer lock, or the exit code of handing over (to a daemon) or of stopping."""
    lock = WriterLock(args.state_dir)
    try:
        lock.acquire(role=role, directory=args.dir)
    except LockHeld as held:
        handed = _hand_over(args, held)
        if handed is not None:
            return None, handed
        try:
            lock.acquire(
                role=role,
                directory=args.dir,
                wait=True,
                timeout=getattr(args, "wait_timeout", None),
            )
        except LockHeld as still:
            stderr(f"paid: {still}, still after --wait-timeout {args.wait_timeout:g} s")
            return None, EXIT_ERROR
    return lock, EXIT_OK


def _hand_over(args: argparse.Namespace, held: LockHeld) -> int | None:
    """Another writer holds the state: hand the work to the daemon, wait, or stop.

    Returns the exit code, or None when the caller is to wait for the lock.
    """
    holder = held.holder
    same_directory = holder is not None and holder.directory == os.path.realpath(args.dir)
    if args.wait and (holder is None or holder.role != "daemon"):
        stderr(f"paid: waiting for {holder or 'another paid'} to release {held.path} ...")
        return None
    if args.wait:
        stderr(
            f"paid: {held}: a daemon holds the state for as long as it runs, so --wait would "
            "never end; apply without --wait hands the work to it, or stop it first"
        )
        return EXIT_ERROR
    if holder is not None and holder.role == "daemon" and same_directory:
        try:
            os.kill(holder.pid, signal.SIGHUP)
        except OSError as err:
            stderr(f"paid: {held}; cannot ask it to reload: {err.strerror}")
            return EXIT_ERROR
        out(
            f"handed to the running daemon (pid {holder.pid}): it reloads {args.dir} now and "
            "converges it through the same health gate; `paid status` shows its progress"
        )
        return EXIT_OK
    if holder is not None and holder.role == "daemon":
        stderr(
            f"paid: {held}, which enforces {holder.directory}, not {args.dir}: "
            "stop it, or apply its directory"
        )
        return EXIT_ERROR
    stderr(f"paid: {held}: it is converging this host; --wait runs this apply after it")
    return EXIT_ERROR


def converge_once(
    args: argparse.Namespace, desired: DesiredState, *, updates: list[Update] | None = None
) -> int:
    """``paid apply``'s drive (``paid update``'s too: ``updates`` become targets first)."""
    from paid.cli import backups  # noqa: PLC0415 -- only a converge needs it

    client = podman(args)
    tuned = timings()
    runtime = ResilientRuntime(client, retry=tuned.podman_retry)
    checker = registry(args)

    def checked(world: World) -> bool:
        """Pre-flight on apply's own first look: one list call for both."""
        if args.skip_preflight:
            return True
        checks = preflight(
            world.requested,
            runtime=runtime,
            state_dir=args.state_dir,
            secrets=secret_source(args),
            backup_dir=str(backups.backup_dir(args)),
            actual=world.actual,
            registry=checker,
        )
        if failed(checks):
            _print_checks(checks)
            stderr(
                "paid: pre-flight checks failed; nothing was changed (--skip-preflight to force)"
            )
            return False
        return True

    try:
        with Store.open(args.state_dir) as store:
            report = converge(
                desired,
                runtime=runtime,
                store=store,
                checkout=describe(args.dir),
                secrets=secret_source(args),
                allow_mass_prune=args.allow_mass_prune,
                progress=out if args.output == "text" else stderr,
                backup=backups.before_rollout(args, runtime, store),
                workers=args.workers,
                timings=tuned,
                gate=checked,
                allowed_host_paths=tuple(args.allow_host_path),
                registry=checker,
                updates=updates or (),
            )
    finally:
        client.close()
        checker.close()
    if args.output == "json":
        out(json.dumps(_report_json(report), indent=2))
    elif not report.refused:
        _print_report(report)
    return EXIT_OK if report.converged else EXIT_ERROR


def _report_json(report: ConvergeReport) -> dict[str, object]:
    """``paid apply --output json``: what was planned, done, rolled out and left."""
    return {
        "converged": report.converged,
        "refused": report.refused,
        "plan": report.plan.to_json(),
        "networks": [{**n.action.to_json(), "error": n.error} for n in report.networks],
        "results": [
            {**r.action.to_json(), "outcome": str(r.outcome), "detail": r.detail or None}
            for r in report.results
        ],
        "rollouts": {
            name: {"result": result, "reason": report.reasons.get(name)}
            for name, result in sorted(report.rollouts.items())
        },
        "unfinished": dict(sorted(report.unfinished.items())),
    }


def _print_report(report: ConvergeReport) -> None:
    if not (report.results or report.rollouts or report.unfinished or report.networks):
        out("No changes: the host matches the desired state.")
        return
    for n in report.networks:
        mark = "ok" if n.error is None else "FAILED" if not n.conflict else "CONFLICT"
        detail = f" ({n.error})" if n.error and not n.conflict else ""
        why = n.error if n.conflict else n.action.reason
        out(f"{mark:<9} {n.action.kind:<8} network {n.action.network}: {why}{detail}")
    for r in report.results:
        mark = "ok" if r.outcome is Outcome.DONE else str(r.outcome).upper()
        detail = f" ({r.detail})" if r.detail else ""
        out(f"{mark:<9} {r.action.kind:<8} {r.action.service}: {r.action.reason}{detail}")
    for name, outcome in sorted(report.rollouts.items()):
        mark = "ok" if outcome == "succeeded" else outcome.upper()
        why = report.reasons.get(name, "")
        out(
            f"{mark:<9} rollout  {name}: {outcome.replace('_', ' ')}" + (f" ({why})" if why else "")
        )
    for name, why in sorted(report.unfinished.items()):
        out(f"{'PENDING':<9} {name}: {why}")
    if report.converged:
        out("converged")
    else:
        failed = [r.action.service for r in report.results if r.outcome is not Outcome.DONE]
        failed += [n.action.network for n in report.networks if n.error is not None]
        bad = [n for n, o in report.rollouts.items() if o != "succeeded"]
        out(
            f"not converged: {len(failed)} actions not applied, {len(bad)} rollouts failed, "
            f"{len(report.unfinished)} services unfinished"
        )


def _preflight(args: argparse.Namespace) -> int:
    from paid.cli import backups  # noqa: PLC0415 -- only a converge needs it

    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    runtime = podman(args)
    try:
        checks = preflight(
            result.desired,
            runtime=runtime,
            state_dir=args.state_dir,
            disk=DiskThresholds(warn_percent=args.disk_warn, fail_percent=args.disk_fail),
            secrets=secret_source(args),
            backup_dir=str(backups.backup_dir(args)),
            registry=registry(args),
        )
    finally:
        runtime.close()
    if args.output == "json":
        out(
            json.dumps(
                {"checks": [c.to_json() for c in checks], "ok": not failed(checks)}, indent=2
            )
        )
    else:
        _print_checks(checks)
    return EXIT_ERROR if failed(checks) else EXIT_OK


def _print_checks(checks: Sequence[Check]) -> None:
    table(
        ("STATUS", "CHECK", "SUBJECT", "REASON"),
        [(str(c.status), c.check, c.subject, c.reason) for c in checks],
    )
