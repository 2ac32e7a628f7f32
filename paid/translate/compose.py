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


def _top_level(
    compose: dict[str, Any], doc: Document, path: Path, project: Project, translation: Translation
) -> None:
    display = str(path)
    for key in compose:
        if key not in _TOP_LEVEL and not str(key).startswith("x-"):
            translation.problems.append(
                Problem(display, doc.line_of((key,)), key, "no paid equivalent")
            )
    for name in compose["services"]:
        new = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:63] or "service"
        project.names[str(name)] = new
    for name, declared in (compose.get("networks") or {}).items():
        body = declared or {}
        line = doc.line_of(("networks", name))
        if name == "default":
            continue
        if body.get("external"):
            why = "external: paid makes its own networks; declare it, or use the default one"
            translation.problems.append(Problem(display, line, f"networks.{name}", why))
            continue
        new = network_name(str(name))
        project.networks[str(name)] = new
        spec: dict[str, Any] = {}
        if body.get("internal"):
            spec["internal"] = True
        subnets = [
            c.get("subnet")
            for c in ((body.get("ipam") or {}).get("config") or [])
            if c.get("subnet")
        ]
        if subnets:
            spec["subnet"] = subnets[0]
        if body.get("driver") not in (None, "bridge"):
            translation.problems.append(
                Problem(display, line, f"networks.{name}.driver", "only bridge networks")
            )
        document = {"apiVersion": "paid/v1", "kind": "Network", "metadata": {"name": new}}
        if spec:
            document["spec"] = spec
        translation.outputs.append(Output(f"network-{new}.yaml", [document]))
    for name, body in (compose.get("volumes") or {}).items():
        if (body or {}).get("driver") not in (None, "local") or (body or {}).get("driver_opts"):
            translation.problems.append(
                Problem(
                    display,
                    doc.line_of(("volumes", name)),
                    f"volumes.{name}",
                    "only local volumes without driver options",
                )
            )
    for kind, into in (("secrets", project.secrets), ("configs", project.configs)):
        for name, body in (compose.get(kind) or {}).items():
            line = doc.line_of((kind, name))
            file = (body or {}).get("file")
            if not file:
                translation.problems.append(
                    Problem(display, line, f"{kind}.{name}", "only file-based ones")
                )
                continue
            if kind == "secrets":
                into[str(name)] = PurePosixPath(str(file)).name
            else:
                source = (path.parent / str(file)).resolve()
                try:
                    relative = source.relative_to(path.parent.resolve())
                except ValueError:
                    translation.problems.append(
                        Problem(display, line, f"{kind}.{name}", f"{file} is outside the project")
                    )
                    continue
                translation.copies[str(relative)] = source
                into[str(name)] = str(PurePosixPath(relative))


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
