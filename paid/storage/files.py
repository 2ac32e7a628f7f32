"""Reading files safely: regular files only, bounded, never through a FIFO or a device.

The YAML they hold is parsed by ``paid.state.reading`` (``read_bytes``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from paid.state.reading import MAX_FILE_BYTES, Document, LoadError, read_bytes


def read_file(path: Path, *, display: str) -> tuple[list[Document], list[LoadError]]:
    try:
        data = read_regular_file(path, limit=MAX_FILE_BYTES)
    except NotRegular as err:
        return [], [LoadError(display, 0, "", str(err))]
    except OSError as err:
        return [], [LoadError(display, 0, "", f"cannot read: {err.strerror or err}")]
    return read_bytes(data, display=display)


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, a device, a directory ...): refused unread."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file ({kind}); refused unread")
        self.kind = kind


def read_regular_file(
    path: str | os.PathLike[str], *, limit: int, follow_symlinks: bool = True
) -> bytes:
    """At most ``limit + 1`` bytes of a regular file; anything else is refused unread.

    The one bounded read of files paid is given (desired state, configs,
    units, credentials). Opened non-blocking, so a FIFO never hangs the
    open, and checked with fstat on the open descriptor (not the path,
    which may change meanwhile): FIFOs, devices (``/dev/zero``), sockets
    and directories raise ``NotRegular``; without ``follow_symlinks`` a
    symlink is refused by the kernel (``O_NOFOLLOW``, ELOOP).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags if follow_symlinks else flags | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(kind_of(st.st_mode))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, in words: "a FIFO", "a symlink", ..."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a file"
