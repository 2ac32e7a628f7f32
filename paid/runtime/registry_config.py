"""What Podman's configuration says about registries: credentials and registries.conf.

- **credentials** from the containers-auth.json file ``podman login``
  writes (``--authfile``, ``REGISTRY_AUTH_FILE``, then Podman's default
  places). The file is read again for each lookup, so a ``podman login``
  needs no restart. What it holds never reaches a log, a message or the
  store.
- **registries.conf** (``CONTAINERS_REGISTRIES_CONF``, else
  ``/etc/containers/registries.conf`` and ``registries.conf.d``): a
  registry's ``location``, ``insecure`` and ``blocked``.

Each file is read within limits: a FIFO, a device or a huge file is
refused without blocking.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paid.state.images import DEFAULT_REGISTRY, Reference, parse_reference
from paid.storage.files import NotRegular, read_regular_file

MAX_FILE = 1 << 20  # an auth file or registries.conf larger than this is refused


class ConfigFileError(Exception):
    """An auth file or registries.conf that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = ""

    def __repr__(self) -> str:  # never the password, wherever it is printed
        return f"Credentials(username={self.username!r}, password=***)"

    def header(self) -> str:
        """Podman's ``X-Registry-Auth``: a URL-safe base64 of the JSON credentials."""
        body = json.dumps({"username": self.username, "password": self.password})
        return base64.urlsafe_b64encode(body.encode()).decode()


def read_small(path: Path, what: str) -> str:
    """A regular file's text; a FIFO, a device or a huge file is refused without blocking."""
    try:
        data = read_regular_file(path, limit=MAX_FILE)
    except NotRegular as err:
        raise ConfigFileError(f"{path}: {what}: not a regular file ({err.kind})") from err
    except OSError as err:
        raise ConfigFileError(f"{path}: {what}: cannot read: {err.strerror}") from err
    if len(data) > MAX_FILE:
        raise ConfigFileError(f"{path}: {what}: larger than {MAX_FILE} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as err:
        raise ConfigFileError(f"{path}: {what}: not UTF-8 text") from err


def default_auth_files() -> list[Path]:
    """Where Podman looks for credentials when no file is named, in its order."""
    uid = os.getuid()
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/containers/{uid}"
    home = Path(os.environ.get("HOME", "/root"))
    return [
        Path(runtime_dir) / "containers" / "auth.json",
        home / ".config" / "containers" / "auth.json",
        home / ".docker" / "config.json",
    ]


class AuthFile:
    """Credentials by registry, from a containers-auth.json file (read at each lookup).

    ``path`` None: ``REGISTRY_AUTH_FILE``, else Podman's default places;
    a named file that is missing is an error, a default one is not.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        named = path or os.environ.get("REGISTRY_AUTH_FILE") or None
        self.path = Path(named) if named else None

    def check(self) -> None:
        """``ConfigFileError`` when the named file cannot be used (at start, not at a pull)."""
        if self.path is not None:
            self._entries(self.path)

    def lookup(self, image: str) -> Credentials | None:
        """The credentials for ``image``: the most specific key (``host/repo``, then ``host``)."""
        ref = parse_reference(image)
        paths = [self.path] if self.path is not None else default_auth_files()
        for path in paths:
            if self.path is None and not path.exists():
                continue
            entries = self._entries(path)
            for key in keys(ref):
                if key in entries:
                    return entries[key]
        return None

    @staticmethod
    def _entries(path: Path) -> dict[str, Credentials]:
        text = read_small(path, "auth file")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigFileError(f"{path}:{err.lineno}: auth file: {err.msg}") from err
        auths = document.get("auths") if isinstance(document, dict) else None
        if not isinstance(auths, dict):
            raise ConfigFileError(f"{path}: auths: a mapping of registry to credentials is needed")
        found: dict[str, Credentials] = {}
        for key, entry in auths.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("auth", ""), str):
                raise ConfigFileError(f"{path}: auths.{key}: not a credentials entry")
            if not entry.get("auth"):
                continue  # an identity token or a credential helper: Podman's business
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as err:
                raise ConfigFileError(
                    f"{path}: auths.{key}.auth: not base64 user:password"
                ) from err
            found[normal_key(key)] = Credentials(user, password)
        return found


def normal_key(key: str) -> str:
    key = key.removeprefix("https://").removeprefix("http://").rstrip("/")
    key = key.removesuffix("/v1").removesuffix("/v2")
    return DEFAULT_REGISTRY if key in ("index.docker.io", "registry-1.docker.io") else key


def keys(ref: Reference) -> Iterator[str]:
    parts = ref.repository.split("/")
    for end in range(len(parts), 0, -1):
        yield f"{ref.registry}/{'/'.join(parts[:end])}"
    yield ref.registry


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False


class RegistriesConf:
    """The ``[[registry]]`` tables of registries.conf (v2), and v1's insecure and block lists."""

    def __init__(self, entries: list[RegistryEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> RegistriesConf:
        named = path or os.environ.get("CONTAINERS_REGISTRIES_CONF")
        drop_ins = sorted(Path("/etc/containers/registries.conf.d").glob("*.conf"))
        files = [Path(named)] if named else [Path("/etc/containers/registries.conf"), *drop_ins]
        entries: list[RegistryEntry] = []
        for file in files:
            if not named and not file.exists():
                continue
            entries.extend(registry_entries(file))
        return cls(entries)

    def entry(self, name: str) -> RegistryEntry:
        """The entry whose prefix matches ``registry/repository`` the longest, or a plain one."""
        host = name.split("/", 1)[0]
        best = RegistryEntry(prefix=host, location=host)
        for candidate in self.entries:
            prefix = candidate.prefix
            if (name == prefix or name.startswith(prefix + "/")) and len(prefix) >= len(
                best.prefix
            ):
                best = candidate
        return best


def registry_entries(path: Path) -> list[RegistryEntry]:
    try:
        document = tomllib.loads(read_small(path, "registries.conf"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigFileError(f"{path}: registries.conf: {err}") from err
    entries = []
    for table in document.get("registry", []) or []:
        if not isinstance(table, dict):
            continue
        location = str(table.get("location") or table.get("prefix") or "")
        if not location:
            continue
        entries.append(
            RegistryEntry(
                prefix=str(table.get("prefix") or location),
                location=location,
                insecure=bool(table.get("insecure", False)),
                blocked=bool(table.get("blocked", False)),
            )
        )
    v1 = document.get("registries")
    for kind, flag in (("insecure", "insecure"), ("block", "blocked")):
        section = v1.get(kind) if isinstance(v1, dict) else None
        listed = section.get("registries") or [] if isinstance(section, dict) else []
        entries.extend(
            RegistryEntry(prefix=str(h), location=str(h), **{flag: True}) for h in listed
        )
    return entries
