"""Secrets: where a value comes from (``SecretFile``), how a container holds it, its hash.

A service names its secrets by file name (``secretEnv: {DB_PASSWORD:
{file: db-password}}``); the files live in the secrets directory
(``/etc/paid/secrets`` by default), never in the desired-state checkout.
The value is read when a container is created and handed to Podman as a
Podman secret mounted at ``/run/secrets/<NAME>``, with ``<NAME>_FILE``
pointing at it in the environment. Podman 4.3 copies ``type=env`` secrets
into the container's inspectable ``Config.Env``, so paid never uses them.

Everything else (the spec hash and ``paid.spec`` label, plans, the store,
logs, metrics) sees only an HMAC-SHA256 of the value under a host key kept
in the state directory (0600). A changed file changes the hash, so the
service rolls out; the key keeps a short password from being guessed
offline from the label. A value may instead be an age-encrypted file of
the repository (``encrypted``), decrypted on the host that holds the key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Self

from pydantic import Field, field_validator, model_validator

from paid.state.basics import Model, absolute_path

KEY_FILENAME = "secrets.key"
MOUNT_DIRECTORY = "/run/secrets"
MAX_SECRET_BYTES = 512 * 1024  # Podman's own limit for one secret
DEFAULT_DIRECTORY = "/etc/paid/secrets"


class SecretUnavailable(Exception):
    """A secret file is missing, unreadable, too large or changed under us."""


@dataclass(frozen=True, slots=True)
class SecretMount:
    """One secret of one container, as Podman will hold it.

    ``podman_name`` embeds the fingerprint, so a new value is a new Podman
    secret and the container that still uses the old one keeps it.
    """

    env: str | None  # secretEnv's variable (the file is /run/secrets/<env>); None: secrets
    file: str  # relative to the secrets directory, or (encrypted) the desired-state directory
    fingerprint: str
    podman_name: str
    path: str = ""  # where it is mounted; default /run/secrets/<env>
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    encrypted: bool = False  # an age file of the repository

    @property
    def target(self) -> str:
        return self.path or f"{MOUNT_DIRECTORY}/{self.env}"


def secret_basename(source: str) -> str:
    """The name a secret file is mounted under by default: its own, without ``.age``."""
    name = source.rsplit("/", 1)[-1]
    return name.removesuffix(".age") or name


def podman_secret_name(service: str, env: str, fingerprint: str) -> str:
    return f"paid.{service}.{env}.{fingerprint[:16]}"


def file_secret_key(target: str) -> str:
    """The key of a ``secrets`` entry among a service's fingerprints (secretEnv's are names)."""
    return f"file:{target}"


def file_secret_name(service: str, target: str, fingerprint: str) -> str:
    """The Podman secret of a ``secrets`` entry: named after its target, and its value."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", target.rsplit("/", 1)[-1])[:40] or "secret"
    where = hashlib.sha256(target.encode()).hexdigest()[:6]
    return f"paid.{service}.f-{base}-{where}.{fingerprint[:16]}"


def is_managed_secret(name: str) -> bool:
    return name.startswith("paid.")


_SECRET_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


def secret_file_name(value: str) -> str:
    """A file name inside the secrets directory: relative, no ``..``."""
    if value.startswith("/"):
        raise ValueError(
            f"{value!r}: secret files are named relative to the secrets directory "
            "(--secrets-dir), not by absolute path"
        )
    if not _SECRET_FILE.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not a file name inside the secrets directory")
    return value


def repository_path(value: str) -> str:
    """A path inside the desired-state directory: relative, no ``..``."""
    if not _SECRET_FILE.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(
            f"{value!r} is not a path inside the desired-state directory (relative, no '..')"
        )
    return value


class SecretFile(Model):
    """A secret's value: a file of the secrets directory, or an age file in the repository."""

    file: str | None = None
    encrypted: str | None = None  # relative to the desired-state directory

    @field_validator("file")
    @classmethod
    def _inside_directory(cls, value: str | None) -> str | None:
        return None if value is None else secret_file_name(value)

    @field_validator("encrypted")
    @classmethod
    def _inside_repository(cls, value: str | None) -> str | None:
        return None if value is None else repository_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.file is None) == (self.encrypted is None):
            raise ValueError("give exactly one of file (secrets directory) or encrypted (age)")
        return self

    @property
    def source(self) -> str:
        """Where the value is read: a secrets-directory file, or the repository's age file."""
        return self.file if self.file is not None else str(self.encrypted)

    @property
    def is_encrypted(self) -> bool:
        return self.encrypted is not None


class SecretFileMount(SecretFile):
    """A secret mounted as a file where the image reads it (``secrets``)."""

    target: str | None = None  # default: /run/secrets/<file>
    uid: int | None = Field(default=None, ge=0, le=2**32 - 2)
    gid: int | None = Field(default=None, ge=0, le=2**32 - 2)
    mode: str = "0444"

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        return None if value is None else absolute_path(value, "target")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(f'mode {value!r} is not an octal mode such as "0400"')
        return value

    @property
    def path(self) -> str:
        return self.target or f"/run/secrets/{secret_basename(self.source)}"
