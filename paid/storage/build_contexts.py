"""A build context read from the tree: every file hashed, bounded, inside the tree."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from paid.state.builds import _CONTAINERFILES, Build, BuildContext
from paid.state.configs import ConfigError
from paid.storage.config_files import inside
from paid.storage.files import kind_of

MAX_BUILD_FILES = 50_000


MAX_BUILD_BYTES = 1 << 30  # a context larger than 1 GiB is refused before it is sent


def read_build(root: Path, base: Path, build: Build) -> BuildContext:
    """The context found, checked and digested; ``ConfigError`` says what is wrong."""
    path = inside(root, base, build.context)
    if not path.is_dir():
        raise ConfigError(f"build context {build.context!r} is not a directory")
    containerfile = build.containerfile or next(
        (name for name in _CONTAINERFILES if (path / name).is_file()), None
    )
    if containerfile is None:
        raise ConfigError(f"build context {build.context!r} has no Containerfile or Dockerfile")
    file = inside(root, path, containerfile)
    if path not in file.parents or not file.is_file():
        raise ConfigError(f"containerfile {containerfile!r}: a file inside the build context")
    outer = hashlib.sha256(b"paid-build-v1\0")
    outer.update(f"{file.relative_to(path)}\0{build.target or ''}\0".encode())
    for key, value in sorted(build.args.items()):
        outer.update(f"{key}={value}\0".encode())
    total = 0
    for relative, entry, mode in _walk(path):
        if stat.S_ISLNK(mode):
            outer.update(f"L{relative}\0{os.readlink(entry)}\0".encode())
            continue
        digest, size = _file_digest(entry)
        total += size
        if total > MAX_BUILD_BYTES:
            raise ConfigError(f"build context {build.context!r} is larger than {MAX_BUILD_BYTES}")
        outer.update(f"F{relative}\0{mode & 0o111:o}\0".encode() + digest)
    return BuildContext(
        path=path,
        containerfile=str(file.relative_to(path)),
        args=tuple(sorted(build.args.items())),
        target=build.target,
        digest=outer.hexdigest(),
    )


def _walk(path: Path) -> list[tuple[str, Path, int]]:
    found: list[tuple[str, Path, int]] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(Path(dirpath, d))]:
            entry = Path(dirpath, name)
            mode = os.lstat(entry).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                raise ConfigError(f"{entry} is {kind_of(mode)}: a build context holds files")
            found.append((str(entry.relative_to(path)), entry, mode))
            if len(found) > MAX_BUILD_FILES:
                raise ConfigError(f"build context {path} has more than {MAX_BUILD_FILES} files")
    return found


def _file_digest(path: Path) -> tuple[bytes, int]:
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path} changed into something that is not a file")
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > MAX_BUILD_BYTES:
                raise ConfigError(f"{path} is larger than {MAX_BUILD_BYTES} bytes")
            digest.update(chunk)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    return digest.digest(), size
