"""``paid status``, ``history``, ``rollback`` and ``rollout retry``: revisions and what runs."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from paid.cli.common import (
    DEFAULT_DIR,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    daemon_status,
    load,
    named_service,
    out,
    podman,
    secret_source,
    stderr,
    table,
)
from paid.cli.desired import converge_once, take_writer_lock
from paid.cli.options import Parents, Subparsers, listen_option
from paid.controllers.effective import effective_state, following
from paid.state.desired import DesiredState
from paid.state.images import short
from paid.state.statuses import service_statuses
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    p = parents
    status = sub.add_parser(
        "status", parents=[p.common, p.loading, p.output], help="what runs, against what is desired"
    )
    listen_option(
        status, "ask the daemon there first (env PAID_LISTEN); without one, look yourself"
    )
    status.set_defaults(handler=_status)
    history = sub.add_parser(
        "history", parents=[p.common, p.output], help="the revisions of a service, with outcomes"
    )
    history.add_argument("service")
    history.set_defaults(handler=_history)
    rollback = sub.add_parser(
        "rollback",
        parents=[p.common, p.host_paths, p.guard, p.backups, p.workers, p.output],
        help="go back to an earlier revision through the health gate, and stay there",
    )
    rollback.add_argument("service")
    rollback.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    rollback.add_argument("--to-revision", type=int, metavar="N", help="default: the last good one")
    rollback.add_argument(
        "--pin-only",
        action="store_true",
        help="only pin: the next apply, or the daemon, rolls it out",
    )
    rollback.add_argument(
        "--no-wait",
        action="store_true",
        help="with a running daemon: hand the rollback over and return at once",
    )
    rollback.add_argument(
        "--skip-preflight", action="store_true", help="do not run the pre-flight checks first"
    )
    rollback.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for a daemon's rollout (default: its progress deadline + 60 s)",
    )
    rollback.set_defaults(handler=_rollback, wait=False)
    rollout = sub.add_parser("rollout", help="manage rollouts")
    verbs = rollout.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")
    retry = verbs.add_parser(
        "retry",
        parents=[p.common, p.host_paths, p.output],
        help="let a quarantined revision be rolled out again",
    )
    retry.add_argument("service")
    retry.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    retry.set_defaults(handler=_rollout_retry)


def _status(args: argparse.Namespace) -> int:
    """What runs against what is desired: 0 all as desired, 2 some not, 1 cannot tell."""
    doc = daemon_status(args.listen)
    if doc is not None:
        source = f"daemon at {args.listen}"
        valid = bool((doc.get("desiredState") or {}).get("valid", True))
        services = list(doc.get("services", []))
        headline = "ready" if doc.get("ready") else str(doc.get("reason"))
    else:
        doc, valid, services = _status_here(args)
        source, headline = "this host", ""
    code = _status_code(valid, services)
    if args.output == "json":
        out(json.dumps({**doc, "source": source, "exitCode": code}, indent=2))
        return code
    if headline:
        out(f"from the {source}: {headline}")
    now = time.time()
    table(
        ("SERVICE", "PHASE", "READY", "REVISION", "PORTS", "AGE", "RESTARTS", "IMAGE", "NOTE"),
        [_status_row(svc, now) for svc in services],
    )
    return code


def _status_here(args: argparse.Namespace) -> tuple[dict[str, Any], bool, list[Any]]:
    """The status document without a daemon: the desired state, Podman's list, the store."""
    result = load(args)
    if result.desired is None:
        for error in result.errors:
            stderr(str(error))
        stderr(f"paid: {args.dir} does not validate ({len(result.errors)} errors); phases unknown")
    desired = result.desired
    runtime = podman(args)
    try:
        actual = runtime.list_containers()
    finally:
        runtime.close()
    revisions: dict[str, int] = {}
    notes: dict[str, str] = {}
    restarts: dict[str, int] = {}
    if os.path.exists(os.path.join(args.state_dir, "paid.db")):
        with Store.open(args.state_dir) as store:
            created = {c.name: c.created_at for c in actual if c.managed and c.created_at}
            restarts = store.restarts_since(created)
            if desired is not None:
                for service in desired:
                    number = store.find_revision(service=service.name, spec_hash=service.spec_hash)
                    if number is not None:
                        revisions[service.name] = number
                # A pin or a quarantine is drift from the desired state, shown as such.
                notes = effective_state(desired, store, secret_source(args)).notes
    statuses = service_statuses(desired, actual, revisions=revisions, restarts=restarts)
    services = [{**s.to_json(), "note": notes.get(s.name)} for s in statuses]
    doc: dict[str, Any] = {
        "desiredState": {
            "dir": args.dir,
            "valid": result.ok,
            "errors": [str(e) for e in result.errors],
        },
        "services": services,
    }
    return doc, result.ok, services


def _status_code(valid: bool, services: list[Any]) -> int:
    """1 when the desired state is not valid; 2 when a service is not as desired; else 0."""
    if not valid:
        return EXIT_ERROR
    settled = ("Running", "Disabled")
    for svc in services:
        ready = (svc.get("health") or {}).get("ready")
        if svc.get("phase") not in settled or svc.get("note") or ready is False:
            return EXIT_CHANGES
        if svc.get("rollout") or svc.get("crashLoopBackOff") or svc.get("waitingFor"):
            return EXIT_CHANGES
    return EXIT_OK


def _status_row(svc: dict[str, Any], now: float) -> tuple[str, ...]:
    phase = str(svc.get("phase", ""))
    if svc.get("crashLoopBackOff"):
        phase = "CrashLoopBackOff"
    elif svc.get("rollout"):
        phase = f"RollingOut({svc['rollout']['phase']})"
    elif svc.get("waitingFor"):
        phase = "Waiting(" + ",".join(svc["waitingFor"]) + ")"
    elif phase == "Stopped" and svc.get("state"):
        phase = f"Stopped({svc['state']})"
    ready = (svc.get("health") or {}).get("ready")
    created = svc.get("createdAt")
    return (
        str(svc.get("name", "")),
        phase,
        "yes" if ready else ("no" if ready is False else "-"),
        f"{_rev(svc.get('runningRevision'))}/{_rev(svc.get('desiredRevision'))}",
        ",".join(svc.get("ports") or ()) or "-",
        _age(now - float(created)) if created else "-",
        str(svc.get("restarts") or 0),
        str(svc.get("image") or svc.get("desiredImage") or "-"),
        str(svc.get("note") or ""),
    )


def _age(seconds: float) -> str:
    """kubectl's way: 45s, 12m, 5h, 3d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


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
                            "imageId": r.image_id,
                            "digest": r.digest or r.spec.get("imageDigest"),
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
    header = (
        "REVISION", "IMAGE", "DIGEST", "IMAGE ID", "HASH", "GIT", "CREATED", "OUTCOME", "REASON"
    )  # fmt: skip
    rows = [
        (
            str(r.number) + (" (pinned)" if pin and pin.revision == r.number else ""),
            r.image,
            short(r.digest or r.spec.get("imageDigest")),
            (r.image_id or "-").removeprefix("sha256:")[:12],
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
    if target.number == current:
        out(f"{service.name} runs revision {target.number} already: nothing to roll back")
        return EXIT_OK
    requested = time.time()
    if args.output == "json" and args.pin_only:
        out(json.dumps({"service": service.name, "pinnedRevision": target.number, "from": current}))
    elif args.output != "json":
        out(
            f"{service.name} pinned to revision {target.number}; the pin holds until the "
            "desired spec of the service changes"
        )
    if args.pin_only:
        return EXIT_OK
    lock, code = take_writer_lock(args, "rollback")
    if lock is None:  # a daemon enforces the directory: it rolls back on the SIGHUP
        if code != EXIT_OK or args.no_wait:
            return code
        deadline = args.timeout
        if deadline is None:
            deadline = service.spec.rollout.progress_deadline_seconds + 60.0
        return _await_rollout(args, service.name, target.number, since=requested, within=deadline)
    with lock:
        # No daemon: this command drives the rollback itself, as `paid apply` would.
        return converge_once(args, _loaded(args))


def _loaded(args: argparse.Namespace) -> DesiredState:
    result = load(args)
    assert result.desired is not None  # noqa: S101 -- named_service loaded it a moment ago
    return result.desired


ROLLOUT_ENDS = ("rollout_succeeded", "rollout_failed", "rollout_rolled_back", "rollout_abandoned")


def _await_rollout(
    args: argparse.Namespace, service: str, revision: int, *, since: float, within: float
) -> int:
    """Wait for the daemon to finish rolling ``service`` out to ``revision``; say how it went."""
    end = time.monotonic() + within
    with Store.open(args.state_dir) as store:
        while time.monotonic() < end:
            for event in store.events(service=service, since=since):
                if event.kind in ROLLOUT_ENDS and event.data.get("revision") == revision:
                    ok = event.kind == "rollout_succeeded"
                    if args.output == "json":
                        out(json.dumps({"service": service, "revision": revision, "ok": ok,
                                        "message": event.message}))  # fmt: skip
                    else:
                        out(event.message)
                    return EXIT_OK if ok else EXIT_ERROR
            time.sleep(0.2)
    stderr(
        f"paid: the daemon did not finish rolling {service} back to revision {revision} "
        f"within {within:g} s; `paid status` shows where it is"
    )
    return EXIT_ERROR


def _rollout_retry(args: argparse.Namespace) -> int:
    service = named_service(args)
    if service is None:
        return EXIT_ERROR
    with Store.open(args.state_dir) as store:
        forgiven = store.forgive_digests(service.name)  # imageUpdate: bad digests are tried again
        service = following(service, store.image_targets().get(service.name))
        number = store.find_revision(service=service.name, spec_hash=service.spec_hash)
        revision = store.revision(service.name, number) if number is not None else None
        if forgiven:
            store.record(
                "rollout_retry",
                f"{service.name}: {forgiven} rejected digests may be tried again",
                service=service.name,
            )
            if revision is None or not revision.quarantined:
                out(f"{service.name}: {forgiven} rejected image digests may be tried again")
                return EXIT_OK
        if revision is None or not revision.quarantined:
            if args.output == "json":
                out(json.dumps({"service": service.name, "revision": number, "released": False}))
                return EXIT_OK
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
    if args.output == "json":
        out(json.dumps({"service": service.name, "revision": revision.number, "released": True}))
        return EXIT_OK
    out(
        f"{service.name}: revision {revision.number} released from quarantine; "
        "the daemon rolls it out"
    )
    return EXIT_OK


def _rev(number: int | None) -> str:
    return "-" if number is None else str(number)
