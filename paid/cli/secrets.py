"""``paid secret``: encrypt a value for the repository, or make the host's age key.

A secret encrypted with age can live in git beside the services that use
it (``secretEnv: {DB_PASSWORD: {encrypted: secrets/db-password.age}}``);
only hosts holding the matching identity (``--age-identity``) can read it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from paid.cli.common import EXIT_ERROR, EXIT_OK, out, stderr
from paid.cli.options import Parents, Subparsers
from paid.state.secrets import MAX_SECRET_BYTES, SecretUnavailable
from paid.storage.files import read_regular_file
from paid.storage.secret_files import encrypt, new_identity, write_new


def register(sub: Subparsers, parents: Parents) -> None:
    group = sub.add_parser("secret", help="encrypt secrets for the repository (age)")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    enc = verbs.add_parser(
        "encrypt",
        help="encrypt FILE (or - for stdin) to age recipients",
        description="Write FILE encrypted to each --recipient (armored age), to -o or FILE.age. "
        "Commit the result; paid decrypts it on hosts given the identity (--age-identity).",
    )
    enc.add_argument("file", metavar="FILE", help="the plain value; - reads stdin")
    enc.add_argument(
        "--recipient",
        "-r",
        action="append",
        default=[],
        metavar="AGE_PUBLIC_KEY",
        help="an age public key (age1...) that may decrypt it (repeatable)",
    )
    enc.add_argument("--output", "-o", metavar="OUT", help="where to write it (default FILE.age)")
    enc.add_argument("--force", action="store_true", help="replace OUT if it exists")
    enc.set_defaults(handler=_encrypt)
    key = verbs.add_parser(
        "keygen",
        help="make an age identity for this host",
        description="Write a new age identity (private, 0600) and print its public key, "
        "the recipient to encrypt secrets to. An existing file is never overwritten.",
    )
    key.add_argument("--output", "-o", required=True, metavar="FILE", help="the key file")
    key.set_defaults(handler=_keygen)


def _encrypt(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            value = sys.stdin.buffer.read(MAX_SECRET_BYTES + 1)
        else:
            value = read_regular_file(args.file, limit=MAX_SECRET_BYTES)
    except OSError as err:
        stderr(f"paid: cannot read {args.file}: {err.strerror or err}")
        return EXIT_ERROR
    target = args.output or (None if args.file == "-" else f"{args.file}.age")
    try:
        data = encrypt(value, args.recipient)
    except SecretUnavailable as err:
        stderr(f"paid: {err}")
        return EXIT_ERROR
    if target is None or target == "-":
        sys.stdout.buffer.write(data)
        return EXIT_OK
    try:
        write_new(Path(target), data, mode=0o644, replace=args.force)
    except FileExistsError:
        stderr(f"paid: {target} exists; --force replaces it")
        return EXIT_ERROR
    except OSError as err:
        stderr(f"paid: cannot write {target}: {err.strerror or err}")
        return EXIT_ERROR
    out(f"wrote {target} ({len(args.recipient)} recipient(s))")
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    text, public = new_identity()
    path = Path(os.path.expanduser(args.output))
    try:
        write_new(path, text.encode(), mode=0o600, replace=False)
    except FileExistsError:
        stderr(f"paid: {path} exists; paid never overwrites a key")
        return EXIT_ERROR
    except OSError as err:
        stderr(f"paid: cannot write {path}: {err.strerror or err}")
        return EXIT_ERROR
    stderr(f"wrote {path}; give it to paid with --age-identity {path}")
    out(public)
    return EXIT_OK
