"""Secret files: read from one directory, known elsewhere only by a keyed hash.

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
offline from the label.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

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
    file: str  # relative to the secrets directory
    fingerprint: str
    podman_name: str
    path: str = ""  # where it is mounted; default /run/secrets/<env>
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None

    @property
    def target(self) -> str:
        return self.path or f"{MOUNT_DIRECTORY}/{self.env}"


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
