"""``paid update`` (follow tags in their registry) and ``paid images prune``."""

from __future__ import annotations

import argparse
import json

from paid.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    load,
    out,
    podman,
    print_errors,
    registry,
    stderr,
    table,
)
from paid.cli.desired import converge_once, take_writer_lock
from paid.cli.options import Parents, Subparsers
from paid.controllers.images import ImageController, describe
from paid.runtime.resilient import ResilientRuntime
from paid.state.images import Update
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    p = parents
    update = sub.add_parser(
        "update",
        parents=[p.common, p.loading, p.guard, p.backups, p.workers, p.output],
        help="roll out services whose tag moved in the registry (imageUpdate); "
        "--check: list them (2 if any moved, 0 if none, 1 if a registry did not answer)",
    )
    update.add_argument("--check", action="store_true", help="only say what moved; change nothing")
    update.add_argument(
        "--skip-preflight", action="store_true", help="do not run the pre-flight checks first"
    )
    update.add_argument(
        "--wait",
        action="store_true",
        help="when another paid holds the state, wait for it instead of handing over",
    )
    update.set_defaults(handler=_update)
    images = sub.add_parser("images", help="images paid ran")
    verbs = images.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    prune = verbs.add_parser(
        "prune",
        parents=[p.common, p.loading, p.output],
        help="remove images paid ran that no container, kept revision or desired service uses",
    )
    prune.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    prune.set_defaults(handler=_prune)


def _update(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    desired = result.desired
    client, checker = podman(args), registry(args)
    try:
        with Store.open(args.state_dir) as store:
            images = ImageController(runtime=client, store=store, registry=checker)
            updates = images.check(desired, pinned=set(store.pins()))
    finally:
        client.close()
        checker.close()
    _show(args, updates)
    errors = any(u.state == "error" for u in updates)
    moved = [u for u in updates if u.moved]
    if args.check or not moved:
        if errors:
            return EXIT_ERROR
        return EXIT_CHANGES if moved and args.check else EXIT_OK
    lock, code = take_writer_lock(args, "update")
    if lock is None:
        return code  # handed to the daemon: it checks again on SIGHUP and rolls them out
    with lock:
        converged = converge_once(args, desired, updates=moved)
    return EXIT_ERROR if errors else converged


def _show(args: argparse.Namespace, updates: list[Update]) -> None:
    if args.output == "json":
        out(
            json.dumps(
                {
                    "services": [
                        {
                            "service": u.service,
                            "image": u.image,
                            "state": u.state,
                            "current": u.current,
                            "latest": u.latest,
                            "currentTag": u.current_tag,
                            "latestTag": u.latest_tag,
                            "waitsUntil": u.waits_until,
                            "detail": u.detail or None,
                        }
                        for u in updates
                    ],
                    "moved": [u.service for u in updates if u.moved],
                },
                indent=2,
            )
        )
        return
    if not updates:
        out("No service has imageUpdate: nothing to check.")
        return
    table(
        ("SERVICE", "IMAGE", "STATE", "DIGEST"),
        [(u.service, u.image, u.state, describe(u)) for u in updates],
    )


def _prune(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result)  # what is desired is not known: an image it needs could go
        stderr("paid: images are pruned only against a valid desired state")
        return EXIT_ERROR
    client = podman(args)
    try:
        with Store.open(args.state_dir) as store:
            images = ImageController(
                runtime=ResilientRuntime(client), store=store, registry=registry(args)
            )
            report = images.prune(result.desired, dry_run=args.dry_run)
    finally:
        client.close()
    if args.output == "json":
        out(
            json.dumps(
                {
                    "dryRun": report.dry_run,
                    "removed": [
                        {"id": i.id, "tags": list(i.tags), "size": i.size} for i in report.removed
                    ],
                    "skipped": report.skipped,
                },
                indent=2,
            )
        )
        return EXIT_OK
    verb = "would remove" if report.dry_run else "removed"
    for image in report.removed:
        out(f"{verb} {image.id[:12]} {', '.join(image.tags) or '<untagged>'} ({image.size} bytes)")
    for image_id, why in report.skipped.items():
        out(f"kept {image_id[:12]}: {why}")
    total = sum(i.size for i in report.removed)
    out(f"{len(report.removed)} images {verb} ({total} bytes)")
    return EXIT_OK
