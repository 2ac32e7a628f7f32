"""The ``paid`` command line.

Exit codes are part of the contract (see DESIGN.md): ``validate`` 0/1,
``plan`` 0 no changes / 2 changes pending / 1 error, ``apply`` 0 converged
/ 1 not. Output meant for people or scripts goes to stdout; logs go to
stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from paid import __version__, logs, settings
from paid.cli import backups, chaos, reports
from paid.cli.common import (
    DEFAULT_DIR,
    DEFAULT_LISTEN,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    daemon_status,
    env,
    load,
    named_service,
    out,
    print_errors,
    secret_source,
    stderr,
    table,
)
from paid.controllers.converging import ConvergeReport, converge
from paid.controllers.preflight import Check, DiskThresholds, failed, preflight
from paid.controllers.rollouts import effective_state
from paid.controllers.services import Outcome
from paid.runtime.base import RuntimeFailure
from paid.runtime.podman import PodmanRuntime
from paid.state import secrets as secret_files
from paid.state.checkout import describe
from paid.state.desired import DesiredState
from paid.state.diffing import diff
from paid.state.plans import ActionKind, Plan
from paid.state.secrets import SecretUnavailable
from paid.state.statuses import service_statuses
from paid.state.store import Store, StoreError

_SYMBOLS = {
    ActionKind.CREATE: "+",
    ActionKind.RECREATE: "~",
    ActionKind.START: ">",
    ActionKind.RESTART: "↻",
    ActionKind.REMOVE: "-",
    ActionKind.CONFLICT: "!",
    ActionKind.STOP: "■",
}


def build_parser() -> argparse.ArgumentParser:
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
        "--secrets-dir",
        default=env("SECRETS_DIR", secret_files.DEFAULT_DIRECTORY),
        metavar="DIR",
        help="where secretEnv files are read (env PAID_SECRETS_DIR; default /etc/paid/secrets)",
    )
    directory = argparse.ArgumentParser(add_help=False)
    directory.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    loading = argparse.ArgumentParser(add_help=False, parents=[directory, host_paths])
    guard = argparse.ArgumentParser(add_help=False)
    guard.add_argument(
        "--allow-mass-prune",
        action="store_true",
        help="remove services even when more than half of the managed ones would go",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", choices=("text", "json"), default="text")

    parser = argparse.ArgumentParser(
        prog="paid", description="Keep Podman converged to a declarative desired state."
    )
    parser.add_argument("--version", action="version", version=f"paid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "validate",
        parents=[loading, output],
        help="check a desired-state directory (0 valid, 1 not)",
    )
    sub.add_parser(
        "plan",
        parents=[common, loading, guard, output],
        help="show what apply would do (0 nothing, 2 changes, 1 error)",
    )
    apply = sub.add_parser(
        "apply",
        parents=[common, loading, guard, backups.options()],
        help="converge once and exit (0 converged, 1 not)",
    )
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument(
        "--skip-preflight", action="store_true", help="do not run the pre-flight checks first"
    )
    preflight_parser = sub.add_parser(
        "preflight",
        parents=[common, loading, output, backups.options()],
        help="check that this host can run the desired state (1 on any FAIL)",
    )
    preflight_parser.add_argument(
        "--disk-warn",
        type=float,
        default=DiskThresholds().warn_percent,
        metavar="PERCENT",
        help="WARN below this much free disk (default 10)",
    )
    preflight_parser.add_argument(
        "--disk-fail",
        type=float,
        default=DiskThresholds().fail_percent,
        metavar="PERCENT",
        help="FAIL below this much free disk (default 2)",
    )
    status = sub.add_parser(
        "status", parents=[common, loading, output], help="what runs, against what is desired"
    )
    status.add_argument(
        "--listen",
        default=env("LISTEN", DEFAULT_LISTEN),
        help="ask the daemon there first (env PAID_LISTEN); without one, look for yourself",
    )
    history = sub.add_parser(
        "history", parents=[common, output], help="the revisions of a service, with outcomes"
    )
    history.add_argument("service")
    rollback = sub.add_parser(
        "rollback",
        parents=[common, host_paths],
        help="go back to an earlier revision (through the health gate) and stay there",
    )
    rollback.add_argument("service")
    rollback.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    rollback.add_argument("--to-revision", type=int, metavar="N", help="default: the last good one")
    rollout = sub.add_parser("rollout", help="manage rollouts")
    rollout_sub = rollout.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")
    retry = rollout_sub.add_parser(
        "retry",
        parents=[common, host_paths],
        help="let a quarantined revision be rolled out again",
    )
    retry.add_argument("service")
    retry.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    run = sub.add_parser(
        "run",
        parents=[common, loading, guard, backups.options(), reports.slo_options()],
        help="the daemon: keep the host converged",
    )
    run.add_argument(
        "--listen",
        default=env("LISTEN", DEFAULT_LISTEN),
        help="HTTP address for /metrics, /healthz, /readyz, /status (env PAID_LISTEN)",
    )
    run.add_argument(
        "--resync-interval",
        type=float,
        default=float(env("RESYNC_INTERVAL", "30") or 30),
        metavar="SECONDS",
        help="full resync period (env PAID_RESYNC_INTERVAL; default 30)",
    )
    run.add_argument(
        "--watch-interval",
        type=float,
        default=float(env("WATCH_INTERVAL", "1") or 1),
        metavar="SECONDS",
        help="how often to look for desired-state changes (default 1)",
    )
    run.add_argument(
        "--flags",
        default=env("FLAGS"),
        metavar="FILE",
        help="feature flags file, re-read when it changes (env PAID_FLAGS)",
    )
    run.add_argument(
        "--no-watch-events",
        dest="watch_events",
        action="store_false",
        help="do not follow Podman's event stream: heal on the periodic resync only",
    )
    run.add_argument(
        "--git-pull-interval",
        type=float,
        default=float(env("GIT_PULL_INTERVAL", "0") or 0),
        metavar="SECONDS",
        help="fetch and fast-forward the checkout this often (env PAID_GIT_PULL_INTERVAL; 0: off)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=int(env("WORKERS", "4") or 4),
        help="services reconciled in parallel (default 4)",
    )
    backups.register(sub, common=common, host_paths=host_paths, output=output)
    reports.register(sub, common=common, loading=loading, output=output)
    chaos.register(sub, common=common, loading=loading)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(getattr(args, "log_format", "auto"))
    commands = {
        "validate": _validate,
        "plan": _plan,
        "apply": _apply,
        "status": _status,
        "run": _run,
        "history": _history,
        "rollback": _rollback,
        "rollout": _rollout_retry,
        "preflight": _preflight,
    }
    # Commands registered by their own modules name their handler.
    command = getattr(args, "handler", None) or commands[args.command]
    try:
        return command(args)
    except RuntimeFailure as err:
        stderr(f"paid: cannot reach Podman at {args.podman_url}: {err}")
        return EXIT_ERROR
    except (StoreError, SecretUnavailable) as err:
        stderr(f"paid: {err}")
        return EXIT_ERROR


def _validate(args: argparse.Namespace) -> int:
    result = load(args)
    if args.output == "json":
        out(
            json.dumps(
                {
                    "valid": result.ok,
                    "services": sorted(result.desired.services) if result.desired else [],
                    "errors": [
                        {"file": e.file, "line": e.line, "field": e.field, "message": e.message}
                        for e in result.errors
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK if result.ok else EXIT_ERROR
    if result.desired is None:
        print_errors(result)
        return EXIT_ERROR
    out(f"{args.dir}: {len(result.desired)} services in {len(result.files)} files, valid")
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result)
        return EXIT_ERROR
    plan = _compute_plan(args, result.desired)
    if args.output == "json":
        out(json.dumps(plan.to_json(), indent=2))
    else:
        _print_plan(plan)
    return EXIT_OK if plan.empty else EXIT_CHANGES


def _compute_plan(args: argparse.Namespace, desired: DesiredState) -> Plan:
    runtime = PodmanRuntime(args.podman_url)
    try:
        return diff(desired, runtime.list_containers(), allow_mass_prune=args.allow_mass_prune)
    finally:
        runtime.close()


def _print_plan(plan: Plan) -> None:
    if plan.empty:
        out("No changes: the host matches the desired state.")
        return
    for action in plan.actions:
        out(f"{_SYMBOLS[action.kind]} {action.kind:<8} {action.service}: {action.reason}")
    for action in plan.withheld:
        out(f"  (withheld) {action.kind} {action.service}: {action.reason}")
    for note in plan.notes:
        out(f"note: {note}")


def _apply(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result)
        return EXIT_ERROR
    if args.dry_run:
        plan = _compute_plan(args, result.desired)
        _print_plan(plan)
        return EXIT_OK
    runtime = PodmanRuntime(args.podman_url)
    if not args.skip_preflight:
        checks = preflight(
            result.desired,
            runtime=runtime,
            state_dir=args.state_dir,
            secrets=secret_source(args),
            backup_dir=str(backups.backup_dir(args)),
        )
        if failed(checks):
            _print_checks(checks)
            stderr(
                "paid: pre-flight checks failed; nothing was changed (--skip-preflight to force)"
            )
            runtime.close()
            return EXIT_ERROR
    try:
        with Store.open(args.state_dir) as store:
            report = converge(
                result.desired,
                runtime=runtime,
                store=store,
                checkout=describe(args.dir),
                secrets=secret_source(args),
                allow_mass_prune=args.allow_mass_prune,
                progress=out,
                backup=backups.before_rollout(args, runtime, store),
            )
    finally:
        runtime.close()
    _print_report(report)
    return EXIT_OK if report.converged else EXIT_ERROR


def _print_report(report: ConvergeReport) -> None:
    if not report.results and not report.rollouts and not report.unfinished:
        out("No changes: the host matches the desired state.")
        return
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
        failed = [r for r in report.results if r.outcome is not Outcome.DONE]
        bad = [n for n, o in report.rollouts.items() if o != "succeeded"]
        out(
            f"not converged: {len(failed)} actions not applied, {len(bad)} rollouts failed, "
            f"{len(report.unfinished)} services unfinished"
        )


def _preflight(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result)
        return EXIT_ERROR
    runtime = PodmanRuntime(args.podman_url)
    try:
        checks = preflight(
            result.desired,
            runtime=runtime,
            state_dir=args.state_dir,
            disk=DiskThresholds(warn_percent=args.disk_warn, fail_percent=args.disk_fail),
            secrets=secret_source(args),
            backup_dir=str(backups.backup_dir(args)),
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


def _status(args: argparse.Namespace) -> int:
    doc = daemon_status(args.listen)
    if doc is not None:
        if args.output == "json":
            out(json.dumps({**doc, "source": f"daemon at {args.listen}"}, indent=2))
            return EXIT_OK
        rows = []
        for svc in doc.get("services", []):
            phase = svc.get("phase", "")
            if svc.get("crashLoopBackOff"):
                phase = "CrashLoopBackOff"
            elif svc.get("rollout"):
                phase = f"RollingOut({svc['rollout']['phase']})"
            elif svc.get("waitingFor"):
                phase = "Waiting(" + ",".join(svc["waitingFor"]) + ")"
            ready = (svc.get("health") or {}).get("ready")
            rows.append(
                (
                    svc.get("name", ""),
                    phase,
                    "yes" if ready else ("no" if ready is False else "-"),
                    f"{_rev(svc.get('runningRevision'))}/{_rev(svc.get('desiredRevision'))}",
                    svc.get("image") or svc.get("desiredImage") or "-",
                    svc.get("note") or "",
                )
            )
        out(
            f"from the daemon at {args.listen}: "
            + ("ready" if doc.get("ready") else str(doc.get("reason")))
        )
        table(("SERVICE", "PHASE", "READY", "REVISION", "IMAGE", "NOTE"), rows)
        return EXIT_OK
    result = load(args)
    desired = result.desired
    runtime = PodmanRuntime(args.podman_url)
    try:
        actual = runtime.list_containers()
    finally:
        runtime.close()
    revisions: dict[str, int] = {}
    notes: dict[str, str] = {}
    if desired is not None and os.path.exists(os.path.join(args.state_dir, "paid.db")):
        with Store.open(args.state_dir) as store:
            for service in desired:
                number = store.find_revision(service=service.name, spec_hash=service.spec_hash)
                if number is not None:
                    revisions[service.name] = number
            # A pin or a quarantine is drift from the desired state, shown as such.
            notes = effective_state(desired, store, secret_source(args)).notes
    statuses = service_statuses(desired, actual, revisions=revisions)
    if args.output == "json":
        report: dict[str, Any] = {
            "desiredState": {
                "dir": args.dir,
                "valid": result.ok,
                "errors": [str(e) for e in result.errors],
            },
            "services": [{**s.to_json(), "note": notes.get(s.name)} for s in statuses],
        }
        out(json.dumps(report, indent=2))
        return EXIT_OK
    if not result.ok:
        stderr(f"paid: {args.dir} does not validate ({len(result.errors)} errors); phases unknown")
    header = ("SERVICE", "PHASE", "STATE", "REVISION", "IMAGE", "NOTE")
    rows = [
        (
            s.name,
            str(s.phase),
            s.state or "-",
            f"{_rev(s.running_revision)}/{_rev(s.desired_revision)}",
            s.image or s.desired_image or "-",
            notes.get(s.name, ""),
        )
        for s in statuses
    ]
    table(header, rows)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415 -- the daemon's imports stay off the CLI's path

    from paid.daemon.manager import Manager, Settings  # noqa: PLC0415
    from paid.metrics import Metrics  # noqa: PLC0415
    from paid.runtime.resilient import ResilientRuntime  # noqa: PLC0415

    metrics = Metrics()
    podman = PodmanRuntime(args.podman_url)
    settings = Settings(
        directory=Path(args.dir),
        listen=args.listen,
        resync_interval=args.resync_interval,
        watch_interval=args.watch_interval,
        workers=args.workers,
        watch_events=args.watch_events,
        flags_path=Path(args.flags) if args.flags else None,
        allowed_host_paths=tuple(args.allow_host_path),
        secrets_dir=Path(args.secrets_dir),
        backup_dir=backups.backup_dir(args),
        backup_upload_command=args.backup_upload_command,
        slo_default=args.slo_default,
        git_pull_interval=args.git_pull_interval,
        allow_mass_prune=args.allow_mass_prune,
    )
    with Store.open(args.state_dir) as store:
        try:
            manager = Manager(
                settings,
                runtime=ResilientRuntime(podman, metrics=metrics),
                events=podman,
                store=store,
                metrics=metrics,
            )
        except OSError as err:
            stderr(f"paid: cannot listen on {args.listen}: {err.strerror}")
            return EXIT_ERROR
        return manager.run()


def _history(args: argparse.Namespace) -> int:
    with Store.open(args.state_dir) as store:
        revisions = store.revisions(args.service)
        pin = store.pins().get(args.service)
    if not revisions:
        stderr(f"paid: no revisions of {args.service!r} in {args.state_dir}")
        return EXIT_ERROR
    if args.output == "json":
        out(
            json.dumps(
                {
                    "service": args.service,
                    "pinnedRevision": pin.revision if pin else None,
                    "revisions": [
                        {
                            "revision": r.number,
                            "image": r.image,
                            "specHash": r.spec_hash,
                            "gitCommit": r.git_commit,
                            "gitDirty": r.git_dirty,
                            "createdAt": r.created_at,
                            "updatedAt": r.updated_at,
                            "outcome": r.outcome,
                            "reason": r.reason,
                            "quarantined": r.quarantined,
                        }
                        for r in revisions
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK
    header = ("REVISION", "IMAGE", "HASH", "GIT", "CREATED", "OUTCOME", "REASON")
    rows = [
        (
            str(r.number) + (" (pinned)" if pin and pin.revision == r.number else ""),
            r.image,
            r.spec_hash[:12],
            (r.git_commit or "-")[:12] + ("+dirty" if r.git_dirty else ""),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
            r.outcome + (" (quarantined)" if r.quarantined else ""),
            r.reason or "-",
        )
        for r in revisions
    ]
    table(header, rows)
    return EXIT_OK


def _rollback(args: argparse.Namespace) -> int:
    service = named_service(args)
    if service is None:
        return EXIT_ERROR
    with Store.open(args.state_dir) as store:
        current = store.find_revision(service=service.name, spec_hash=service.spec_hash)
        target = (
            store.revision(service.name, args.to_revision)
            if args.to_revision is not None
            else store.last_good(service.name, excluding=current)
        )
        if target is None or target.document is None:
            what = (
                f"revision {args.to_revision}" if args.to_revision else "an earlier good revision"
            )
            stderr(f"paid: {args.service} has no {what} to roll back to (see paid history)")
            return EXIT_ERROR
        store.pin(
            service.name,
            revision=target.number,
            desired_hash=service.spec_hash,
            reason=f"rollback from revision {current}" if current else "rollback",
        )
        store.record(
            "rollback_requested",
            f"{service.name}: pinned to revision {target.number}",
            service=service.name,
            revision=target.number,
        )
    out(
        f"{service.name} pinned to revision {target.number}: the daemon rolls it out through "
        "the health gate; the pin holds until the desired spec of the service changes."
    )
    return EXIT_OK


def _rollout_retry(args: argparse.Namespace) -> int:
    service = named_service(args)
    if service is None:
        return EXIT_ERROR
    with Store.open(args.state_dir) as store:
        number = store.find_revision(service=service.name, spec_hash=service.spec_hash)
        revision = store.revision(service.name, number) if number is not None else None
        if revision is None or not revision.quarantined:
            out(f"{service.name}: the desired revision is not quarantined; nothing to retry")
            return EXIT_OK
        store.set_outcome(
            service.name, revision.number, "pending", "retry requested", quarantine=False
        )
        store.record(
            "rollout_retry",
            f"{service.name}: revision {revision.number} may roll out again",
            service=service.name,
        )
    out(
        f"{service.name}: revision {revision.number} released from quarantine; "
        "the daemon rolls it out"
    )
    return EXIT_OK


def _rev(number: int | None) -> str:
    return "-" if number is None else str(number)
