"""What each Quadlet key becomes in paid's spec: one handler per key, and the table ``KEYS``.

A handler gets the value (specifiers already resolved) and a ``Context``
(the spec being built, where problems and notes go). ``KEYS`` is the table
``import_quadlet`` dispatches on and the README's mapping comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paid.translate.compose_keys import network_name, seconds
from paid.translate.output import Problem, Translation
from paid.translate.quadlet_units import Unit
from paid.translate.systemd_syntax import words


@dataclass
class Context:
    unit: Unit
    spec: dict[str, Any]
    translation: Translation
    notes: list[str]
    names: dict[str, str]  # container unit name -> service name
    line: int = 0
    key: str = ""
    file: Path | None = None  # the unit, or the drop-in the entry is in
    user: list[str] = field(default_factory=list)  # User=, Group=
    follows: bool = False  # AutoUpdate=registry
    pinned_at: tuple[Path | None, int] = (None, 0)  # where Image= was

    def problem(self, why: str) -> None:
        where = self.file or self.unit.path
        self.translation.problems.append(Problem(str(where), self.line, self.key, why))


Handler = Callable[[str, Context], None]


def one(value: str) -> str:
    """A single-valued key's value, unquoted as systemd does (``Image="x"`` is x)."""
    split = words(value)
    return split[0] if len(split) == 1 else value


def _set(paid: str, convert: Callable[[str], Any] = str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        ctx.spec[paid] = convert(one(value))

    return handler


def _append(paid: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        ctx.spec.setdefault(paid, []).extend(words(value) or [value])

    return handler


def boolean(value: str) -> bool:
    return value.lower() in ("1", "yes", "true", "on")


def _image(value: str, ctx: Context) -> None:
    value = one(value)
    ctx.spec["image"] = value
    ctx.pinned_at = (ctx.file, ctx.line)
    if value.endswith((".image", ".build")):
        ctx.problem(f"{value}: an .image or .build unit; paid pulls or builds (spec.build) itself")
        return


def moving(image: str) -> bool:
    if image.endswith((".image", ".build")):
        return False  # refused as such
    tail = image.rsplit("/", 1)[-1]
    return "@" not in tail and (":" not in tail or tail.endswith(":latest"))


def _exec(value: str, ctx: Context) -> None:
    ctx.spec["args"] = words(value)


def _entrypoint(value: str, ctx: Context) -> None:
    ctx.spec["command"] = words(value)


def _environment(value: str, ctx: Context) -> None:
    env = ctx.spec.setdefault("env", {})
    for word in words(value):
        key, found, item = word.partition("=")
        if not found:
            ctx.problem(f"{word!r} is not KEY=VALUE")
            continue
        env[key] = item


def _environment_file(value: str, ctx: Context) -> None:
    path = (ctx.unit.path.parent / value).resolve()
    try:
        relative = path.relative_to(ctx.unit.path.parent.resolve())
    except ValueError:
        ctx.problem(f"{value} is outside the units' directory")
        return
    if not path.is_file():
        ctx.problem(f"{value} does not exist")
        return
    ctx.translation.copies[str(relative)] = path
    ctx.spec.setdefault("envFiles", []).append(relative.as_posix())


def _publish(value: str, ctx: Context) -> None:
    value = one(value)
    if value.startswith(":"):  # an empty address: every address, as Podman reads it
        value = value[1:]
    body = value.rsplit("/", 1)[0]
    if ":" not in body:
        ctx.problem(f"{value}: give a host port (host:container)")
        return
    if body.split(":")[-2] == "":
        ctx.problem(f"{value}: give a host port (host:container); paid does not pick one")
        return
    ctx.spec.setdefault("ports", []).append(value.removesuffix("/tcp"))


def _volume(value: str, ctx: Context) -> None:
    parts = value.split(":")
    if len(parts) < 2:
        ctx.problem(f"{value}: an anonymous volume; name it (name:{value})")
        return
    source, target, options = parts[0], parts[1], ":".join(parts[2:])
    if source.endswith(".volume"):
        source = source.removesuffix(".volume")
    if source.startswith("/"):
        ctx.notes.append(f"mounts the host path {source}: run paid with --allow-host-path {source}")
    elif source.startswith("."):
        ctx.problem(f"{source}: a relative host path; use an absolute one or a named volume")
        return
    read_only = "ro" in options.split(",")
    ctx.spec.setdefault("volumes", []).append(f"{source}:{target}" + (":ro" if read_only else ""))


def _network(value: str, ctx: Context) -> None:
    value = one(value)
    if value == "host":
        ctx.spec["hostNetwork"] = True
        return
    name, _, options = value.partition(":")
    if name.endswith(".container"):
        ctx.problem(
            f"{value}: another container's network namespace; paid has none shared: put both "
            "services on one network and reach the other by its name"
        )
        return
    if options:
        ctx.problem(f"{value}: network options have no paid equivalent")
    if name in ("none", "private", "slirp4netns", "pasta") or name.startswith("container:"):
        ctx.problem(f"{name}: paid has networks and hostNetwork only")
        return
    ctx.spec.setdefault("networks", []).append(network_name(name.removesuffix(".network")))


def _user(value: str, ctx: Context) -> None:
    ctx.user.insert(0, value)


def _group(value: str, ctx: Context) -> None:
    ctx.user.append(value)


def _capability(part: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        caps = ctx.spec.setdefault("capabilities", {}).setdefault(part, [])
        caps.extend(w.upper().removeprefix("CAP_") for w in words(value))

    return handler


def _device(value: str, ctx: Context) -> None:
    device = one(value).split(":", maxsplit=1)[0]
    if device.startswith("-"):  # Quadlet: pass it only if it exists
        device = device[1:]
        ctx.notes.append(f"device {device} was optional (-): paid requires it to exist")
    if not device.startswith("/"):
        ctx.problem(f"{value}: a device is an absolute path under /dev")
        return
    ctx.spec.setdefault("devices", []).append(device)
    ctx.notes.append(f"device {device}: run paid with --allow-device {device}")


def _ulimit(value: str, ctx: Context) -> None:
    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        ctx.spec.setdefault("ulimits", {})[name] = {"soft": int(soft), "hard": int(hard or soft)}
    except ValueError:
        ctx.problem(f"{value}: NAME=SOFT[:HARD]")


def _pairs(paid: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        target = ctx.spec.setdefault(paid, {})
        for word in words(value):
            key, _, item = word.partition("=")
            target[key] = item

    return handler


def _labels(value: str, ctx: Context) -> None:
    for word in words(value):
        key, _, item = word.partition("=")
        ctx.spec.setdefault("_labels", {})[key] = item


def _health(paid: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        probe = ctx.spec.setdefault("readinessProbe", {})
        if paid == "command":
            probe["exec"] = {"command": ["/bin/sh", "-c", value]}
        elif paid == "failureThreshold":
            probe[paid] = int(value)
        else:
            try:
                probe[paid] = (
                    max(1, round(seconds(value)))
                    if paid != "initialDelaySeconds"
                    else round(seconds(value))
                )
            except ValueError as err:
                ctx.problem(str(err))

    return handler


def _restart(value: str, ctx: Context) -> None:
    mapped = {"always": "Always", "on-failure": "OnFailure", "no": "Never"}
    mapped.update({"on-abnormal": "OnFailure", "on-abort": "OnFailure", "on-watchdog": "OnFailure"})
    if value not in mapped:
        ctx.problem(f"Restart={value}: one of {', '.join(mapped)}")
        return
    ctx.spec["restartPolicy"] = mapped[value]


def _stop_timeout(value: str, ctx: Context) -> None:
    try:
        ctx.spec["terminationGracePeriodSeconds"] = round(seconds(value))
    except ValueError as err:
        ctx.problem(str(err))


def _depends(value: str, ctx: Context) -> None:
    for word in value.split():
        unit = word.removesuffix(".service")
        if unit in ctx.names:
            wanted = ctx.spec.setdefault("dependsOn", [])
            if ctx.names[unit] not in wanted:
                wanted.append(ctx.names[unit])


def _mount(value: str, ctx: Context) -> None:
    """``Mount=type=volume|bind|tmpfs,source=,destination=,ro`` as Podman's --mount reads it."""
    for word in words(value):
        options: dict[str, str] = {}
        for part in word.split(","):
            key, _, item = part.partition("=")
            options[key.strip().lower()] = item.strip() if _ else "true"
        kind = options.pop("type", "volume")
        source = options.pop("source", options.pop("src", ""))
        target = options.pop("destination", options.pop("dst", options.pop("target", "")))
        read_only = boolean(options.pop("ro", options.pop("readonly", "false")))
        if options.pop("rw", "true").lower() in ("false", "0", "no"):
            read_only = True
        if not target.startswith("/"):
            ctx.problem(f"{word}: a destination (an absolute path) is required")
        elif kind == "tmpfs":
            tmpfs: dict[str, Any] = {"path": target}
            if "tmpfs-size" in options:
                tmpfs["size"] = options.pop("tmpfs-size")
            if "tmpfs-mode" in options:
                tmpfs["mode"] = options.pop("tmpfs-mode")
            ctx.spec.setdefault("tmpfs", []).append(tmpfs if len(tmpfs) > 1 else target)
        elif kind in ("volume", "bind") and source:
            suffix = ":ro" if read_only else ""
            _volume(f"{source}:{target}{suffix}", ctx)
        else:
            why = "an anonymous volume; name it" if kind == "volume" else f"type={kind}"
            ctx.problem(f"{word}: {why}: paid mounts named volumes, host paths and tmpfs")
            continue
        ignored = sorted(set(options) - {"relabel", "z", "bind-propagation"})
        if ignored:
            ctx.notes.append(f"Mount {target}: {', '.join(ignored)} dropped (no paid equivalent)")


def _remap(value: str, ctx: Context) -> None:
    mode = one(value).strip()
    if mode in ("auto", "keep-id", "host", "nomap"):
        ctx.spec["userns"] = mode
    else:
        ctx.problem(f"RemapUsers={mode}: auto, keep-id, host or nomap (manual maps have no field)")


def _volatile_tmp(value: str, ctx: Context) -> None:
    if boolean(one(value)):
        ctx.spec.setdefault("tmpfs", []).append("/var/tmp")  # noqa: S108 -- the container's


def _memory(value: str, ctx: Context) -> None:
    ctx.spec.setdefault("resources", {})["memory"] = one(value)


def _pids(value: str, ctx: Context) -> None:
    limit = int(one(value))
    if limit <= 0:  # -1 or 0: no limit, paid's default
        return
    ctx.spec["pidsLimit"] = limit


def _dns(part: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        ctx.spec.setdefault("dns", {}).setdefault(part, []).extend(words(value))

    return handler


def _security(option: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        ctx.spec.setdefault("securityOpt", []).append(f"{option}={one(value)}")

    return handler


def _label_opt(part: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        if part == "disable":
            if boolean(value):
                ctx.spec.setdefault("securityOpt", []).append("label=disable")
            return
        if part == "nested":
            if boolean(value):
                ctx.spec.setdefault("securityOpt", []).append("label=nested")
            return
        ctx.spec.setdefault("securityOpt", []).append(f"label={part}:{one(value)}")

    return handler


def _masks(option: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        paths = [p for w in words(value) for p in w.split(":") if p]
        if paths:
            ctx.spec.setdefault("securityOpt", []).append(f"{option}={':'.join(paths)}")

    return handler


def _pull(value: str, ctx: Context) -> None:
    mapped = {"always": "Always", "missing": "IfNotPresent", "never": "Never", "newer": "Always"}
    policy = one(value)
    if policy not in mapped:
        ctx.problem(f"Pull={policy}: one of {', '.join(mapped)}")
        return
    if policy == "newer":
        ctx.notes.append("Pull=newer: paid pulls Always (a registry answers what is newer)")
    ctx.spec["imagePullPolicy"] = mapped[policy]


def _auto_update(value: str, ctx: Context) -> None:
    policy = one(value)
    if policy == "registry":
        ctx.spec["imageUpdate"] = {"policy": "registry"}
        ctx.follows = True
        ctx.notes.append(
            "AutoUpdate=registry: paid rolls each new digest out through the health gate and "
            "rolls back a failing one; imageUpdate.minimumAge (72h) lets a new push age first"
        )
    elif policy == "local":
        ctx.problem("AutoUpdate=local: paid follows registries (imageUpdate) or builds (build)")
    else:
        ctx.problem(f"AutoUpdate={policy}: registry or local")


def _log_opt(value: str, ctx: Context) -> None:
    for word in words(value):
        name, _, item = word.partition("=")
        if name in ("max-size", "max_size"):
            ctx.spec.setdefault("logging", {})["maxSize"] = item
        else:
            ctx.problem(f"LogOpt={word}: paid has max-size only")


def _stop_signal(value: str, ctx: Context) -> None:
    signal = one(value).upper()
    ctx.spec["stopSignal"] = (
        signal if signal.startswith("SIG") or signal.isdigit() else f"SIG{signal}"
    )


def _noted(why: str) -> Handler:
    def handler(value: str, ctx: Context) -> None:
        ctx.notes.append(why.format(value=value))

    return handler


@dataclass(frozen=True, slots=True)
class Key:
    section: str
    key: str
    paid: str
    how: str
    handler: Handler | None = None


KEYS: tuple[Key, ...] = (
    Key("Container", "Image", "image", "pinned (a tag other than latest, or a digest), "
        "or followed with AutoUpdate=registry", _image),
    Key("Container", "Exec", "args", "split as systemd does", _exec),
    Key("Container", "Entrypoint", "command", "split as systemd does", _entrypoint),
    Key("Container", "Environment", "env", "KEY=VALUE words", _environment),
    Key("Container", "EnvironmentFile", "envFiles", "copied into the output", _environment_file),
    Key("Container", "PublishPort", "ports", "host:container required", _publish),
    Key("Container", "Volume", "volumes", "x.volume → the named volume x; absolute paths need "
        "--allow-host-path", _volume),
    Key("Container", "Network", "networks / hostNetwork", "x.network → x; host → hostNetwork",
        _network),
    Key("Container", "User", "user", "with Group=, user: \"uid:gid\"", _user),
    Key("Container", "Group", "user", "see User=", _group),
    Key("Container", "HostName", "hostname", "as is", _set("hostname")),
    Key("Container", "WorkingDir", "workingDir", "as is", _set("workingDir")),
    Key("Container", "ReadOnly", "readOnlyRootFilesystem", "as is",
        _set("readOnlyRootFilesystem", boolean)),
    Key("Container", "Tmpfs", "tmpfs", "the path", _append("tmpfs")),
    Key("Container", "AddCapability", "capabilities.add", "CAP_ dropped", _capability("add")),
    Key("Container", "DropCapability", "capabilities.drop", "CAP_ dropped",
        _capability("drop")),
    Key("Container", "AddDevice", "devices", "at its own path (--allow-device)", _device),
    Key("Container", "Ulimit", "ulimits", "NAME=SOFT[:HARD]", _ulimit),
    Key("Container", "Sysctl", "sysctls", "KEY=VALUE words", _pairs("sysctls")),
    Key("Container", "Label", "metadata.labels", "KEY=VALUE words", _labels),
    Key("Container", "Annotation", "annotations", "KEY=VALUE words", _pairs("annotations")),
    Key("Container", "HealthCmd", "readinessProbe.exec", "run by /bin/sh -c",
        _health("command")),
    Key("Container", "HealthInterval", "readinessProbe.periodSeconds", "a duration",
        _health("periodSeconds")),
    Key("Container", "HealthTimeout", "readinessProbe.timeoutSeconds", "a duration",
        _health("timeoutSeconds")),
    Key("Container", "HealthRetries", "readinessProbe.failureThreshold", "as is",
        _health("failureThreshold")),
    Key("Container", "HealthStartPeriod", "readinessProbe.startPeriodSeconds", "a duration",
        _health("startPeriodSeconds")),
    Key("Container", "Timezone", "timezone", "as is", _set("timezone")),
    Key("Container", "UserNS", "userns", "as is", _set("userns")),
    Key("Container", "NoNewPrivileges", "noNewPrivileges", "as is",
        _set("noNewPrivileges", boolean)),
    Key("Container", "RunInit", "init", "as is", _set("init", boolean)),
    Key("Container", "ShmSize", "shmSize", "as is", _set("shmSize")),
    Key("Container", "LogDriver", "logging.driver", "as is",
        lambda v, ctx: ctx.spec.setdefault("logging", {}).__setitem__("driver", v)),
    Key("Container", "StopTimeout", "terminationGracePeriodSeconds", "seconds", _stop_timeout),
    Key("Container", "ContainerName", "metadata.name", "the service's name", None),
    Key("Container", "Memory", "resources.memory", "as is", _memory),
    Key("Container", "PidsLimit", "pidsLimit", "-1 or 0: no limit", _pids),
    Key("Container", "StopSignal", "stopSignal", "SIG added when left out", _stop_signal),
    Key("Container", "DNS", "dns.servers", "addresses", _dns("servers")),
    Key("Container", "DNSSearch", "dns.search", "domains", _dns("search")),
    Key("Container", "DNSOption", "dns.options", "options", _dns("options")),
    Key("Container", "AddHost", "extraHosts", "name:ip", _append("extraHosts")),
    Key("Container", "GroupAdd", "groupAdd", "as is", _append("groupAdd")),
    Key("Container", "NetworkAlias", "networks[].aliases", "on each network it joins",
        _append("_aliases")),
    Key("Container", "SeccompProfile", "securityOpt seccomp=", "as is", _security("seccomp")),
    Key("Container", "AppArmor", "securityOpt apparmor=", "as is", _security("apparmor")),
    Key("Container", "SecurityLabelDisable", "securityOpt label=disable", "as is",
        _label_opt("disable")),
    Key("Container", "SecurityLabelNested", "securityOpt label=nested", "as is",
        _label_opt("nested")),
    Key("Container", "SecurityLabelType", "securityOpt label=type:", "as is",
        _label_opt("type")),
    Key("Container", "SecurityLabelLevel", "securityOpt label=level:", "as is",
        _label_opt("level")),
    Key("Container", "SecurityLabelFileType", "securityOpt label=filetype:", "as is",
        _label_opt("filetype")),
    Key("Container", "Mask", "securityOpt mask=", "paths", _masks("mask")),
    Key("Container", "Unmask", "securityOpt unmask=", "paths", _masks("unmask")),
    Key("Container", "Pull", "imagePullPolicy", "always → Always, missing → IfNotPresent, "
        "never → Never, newer → Always", _pull),
    Key("Container", "AutoUpdate", "imageUpdate", "registry → follow the tag's digest",
        _auto_update),
    Key("Container", "LogOpt", "logging.maxSize", "max-size only", _log_opt),
    Key("Container", "Notify", "—", "paid's readiness is its probes",
        _noted("Notify={value} is dropped: paid judges readiness by its probes")),
    Key("Container", "Secret", "—", "a Podman secret by name: put its value in a file of the "
        "secrets directory and use secrets or secretEnv"),
    Key("Container", "PodmanArgs", "—", "raw podman arguments cannot be judged; translate them"),
    Key("Container", "Mount", "volumes / tmpfs", "type=volume and bind → volumes, type=tmpfs → "
        "tmpfs; other types are refused", _mount),
    Key("Container", "RemapUsers", "userns", "auto, keep-id, host, nomap", _remap),
    Key("Container", "VolatileTmp", "tmpfs", "yes → a tmpfs on /var/tmp", _volatile_tmp),
    Key("Container", "ExposeHostPort", "—", "nothing to do: services reach each other's ports",
        _noted("ExposeHostPort={value} is dropped: services reach each other's ports")),
    Key("Container", "Pod", "—", "paid has no pods"),
    Key("Service", "Restart", "restartPolicy", "always → Always, on-failure → OnFailure, "
        "no → Never", _restart),
    Key("Service", "TimeoutStopSec", "terminationGracePeriodSeconds", "a duration",
        _stop_timeout),
    Key("Unit", "Requires", "dependsOn", "other container units of the directory", _depends),
    Key("Unit", "Wants", "dependsOn", "as Requires=", _depends),
    Key("Unit", "After", "dependsOn", "as Requires=", _depends),
)  # fmt: skip
BY_KEY = {(k.section, k.key): k for k in KEYS}
IGNORED_SECTIONS = frozenset({"Install", "Unit", "Service", "Quadlet"})
