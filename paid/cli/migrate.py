"""``paid import compose|quadlet`` and ``paid export kube``: ways in, and a way out."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from paid.cli.common import (
    DEFAULT_DIR,
    EXIT_ERROR,
    EXIT_OK,
    load,
    out,
    print_errors,
    registry,
    stderr,
)
from paid.cli.options import Parents, Subparsers
from paid.runtime.base import ImageUnavailable
from paid.runtime.registry import RegistryClient
from paid.state.images import parse_reference
from paid.storage.loading import load_directory
from paid.translate import kube
from paid.translate.compose import import_compose
from paid.translate.output import Problem, Translation, write
from paid.translate.quadlet import import_quadlet


def register(sub: Subparsers, parents: Parents) -> None:
    imports = sub.add_parser("import", help="translate compose or Quadlet files into paid's")
    kinds = imports.add_subparsers(dest="kind", required=True, metavar="KIND")
    compose = kinds.add_parser(
        "compose", parents=[parents.common], help="a compose file: one paid file per service"
    )
    compose.add_argument(
        "file",
        type=Path,
        nargs="+",
        help="compose.yaml, then files merged onto it in order (as docker compose -f a -f b); "
        "one file is merged with the compose.override.yaml beside it",
    )
    quadlet = kinds.add_parser(
        "quadlet",
        parents=[parents.common],
        help="a directory of Quadlet .container, .network and .volume units",
    )
    quadlet.add_argument("file", type=Path, metavar="dir", help="the units' directory")
    for parser in (compose, quadlet):
        parser.add_argument(
            "-o",
            "--output-dir",
            type=Path,
            default=Path(DEFAULT_DIR),
            help="default ./desired-state",
        )
        parser.add_argument(
            "--partial", action="store_true", help="write what can be, list the rest (exit 1)"
        )
        parser.add_argument(
            "--pin",
            action="store_true",
            help="a moving tag (untagged, latest) is resolved to the digest it names now and "
            "pinned, instead of followed by digest (imageUpdate)",
        )
        parser.set_defaults(handler=_import)
    export = sub.add_parser("export", help="translate paid's desired state for another engine")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    to_kube = targets.add_parser(
        "kube",
        parents=[parents.common, parents.loading],
        help="Kubernetes manifests: Deployments, Services, PVCs, ConfigMaps, NetworkPolicies",
    )
    to_kube.add_argument("-o", "--output-file", type=Path, help="default: stdout")
    to_kube.add_argument(
        "--pods",
        action="store_true",
        help="a Pod per service, named as it, instead of Deployments: for podman kube play, "
        "where services then find each other by name on a network with DNS",
    )
    to_kube.set_defaults(handler=_export_kube, offline=True)


def _import(args: argparse.Namespace) -> int:
    translation = import_compose(args.file) if args.kind == "compose" else import_quadlet(args.file)
    if args.pin:
        client = registry(args)
        try:
            translation.problems.extend(pin(translation, client))
        finally:
            client.close()
    refused = _invalid(translation)
    problems = reported(translation.problems, refused)
    for problem in problems:
        stderr(str(problem))
    if problems and not args.partial:
        stderr(f"paid: {len(problems)} things cannot be translated; nothing was written")
        return EXIT_ERROR
    if problems:
        # A key left out still leaves a valid file; one paid's loader refuses is not written.
        translation.outputs = [o for o in translation.outputs if not _broken(o.filename, refused)]
    try:
        written = write(translation, args.output_dir)
    except OSError as err:
        stderr(f"paid: {err}; nothing was written")
        return EXIT_ERROR
    for path in written:
        out(str(path))
    if problems:
        stderr(f"paid: wrote {len(written)} files; {len(problems)} things left out (above)")
        return EXIT_ERROR
    out(f"paid: wrote {len(written)} files; check them with: paid validate {args.output_dir}")
    return EXIT_OK


def pin(translation: Translation, client: RegistryClient) -> list[Problem]:
    """Each followed tag (``imageUpdate``) resolved to its digest now and pinned to it.

    The digest is written with the tag it came from in the file's comment;
    a registry that cannot say is a problem for that file, not a guess.
    """
    problems = []
    for output in translation.outputs:
        for document in output.documents:
            spec = document.get("spec") or {}
            image = spec.get("image")
            if not spec.get("imageUpdate") or not isinstance(image, str):
                continue
            try:
                digest = client.digest(image)
            except ImageUnavailable as err:
                problems.append(Problem(output.filename, 0, "spec.image", f"cannot pin: {err}"))
                continue
            spec["image"] = parse_reference(image).by_digest(digest)
            del spec["imageUpdate"]
            output.notes.append(f"{image} pinned to the digest it named at import: {digest}")
    return problems


def _invalid(translation: Translation) -> list[Problem]:
    """What paid's own loader says of the output (a value passed through that paid refuses)."""
    if not translation.outputs:
        return []
    staging = Path(tempfile.mkdtemp(prefix="paid-import-check-"))
    try:
        write(translation, staging / "out")
        result = load_directory(staging / "out", offline=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prefix = str(staging / "out") + "/"
    return [
        Problem(
            e.file.replace(prefix, ""), e.line, e.field, f"paid refuses the result: {e.message}"
        )
        for e in result.errors
    ]


def reported(importer: list[Problem], loader: list[Problem]) -> list[Problem]:
    """Each problem once: the loader's word on a key the importer refused in that output is not.

    ``services.web.image`` (compose, in ``web.yaml``) and ``spec.image``
    (paid's loader, of ``web.yaml``) are one refusal, shown at the compose
    file's line, where the user can fix it.
    """
    said = {(p.output, tuple(p.key.split(".")[2:3])) for p in importer if p.output}
    return sorted(set(importer)) + [
        p for p in loader if (p.file, tuple(p.key.split(".")[1:2])) not in said
    ]


def _broken(filename: str, problems: list[Problem]) -> bool:
    return any(p.file == filename for p in problems)


def _export_kube(args: argparse.Namespace) -> int:
    result = load(args)
    if result.desired is None:
        print_errors(result, args)
        return EXIT_ERROR
    manifests = kube.export(result.desired, pods=args.pods)
    for skipped in manifests.skipped:
        stderr(f"paid: not exported: {skipped}")
    text = manifests.text()
    if args.output_file is None:
        out(text.rstrip("\n"))
    else:
        args.output_file.write_text(text)
    return EXIT_OK
