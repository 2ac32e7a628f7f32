"""``paid import compose``: a compose file in, paid's documents out, or what cannot be.

Every compose key paid knows is in ``KEYS``: its paid field and how it
maps, the same table the README's mapping is generated from. A key with
no handler, or a value a handler cannot translate, is a ``Problem``
(``file:line: key: why``); the CLI writes nothing unless ``--partial``.

``${VAR}`` interpolation is resolved as compose does: from the
environment, then the ``.env`` beside the file (``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?message}``, ``$$``); each resolved variable
is noted in the file it lands in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from paid.state.configs import ConfigError, parse_env
from paid.state.reading import Document, read_file
from paid.translate.compose_keys import BY_NAME, Context, Project, network_name
from paid.translate.output import Output, Problem, Translation, in_order

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_TOP_LEVEL = frozenset({"services", "networks", "volumes", "secrets", "configs", "version", "name"})


# -- interpolation ------------------------------------------------------------------


def interpolate(value: Any, variables: Mapping[str, str], used: dict[str, str]) -> Any:
    """compose's ``${VAR}`` over every string in ``value``; ``ValueError`` names a missing one."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: _resolve(m, variables, used), value)
    if isinstance(value, list):
        return [interpolate(v, variables, used) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables, used) for k, v in value.items()}
    return value


def _resolve(match: re.Match[str], variables: Mapping[str, str], used: dict[str, str]) -> str:
    if match[0] == "$$":
        return "$"
    expression = match["braced"] if match["braced"] is not None else match["bare"]
    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expression)
    if name is None:
        raise ValueError(f"${{{expression}}} is not a variable")
    key, rest = name[0], expression[name.end() :]
    value = variables.get(key)
    if rest.startswith((":-", ":?")) and value == "":
        value = None
    if rest[:2] in (":-",) or rest[:1] == "-":
        default = rest[2:] if rest.startswith(":-") else rest[1:]
        value = default if value is None else value
    elif rest[:2] == ":?" or rest[:1] == "?":
        if value is None:
            message = rest[2:] if rest.startswith(":?") else rest[1:]
            raise ValueError(f"${{{key}}}: {message or 'required'}")
    elif rest:
        raise ValueError(f"${{{expression}}}: not a form compose knows")
    if value is None:
        raise ValueError(f"${{{key}}} is not set (in the environment or in .env)")
    used[key] = value
    return value


# -- the file ---------------------------------------------------------------------


def import_compose(path: Path, *, environ: Mapping[str, str] | None = None) -> Translation:
    """Translate the compose file at ``path``; problems say what could not be."""
    translation = Translation()
    display = str(path)
    docs, errors = read_file(path, display=display)
    for error in errors:
        translation.problems.append(Problem(error.file, error.line, error.field, error.message))
    if errors or not docs:
        return translation
    doc = docs[0]
    if not isinstance(doc.value, dict) or not isinstance(doc.value.get("services"), dict):
        translation.problems.append(
            Problem(display, 1, "services", "no services: not a compose file")
        )
        return translation
    variables = _variables(path.parent / ".env", translation, environ)
    used: dict[str, str] = {}
    try:
        compose = interpolate(doc.value, variables, used)
    except ValueError as err:
        translation.problems.append(Problem(display, 0, "interpolation", str(err)))
        return translation
    project = Project()
    _top_level(compose, doc, path, project, translation)
    for service, body in compose["services"].items():
        _service(str(service), body or {}, doc, path, project=project, translation=translation)
    if used:
        note = ", ".join(f"${{{k}}}={v}" for k, v in sorted(used.items()))
        for output in translation.outputs:
            output.notes.insert(0, f"interpolated as compose would, from the environment and "
                                   f".env: {note}")  # fmt: skip
    return translation


def _variables(
    dotenv: Path, translation: Translation, environ: Mapping[str, str] | None
) -> dict[str, str]:
    variables: dict[str, str] = {}
    if dotenv.is_file():
        try:
            variables.update(parse_env(dotenv.read_text()))
        except (ConfigError, OSError, UnicodeDecodeError) as err:
            line = getattr(err, "line", 0)
            translation.problems.append(Problem(str(dotenv), line, ".env", str(err)))
    variables.update(os.environ if environ is None else environ)
    return variables


@dataclass
class _File:
    """The compose file's top level, as the importer reads it."""

    compose: dict[str, Any]
    doc: Document
    path: Path
    project: Project
    translation: Translation

    def problem(self, loc: tuple[Any, ...], why: str) -> None:
        key = ".".join(str(p) for p in loc)
        line = self.doc.line_of(loc)
        self.translation.problems.append(Problem(str(self.path), line, key, why))


def _top_level(
    compose: dict[str, Any], doc: Document, path: Path, project: Project, translation: Translation
) -> None:
    """Service names, networks, volumes, secrets and configs: what services refer to."""
    top = _File(compose, doc, path, project, translation)
    for key in compose:
        if key not in _TOP_LEVEL and not str(key).startswith("x-"):
            top.problem((key,), "no paid equivalent")
    for name in compose["services"]:
        new = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:63] or "service"
        project.names[str(name)] = new
    for name, declared in (compose.get("networks") or {}).items():
        if name != "default":
            _network(top, str(name), declared or {})
    for name, body in (compose.get("volumes") or {}).items():
        if (body or {}).get("driver") not in (None, "local") or (body or {}).get("driver_opts"):
            top.problem(("volumes", name), "only local volumes without driver options")
    for kind in ("secrets", "configs"):
        for name, body in (compose.get(kind) or {}).items():
            _file_entry(top, kind, str(name), (body or {}).get("file"))


def _network(top: _File, name: str, body: dict[str, Any]) -> None:
    if body.get("external"):
        why = "external: paid makes its own networks; declare it, or use the default one"
        top.problem(("networks", name), why)
        return
    new = network_name(name)
    top.project.networks[name] = new
    spec: dict[str, Any] = {}
    if body.get("internal"):
        spec["internal"] = True
    configs = (body.get("ipam") or {}).get("config") or []
    subnets = [c["subnet"] for c in configs if isinstance(c, dict) and c.get("subnet")]
    if subnets:
        spec["subnet"] = subnets[0]
    if body.get("driver") not in (None, "bridge"):
        top.problem(("networks", name, "driver"), "only bridge networks")
    document: dict[str, Any] = {
        "apiVersion": "paid/v1",
        "kind": "Network",
        "metadata": {"name": new},
    }
    if spec:
        document["spec"] = spec
    top.translation.outputs.append(Output(f"network-{new}.yaml", [document]))


def _file_entry(top: _File, kind: str, name: str, file: Any) -> None:
    """A file-based secret (its file name in paid's secrets directory) or config (copied)."""
    if not file:
        top.problem((kind, name), "only file-based ones")
        return
    if kind == "secrets":
        top.project.secrets[name] = PurePosixPath(str(file)).name
        return
    source = (top.path.parent / str(file)).resolve()
    try:
        relative = source.relative_to(top.path.parent.resolve())
    except ValueError:
        top.problem((kind, name), f"{file} is outside the project")
        return
    top.translation.copies[str(relative)] = source
    top.project.configs[name] = str(PurePosixPath(relative))


def _service(
    service: str,
    body: dict[str, Any],
    doc: Document,
    path: Path,
    *,
    project: Project,
    translation: Translation,
) -> None:
    name = project.names[service]
    ctx = Context(str(path), doc, service, name, {}, path.parent, translation, [], project)
    if name != service:
        ctx.notes.append(f"service {service} is named {name} (paid's names: a-z, 0-9, -)")
    if "image" not in body:
        ctx.problem(
            "image",
            "required: paid runs images" + (" (this one has build:)" if "build" in body else ""),
        )
    for key, value in body.items():
        known = BY_NAME.get(str(key))
        if known is None:
            ctx.problem(str(key), "no paid equivalent")
        elif known.handler is None:
            ctx.problem(str(key), known.how)
        else:
            known.handler(value, ctx)
    for secret in body.get("secrets") or []:
        source = secret.get("source") if isinstance(secret, dict) else secret
        if str(source) in project.secrets:
            ctx.notes.append(f"copy the secret file for {source} into paid's secrets directory "
                             f"as {project.secrets[str(source)]}")  # fmt: skip
    metadata: dict[str, Any] = {"name": name}
    if ctx.labels:
        metadata["labels"] = ctx.labels
    if not _NAME.fullmatch(name):
        ctx.problem("name", f"{service!r} cannot be made a paid name")
    document = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": in_order(ctx.spec),
    }
    translation.outputs.append(Output(f"{name}.yaml", [document], ctx.notes))
