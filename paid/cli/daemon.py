"""``paid run``: the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from paid.cli.backups import backup_dir
from paid.cli.common import (
    EXIT_ERROR,
    auth_file,
    default_network,
    env,
    podman,
    registry,
    stderr,
)
from paid.cli.options import Parents, Subparsers, listen_option, timings
from paid.runtime.registry_config import ConfigFileError
from paid.storage.lock import LockHeld, WriterLock
from paid.storage.store import Store


def register(sub: Subparsers, parents: Parents) -> None:
    p = parents
    run = sub.add_parser(
        "run",
        parents=[p.common, p.loading, p.guard, p.backups, p.slo, p.workers],
        help="the daemon: keep the host converged",
    )
    listen_option(run, "HTTP address for /metrics, /healthz, /readyz, /status (env PAID_LISTEN)")
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
        "--image-update-interval",
        type=float,
        default=float(env("IMAGE_UPDATE_INTERVAL", "900") or 0),
        metavar="SECONDS",
        help="check the tags of services with imageUpdate this often, and on SIGHUP "
        "(env PAID_IMAGE_UPDATE_INTERVAL; default 900; 0: only on SIGHUP)",
    )
    run.add_argument(
        "--image-gc",
        action="store_true",
        default=env("IMAGE_GC", "") in ("1", "true", "yes"),
        help="once a day, remove images paid ran that no container, kept revision or "
        "desired service uses (env PAID_IMAGE_GC)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from paid.daemon.manager import Manager  # noqa: PLC0415
    from paid.metrics import Metrics  # noqa: PLC0415
    from paid.runtime.resilient import ResilientRuntime  # noqa: PLC0415
    from paid.settings import Settings  # noqa: PLC0415

    metrics = Metrics()
    client = podman(args)
    settings = Settings(
        directory=Path(args.dir),
        listen=args.listen,
        resync_interval=args.resync_interval,
        watch_interval=args.watch_interval,
        workers=args.workers,
        watch_events=args.watch_events,
        watch_processes=args.watch_events and client.local,
        flags_path=Path(args.flags) if args.flags else None,
        allowed_host_paths=tuple(args.allow_host_path),
        allowed_devices=tuple(args.allow_device),
        default_network=default_network(args),
        secrets_dir=Path(args.secrets_dir),
        age_identity=Path(args.age_identity) if args.age_identity else None,
        backup_dir=backup_dir(args),
        backup_upload_command=args.backup_upload_command,
        slo_default=args.slo_default,
        git_pull_interval=args.git_pull_interval,
        allow_mass_prune=args.allow_mass_prune,
        timings=timings(),
        image_update_interval=args.image_update_interval,
        image_gc=args.image_gc,
    )
    try:
        auth_file(args).check()
    except ConfigFileError as err:
        stderr(f"paid: {err}")
        return EXIT_ERROR
    lock = WriterLock(args.state_dir)
    try:
        lock.acquire(role="daemon", directory=args.dir)
    except LockHeld as err:
        stderr(f"paid: {err}: one paid changes this state at a time")
        return EXIT_ERROR
    with lock, Store.open(args.state_dir) as store:
        try:
            manager = Manager(
                settings,
                runtime=ResilientRuntime(
                    client, metrics=metrics, retry=settings.timings.podman_retry
                ),
                events=client,
                store=store,
                metrics=metrics,
                registry=registry(args),
            )
        except OSError as err:
            stderr(f"paid: cannot listen on {args.listen}: {err.strerror}")
            return EXIT_ERROR
        return manager.run()
