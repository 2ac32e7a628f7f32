"""The compose keys paid knows, each with its paid field and its translation.

``KEYS`` is the one table: ``import_compose`` dispatches on it, and the
README's mapping table is generated from it (``mapping_table``), so the
two cannot drift. A key without a handler is refused with its ``how``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from paid.state.networks import NETWORK_NAME
from paid.state.specs import NAME_PATTERN
from paid.translate.compose_merge import Located
from paid.translate.output import Problem, Translation, project_path

_NAME = re.compile(NAME_PATTERN)
_NETWORK = re.compile(NETWORK_NAME)
_DURATION = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>us|ms|s|m|h)")
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_IGNORED_TOP = frozenset({"version", "name"})


@dataclass
class Context:
    """One service being translated: where it is, what it became, what went wrong."""

    file: str
    doc: Located
    service: str
    name: str
    spec: dict[str, Any]
    root: Path  # the compose file's directory
    translation: Translation
    notes: list[str]
    project: Project
    labels: dict[str, str] = field(default_factory=dict)

    def problem(self, key: str, why: str, *path: str | int) -> None:
        loc = ("services", self.service, key, *path)
        file, line = self.doc.where(loc)
        self.translation.problems.append(
            Problem(
                file,
                line,
                f"services.{self.service}.{key}",
                why,
                output=f"{self.name}.yaml",
            )
        )


@dataclass
class Project:
    """What is known of the whole file: services' new names, networks, secrets, configs."""

    name: str = "project"  # compose's project name: scopes volumes and networks
    names: dict[str, str] = field(default_factory=dict)  # compose name -> paid name
    volumes: dict[str, str] = field(default_factory=dict)  # compose volume -> Podman volume
    networks: dict[str, str] = field(default_factory=dict)  # compose network -> paid network
    default_network_used: bool = False
    secrets: dict[str, str] = field(default_factory=dict)  # compose secret -> file
    configs: dict[str, str] = field(default_factory=dict)  # compose config -> relative path
    variables: dict[str, str] = field(default_factory=dict)  # resolved, for notes


Handler = Callable[[Any, Context], None]


@dataclass(frozen=True, slots=True)
class Key:
    """One compose service key: the paid field it becomes, and how."""

    compose: str
    paid: str
    how: str
    handler: Handler | None = None  # None: cannot be translated (``how`` says why)


# -- values -----------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _mapping(value: Any, sep: str = "=") -> dict[str, str | None]:
    """compose's list-or-map: ``["A=1", "B"]`` or ``{A: 1, B: null}``."""
    if isinstance(value, dict):
        return {str(k): None if v is None else _scalar(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in _strings(value):
        key, found, rest = item.partition(sep)
        out[key] = rest if found else None
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def seconds(value: Any) -> float:
    """compose's durations: ``1m30s``, ``10s``, ``500ms``, or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("an empty duration")
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)  # systemd's bare seconds
    total, at = 0.0, 0
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for match in _DURATION.finditer(text):
        if match.start() != at:
            break
        total += float(match["n"]) * scale[match["unit"]]
        at = match.end()
    if at != len(text):
        raise ValueError(f"{text!r} is not a duration such as 30s or 1m30s")
    return total


def _whole_seconds(value: Any, ctx: Context, key: str, *path: str) -> int | None:
    try:
        return max(1, round(seconds(value)))
    except ValueError as err:
        ctx.problem(key, str(err), *path)
        return None


# -- handlers ---------------------------------------------------------------------


def _image(value: Any, ctx: Context) -> None:
    image = str(value)
    reference = image.rsplit("/", 1)[-1]
    if "@" not in reference and (":" not in reference or reference.endswith(":latest")):
        # A moving tag, followed the safe way: run by digest, moved through the health gate.
        ctx.spec["imageUpdate"] = {"policy": "registry"}
        ctx.notes.append(
            f"{image} moves: {ctx.name} runs it by digest and follows the tag through the "
            "health gate (imageUpdate); add minimumAge: 72h to let a new push age first, use "
            'policy: semver with a range (">=1.4 <2") to follow versions instead, or pin a '
            "version tag or a digest to stop following"
        )
    ctx.spec["image"] = _qualified(image)


def _qualified(image: str) -> str:
    """``redis:7`` → ``docker.io/library/redis:7``: Podman asks no registry search list then."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def _split(value: Any, ctx: Context, key: str) -> list[str] | None:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            ctx.problem(key, f"cannot split as a shell would: {err}")
            return None
    return _strings(value)


def _command(value: Any, ctx: Context) -> None:
    argv = _split(value, ctx, "command")
    if argv is not None:
        ctx.spec["args"] = argv


def _entrypoint(value: Any, ctx: Context) -> None:
    argv = _split(value, ctx, "entrypoint")
    if argv is not None:
        ctx.spec["command"] = argv


def _environment(value: Any, ctx: Context) -> None:
    env = ctx.spec.setdefault("env", {})
    for key, item in _mapping(value).items():
        if item is None:
            if key in os.environ:
                env[key] = os.environ[key]
                ctx.notes.append(f"env {key} was taken from the environment of the import")
            else:
                ctx.problem("environment", f"{key} has no value here (compose passes it through)")
        else:
            env[key] = item


def _env_file(value: Any, ctx: Context) -> None:
    files = value if isinstance(value, list) else [value]
    for entry in files:
        path = entry.get("path") if isinstance(entry, dict) else entry
        relative = _project_file(str(path), ctx, "env_file")
        if relative is not None:
            ctx.spec.setdefault("envFiles", []).append(relative)


def _project_file(path: str, ctx: Context, key: str) -> str | None:
    """A file of the project, copied into the output at the same relative path."""
    found = project_path(ctx.root, path)
    if isinstance(found, str):
        ctx.problem(key, found)
        return None
    relative, source = found
    if relative == Path():
        # The project directory itself (`.:/code`): copied whole, under its own name.
        relative = Path(f"{ctx.root.resolve().name or 'project'}-files")
    ctx.translation.copies[str(relative)] = source
    return str(PurePosixPath(relative))


def _ports(value: Any, ctx: Context) -> None:
    out = ctx.spec.setdefault("ports", [])
    for i, item in enumerate(value or []):
        if isinstance(item, dict):
            published, target = item.get("published"), item.get("target")
            if published is None:
                ctx.problem("ports", "give a host port: paid publishes only fixed ports", i)
                continue
            ip = item.get("host_ip")
            text = f"{ip}:{published}:{target}" if ip else f"{published}:{target}"
            out.extend(_port_range(f"{text}/{item.get('protocol') or 'tcp'}", ctx, i))
            continue
        text = str(item)
        body = text.rsplit("/", 1)[0]
        if ":" not in body.replace("::", ""):
            ctx.problem("ports", f"{text}: give a host port (host:container)", i)
            continue
        out.extend(_port_range(text, ctx, i))


def _port_range(text: str, ctx: Context, i: int) -> Iterator[str]:
    """``[ip:]host:container[/proto]``, a range of each expanded into single ports."""
    body, _, proto = text.partition("/")
    ip, _, rest = body.rpartition(":")
    ip, _, host = ip.rpartition(":") if ip else ("", "", "")
    host, container = (host, rest) if host else (ip, rest)
    ip = "" if host == ip else ip
    prefix = f"{ip}:" if ip else ""
    suffix = f"/{proto}" if proto and proto != "tcp" else ""
    try:
        h0, h1 = _bounds(host)
        c0, c1 = _bounds(container)
    except ValueError:
        ctx.problem("ports", f"{text} is not a port or a range of ports", i)
        return
    if h1 - h0 != c1 - c0:
        ctx.problem("ports", f"{text}: the two ranges differ in length", i)
        return
    for offset in range(h1 - h0 + 1):
        yield f"{prefix}{h0 + offset}:{c0 + offset}{suffix}"


def _bounds(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if last < first:
        raise ValueError(text)
    return first, last


def _volumes(value: Any, ctx: Context) -> None:
    for i, item in enumerate(value or []):
        if isinstance(item, dict):
            kind, source = item.get("type", "volume"), item.get("source")
            target, read_only = str(item.get("target", "")), bool(item.get("read_only"))
        else:
            parts = str(item).split(":")
            mode = parts[2] if len(parts) > 2 else ""
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            read_only = "ro" in mode.split(",")
            kind = "volume" if source is None or not _is_path(source) else "bind"
        if kind == "tmpfs":
            options = item.get("tmpfs") if isinstance(item, dict) else None
            _tmpfs_mount(target, options if isinstance(options, dict) else {}, ctx, i)
        elif kind == "bind":
            _bind(str(source), target, read_only, ctx, i)
        elif kind == "volume":
            if source is None:
                path = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")
                source = f"{ctx.project.name}_{ctx.name}-{path}"
                ctx.notes.append(f"the anonymous volume on {target} is named {source}")
            elif source in ctx.project.volumes:
                source = ctx.project.volumes[source]
            else:
                ctx.problem("volumes", f"{source}: not declared under the top-level volumes", i)
                return
            mount = f"{source}:{target}" + (":ro" if read_only else "")
            ctx.spec.setdefault("volumes", []).append(mount)
        else:
            ctx.problem("volumes", f"type {kind!r} has no paid equivalent", i)


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _bind(source: str, target: str, read_only: bool, ctx: Context, i: int) -> None:
    if source.startswith("~"):
        ctx.problem("volumes", f"{source}: name the host path without ~", i)
        return
    if source.startswith("/"):
        mount = f"{source}:{target}" + (":ro" if read_only else "")
        ctx.spec.setdefault("volumes", []).append(mount)
        ctx.notes.append(f"{ctx.name} mounts the host path {source}: run paid with "
                         f"--allow-host-path {source}")  # fmt: skip
        return
    relative = _project_file(source, ctx, "volumes")
    if relative is None:
        return
    ctx.spec.setdefault("configs", []).append({"source": relative, "target": target})
    if not read_only:
        ctx.notes.append(
            f"{source} → {target} was read-write in compose; a config is read-only. "
            "If the container writes there, use a named volume instead"
        )


_BUILD_KEYS = frozenset({"context", "dockerfile", "args", "target"})


def _build(value: Any, ctx: Context) -> None:
    body = {"context": value} if isinstance(value, str) else value
    if not isinstance(body, dict):
        ctx.problem("build", "a context directory, or a mapping with context")
        return
    for key in body:
        if key not in _BUILD_KEYS:
            ctx.problem("build", f"{key}: no paid equivalent (context, dockerfile, args, target)")
    context = str(body.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        ctx.problem("build", f"{context}: a remote context; clone it into the project first")
        return
    relative = _project_file(context, ctx, "build")
    if relative is None:
        return
    build: dict[str, Any] = {"context": relative}
    if body.get("dockerfile"):
        dockerfile = PurePosixPath(str(body["dockerfile"]))
        if dockerfile.is_absolute() or ".." in dockerfile.parts:
            ctx.problem("build", f"dockerfile {dockerfile}: a file inside the context")
            return
        build["containerfile"] = str(dockerfile)
    args: dict[str, str] = {}
    for key, given in _mapping(body.get("args") or {}).items():
        if given is None and key not in os.environ:
            ctx.problem("build", f"args: {key} has no value here (compose passes it through)")
            continue
        args[key] = os.environ[key] if given is None else given
    if args:
        build["args"] = args
    if body.get("target"):
        build["target"] = str(body["target"])
    ctx.spec["build"] = build


def _depends_on(value: Any, ctx: Context) -> None:
    wanted = value if isinstance(value, dict) else {name: {} for name in _strings(value)}
    for name, options in wanted.items():
        condition = (options or {}).get("condition", "service_started")
        if condition == "service_completed_successfully":
            ctx.problem("depends_on", f"{name}: paid has no one-shot jobs to wait for", name)
            continue
        ctx.spec.setdefault("dependsOn", []).append(ctx.project.names.get(name, name))
        if condition == "service_started":
            ctx.notes.append(f"dependsOn {name}: paid waits until it is ready, not only started")


def _healthcheck(value: Any, ctx: Context) -> None:
    if not isinstance(value, dict) or value.get("disable"):
        return
    test = value.get("test")
    if isinstance(test, str):
        command = ["/bin/sh", "-c", test]
    elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", " ".join(str(t) for t in test[1:])]
    elif isinstance(test, list) and test and test[0] == "CMD":
        command = [str(t) for t in test[1:]]
    elif isinstance(test, list) and test and test[0] == "NONE":
        return
    else:
        ctx.problem("healthcheck", "test must be a string, [CMD, ...] or [CMD-SHELL, ...]", "test")
        return
    probe: dict[str, Any] = {"exec": {"command": command}}
    fields = (("interval", "periodSeconds"), ("timeout", "timeoutSeconds"))
    for key, paid in fields:
        if key in value:
            number = _whole_seconds(value[key], ctx, "healthcheck", key)
            if number is not None:
                probe[paid] = number
    if "start_period" in value:
        try:
            probe["startPeriodSeconds"] = round(seconds(value["start_period"]))
        except ValueError as err:
            ctx.problem("healthcheck", str(err), "start_period")
    if "retries" in value:
        probe["failureThreshold"] = int(value["retries"])
    ctx.spec["readinessProbe"] = probe


def _restart(value: Any, ctx: Context) -> None:
    policy = str(value).split(":", 1)[0]
    mapped = {"always": "Always", "unless-stopped": "Always", "on-failure": "OnFailure"}
    mapped["no"] = "Never"
    if policy not in mapped:
        ctx.problem("restart", f"{value!r}: one of no, always, on-failure, unless-stopped")
        return
    ctx.spec["restartPolicy"] = mapped[policy]


def _networks(value: Any, ctx: Context) -> None:
    wanted = value if isinstance(value, dict) else dict.fromkeys(_strings(value))
    out = []
    for name, options in wanted.items():
        aliases = [str(a) for a in (options or {}).get("aliases", [])]
        if name == "default":
            ctx.project.default_network_used = True
            target = "paid"
        else:
            target = ctx.project.networks.get(name, network_name(name))
        entry: dict[str, Any] = {"name": target}
        if aliases:
            entry["aliases"] = aliases
        for compose_key, paid_key in (
            ("ipv4_address", "ipv4Address"),
            ("ipv6_address", "ipv6Address"),
        ):
            address = (options or {}).get(compose_key)
            if address:
                entry[paid_key] = str(address)
        out.append(entry if len(entry) > 1 else target)
    ctx.spec["networks"] = out


def network_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-") or "net"


def _network_mode(value: Any, ctx: Context) -> None:
    mode = str(value)
    if mode == "host":
        ctx.spec["hostNetwork"] = True
    elif mode != "bridge":
        ctx.problem("network_mode", f"{mode!r}: paid has networks and hostNetwork only")


def _copy(paid: str, convert: Callable[[Any], Any] = lambda v: v) -> Handler:
    def handler(value: Any, ctx: Context) -> None:
        ctx.spec[paid] = convert(value)

    return handler


def _tmpfs(value: Any, ctx: Context) -> None:
    """``tmpfs: /run:size=64m,mode=1770,uid=1000`` (one string or a list of them)."""
    for i, item in enumerate(_strings(value)):
        path, _, written = item.partition(":")
        options = dict(o.partition("=")[::2] for o in written.split(",") if o)
        _tmpfs_mount(path, options, ctx, i, key="tmpfs")


def _tmpfs_mount(
    path: str, options: dict[str, Any], ctx: Context, index: int, *, key: str = "volumes"
) -> None:
    """A tmpfs with its size, mode, uid and gid; other options are named as dropped."""
    mount: dict[str, Any] = {"path": path}
    for name, value in options.items():
        if name == "size":
            mount["size"] = str(value)
        elif name == "mode":  # an int is YAML's reading of 01777; a string is written octal
            text = f"{value:o}" if isinstance(value, int) else str(value).lower()
            mount["mode"] = text.removeprefix("0o").lstrip("0").rjust(3, "0")
        elif name in ("uid", "gid"):
            try:
                mount[name] = int(value)
            except (TypeError, ValueError):
                ctx.problem(key, f"{path}: {name}={value!r} is not a number", index)
                return
        else:
            ctx.notes.append(f"tmpfs {path}: {name} dropped (paid sets size, mode, uid and gid)")
    ctx.spec.setdefault("tmpfs", []).append(mount if len(mount) > 1 else path)


def _security_opt(value: Any, ctx: Context) -> None:
    """Docker writes ``label:disable`` and ``no-new-privileges:true``; Podman ``label=disable``."""
    for i, item in enumerate(_strings(value)):
        name, _, setting = item.replace("=", ":", 1).partition(":")
        if name == "no-new-privileges":
            ctx.spec["noNewPrivileges"] = setting.lower() not in ("false", "0", "no")
        elif name in ("label", "apparmor", "seccomp", "mask", "unmask") and setting:
            ctx.spec.setdefault("securityOpt", []).append(f"{name}={setting}")
        else:
            ctx.problem("security_opt", f"{item}: label, apparmor, seccomp, mask, unmask or "
                        "no-new-privileges", i)  # fmt: skip


def _devices(value: Any, ctx: Context) -> None:
    for i, item in enumerate(_strings(value)):
        parts = item.split(":")
        if len(parts) > 1 and parts[1] != parts[0]:
            ctx.problem("devices", f"{item}: paid passes a device at its own path only", i)
            continue
        ctx.spec.setdefault("devices", []).append(parts[0])
        ctx.notes.append(f"device {parts[0]}: run paid with --allow-device {parts[0]}")


def _ulimits(value: Any, ctx: Context) -> None:
    out: dict[str, int | dict[str, int]] = {}
    for name, limit in (value or {}).items():
        if isinstance(limit, dict):
            out[str(name)] = {"soft": int(limit["soft"]), "hard": int(limit["hard"])}
        else:
            out[str(name)] = int(limit)
    ctx.spec["ulimits"] = out


def _extra_hosts(value: Any, ctx: Context) -> None:
    if isinstance(value, dict):
        ctx.spec["extraHosts"] = [f"{k}:{v}" for k, v in value.items()]
        return
    ctx.spec["extraHosts"] = [item.replace("=", ":", 1) for item in _strings(value)]


def _dns_part(part: str) -> Handler:
    def handler(value: Any, ctx: Context) -> None:
        ctx.spec.setdefault("dns", {})[part] = _strings(value)

    return handler


def _logging(value: Any, ctx: Context) -> None:
    driver = str((value or {}).get("driver") or "k8s-file")
    driver = {"json-file": "k8s-file", "local": "k8s-file"}.get(driver, driver)
    if driver not in ("k8s-file", "journald", "none"):
        ctx.problem("logging", f"driver {driver!r}: one of json-file, journald, none", "driver")
        return
    logging: dict[str, Any] = {"driver": driver}
    size = ((value or {}).get("options") or {}).get("max-size")
    if size and driver == "k8s-file":
        logging["maxSize"] = str(size)
    ctx.spec["logging"] = logging


def _stop_grace_period(value: Any, ctx: Context) -> None:
    number = _whole_seconds(value, ctx, "stop_grace_period")
    if number is not None:
        ctx.spec["terminationGracePeriodSeconds"] = number


def _labels(value: Any, ctx: Context) -> None:
    labels = {k: v or "" for k, v in _mapping(value).items()}
    reserved = [k for k in labels if k.startswith("paid.")]
    if reserved:
        ctx.problem("labels", f"{', '.join(reserved)}: the paid. prefix is paid's own")
    ctx.labels = {k: v for k, v in labels.items() if k not in reserved}


def _resources(memory: Any, cpus: Any, ctx: Context) -> None:
    resources = ctx.spec.setdefault("resources", {})
    if memory is not None:
        resources["memory"] = (
            str(memory).lower().removesuffix("b") if isinstance(memory, str) else int(memory)
        )
    if cpus is not None:
        resources["cpus"] = float(cpus)


def _mem_limit(value: Any, ctx: Context) -> None:
    _resources(value, None, ctx)


def _cpus(value: Any, ctx: Context) -> None:
    _resources(None, value, ctx)


def _deploy(value: Any, ctx: Context) -> None:
    deploy = value or {}
    replicas = deploy.get("replicas")
    if replicas not in (None, 0, 1):
        ctx.problem(
            "deploy", f"replicas: {replicas}: paid runs one container per service", "replicas"
        )
    limits = (deploy.get("resources") or {}).get("limits") or {}
    if limits:
        _resources(limits.get("memory"), limits.get("cpus"), ctx)
    for key in deploy:
        if key not in ("replicas", "resources", "restart_policy"):
            ctx.problem("deploy", f"{key}: no paid equivalent (Swarm only)", key)
    condition = (deploy.get("restart_policy") or {}).get("condition")
    if condition:
        _restart(
            {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition, condition),
            ctx,
        )


def _secrets(value: Any, ctx: Context) -> None:
    for i, item in enumerate(value or []):
        source = item.get("source") if isinstance(item, dict) else str(item)
        file = ctx.project.secrets.get(str(source))
        if file is None:
            ctx.problem("secrets", f"{source}: not a file secret of this file's secrets", i)
            continue
        entry: dict[str, Any] = {"file": file}
        if isinstance(item, dict):
            target = item.get("target")
            if target:
                entry["target"] = (
                    target if str(target).startswith("/") else f"/run/secrets/{target}"
                )
            for key in ("uid", "gid"):
                if key in item:
                    entry[key] = int(item[key])
            if "mode" in item:
                mode = item["mode"]
                entry["mode"] = f"0{int(mode):o}" if isinstance(mode, int) else str(mode)
        if "target" not in entry and file != source:
            entry["target"] = f"/run/secrets/{source}"
        ctx.spec.setdefault("secrets", []).append(entry)


def _configs(value: Any, ctx: Context) -> None:
    for i, item in enumerate(value or []):
        source = item.get("source") if isinstance(item, dict) else str(item)
        relative = ctx.project.configs.get(str(source))
        if relative is None:
            ctx.problem("configs", f"{source}: not a file config of this file's configs", i)
            continue
        target = item.get("target") if isinstance(item, dict) else None
        entry = {"source": relative, "target": str(target or f"/{source}")}
        if isinstance(item, dict) and "mode" in item:
            entry["mode"] = (
                f"0{int(item['mode']):o}" if isinstance(item["mode"], int) else str(item["mode"])
            )
        ctx.spec.setdefault("configs", []).append(entry)


def _noted(why: str) -> Handler:
    def handler(value: Any, ctx: Context) -> None:
        ctx.notes.append(why.format(value=value, name=ctx.name))

    return handler


def _sysctls(value: Any, ctx: Context) -> None:
    ctx.spec["sysctls"] = {k: v or "" for k, v in _mapping(value).items()}


def _capabilities(paid: str) -> Handler:
    def handler(value: Any, ctx: Context) -> None:
        ctx.spec.setdefault("capabilities", {})[paid] = [
            s.upper().removeprefix("CAP_") for s in _strings(value)
        ]

    return handler


KEYS: tuple[Key, ...] = (
    Key("image", "image", "required, pinned: a tag other than latest, or a digest; "
        "short names are qualified (redis:7 → docker.io/library/redis:7)", _image),
    Key("build", "build", "context, dockerfile, args, target; the context is copied into the "
        "output; an image beside it is dropped (paid names what it builds)", _build),
    Key("command", "args", "a string is split as a shell would", _command),
    Key("entrypoint", "command", "a string is split as a shell would", _entrypoint),
    Key("environment", "env", "list and map forms; a bare NAME takes the importer's "
        "environment", _environment),
    Key("env_file", "envFiles", "copied into the output directory", _env_file),
    Key("ports", "ports", "host:container, with ip and /udp; ranges expanded; a port without "
        "a host port is refused", _ports),
    Key("volumes", "volumes / configs / tmpfs", "named volumes stay volumes; a relative bind "
        "becomes a config (copied, read-only); an absolute bind a host path "
        "(--allow-host-path)", _volumes),
    Key("depends_on", "dependsOn", "list and condition forms; paid waits for readiness "
        "(service_completed_successfully is refused)", _depends_on),
    Key("healthcheck", "readinessProbe (exec)", "interval → periodSeconds, timeout → "
        "timeoutSeconds, retries → failureThreshold, start_period → startPeriodSeconds",
        _healthcheck),
    Key("restart", "restartPolicy", "always, unless-stopped → Always; on-failure → OnFailure; "
        "no → Never", _restart),
    Key("networks", "networks", "names and aliases; `default` is paid's default network",
        _networks),
    Key("network_mode", "hostNetwork", "host only (service:x and container:x are refused)",
        _network_mode),
    Key("user", "user", "as is", _copy("user", str)),
    Key("working_dir", "workingDir", "as is", _copy("workingDir", str)),
    Key("hostname", "hostname", "as is", _copy("hostname", str)),
    Key("read_only", "readOnlyRootFilesystem", "as is", _copy("readOnlyRootFilesystem", bool)),
    Key("tmpfs", "tmpfs", "with size=, mode=, uid=, gid=", _tmpfs),
    Key("cap_add", "capabilities.add", "CAP_ prefix dropped", _capabilities("add")),
    Key("cap_drop", "capabilities.drop", "CAP_ prefix dropped", _capabilities("drop")),
    Key("privileged", "privileged", "as is", _copy("privileged", bool)),
    Key("security_opt", "securityOpt / noNewPrivileges", "no-new-privileges → noNewPrivileges; "
        "label, apparmor, seccomp, mask, unmask in either spelling (: or =)", _security_opt),
    Key("devices", "devices", "at their own path only (--allow-device)", _devices),
    Key("ulimits", "ulimits", "a number or soft/hard", _ulimits),
    Key("sysctls", "sysctls", "list and map forms", _sysctls),
    Key("shm_size", "shmSize", "as is", _copy("shmSize", str)),
    Key("pids_limit", "pidsLimit", "as is", _copy("pidsLimit", int)),
    Key("extra_hosts", "extraHosts", "list (host:ip, host=ip) and map forms", _extra_hosts),
    Key("dns", "dns.servers", "as is", _dns_part("servers")),
    Key("dns_search", "dns.search", "as is", _dns_part("search")),
    Key("dns_opt", "dns.options", "as is", _dns_part("options")),
    Key("logging", "logging", "json-file and local → k8s-file; options.max-size → maxSize",
        _logging),
    Key("stop_signal", "stopSignal", "as is", _copy("stopSignal", str)),
    Key("stop_grace_period", "terminationGracePeriodSeconds", "a duration, in whole seconds",
        _stop_grace_period),
    Key("init", "init", "as is", _copy("init", bool)),
    Key("labels", "metadata.labels", "list and map forms", _labels),
    Key("mem_limit", "resources.memory", "as is", _mem_limit),
    Key("cpus", "resources.cpus", "as is", _cpus),
    Key("deploy", "resources", "resources.limits (memory, cpus); replicas > 1 is refused",
        _deploy),
    Key("secrets", "secrets", "file secrets, by target, uid, gid and mode; copy the file "
        "into the secrets directory", _secrets),
    Key("configs", "configs", "file configs, copied", _configs),
    Key("userns_mode", "userns", "as is", _copy("userns", str)),
    Key("container_name", "metadata.name", "paid names the container after the service",
        _noted("container_name {value} is ignored: the container is named {name}")),
    Key("expose", "—", "nothing to do: services reach each other's ports on their networks",
        _noted("expose is not needed: services reach each other's ports on a network")),
    Key("scale", "—", "paid runs one container per service"),
    Key("profiles", "—", "paid runs every service of its directory"),
    Key("extends", "—", "merge the extended service by hand"),
    Key("links", "—", "use networks (services resolve each other by name)"),
    Key("pid", "—", "no paid equivalent"),
    Key("ipc", "—", "no paid equivalent"),
    Key("cgroup_parent", "—", "no paid equivalent"),
)  # fmt: skip
BY_NAME = {k.compose: k for k in KEYS}


def mapping_table() -> str:
    """The README's table of compose keys, from ``KEYS``."""
    rows = ["| compose | paid | how |", "|---|---|---|"]
    rows += [f"| `{k.compose}` | {_code(k.paid)} | {k.how} |" for k in KEYS]
    return "\n".join(rows)


def _code(field: str) -> str:
    return field if field == "—" else " / ".join(f"`{f.strip()}`" for f in field.split("/"))
