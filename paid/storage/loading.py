"""Loading a desired-state directory: YAML in, ``DesiredState`` or errors out.

Validation happens here, before anything touches Podman, and reports as
much as it can in one go: every error of every file, each as
``file:line: field: message``.

YAML is read safely and within limits by ``paid.state.reading``, which
keeps the line of every path for the pydantic errors to point at.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from paid.state.builds import BuildContext
from paid.state.configs import ConfigContent, ConfigError
from paid.state.desired import DesiredService, DesiredState
from paid.state.networks import DEFAULT_NETWORK, DesiredNetwork, NetworkDocument
from paid.state.notifiers import DesiredNotifier, NotifierDocument
from paid.state.reading import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES_PER_DOCUMENT,
    Document,
    LoadError,
    dotted,
    read_bytes,
)
from paid.state.secrets import SecretUnavailable
from paid.state.specs import ServiceDocument, ServiceName
from paid.storage.build_contexts import read_build
from paid.storage.checks import cross_checks, network_checks
from paid.storage.config_files import read_config, read_env_file
from paid.storage.documents import LoadResult, desired_service
from paid.storage.files import read_file
from paid.storage.secret_files import SecretSource

MAX_FILES = 2_000
SUFFIXES = (".yaml", ".yml")
__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES_PER_DOCUMENT", "LoadError", "LoadResult"]


def load_directory(
    directory: str | os.PathLike[str],
    *,
    allowed_host_paths: Iterable[str] = (),
    secrets: SecretSource | None = None,
    allowed_devices: Iterable[str] = (),
    offline: bool = False,
    default_network: str = DEFAULT_NETWORK,
    stdin: bytes | None = None,
) -> LoadResult:
    """Load and validate every ``*.yaml``/``*.yml`` file under ``directory``.

    ``directory`` may also be one file, or ``-`` with its bytes in ``stdin``
    (paths in it are then relative to the current directory). Hidden
    files and directories (``.git``) are skipped. Host-path volumes must
    lie under one of ``allowed_host_paths``. Secret files are read from
    ``secrets`` to fingerprint them; a missing one is an error. A service
    that names no network joins ``default_network``.
    """
    errors: list[LoadError] = []
    found = _sources(Path(directory), stdin, errors)
    if found is None:
        return LoadResult(None, tuple(errors))
    root, files, read = found
    referenced = _referenced(read)
    files = [p for p in files if not (_under(p, referenced) and not _paid_file(read[p][0]))]
    documents: list[Document] = []
    for path in files:
        docs, file_errors = read[path]
        documents.extend(docs)
        errors.extend(file_errors)

    # Names of documents that failed validation still exist: a dependency on
    # one is not "missing", the document is broken (and reported as such).
    mentioned = {_raw_name(doc) for doc in documents if _kind(doc) not in OTHER_KINDS} - {None}
    services, where, networks, notifiers = _parse(
        documents,
        root,
        errors,
        secrets=secrets,  # offline: only the shape of encrypted files is checked
        offline=offline,
        default_network=default_network,
    )
    errors.extend(
        cross_checks(
            where,
            known=mentioned,
            allowed_host_paths=tuple(allowed_host_paths),
            allowed_devices=tuple(allowed_devices),
            offline=offline,
        )
    )
    written = {_raw_name(doc) for doc in documents if _kind(doc) == "Network"} - {None}
    errors.extend(network_checks(where, networks, written=written, default_network=default_network))
    shown = tuple("-" if stdin is not None else _display(p) for p in files)
    if errors:
        return LoadResult(None, tuple(sorted(set(errors))), shown)
    declared = {
        name: DesiredNetwork(
            name, parsed.spec, parsed.metadata.labels, f"{doc.file}:{doc.line_of(())}"
        )
        for name, (doc, parsed) in networks.items()
    }
    return LoadResult(
        DesiredState.of(services, declared, default_network=default_network, notifiers=notifiers),
        (),
        shown,
    )


def _parse(
    documents: list[Document],
    root: Path,
    errors: list[LoadError],
    *,
    secrets: SecretSource | None,
    offline: bool,
    default_network: str,
) -> tuple[
    dict[ServiceName, DesiredService],
    dict[str, tuple[Document, ServiceDocument]],
    dict[str, tuple[Document, NetworkDocument]],
    dict[str, DesiredNotifier],
]:
    """Each document validated on its own: services, where each was written, networks,
    notifiers."""
    services: dict[ServiceName, DesiredService] = {}
    where: dict[str, tuple[Document, ServiceDocument]] = {}
    networks: dict[str, tuple[Document, NetworkDocument]] = {}
    notifiers: dict[str, DesiredNotifier] = {}
    notifier_at: dict[str, str] = {}  # every notifier's file:line, loaded or not
    for doc in documents:
        parsed = _validate(doc, errors)
        if isinstance(parsed, NotifierDocument):
            notifier = _notifier(doc, parsed, notifier_at, errors, secrets=secrets, offline=offline)
            if notifier is not None:
                notifiers[notifier.name] = notifier
            continue
        if isinstance(parsed, NetworkDocument):
            if parsed.metadata.name in networks:
                errors.append(_twice(doc, "network", networks[parsed.metadata.name][0]))
            else:
                networks[parsed.metadata.name] = (doc, parsed)
            continue
        if parsed is None:
            continue
        name = ServiceName(parsed.metadata.name)
        if name in where:
            errors.append(_twice(doc, "service", where[name][0]))
            continue
        where[name] = (doc, parsed)
        source = f"{doc.file}:{doc.line_of(())}"
        from_repo = _repo_files(doc, parsed, root, errors)
        if from_repo is None:
            continue
        parsed, configs, build = from_repo
        try:
            services[name] = desired_service(
                parsed,
                source=source,
                secrets=secrets,
                offline=offline,
                default_network=default_network,
                configs=configs,
                build=build,
            )
        except SecretUnavailable as err:
            errors.append(
                LoadError(doc.file, doc.line_of(("spec", "secretEnv")), "spec.secretEnv", str(err))
            )

    return services, where, networks, notifiers


def _notifier(
    doc: Document,
    parsed: NotifierDocument,
    seen: dict[str, str],
    errors: list[LoadError],
    *,
    secrets: SecretSource | None,
    offline: bool,
) -> DesiredNotifier | None:
    """A notifier whose targets' URL files can be read (their shape only, offline)."""
    name = parsed.metadata.name
    source = f"{doc.file}:{doc.line_of(())}"
    if name in seen:
        at: tuple[str | int, ...] = ("metadata", "name")
        why = f"notifier {name!r} is already defined at {seen[name]}"
        errors.append(LoadError(doc.file, doc.line_of(at), "metadata.name", why))
        return None
    seen[name] = source
    failed = False
    for i, target in enumerate(parsed.spec.targets):
        secret = target.secret
        key = "urlFile" if target.url_file is not None else "urlEncrypted"
        at = ("spec", "targets", i, key)
        try:
            if offline:
                if secret.is_encrypted and secrets is not None:
                    secrets.check(secret.source)
            elif secrets is None:
                raise SecretUnavailable("no secrets directory is configured here")
            else:
                secrets.read(secret.source, encrypted=secret.is_encrypted)
        except SecretUnavailable as err:
            errors.append(LoadError(doc.file, doc.line_of(at), dotted(at), str(err)))
            failed = True
    if failed:
        return None
    return DesiredNotifier(name, parsed.spec, source, parsed.metadata.labels)


Read = dict[Path, tuple[list[Document], list[LoadError]]]


def _sources(
    root: Path, stdin: bytes | None, errors: list[LoadError]
) -> tuple[Path, list[Path], Read] | None:
    """The root that paths are relative to, the files, and what each holds."""
    if stdin is not None:
        files = [Path.cwd() / "-"]
        return Path.cwd(), files, {files[0]: read_bytes(stdin, display="-")}
    if root.is_file():
        files, root = [root], root.parent
    elif root.is_dir():
        files = sorted(_yaml_files(root))
    else:
        problem = "no such file or directory" if not root.exists() else "not a directory or file"
        errors.append(LoadError(str(root), 0, "", problem))
        return None
    if len(files) > MAX_FILES:
        errors.append(LoadError(str(root), 0, "", f"more than {MAX_FILES} YAML files"))
        files = files[:MAX_FILES]
    return root, files, {path: read_file(path, display=_display(path)) for path in files}


def _twice(doc: Document, kind: str, first: Document) -> LoadError:
    """A second document of ``kind`` with a name already taken, pointing at the first."""
    at = ("metadata", "name")
    name = doc.value["metadata"]["name"]
    return LoadError(
        doc.file,
        doc.line_of(at),
        "metadata.name",
        f"{kind} {name!r} is already defined at {first.file}:{first.line_of(at)}",
    )


def _repo_files(
    doc: Document, parsed: ServiceDocument, root: Path, errors: list[LoadError]
) -> tuple[ServiceDocument, tuple[ConfigContent, ...], BuildContext | None] | None:
    """The service's configs read and digested, its env files merged into env (env wins),
    its build context digested and the image it makes named.

    None after reporting, when one of them cannot be used.
    """
    spec = parsed.spec
    base = Path(doc.file).parent
    build: BuildContext | None = None
    if spec.build is not None:
        if spec.image:
            at: tuple[str | int, ...] = ("spec", "image")
            why = "with build, paid names the image it builds itself; remove image"
            errors.append(LoadError(doc.file, doc.line_of(at), dotted(at), why))
            return None
        try:
            build = read_build(root, base, spec.build)
        except ConfigError as err:
            at = ("spec", "build", "context")
            errors.append(LoadError(doc.file, doc.line_of(at), dotted(at), str(err)))
            return None
        spec = spec.model_copy(update={"image": build.tag(parsed.metadata.name)})
        parsed = parsed.model_copy(update={"spec": spec})
    if not spec.configs and not spec.env_files:
        return parsed, (), build
    configs: list[ConfigContent] = []
    failed = False
    for i, mount in enumerate(spec.configs):
        try:
            configs.append(read_config(root, base, mount))
        except ConfigError as err:
            at = ("spec", "configs", i, "source")
            errors.append(LoadError(doc.file, doc.line_of(at), dotted(at), str(err)))
            failed = True
    from_files: dict[str, str] = {}
    for i, name in enumerate(spec.env_files):
        try:
            from_files.update(read_env_file(root, base, name))
        except ConfigError as err:
            at = ("spec", "envFiles", i)
            errors.append(LoadError(doc.file, doc.line_of(at), dotted(at), f"{name}: {err}"))
            failed = True
    if failed:
        return None
    for key in from_files:
        if key in spec.secret_env or key.removesuffix("_FILE") in spec.secret_env:
            message = f"{key} (from an env file) collides with secretEnv"
            errors.append(
                LoadError(doc.file, doc.line_of(("spec", "envFiles")), "spec.envFiles", message)
            )
            return None
    merged = spec.model_copy(update={"env": {**from_files, **spec.env}, "env_files": []})
    return parsed.model_copy(update={"spec": merged}), tuple(configs), build


OTHER_KINDS = frozenset({"Network", "Notifier"})  # documents that are not services


def _kind(doc: Document) -> object:
    return doc.value.get("kind") if isinstance(doc.value, dict) else None


def _raw_name(doc: Document) -> str | None:
    metadata = doc.value.get("metadata") if isinstance(doc.value, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _referenced(read: Mapping[Path, tuple[list[Document], list[LoadError]]]) -> set[Path]:
    """The files and directories Service documents name as configs or env files.

    They are content for containers (a ``prometheus.yml``, a Grafana
    datasource), never desired state, however they are spelled. Only what a
    document names is exempt: any other YAML file must be paid's, so a typo
    in a document's name is still caught.
    """
    out: set[Path] = set()
    for path, (docs, _) in read.items():
        for doc in docs:
            value = doc.value
            if not isinstance(value, dict) or value.get("kind") != "Service":
                continue
            spec = value.get("spec")
            if not isinstance(spec, dict):
                continue
            named = [c.get("source") for c in spec.get("configs") or [] if isinstance(c, dict)]
            named += list(spec.get("envFiles") or [])
            build = spec.get("build")
            if isinstance(build, dict):
                named.append(build.get("context", "."))
            for source in named:
                if isinstance(source, str) and source and "\0" not in source:
                    out.add(Path(os.path.normpath(path.parent / source)))
    return out


def _paid_file(docs: list[Document]) -> bool:
    """Whether a file holds a paid document (a build context may hold the service's own)."""
    return any(
        isinstance(d.value, dict) and str(d.value.get("apiVersion", "")).startswith("paid/")
        for d in docs
    )


def _under(path: Path, referenced: set[Path]) -> bool:
    normal = Path(os.path.normpath(path))
    return any(normal == r or r in normal.parents for r in referenced)


def _yaml_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield Path(dirpath, name)


def _validate(
    doc: Document, errors: list[LoadError]
) -> ServiceDocument | NetworkDocument | NotifierDocument | None:
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
                "this looks like a Compose file, not paid's desired state: try "
                f"`paid import compose {doc.file}` (paid's files are apiVersion: paid/v1, "
                "kind: Service, one document per service)",
            )
        )
        return None
    kinds: dict[object, type[ServiceDocument | NetworkDocument | NotifierDocument]] = {
        "Network": NetworkDocument,
        "Notifier": NotifierDocument,
    }
    kind = kinds.get(_kind(doc), ServiceDocument)
    try:
        return kind.model_validate(doc.value)
    except ValidationError as err:
        for item in err.errors():
            loc = tuple(item["loc"])
            errors.append(
                LoadError(
                    doc.file,
                    doc.line_of(loc),
                    dotted(loc),
                    _message(item["type"], item["msg"], loc, kind),
                )
            )
        return None


def _fields_at(loc: Sequence[str | int], document: type[BaseModel]) -> list[str]:
    """The field names (as written in YAML) of the model at ``loc`` in a document."""
    model: type[BaseModel] | None = document
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


def _message(
    kind: str,
    msg: str,
    loc: tuple[str | int, ...] = (),
    document: type[BaseModel] = ServiceDocument,
) -> str:
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1], document)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
        return f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and loc == ("kind",):
        return "kind must be Service, Network or Notifier"
    if kind == "string_type" and len(loc) >= 2 and loc[-2] in ("env", "labels"):
        return "must be a string (quote values such as true, 1 or 1.0)"
    if kind == "string_pattern_mismatch":
        return "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit"
    if kind == "greater_than_equal" and loc[-1:] == ("memory",):
        return "must be at least 6Mi (runc refuses less)"
    return msg.removeprefix("Value error, ")
