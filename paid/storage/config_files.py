"""Configs and env files read from the tree, and the state directory's copies of configs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from paid.state.configs import (
    CONTENT,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_FILES,
    MAX_ENV_FILE_BYTES,
    ConfigContent,
    ConfigError,
    ConfigMount,
    parse_env,
)
from paid.storage.files import NotRegular, kind_of, read_regular_file


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
