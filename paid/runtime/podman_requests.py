"""What paid asks of Podman, as the bodies of its libpod API requests.

A container request's options (mounts, limits, ulimits with the host's
defaults, tmpfs, secrets, signals) become the create call's fields. No
podman-py here: only the shapes the API reads.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paid.runtime.base import ContainerOptions, RequestRejected
from paid.state import specs
from paid.state.container_fields import TmpfsMount
from paid.state.secrets import SecretMount


def attachment(aliases: Sequence[str], addresses: Sequence[str]) -> dict[str, Any]:
    """One network's per-container options, as Podman's API names them."""
    out: dict[str, Any] = {}
    if aliases:
        out["aliases"] = list(aliases)
    if addresses:
        out["static_ips"] = list(addresses)
    return out


def host_ip(address: str) -> str:
    """The HostIp Podman's API wants: empty for "every address".

    ``podman run -p 8080:80`` sends no address. Sent as ``0.0.0.0``, netavark
    1.4 writes a DNAT rule for ``-d 0.0.0.0/32``, which matches nothing: the
    port is held but unreachable, from loopback and from the host's addresses.
    """
    return "" if address in ("0.0.0.0", "::") else address  # noqa: S104


def options(o: ContainerOptions) -> dict[str, Any]:
    """podman-py's keywords for the optional container fields; unset ones are left out."""
    kwargs: dict[str, Any] = {
        "log_config": {
            "Type": o.log_driver,
            "Config": {"size": o.log_max_size} if o.log_max_size else {},
        }
    }
    simple = {
        "user": o.user,
        "working_dir": o.working_dir,
        "hostname": o.hostname,
        "shm_size": o.shm_size,
        "pids_limit": o.pids_limit,
        "userns_mode": o.userns,
        "timezone": o.timezone,
    }
    kwargs.update({k: v for k, v in simple.items() if v is not None})
    flags = {
        "read_only": o.read_only,
        "privileged": o.privileged,
        "no_new_privileges": o.no_new_privileges,
    }
    kwargs.update({k: True for k, v in flags.items() if v})
    lists = {
        "group_add": list(o.group_add),
        "cap_add": list(o.cap_add),
        "cap_drop": list(o.cap_drop),
        "devices": list(o.devices),
        "dns": list(o.dns_servers),
        "dns_search": list(o.dns_search),
        "dns_opt": list(o.dns_options),
    }
    kwargs.update({k: v for k, v in lists.items() if v})
    if o.tmpfs:
        kwargs["mounts"] = [tmpfs(t) for t in o.tmpfs]
    if o.ulimits:
        kwargs["ulimits"] = [
            {"Name": name, "Soft": soft, "Hard": hard}
            for name, (soft, hard) in with_host_defaults(o.ulimits).items()
        ]
    if o.sysctls:
        kwargs["sysctls"] = dict(o.sysctls)
    if o.extra_hosts:
        kwargs["extra_hosts"] = dict(h.split(":", 1) for h in o.extra_hosts)
    if o.annotations:
        kwargs["annotations"] = dict(o.annotations)
    for option in o.security_opt:
        key, _, value = option.partition("=")
        if key == "label":
            kwargs.setdefault("security_opt", []).append(value)
        elif key == "apparmor":
            kwargs["apparmor_profile"] = value
        elif key == "seccomp":
            kwargs["seccomp_profile_path"] = value
        elif key == "mask":
            kwargs.setdefault("masked_paths", []).extend(value.split(":"))
        elif key == "unmask":
            kwargs.setdefault("unmasked_paths", []).extend(value.split(":"))
    return kwargs


def with_host_defaults(ulimits: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``ulimits`` with ``nofile`` and ``nproc`` filled in as Podman would without any.

    Given any ulimit, Podman 4.3 sets ``nofile`` and ``nproc`` to 1048576
    unless they are given too, and a host with lower limits refuses that
    start (EPERM from the OCI runtime). Compose files give ``nofile`` alone.
    The other is what Podman gives a container that names none: its
    ``containers.conf`` ``default_ulimits``, else this host's hard limit.
    """
    out = dict(ulimits)
    configured = configured_ulimits()
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        if name in out:
            continue
        if name in configured:
            out[name] = configured[name]
            continue
        _, hard = resource.getrlimit(which)
        limit = PODMAN_ULIMIT if hard == resource.RLIM_INFINITY else min(hard, PODMAN_ULIMIT)
        out[name] = (limit, limit)
    return out


PODMAN_ULIMIT = 1_048_576  # what Podman itself puts when none is given


def configured_ulimits() -> dict[str, tuple[int, int]]:
    """``default_ulimits`` from the containers.conf files Podman reads, later ones winning.

    ``$CONTAINERS_CONF`` alone when set (as Podman does), else the system
    files and drop-ins. Unreadable or malformed files are skipped: this
    only fills in what the user left out.
    """
    override = os.environ.get("CONTAINERS_CONF")
    if override:
        paths = [Path(override)]
    else:
        paths = [Path("/usr/share/containers/containers.conf"), Path(ETC_CONF)]
        with contextlib.suppress(OSError):
            paths += sorted(Path(ETC_CONF + ".d").glob("*.conf"))
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        try:
            with path.open("rb") as file:
                entries = tomllib.load(file).get("containers", {}).get("default_ulimits", [])
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for entry in entries if isinstance(entries, list) else ():
            match = ULIMIT_ENTRY.fullmatch(str(entry))
            if match:
                soft = int(match["soft"])
                found[match["name"]] = (soft, int(match["hard"] or soft))
    return found


ETC_CONF = "/etc/containers/containers.conf"


ULIMIT_ENTRY = re.compile(r"(?P<name>nofile|nproc)=(?P<soft>\d{1,19})(?::(?P<hard>\d{1,19}))?")


def tmpfs(mount: TmpfsMount) -> dict[str, Any]:
    """A tmpfs mount in podman-py's form; its options reach mount(2) as written.

    podman-py passes only ``mode`` and ``size`` through, each as
    ``key=value``: the owner rides in the mode's option, which Podman splits
    on commas like any other list of mount options.
    """
    mode = ",".join(
        [mount.mode]
        + [
            f"{key}={value}"
            for key, value in (("uid", mount.uid), ("gid", mount.gid))
            if value is not None
        ]
    )
    out: dict[str, Any] = {"type": "tmpfs", "target": mount.path, "source": "tmpfs", "mode": mode}
    if mount.size:
        out["size"] = mount.size
    return out


def secret(mount: SecretMount) -> dict[str, Any]:
    """A secret mounted as a file: under /run/secrets by its name, or at its own path."""
    out: dict[str, Any] = {"source": mount.podman_name, "target": mount.env or mount.target}
    out.update({k: v for k, v in (("uid", mount.uid), ("gid", mount.gid)) if v is not None})
    if mount.mode is not None:
        out["mode"] = mount.mode
    return out


def signal_number(name: str) -> int:
    number = specs.signal_number(name)
    if number is None:  # validation refuses these; a request built by hand may not
        raise RequestRejected(f"{name!r} is not a signal of this system")
    return number
