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

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

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


class SecretSource:
    """The secrets directory and the host key that fingerprints its files."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        key_file: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._key = key
        self._key_file = key_file

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], *, state_dir: str | os.PathLike[str]
    ) -> SecretSource:
        """Use ``directory``, with the key in ``state_dir`` (made when first needed)."""
        return cls(directory, key_file=Path(state_dir) / KEY_FILENAME)

    @classmethod
    def checking_only(cls, directory: str | os.PathLike[str]) -> SecretSource:
        """Reads files (to check them) under a throwaway key: hashes mean nothing."""
        return cls(directory, key=secrets.token_bytes(32))

    def path_of(self, file: str) -> Path:
        return self.directory / file

    def read(self, file: str) -> tuple[bytes, str]:
        """The value of ``file`` and its fingerprint."""
        path = self.path_of(file)
        try:
            with path.open("rb") as handle:
                value = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as err:
            raise SecretUnavailable(f"secret file {path}: {err.strerror or err}") from None
        if len(value) > MAX_SECRET_BYTES:
            raise SecretUnavailable(f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes")
        return value, self.fingerprint(value)

    def fingerprint(self, value: bytes) -> str:
        if self._key is None:
            assert self._key_file is not None  # noqa: S101 -- one of the two is given
            self._key = _host_key(self._key_file)
        return hmac.new(self._key, value, hashlib.sha256).hexdigest()

    def value_for(self, mount: SecretMount) -> bytes:
        """The value that ``mount`` was planned with; refuse a file changed since."""
        value, fingerprint = self.read(mount.file)
        if not hmac.compare_digest(fingerprint, mount.fingerprint):
            raise SecretUnavailable(
                f"secret file {self.path_of(mount.file)} changed since the desired state "
                "was loaded; it will be picked up on the next pass"
            )
        return value


KEY_BYTES = 32


def _host_key(path: Path) -> bytes:
    """The host key in ``path``, made once, atomically: whole or not at all.

    A new key is written to a private temporary file, synced, and *linked*
    into place: ``link`` fails when the key exists, so two processes that
    start at once agree on the first one, and nobody ever reads a key that
    is empty or half written. A key of the wrong length is refused, never
    used: a short key makes the fingerprints guessable.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(KEY_BYTES)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            return _read_key(path)  # another process won: use its key
    except OSError as err:
        raise SecretUnavailable(f"cannot create the secrets key {path}: {err.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)
    return key


def _read_key(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise SecretUnavailable(f"{path} is not a paid secrets key (not hex)") from None
    if len(key) != KEY_BYTES:
        raise SecretUnavailable(
            f"{path} holds a {len(key)}-byte key, not {KEY_BYTES}: refusing a guessable key "
            "(move it away to have paid make a new one; secrets then roll out once)"
        )
    return key
