"""Secret files: read from the secrets directory, and the host key that fingerprints them."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from paid.state.secrets import KEY_FILENAME, MAX_SECRET_BYTES, SecretMount, SecretUnavailable


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
