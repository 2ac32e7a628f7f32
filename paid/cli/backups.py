"""``paid backup run | list | verify`` and ``paid restore``."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from paid.cli.common import (
    DEFAULT_DIR,
    EXIT_ERROR,
    EXIT_OK,
    load,
    named_service,
    out,
    podman,
    print_errors,
    secret_source,
    stderr,
    table,
)
from paid.cli.options import Parents, Subparsers
from paid.controllers.backups import BackupController, BackupFailed
from paid.controllers.health import wait_until_ready
from paid.controllers.services import ServiceController
from paid.runtime.base import Runtime
from paid.state.desired import DesiredService
from paid.storage.archives import ArchiveError, BackupRecord, list_backups, verify
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    common, host_paths, output, where = (
        parents.common,
        parents.host_paths,
        parents.output,
        parents.backups,
    )
    backup = sub.add_parser("backup", help="back up services' named volumes")
    verbs = backup.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")
    run = verbs.add_parser(
        "run", parents=[common, host_paths, where, output], help="back up now (0 all done, 1 not)"
    )
    run.add_argument("service", nargs="?", help="the service (or --all)")
    run.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    run.add_argument("--all", action="store_true", help="every service with a backup section")
    run.set_defaults(handler=_run)
    listing = verbs.add_parser(
        "list", parents=[common, where, output], help="backups, oldest first"
    )
    listing.add_argument("service", nargs="?")
    listing.set_defaults(handler=_list)
    check = verbs.add_parser(
        "verify", parents=[common, where, output], help="check archives against their manifests"
    )
    check.add_argument("ids", nargs="*", metavar="ID", help="default: every backup")
    check.set_defaults(handler=_verify)
    restore = sub.add_parser(
        "restore",
        parents=[common, host_paths, where, output],
        help="put a backup back: verify, stop, replace the volumes, start, wait until ready",
    )
    restore.add_argument("service")
    restore.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="desired-state directory")
    restore.add_argument("--backup", metavar="ID", help="default: the newest backup")
    restore.set_defaults(handler=_restore)


def backup_dir(args: argparse.Namespace) -> Path:
    return Path(args.backup_dir) if args.backup_dir else Path(args.state_dir) / "backups"


def _controller(args: argparse.Namespace, runtime: Runtime, store: Store) -> BackupController:
    def ready(service: DesiredService, container_id: str) -> bool:
        timeout = float(service.spec.rollout.progress_deadline_seconds)
        return wait_until_ready(runtime, service, container_id, timeout=timeout)

    return BackupController(
        runtime=runtime,
        store=store,
        services=ServiceController(runtime=runtime, journal=store, secrets=secret_source(args)),
        directory=backup_dir(args),
        upload_command=getattr(args, "backup_upload_command", None),
        wait_ready=ready,
    )


def before_rollout(
    args: argparse.Namespace, runtime: Runtime, store: Store
) -> Callable[[DesiredService], str | None]:
    """For `paid apply`: a backup before each rollout that asks for one (None: failed)."""
    controller = _controller(args, runtime, store)

    def backup(service: DesiredService) -> str | None:
        try:
            return controller.backup(service, reason="before rollout").id
        except BackupFailed as err:
            stderr(f"paid: {err}")
            return None

    return backup


def _run(args: argparse.Namespace) -> int:
    if args.all and args.service is not None and args.dir == DEFAULT_DIR:
        args.dir, args.service = args.service, None  # `backup run --all DIR`
    if bool(args.service) == bool(args.all):
        stderr("paid: name one service, or --all")
        return EXIT_ERROR
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    if args.all:
        services = [s for s in result.desired if s.spec.backup is not None]
    else:
        chosen = result.desired.services.get(args.service)
        if chosen is None:
            stderr(f"paid: {args.service!r} is not in {args.dir}")
            return EXIT_ERROR
        services = [chosen]
    if not services:
        stderr("paid: no service has a backup section")
        return EXIT_ERROR
    runtime = podman(args)
    made: list[BackupRecord] = []
    failures: list[dict[str, str]] = []
    try:
        with Store.open(args.state_dir) as store:
            controller = _controller(args, runtime, store)
            for service in services:
                try:
                    record = controller.backup(service, reason="on demand")
                except BackupFailed as err:
                    stderr(f"paid: {err}")
                    failures.append({"service": service.name, "error": str(err)})
                    continue
                made.append(record)
                if args.output == "text":
                    out(
                        f"{service.name}: backup {record.id} ({record.size} bytes) in {record.path}"
                    )
    finally:
        runtime.close()
    if args.output == "json":
        out(json.dumps({"backups": [r.to_json() for r in made], "failures": failures}, indent=2))
    return EXIT_ERROR if failures else EXIT_OK


def _list(args: argparse.Namespace) -> int:
    backups = list_backups(backup_dir(args), args.service)
    if args.output == "json":
        out(json.dumps({"backups": [b.to_json() for b in backups]}, indent=2))
        return EXIT_OK
    table(
        ("SERVICE", "ID", "CREATED", "REVISION", "CONSISTENCY", "SIZE", "REASON"),
        [
            (
                b.service,
                b.id,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.created_at)),
                str(b.revision or "-"),
                b.consistency,
                str(b.size),
                b.reason,
            )
            for b in backups
        ],
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    backups = list_backups(backup_dir(args))
    if args.ids:
        unknown = set(args.ids) - {b.id for b in backups}
        if unknown:
            stderr(f"paid: no backup {', '.join(sorted(unknown))} in {backup_dir(args)}")
            return EXIT_ERROR
        backups = [b for b in backups if b.id in args.ids]
    results: list[tuple[BackupRecord, list[str]]] = [(b, verify(b)) for b in backups]
    if args.output == "json":
        out(
            json.dumps(
                {
                    "backups": [
                        {"service": b.service, "id": b.id, "ok": not p, "problems": p}
                        for b, p in results
                    ]
                },
                indent=2,
            )
        )
    else:
        table(
            ("SERVICE", "ID", "RESULT"),
            [(b.service, b.id, "OK" if not p else "BAD: " + "; ".join(p)) for b, p in results],
        )
    return EXIT_ERROR if any(p for _, p in results) else EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    service = named_service(args)
    if service is None:
        return EXIT_ERROR
    runtime = podman(args)
    try:
        with Store.open(args.state_dir) as store:
            record = _controller(args, runtime, store).restore(service, args.backup)
    except (BackupFailed, ArchiveError) as err:
        stderr(f"paid: {err}")
        if args.output == "json":
            out(json.dumps({"service": service.name, "restored": None, "error": str(err)}))
        return EXIT_ERROR
    finally:
        runtime.close()
    if args.output == "json":
        out(json.dumps({"service": service.name, "restored": record.id, "ready": True}))
        return EXIT_OK
    out(f"{service.name}: restored backup {record.id}; ready")
    return EXIT_OK
