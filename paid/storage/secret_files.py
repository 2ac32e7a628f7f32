"""Secret values: secrets-directory files or the repository's age files; the host key."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pyrage
from pyrage import x25519

from paid.state.age_format import NotAge, recipient_types
from paid.state.configs import ConfigError
from paid.state.secrets import KEY_FILENAME, MAX_SECRET_BYTES, SecretMount, SecretUnavailable
from paid.storage.config_files import inside
from paid.storage.files import read_regular_file


class SecretSource:
    """Where secret values come from, and the host key that fingerprints them.

    A plain secret is a file of the secrets directory. An encrypted one is
    an age file in the desired-state directory (``repo``), decrypted with
    the identities in ``identity`` (an age key file) when it is read; the
    fingerprint is of the decrypted value, so re-encrypting the same value
    changes nothing and a new value rolls out.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        key_file: Path | None = None,
        repo: Path | None = None,
        identity: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.repo = repo
        self.identity = identity
        self._key = key
        self._key_file = key_file
        self._identities: list[x25519.Identity] | None = None

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        state_dir: str | os.PathLike[str],
        repo: Path | None = None,
        identity: Path | None = None,
    ) -> SecretSource:
        """Use ``directory``, with the key in ``state_dir`` (made when first needed)."""
        key_file = Path(state_dir) / KEY_FILENAME
        return cls(directory, key_file=key_file, repo=repo, identity=identity)

    @classmethod
    def checking_only(
        cls,
        directory: str | os.PathLike[str],
        *,
        repo: Path | None = None,
        identity: Path | None = None,
    ) -> SecretSource:
        """Reads files (to check them) under a throwaway key: hashes mean nothing."""
        return cls(directory, key=secrets.token_bytes(32), repo=repo, identity=identity)

    def path_of(self, file: str, *, encrypted: bool = False) -> Path:
        if not encrypted:
            return self.directory / file
        repo = self.repo or Path.cwd()
        try:
            return inside(repo, repo, file)
        except ConfigError as err:
            raise SecretUnavailable(f"encrypted secret {file}: {err}") from None

    def read(self, file: str, *, encrypted: bool = False) -> tuple[bytes, str]:
        """The value of ``file`` (decrypted, when ``encrypted``) and its fingerprint."""
        value = self._decrypt(file) if encrypted else self._plain(file)
        return value, self.fingerprint(value)

    def check(self, file: str) -> list[str]:
        """An encrypted file's recipient types, its shape checked without any key."""
        path = self.path_of(file, encrypted=True)
        try:
            return recipient_types(_bounded(path, MAX_ENCRYPTED_BYTES, what="encrypted secret"))
        except NotAge as err:
            raise SecretUnavailable(f"encrypted secret {path}: {err}") from None

    def _plain(self, file: str) -> bytes:
        return _bounded(self.path_of(file), MAX_SECRET_BYTES, what="secret file")

    def _decrypt(self, file: str) -> bytes:
        path = self.path_of(file, encrypted=True)
        data = _bounded(path, MAX_ENCRYPTED_BYTES, what="encrypted secret")
        try:
            types = recipient_types(data)
        except NotAge as err:
            raise SecretUnavailable(f"encrypted secret {path}: {err}") from None
        identities = self._identities_for(path)
        try:
            value: bytes = pyrage.decrypt(data, identities)
        except pyrage.DecryptError as err:
            raise SecretUnavailable(
                f"encrypted secret {path}: cannot decrypt with {self.identity} ({err}); "
                f"it is encrypted to {', '.join(types)} recipients: is it for this host's key?"
            ) from None
        if len(value) > MAX_SECRET_BYTES:
            raise SecretUnavailable(
                f"encrypted secret {path} holds more than {MAX_SECRET_BYTES} bytes"
            )
        return value

    def _identities_for(self, path: Path) -> list[x25519.Identity]:
        if self.identity is None:
            raise SecretUnavailable(
                f"encrypted secret {path}: no age identity to decrypt it with "
                "(give --age-identity FILE or PAID_AGE_IDENTITY)"
            )
        if self._identities is None:
            self._identities = read_identities(self.identity)
        return self._identities

    def fingerprint(self, value: bytes) -> str:
        if self._key is None:
            assert self._key_file is not None  # noqa: S101 -- one of the two is given
            self._key = _host_key(self._key_file)
        return hmac.new(self._key, value, hashlib.sha256).hexdigest()

    def value_for(self, mount: SecretMount) -> bytes:
        """The value that ``mount`` was planned with; refuse a file changed since."""
        value, fingerprint = self.read(mount.file, encrypted=mount.encrypted)
        if not hmac.compare_digest(fingerprint, mount.fingerprint):
            raise SecretUnavailable(
                f"secret {self.path_of(mount.file, encrypted=mount.encrypted)} changed since "
                "the desired state was loaded; it will be picked up on the next pass"
            )
        return value


def repository_of(desired: str | os.PathLike[str]) -> Path:
    """What encrypted secrets' paths are relative to: the desired-state directory as given
    (a file's own directory; the working directory when it is read from stdin)."""
    path = Path(desired)
    if str(desired) == "-":
        return Path.cwd()
    return path.parent if path.is_file() else path


MAX_ENCRYPTED_BYTES = MAX_SECRET_BYTES * 2 + 64 * 1024  # room for armor's base64 and headers
MAX_IDENTITY_BYTES = 64 * 1024


def _bounded(path: Path, limit: int, *, what: str) -> bytes:
    """A regular file's bytes, at most ``limit``; FIFOs, devices and the oversized refused."""
    try:
        value = read_regular_file(path, limit=limit)
    except OSError as err:
        raise SecretUnavailable(f"{what} {path}: {err.strerror or err}") from None
    if len(value) > limit:
        raise SecretUnavailable(f"{what} {path} is larger than {limit} bytes")
    return value


def read_identities(path: Path) -> list[x25519.Identity]:
    """The age identities of a key file as age-keygen writes it (``#`` comments allowed)."""
    text = _bounded(path, MAX_IDENTITY_BYTES, what="age identity file").decode(
        "utf-8", errors="replace"
    )
    found: list[x25519.Identity] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise SecretUnavailable(
                f"{path}:{number}: not an age identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not found:
        raise SecretUnavailable(f"{path}: no age identity in the file")
    return found


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


def encrypt(value: bytes, recipients: list[str], *, armored: bool = True) -> bytes:
    """``value`` encrypted to age ``recipients`` (``age1...`` public keys)."""
    if len(value) > MAX_SECRET_BYTES:
        raise SecretUnavailable(f"a secret holds at most {MAX_SECRET_BYTES} bytes")
    parsed: list[x25519.Recipient] = []
    for text in recipients:
        try:
            parsed.append(x25519.Recipient.from_str(text.strip()))
        except pyrage.RecipientError:
            raise SecretUnavailable(f"{text!r} is not an age recipient (age1...)") from None
    if not parsed:
        raise SecretUnavailable("no recipient: give --recipient age1... (repeatable)")
    encrypted: bytes = pyrage.encrypt(value, parsed, armored=armored)
    return encrypted


def new_identity() -> tuple[str, str]:
    """A new age identity, as age-keygen writes it, and its public key (the recipient)."""
    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    return f"# public key: {public}\n{identity}\n", public


def write_new(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    """``data`` into ``path``, whole or not at all, private from its first byte.

    Without ``replace`` an existing file is never overwritten (``link`` fails),
    so a key made twice at once, or over an old one, is refused, not lost.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(partial, path)
        else:
            os.link(partial, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)
