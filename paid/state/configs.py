"""Files from the repository: configs mounted read-only, and env files.

``configs: [{source: conf/nginx.conf, target: /etc/nginx/nginx.conf}]``
names a file or a directory relative to the YAML file's own directory.
It must stay inside the desired-state tree: ``..`` out of it, a symlink
leading out, and anything but regular files and directories are refused,
as is more than ``MAX_CONFIG_BYTES``.

The content is part of the spec hash (its *digest*), so an edit is a
rollout through the health gate. Each digest is copied once into the
state directory's ``configs/<digest>/`` and mounted from there, so every
kept revision has its own copy: a rollback brings back the old content,
and an edit in the checkout never changes what a running container sees.

Env files (``envFiles: [app.env]``) follow the same path rules and
compose's ``env_file`` format: ``KEY=VALUE`` lines, ``#`` comments,
blank lines, an optional ``export``, single or double quotes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator

from paid.state.basics import Model, absolute_path, no_nul
from paid.state.reading import NotRegular, kind_of, read_regular_file

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # per config, a directory's files together
MAX_CONFIG_FILES = 1_000
MAX_ENV_FILE_BYTES = 1024 * 1024
CONTENT = "content"  # configs/<digest>/content is the file or directory mounted
_MODE = re.compile(r"^0?[0-7]{3}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A config or env file cannot be used; ``line`` is the env file's line, if any."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _relative(value: str, what: str) -> str:
    no_nul(value, what)
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r}: name it relative to the YAML file's directory")
    if not value or posixpath.normpath(value) in (".", ""):
        raise ValueError(f"{what} must name a file or directory")
    return value


class ConfigMount(Model):
    """A file or directory of the repository, mounted read-only at ``target``."""

    source: str
    target: str
    mode: str = "0444"  # of the files; directories are 0555

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _relative(value, "source")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        value = absolute_path(value, "target")
        if posixpath.normpath(value) == "/":
            raise ValueError("target cannot be /")
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not _MODE.fullmatch(value):
            raise ValueError(f'mode {value!r} is not an octal mode such as "0444"')
        return value

    @property
    def file_mode(self) -> int:
        return int(self.mode, 8)


def env_file_name(value: str) -> str:
    return _relative(value, "env file")


@dataclass(frozen=True, slots=True)
class ConfigContent:
    """A config as loaded: where it is mounted, its digest, and where to copy it from."""

    target: str
    digest: str
    mode: int
    source: Path | None = None  # None: rebuilt from a revision; only the kept copy serves


def inside(root: Path, base: Path, relative: str) -> Path:
    """``base / relative`` with symlinks resolved, which must lie under ``root`` (resolved)."""
    real_root = root.resolve()
    path = (base / relative).resolve()
    if path != real_root and real_root not in path.parents:
        raise ConfigError(f"{relative!r} leads out of the desired-state directory ({path})")
    return path


def read_config(root: Path, base: Path, mount: ConfigMount) -> ConfigContent:
    """The config's digest, its files checked; ``ConfigError`` says what is wrong."""
    source = inside(root, base, mount.source)
    digest = _digest(source, mount.file_mode)
    return ConfigContent(mount.target, digest, mount.file_mode, source)


def _entries(source: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every file of a config: one for a file, all for a directory."""
    try:
        st = os.lstat(source)
    except OSError as err:
        raise ConfigError(f"{source}: {err.strerror or err}") from None
    if stat.S_ISREG(st.st_mode):
        yield "", source
        return
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{source} is {kind_of(st.st_mode)}: only files and directories")
    count = 0
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                raise ConfigError(f"{os.path.join(dirpath, name)} is a symlink: not copied")
        for name in sorted(filenames):
            path = Path(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{path} is {kind_of(mode)}: only files and directories")
            count += 1
            if count > MAX_CONFIG_FILES:
                raise ConfigError(f"{source} has more than {MAX_CONFIG_FILES} files")
            yield str(path.relative_to(source)), path


def _digest(source: Path, mode: int) -> str:
    total = 0
    outer = hashlib.sha256(f"paid-config-v1\0{mode:o}\0".encode())
    for relative, path in _entries(source):
        data = _read(path, limit=MAX_CONFIG_BYTES - total)
        total += len(data)
        outer.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
    return outer.hexdigest()


def _read(path: Path, *, limit: int) -> bytes:
    try:
        data = read_regular_file(path, limit=limit, follow_symlinks=False)
    except NotRegular as err:
        raise ConfigError(f"{path} is {err.kind}: refused unread") from None
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: a config holds at most {MAX_CONFIG_BYTES} bytes")
    return data


# -- env files -------------------------------------------------------------------


def read_env_file(root: Path, base: Path, relative: str) -> dict[str, str]:
    """An env file's variables; ``ConfigError`` (with the file's line) on anything else."""
    path = inside(root, base, relative)
    try:
        data = _read(path, limit=MAX_ENV_FILE_BYTES)
    except ConfigError as err:
        message = str(err).replace(str(MAX_CONFIG_BYTES), str(MAX_ENV_FILE_BYTES))
        raise ConfigError(message) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{relative}: not UTF-8 text") from None
    return parse_env(text)


def parse_env(text: str) -> dict[str, str]:
    """compose's env_file format; ``ConfigError`` names the line of a bad one."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"line {number}: {key!r} is not KEY=VALUE", line=number)
        if not _ENV_NAME.fullmatch(key):
            raise ConfigError(f"line {number}: {key!r} is not a variable name", line=number)
        out[key] = _value(value.strip(), number)
    return out


def _value(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = _closing(value, quote)
        if end < 0:
            raise ConfigError(f"line {number}: the {quote} quote is not closed", line=number)
        inner = value[1:end]
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"line {number}: text after the closing quote", line=number)
        if quote == '"':
            inner = re.sub(r"\\([\\\"nt$])", _unescape, inner)
        return inner
    if "\0" in value:
        raise ConfigError(f"line {number}: a NUL byte", line=number)
    comment = re.search(r"\s#", value)
    return value[: comment.start()].rstrip() if comment else value


def _closing(value: str, quote: str) -> int:
    i = 1
    while i < len(value):
        if quote == '"' and value[i] == "\\":
            i += 2
            continue
        if value[i] == quote:
            return i
        i += 1
    return -1


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t"}.get(match[1], match[1])


# -- the copies ------------------------------------------------------------------


class ConfigStore:
    """``<state dir>/configs/<digest>/content``: one copy per digest, made once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made = 0  # copies made by this process, so collection knows when to look

    def path(self, digest: str) -> Path:
        return self.directory / digest / CONTENT

    def ensure(self, config: ConfigContent) -> Path:
        """The copy of ``config``, made now from its source if there is none yet.

        The copy is checked against the digest the plan was made with: a
        source edited since is an error, never a silent other content.
        """
        final = self.directory / config.digest
        if (final / CONTENT).exists():
            return final / CONTENT
        if config.source is None:
            raise ConfigError(
                f"config {config.target}: its content ({config.digest[:12]}) is no longer kept"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One staging directory per writer (mkdtemp: 0700, a unique suffix): the
        # workers of one process copying the same content never share one.
        staging = Path(
            tempfile.mkdtemp(
                prefix=f".staging-{config.digest[:16]}-{os.getpid()}-", dir=self.directory
            )
        )
        try:
            self._copy(config, staging / CONTENT)
            got = _digest(staging / CONTENT, config.mode)
            if got != config.digest:
                raise ConfigError(
                    f"config {config.target}: {config.source} changed since it was loaded"
                )
            with contextlib.suppress(FileExistsError, OSError):
                os.rename(staging, final)  # another writer made it first: theirs is the same
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not (final / CONTENT).exists():
            raise ConfigError(f"config {config.target}: the copy could not be made")
        final.chmod(0o755)
        self.made += 1
        return final / CONTENT

    def _copy(self, config: ConfigContent, into: Path) -> None:
        assert config.source is not None  # noqa: S101 -- checked by ensure
        entries = list(_entries(config.source))
        if entries and entries[0][0] == "":
            self._write(into, _read(config.source, limit=MAX_CONFIG_BYTES), config.mode)
            return
        into.mkdir()
        for relative, path in entries:
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write(target, _read(path, limit=MAX_CONFIG_BYTES), config.mode)
        for directory in [into, *(p for p in into.rglob("*") if p.is_dir())]:
            directory.chmod(0o555)

    @staticmethod
    def _write(path: Path, data: bytes, mode: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:  # a full disk writes short before it fails: never a silent half copy
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as err:
            raise ConfigError(f"cannot copy a config to {path}: {err.strerror or err}") from err
        finally:
            os.close(fd)
        path.chmod(mode)

    def collect(self, keep: Iterable[str]) -> list[str]:
        """Remove the copies no kept revision, container or desired service uses."""
        kept = set(keep)
        removed: list[str] = []
        if not self.directory.is_dir():
            return removed
        for entry in sorted(self.directory.iterdir()):
            if entry.name in kept or (entry.name.startswith(".staging-") and _alive(entry.name)):
                continue
            _make_writable(entry)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        return removed


def _alive(staging: str) -> bool:
    """Whether the process making this staging copy (``.staging-<digest>-<pid>-<x>``) runs.

    A copy left by a paid killed mid-copy is collected; one in the making is not.
    """
    parts = staging.split("-")
    pid = parts[2] if len(parts) > 2 else ""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_writable(path: Path) -> None:
    for directory in [path, *(p for p in path.rglob("*") if p.is_dir())]:
        with contextlib.suppress(OSError):
            directory.chmod(0o755)


def digests_in(shape: object) -> set[str]:
    """The config digests a recorded container shape names."""
    if not isinstance(shape, dict):
        return set()
    return {
        str(c["digest"])
        for c in shape.get("configs") or ()
        if isinstance(c, dict) and isinstance(c.get("digest"), str)
    }
