"""Loading a desired-state directory: YAML in, ``DesiredState`` or errors out.

Validation happens here, before anything touches Podman, and reports as
much as it can in one go: every error of every file, each as
``file:line: field: message``.

YAML is read safely and within limits by ``paid.state.reading``, which
keeps the line of every path for the pydantic errors to point at.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from paid.state.desired import DesiredService, DesiredState
from paid.state.paths import within
from paid.state.reading import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES_PER_DOCUMENT,
    Document,
    LoadError,
    dotted,
    read_file,
)
from paid.state.secrets import SecretSource, SecretUnavailable
from paid.state.specs import ServiceDocument, ServiceName, canonical_json

MAX_FILES = 2_000
SUFFIXES = (".yaml", ".yml")
__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES_PER_DOCUMENT", "LoadError", "LoadResult"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A valid ``desired`` state, or the errors that prevent one."""

    desired: DesiredState | None
    errors: tuple[LoadError, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.desired is not None


def load_directory(
    directory: str | os.PathLike[str],
    *,
    allowed_host_paths: Iterable[str] = (),
    secrets: SecretSource | None = None,
    allowed_devices: Iterable[str] = (),
    offline: bool = False,
) -> LoadResult:
    """Load and validate every ``*.yaml``/``*.yml`` file under ``directory``.

    Hidden files and directories (``.git``) are skipped. Host-path volumes
    must lie under one of ``allowed_host_paths``. Secret files are read
    from ``secrets`` to fingerprint them; a missing one is an error.
    """
    root = Path(directory)
    if not root.is_dir():
        return LoadResult(None, (LoadError(str(root), 0, "", "not a directory"),))
    files = sorted(_yaml_files(root))
    errors: list[LoadError] = []
    if len(files) > MAX_FILES:
        errors.append(LoadError(str(root), 0, "", f"more than {MAX_FILES} YAML files"))
        files = files[:MAX_FILES]
    documents: list[Document] = []
    for path in files:
        docs, file_errors = read_file(path, display=_display(path))
        documents.extend(docs)
        errors.extend(file_errors)

    services: dict[ServiceName, DesiredService] = {}
    where: dict[str, tuple[Document, ServiceDocument]] = {}
    # Names of documents that failed validation still exist: a dependency on
    # one is not "missing", the document is broken (and reported as such).
    mentioned = {_raw_name(doc) for doc in documents} - {None}
    for doc in documents:
        parsed = _validate(doc, errors)
        if parsed is None:
            continue
        name = ServiceName(parsed.metadata.name)
        if name in where:
            first = where[name][0]
            errors.append(
                LoadError(
                    doc.file,
                    doc.line_of(("metadata", "name")),
                    "metadata.name",
                    f"service {name!r} is already defined at "
                    f"{first.file}:{first.line_of(('metadata', 'name'))}",
                )
            )
            continue
        where[name] = (doc, parsed)
        source = f"{doc.file}:{doc.line_of(())}"
        try:
            services[name] = _desired_service(
                parsed, source=source, secrets=None if offline else secrets, offline=offline
            )
        except SecretUnavailable as err:
            errors.append(
                LoadError(doc.file, doc.line_of(("spec", "secretEnv")), "spec.secretEnv", str(err))
            )

    errors.extend(
        _cross_checks(
            where,
            known=mentioned,
            allowed_host_paths=tuple(allowed_host_paths),
            allowed_devices=tuple(allowed_devices),
            offline=offline,
        )
    )
    shown = tuple(_display(p) for p in files)
    if errors:
        return LoadResult(None, tuple(sorted(set(errors))), shown)
    return LoadResult(DesiredState.of(services), (), shown)


def _desired_service(
    parsed: ServiceDocument, *, source: str, secrets: SecretSource | None, offline: bool = False
) -> DesiredService:
    fingerprints: dict[str, str] = {}
    for key, entry in parsed.spec.secret_env.items():
        if offline:
            continue  # what the repository can tell: the name is checked, not the file
        if secrets is None:
            raise SecretUnavailable(f"{key}: no secrets directory is configured here")
        fingerprints[key] = secrets.read(entry.file)[1]
    return DesiredService.of(parsed, source=source, secret_fingerprints=fingerprints)


def to_documents(desired: DesiredState) -> list[dict[str, Any]]:
    """The desired state as plain documents, for the store's snapshot."""
    return [
        {
            "apiVersion": "paid/v1",
            "kind": "Service",
            "metadata": {"name": svc.name, "labels": dict(svc.labels)},
            "spec": svc.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        for svc in desired
    ]


def digest(documents: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json(documents)).hexdigest()


def from_documents(
    documents: Iterable[Any], *, origin: str, secrets: SecretSource | None = None
) -> LoadResult:
    """Rebuild a desired state from ``to_documents`` output (a store snapshot).

    Secrets are not versioned (paid never keeps their values): a rebuilt
    revision uses the secret files as they are now.
    """
    services: dict[ServiceName, DesiredService] = {}
    errors: list[LoadError] = []
    for i, raw in enumerate(documents):
        try:
            parsed = ServiceDocument.model_validate(raw)
        except ValidationError as err:
            errors.append(LoadError(origin, 0, f"documents[{i}]", str(err.errors()[0]["msg"])))
            continue
        try:
            service = _desired_service(parsed, source=origin, secrets=secrets)
        except SecretUnavailable as err:
            errors.append(LoadError(origin, 0, f"documents[{i}].spec.secretEnv", str(err)))
            continue
        services[service.name] = service
    if errors:
        return LoadResult(None, tuple(errors))
    return LoadResult(DesiredState.of(services))


def _raw_name(doc: Document) -> str | None:
    metadata = doc.value.get("metadata") if isinstance(doc.value, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _yaml_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield Path(dirpath, name)


def _validate(doc: Document, errors: list[LoadError]) -> ServiceDocument | None:
    if not isinstance(doc.value, dict):
        errors.append(
            LoadError(
                doc.file,
                doc.line_of(()),
                "",
                "a document must be a mapping (apiVersion, kind, ...)",
            )
        )
        return None
    if "apiVersion" not in doc.value and "services" in doc.value:
        errors.append(
            LoadError(
                doc.file,
                doc.line_of(("services",)),
                "services",
                "this looks like a Compose file, not paid's desired state (apiVersion: "
                "paid/v1, kind: Service, metadata, spec); each service is a document of its own",
            )
        )
        return None
    try:
        return ServiceDocument.model_validate(doc.value)
    except ValidationError as err:
        for item in err.errors():
            loc = tuple(item["loc"])
            errors.append(
                LoadError(
                    doc.file,
                    doc.line_of(loc),
                    dotted(loc),
                    _message(item["type"], item["msg"], loc),
                )
            )
        return None


def _fields_at(loc: Sequence[str | int]) -> list[str]:
    """The field names (as written in YAML) of the model at ``loc`` in a Service document."""
    model: type[BaseModel] | None = ServiceDocument
    annotation: Any = None
    for part in loc:
        if model is None:
            if get_origin(annotation) is dict:  # a key of a mapping: its value's model
                annotation = get_args(annotation)[-1]
                model = _model_in(annotation)
                continue
            return []
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            return []
        annotation = _unwrapped(field.annotation)
        model = _model_in(annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrapped(annotation: Any) -> Any:
    """``X | None``, ``list[X]``, ``Annotated[X, ...]`` -> X (a dict stays a dict)."""
    while True:
        origin = get_origin(annotation)
        if origin is dict or (origin is None and not get_args(annotation)):
            return annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        if not args:
            return annotation
        annotation = args[0]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _message(kind: str, msg: str, loc: tuple[str | int, ...] = ()) -> str:
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=1, cutoff=0.6)
        return f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_type" and len(loc) >= 2 and loc[-2] in ("env", "labels"):
        return "must be a string (quote values such as true, 1 or 1.0)"
    if kind == "string_pattern_mismatch":
        return "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit"
    if kind == "greater_than_equal" and loc[-1:] == ("memory",):
        return "must be at least 6Mi (runc refuses less)"
    return msg.removeprefix("Value error, ")


def _cross_checks(
    where: dict[str, tuple[Document, ServiceDocument]],
    *,
    known: set[str | None],
    allowed_host_paths: tuple[str, ...],
    allowed_devices: tuple[str, ...] = (),
    offline: bool = False,
) -> list[LoadError]:
    errors: list[LoadError] = []
    names = set(where)
    claimed: list[tuple[str, Any]] = []
    for name in sorted(where):
        doc, parsed = where[name]
        spec = parsed.spec
        if spec.rollout.strategy == "Canary" and f"{name}-canary" in names:
            errors.append(
                LoadError(
                    doc.file,
                    doc.line_of(("spec", "rollout", "strategy")),
                    "spec.rollout.strategy",
                    f"the canary of {name!r} runs as {name}-canary, which is a service's name",
                )
            )
        if spec.rollout.strategy == "Canary" and any(not v.read_only for v in spec.volumes):
            errors.append(
                LoadError(
                    doc.file,
                    doc.line_of(("spec", "rollout", "strategy")),
                    "spec.rollout.strategy",
                    "a canary runs beside the old instance: with a writable volume that is two "
                    "instances on one volume; use Recreate",
                )
            )
        canary_ports = spec.rollout.canary.ports if spec.rollout.canary else []
        for i, port in enumerate(spec.ports):
            for other_name, other in claimed:
                if port.overlaps(other):
                    by = "this service" if other_name == name else f"service {other_name!r}"
                    errors.append(
                        LoadError(
                            doc.file,
                            doc.line_of(("spec", "ports", i)),
                            f"spec.ports[{i}]",
                            f"host port {port.host_port}/{port.protocol} is already claimed "
                            f"by {by}",
                        )
                    )
            claimed.append((name, port))
        for i, port in enumerate(canary_ports):
            for other_name, other in claimed:
                if port.overlaps(other):
                    errors.append(
                        LoadError(
                            doc.file,
                            doc.line_of(("spec", "rollout", "canary", "ports", i)),
                            f"spec.rollout.canary.ports[{i}]",
                            f"host port {port.host_port}/{port.protocol} is already claimed "
                            f"by service {other_name!r}",
                        )
                    )
            claimed.append((f"{name} (canary)", port))
        for i, dep in enumerate(spec.depends_on):
            loc = ("spec", "dependsOn", i)
            if dep == name:
                errors.append(
                    LoadError(
                        doc.file,
                        doc.line_of(loc),
                        dotted(loc),
                        "a service cannot depend on itself",
                    )
                )
            elif dep not in names and dep not in known:
                errors.append(
                    LoadError(doc.file, doc.line_of(loc), dotted(loc), f"no service named {dep!r}")
                )
        for i, volume in enumerate(spec.volumes):
            if (
                volume.is_host_path
                and not offline
                and not within(volume.source, allowed_host_paths)
            ):
                loc = ("spec", "volumes", i)
                allowed = ", ".join(allowed_host_paths) or "none configured"
                errors.append(
                    LoadError(
                        doc.file,
                        doc.line_of(loc),
                        dotted(loc),
                        f"host path {_shown(volume.source)} is not under an allowed prefix "
                        f"({allowed}; see --allow-host-path)",
                    )
                )
        for i, device in enumerate(spec.devices):
            if not offline and not within(device, allowed_devices):
                loc = ("spec", "devices", i)
                allowed = ", ".join(allowed_devices) or "none configured"
                errors.append(
                    LoadError(
                        doc.file,
                        doc.line_of(loc),
                        dotted(loc),
                        f"device {_shown(device)} is host access and not allowed "
                        f"({allowed}; see --allow-device)",
                    )
                )
    for cycle in _cycles(
        {n: [d for d in p.spec.depends_on if d in names and d != n] for n, (_, p) in where.items()}
    ):
        doc, _ = where[cycle[0]]
        errors.append(
            LoadError(
                doc.file,
                doc.line_of(("spec", "dependsOn")),
                "spec.dependsOn",
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            )
        )
    return errors


def _shown(path: str) -> str:
    """The path, and where it leads when a symlink takes it elsewhere."""
    real = os.path.realpath(path)
    return path if real == posixpath.normpath(path) else f"{path} (a link to {real})"


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle found by depth-first search, once, smallest name first."""
    found: dict[frozenset[str], list[str]] = {}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, [])):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                start = cycle.index(min(cycle))
                found.setdefault(frozenset(cycle), cycle[start:] + cycle[:start])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return list(found.values())
