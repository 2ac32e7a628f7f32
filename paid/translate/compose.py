"""``paid import compose``: a compose file in, paid's documents out, or what cannot be.

Every compose key paid knows is in ``KEYS``: its paid field and how it
maps, the same table the README's mapping is generated from. A key with
no handler, or a value a handler cannot translate, is a ``Problem``
(``file:line: key: why``); the CLI writes nothing unless ``--partial``.

``${VAR}`` interpolation is resolved as the Compose Spec says, from the
environment, then the ``.env`` beside the file (``interpolate``); the
names of the variables used are noted in each file, never their values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from paid.state.configs import ConfigError, parse_env
from paid.state.reading import Document
from paid.storage.files import read_file
from paid.translate.compose_keys import BY_NAME, Context, Project, network_name
from paid.translate.compose_merge import Located, Merged, merge, override_of
from paid.translate.output import (
    Output,
    Problem,
    Translation,
    collisions,
    in_order,
    project_path,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOP_LEVEL = frozenset({"services", "networks", "volumes", "secrets", "configs", "version", "name"})


# -- interpolation ------------------------------------------------------------------


def interpolate(value: Any, variables: Mapping[str, str], used: set[str]) -> Any:
    """Compose's ``${VAR}`` over every string in ``value``; ``ValueError`` says what failed.

    The Compose Spec's forms, nested defaults included: ``$VAR``,
    ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}``,
    ``${VAR+alt}``, ``${VAR:?message}``, ``${VAR?message}``, ``$$``. The
    word after an operator is interpolated only when it is used. One
    difference, on purpose: a bare ``${VAR}`` that nothing sets is refused
    (compose warns and writes an empty string), because the files an import
    writes are committed, and a silently empty value is found in production.
    Names of the variables used go into ``used``, never their values.
    """
    if isinstance(value, str):
        return _substitute(value, variables, used)
    if isinstance(value, list):
        return [interpolate(v, variables, used) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables, used) for k, v in value.items()}
    return value


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":+", ":?", "-", "+", "?")  # two-character forms first


def _substitute(text: str, variables: Mapping[str, str], used: set[str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        after = text[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            i = dollar + 2
        elif after == "{":
            end = _closing(text, dollar + 2)
            out.append(_braced(text[dollar + 2 : end], variables, used))
            i = end + 1
        elif (bare := _BARE.match(text, dollar + 1)) is not None:
            out.append(_braced(bare[0], variables, used))
            i = bare.end()
        else:
            out.append("$")  # a lone $ is text, as compose reads it
            i = dollar + 1
    return "".join(out)


def _closing(text: str, start: int) -> int:
    """The index of the ``}`` that closes a ``${`` opened just before ``start``."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"{text[start - 2 :]!r}: a ${{ without its closing }}")


def _braced(expression: str, variables: Mapping[str, str], used: set[str]) -> str:
    name = _BARE.match(expression)
    if name is None:
        raise ValueError(f"${{{expression}}} is not a variable")
    key, rest = name[0], expression[name.end() :]
    value = variables.get(key)
    used.add(key)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        if rest:
            raise ValueError(f"${{{expression}}}: not a form compose knows")
        if value is None:
            raise ValueError(f"${{{key}}} is not set (in the environment or in .env)")
        return value
    word = rest[len(operator) :]
    present = bool(value) if operator.startswith(":") else value is not None
    if operator.endswith("-"):
        return value if present and value is not None else _substitute(word, variables, used)
    if operator.endswith("+"):
        return _substitute(word, variables, used) if present else ""
    if not present or value is None:  # ? and :?
        message = _substitute(word, variables, used)
        raise ValueError(f"${{{key}}}: {message or 'required'}")
    return value


# -- the file ---------------------------------------------------------------------


def import_compose(
    paths: Path | Sequence[Path], *, environ: Mapping[str, str] | None = None
) -> Translation:
    """Translate compose files (merged in order, as ``-f a -f b``); problems say what cannot be.

    One file is merged with the override file compose would read beside it
    (``compose.override.yaml`` for ``compose.yaml``). The project directory,
    its ``.env`` and relative paths are the first file's.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if len(files) == 1 and (override := override_of(files[0])) is not None:
        files.append(override)
    path = files[0]
    translation = Translation()
    variables = _variables(path.parent / ".env", translation, environ)
    used: set[str] = set()
    docs: list[Document] = []
    values: list[dict[str, Any]] = []
    for file in files:
        display = str(file)
        read, errors = read_file(file, display=display)
        for error in errors:
            translation.problems.append(Problem(error.file, error.line, error.field, error.message))
        if errors or not read:
            return translation
        if not isinstance(read[0].value, dict) or (
            not isinstance(read[0].value.get("services"), dict) and file == path
        ):
            translation.problems.append(
                Problem(display, 1, "services", "no services: not a compose file")
            )
            return translation
        try:
            values.append(interpolate(read[0].value, variables, used))
        except ValueError as err:
            translation.problems.append(Problem(display, 0, "interpolation", str(err)))
            return translation
        docs.append(read[0])
    compose = values[0]
    for value in values[1:]:
        compose = merge(compose, value)
    if not isinstance(compose.get("services"), dict):
        translation.problems.append(Problem(str(files[-1]), 1, "services", "a mapping"))
        return translation
    doc: Located = Merged(docs, compose) if len(docs) > 1 else docs[0]
    project = Project(name=project_name(compose, path, variables))
    _top_level(compose, doc, path, project, translation)
    for service, body in compose["services"].items():
        if body is not None and not isinstance(body, dict):
            translation.problems.append(
                Problem(*doc.where(("services", service)), f"services.{service}", "a mapping")
            )
            continue
        _service(str(service), body or {}, doc, path, project=project, translation=translation)
    translation.problems.extend(collisions(translation, str(path)))
    if used:
        # Names only: values from .env are often passwords, and these files go into git.
        note = ", ".join(f"${{{k}}}" for k in sorted(used))
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
    doc: Located
    path: Path
    project: Project
    translation: Translation

    def problem(self, loc: tuple[Any, ...], why: str) -> None:
        key = ".".join(str(p) for p in loc)
        file, line = self.doc.where(loc)
        self.translation.problems.append(Problem(file, line, key, why))


def project_name(compose: dict[str, Any], path: Path, variables: Mapping[str, str]) -> str:
    """The compose project's name, as compose picks and normalises it.

    ``name:`` in the file, else ``COMPOSE_PROJECT_NAME``, else the file's
    directory; lower case, only ``a-z0-9_-``, starting with a letter or digit.
    """
    raw = str(compose.get("name") or variables.get("COMPOSE_PROJECT_NAME") or "")
    raw = raw or path.resolve().parent.name
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower()).lstrip("_-")
    return name[:40] or "project"


def _top_level(
    compose: dict[str, Any], doc: Located, path: Path, project: Project, translation: Translation
) -> None:
    """Service names, networks, volumes, secrets and configs: what services refer to."""
    top = _File(compose, doc, path, project, translation)
    for key in compose:
        if key not in _TOP_LEVEL and not str(key).startswith("x-"):
            top.problem((key,), "no paid equivalent")
    taken: dict[str, str] = {}
    for name in compose["services"]:
        new = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:63] or "service"
        if new in taken:
            why = f"becomes {new!r}, as service {taken[new]!r} does: rename one"
            top.problem(("services", name), why)
        taken.setdefault(new, str(name))
        project.names[str(name)] = new
    for name, body in _entries(top, "networks"):
        if name != "default":
            _guarded(top, ("networks", name), partial(_network, top, name, body))
    for name, body in _entries(top, "volumes"):
        _guarded(top, ("volumes", name), partial(_volume, top, name, body))
    for kind in ("secrets", "configs"):
        for name, body in _entries(top, kind):
            _guarded(top, (kind, name), partial(_file_entry, top, kind, name, body.get("file")))


def _entries(top: _File, section: str) -> list[tuple[str, dict[str, Any]]]:
    """A top-level section's entries, each a mapping (an empty one for ``name:``), or problems."""
    value = top.compose.get(section)
    if value is None:
        return []
    if not isinstance(value, dict):
        top.problem((section,), "a mapping of names to definitions")
        return []
    out = []
    for name, body in value.items():
        if body is not None and not isinstance(body, dict):
            top.problem((section, name), "a mapping (or nothing)")
            continue
        out.append((str(name), body or {}))
    return out


def _guarded(top: _File, loc: tuple[Any, ...], read: Callable[[], None]) -> None:
    """One entry read; a value of a shape the reader does not take is that entry's problem."""
    try:
        read()
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as err:
        top.problem(loc, f"not a form paid reads ({err})")


def _volume(top: _File, name: str, body: dict[str, Any]) -> None:
    if body.get("driver") not in (None, "local") or body.get("driver_opts"):
        top.problem(("volumes", name), "only local volumes without driver options")
    # Compose's own names: <project>_<volume>, so a migrated app finds its data,
    # and two apps' `db-data` are two volumes. `name:` and `external` are as written.
    given = body.get("name") or (name if body.get("external") else None)
    top.project.volumes[name] = str(given) if given else f"{top.project.name}_{name}"


def _network(top: _File, name: str, body: dict[str, Any]) -> None:
    if body.get("external"):
        why = "external: paid makes its own networks; declare it, or use the default one"
        top.problem(("networks", name), why)
        return
    # Scoped as compose scopes it (<project>_<network>): two apps' `backend` are two networks.
    new = network_name(body.get("name") or f"{top.project.name}_{name}")
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
    found = project_path(top.path.parent, str(file))
    if isinstance(found, str):
        top.problem((kind, name), found)
        return
    relative, source = found
    top.translation.copies[str(relative)] = source
    top.project.configs[name] = str(PurePosixPath(relative))


def _service(
    service: str,
    body: dict[str, Any],
    doc: Located,
    path: Path,
    *,
    project: Project,
    translation: Translation,
) -> None:
    name = project.names[service]
    ctx = Context(str(path), doc, service, name, {}, path.parent, translation, [], project)
    if name != service:
        ctx.notes.append(f"service {service} is named {name} (paid's names: a-z, 0-9, -)")
    if "image" not in body and "build" not in body:
        ctx.problem("image", "required: an image, or a build to make one")
    for key, value in body.items():
        known = BY_NAME.get(str(key))
        if known is None:
            ctx.problem(str(key), "no paid equivalent")
        elif known.handler is None:
            ctx.problem(str(key), known.how)
        else:
            try:
                known.handler(value, ctx)
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as err:
                ctx.problem(str(key), f"not a form paid reads ({err})")
    if "build" in ctx.spec and "image" in ctx.spec:
        ctx.notes.append(
            f"compose tags the build as {body.get('image')}; paid names the image it "
            f"builds by the context's digest (localhost/paid/{name}:…)"
        )
        ctx.spec.pop("image")
        ctx.spec.pop("imageUpdate", None)
    secrets = body.get("secrets")
    for secret in secrets if isinstance(secrets, list) else []:
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
