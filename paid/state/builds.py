"""``spec.build``: an image built from a directory of the desired-state tree.

The context is read and digested when the desired state is loaded, under
the same rules as configs (inside the tree, no devices or FIFOs, bounded),
and the digest of the context, the Containerfile's name, the arguments
and the target names the image: ``localhost/paid/<service>:<digest>``. So
an edit of the source is a new image, hence a new revision through the
health gate, and an unchanged context builds nothing (the tag is there).
The executor builds before anything is stopped.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from paid.state.basics import Model
from paid.state.configs import ConfigError, inside
from paid.state.reading import kind_of

MAX_BUILD_FILES = 50_000
MAX_BUILD_BYTES = 1 << 30  # a context larger than 1 GiB is refused before it is sent
BUILT_REPOSITORY = "localhost/paid"
_CONTAINERFILES = ("Containerfile", "Dockerfile")


class Build(Model):
    """Where the image comes from: a context directory (relative to the YAML file)."""

    context: str = "."
    containerfile: str | None = None  # default: Containerfile, else Dockerfile, in the context
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] | None = None

    @field_validator("context", "containerfile")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and ("\0" in value or value.startswith("/")):
            raise ValueError(f"{value!r}: a path relative to the YAML file's directory")
        return value


@dataclass(frozen=True, slots=True)
class BuildContext:
    """A build as loaded: the context on this host, what to build, and its digest."""

    path: Path
    containerfile: str  # relative to the context
    args: tuple[tuple[str, str], ...]
    target: str | None
    digest: str

    def tag(self, service: str) -> str:
        return built_image(service, self.digest)


def built_image(service: str, digest: str) -> str:
    """The image a build of ``service`` with this digest makes."""
    return f"{BUILT_REPOSITORY}/{service}:{digest[:16]}"


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
