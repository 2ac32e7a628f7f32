"""``paid validate`` and ``paid schema``: what the repository itself can tell, without Podman.

Kept apart from plan and apply so that checking a desired state (the
pre-commit hook, CI, an editor) loads the models and the loader only.
"""

from __future__ import annotations

import argparse
import json

from paid.cli.common import EXIT_ERROR, EXIT_OK, load, out, print_errors
from paid.cli.options import Parents, Subparsers
from paid.state.schema import json_schema


def register(sub: Subparsers, parents: Parents) -> None:
    validate = sub.add_parser(
        "validate",
        parents=[parents.loading, parents.output],
        help="check a desired-state directory (0 valid, 1 not)",
    )
    validate.add_argument(
        "--offline",
        action="store_true",
        help="what the repository itself can tell: no secret files read, no host-path or "
        "device allow-lists (this host's business); for CI and the pre-commit hook",
    )
    validate.set_defaults(handler=_validate, logs=False)
    sub.add_parser(
        "schema", help="print the JSON Schema of desired-state files (for editors and CI)"
    ).set_defaults(handler=_schema, logs=False)


def _schema(args: argparse.Namespace) -> int:
    out(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


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
        print_errors(result, args)
        return EXIT_ERROR
    out(f"{args.dir}: {len(result.desired)} services in {len(result.files)} files, valid")
    return EXIT_OK
