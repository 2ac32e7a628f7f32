"""``paid files``: where the parts paid ships are, or a copy of one, ready to use.

The systemd units, the Prometheus alert rules, the Grafana dashboard, the
JSON Schema, a ``containers.conf`` and the README are package data
(``paid/files``), installed with the code. ``--to`` writes a unit with its
``ExecStart=`` pointing at this very ``paid`` and ``Documentation=`` at the
installed README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from paid.cli.common import EXIT_ERROR, EXIT_OK, out, stderr, table
from paid.cli.options import Parents, Subparsers

PARTS = {
    "paid.service": "the systemd unit (system, rootful Podman)",
    "paid-user.service": "the systemd user unit (rootless Podman)",
    "paid-rules.yml": "Prometheus alert rules",
    "grafana-dashboard.json": "the Grafana dashboard",
    "paid-v1.json": "the JSON Schema of desired-state documents",
    "containers.conf": "Podman settings paid is tested with (log size, ulimits)",
    "README.md": "the documentation units point at",
}
UNIT_PAID = "/usr/local/bin/paid"
UNIT_DOCS = "file:///usr/share/doc/paid/README.md"


def register(sub: Subparsers, parents: Parents) -> None:
    files = sub.add_parser(
        "files",
        help="where the units, alert rules, dashboard and schema paid ships are",
    )
    files.add_argument("name", nargs="?", choices=sorted(PARTS), help="one of them")
    files.add_argument("--to", metavar="FILE", help="write a copy there (atomically)")
    files.set_defaults(handler=_files)


def path_of(name: str) -> Path:
    """The installed file ``name`` (a real path: package data is installed as files)."""
    return Path(str(resources.files("paid.files").joinpath(name)))


def _files(args: argparse.Namespace) -> int:
    if args.name is None:
        table(("FILE", "PATH", "WHAT"), [(n, str(path_of(n)), w) for n, w in PARTS.items()])
        return EXIT_OK
    source = path_of(args.name)
    if args.to is None:
        out(str(source))
        return EXIT_OK
    text = source.read_text(encoding="utf-8")
    if args.name.endswith(".service"):
        text = text.replace(UNIT_PAID, _this_paid()).replace(
            UNIT_DOCS, path_of("README.md").resolve().as_uri()
        )
    target = Path(os.path.expanduser(args.to))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as err:
        stderr(f"paid: cannot write {target}: {err.strerror or err}")
        return EXIT_ERROR
    out(f"wrote {target}")
    return EXIT_OK


def _this_paid() -> str:
    """The ``paid`` command of this installation (beside its Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "paid"
    if beside.exists():
        return str(beside)
    return shutil.which("paid") or UNIT_PAID
