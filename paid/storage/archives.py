"""Backup archives on disk: one directory per backup, a manifest, checked twice.

Layout under the backup directory::

    <service>/<id>/manifest.json       what was copied, with sha256 per archive
    <service>/<id>/<volume>.tar.gz     the volume's files, paths relative to its root

A backup is written into ``<service>/.<id>.partial`` and renamed into place
only when complete and fsynced, so a kill at any moment leaves either a whole
backup or a partial directory that listing ignores and the next run removes.
Directories are 0700 and files 0600: backups hold the service's data.

Before anything is extracted, the archive's sha256 must match the manifest,
and every member must stay inside the volume: no absolute names, no ``..``,
no symbolic or hard link pointing out of the volume, no member written
through a link, no device files. Python 3.11.2 (Debian 12) predates
tarfile's extraction filters, and their ``data`` filter would change modes
that a restore must keep, so the checks are made here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MANIFEST = "manifest.json"
FORMAT = 1
PARTIAL_SUFFIX = ".partial"
_CHUNK = 1 << 20


class ArchiveError(Exception):
    """A backup is missing, damaged, or would write outside its volume."""


@dataclass(frozen=True, slots=True)
class VolumeArchive:
    volume: str
    file: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class BackupRecord:
    id: str
    service: str
    created_at: float
    revision: int | None
    consistency: str
    reason: str
    volumes: tuple[VolumeArchive, ...]
    path: Path

    @property
    def size(self) -> int:
        return sum(v.size for v in self.volumes)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "createdAt": self.created_at,
            "revision": self.revision,
            "consistency": self.consistency,
            "reason": self.reason,
            "size": self.size,
            "volumes": [
                {"volume": v.volume, "file": v.file, "sha256": v.sha256, "size": v.size}
                for v in self.volumes
            ],
        }


def new_id(now: float) -> str:
    """Sortable and readable: UTC time to the millisecond."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}Z"


def write_backup(
    root: Path,
    *,
    service: str,
    volumes: Mapping[str, Path],
    revision: int | None,
    consistency: str,
    reason: str,
    now: float,
) -> BackupRecord:
    """Copy each volume's directory into a new backup of ``service``."""
    backup_id = new_id(now)
    parent = root / service
    _private_dir(root)
    _private_dir(parent)
    partial = parent / f".{backup_id}{PARTIAL_SUFFIX}"
    final = parent / backup_id
    if final.exists():
        raise ArchiveError(f"backup {service}/{backup_id} exists already")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    archives = []
    for volume, source in volumes.items():
        file = f"{volume}.tar.gz"
        digest, size = _write_tar(source, partial / file)
        archives.append(VolumeArchive(volume, file, digest, size))
    record = BackupRecord(
        backup_id, service, now, revision, consistency, reason, tuple(archives), final
    )
    manifest = {"format": FORMAT, **record.to_json()}
    _write_private(partial / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    _fsync_dir(partial)
    os.rename(partial, final)
    _fsync_dir(parent)
    return record


def list_backups(root: Path, service: str | None = None) -> list[BackupRecord]:
    """Complete backups, oldest first; partial ones and strangers are skipped."""
    if not root.is_dir():
        return []
    services = [service] if service is not None else sorted(p.name for p in root.iterdir())
    found = []
    for name in services:
        parent = root / name
        if not parent.is_dir():
            continue
        for entry in sorted(parent.iterdir()):
            if entry.name.startswith(".") or not (entry / MANIFEST).is_file():
                continue
            with contextlib.suppress(ArchiveError):
                found.append(read_manifest(entry))
    return sorted(found, key=lambda b: (b.service, b.created_at, b.id))


def read_manifest(path: Path) -> BackupRecord:
    try:
        raw = json.loads((path / MANIFEST).read_text())
        if raw.get("format") != FORMAT:
            raise ArchiveError(f"{path}: unknown manifest format {raw.get('format')!r}")
        volumes = tuple(
            VolumeArchive(str(v["volume"]), str(v["file"]), str(v["sha256"]), int(v["size"]))
            for v in raw["volumes"]
        )
        return BackupRecord(
            id=str(raw["id"]),
            service=str(raw["service"]),
            created_at=float(raw["createdAt"]),
            revision=None if raw.get("revision") is None else int(raw["revision"]),
            consistency=str(raw["consistency"]),
            reason=str(raw.get("reason", "")),
            volumes=volumes,
            path=path,
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"{path}: unreadable manifest ({err})") from None


SAFETY_PREFIX = "before restoring "  # the reason of the backup a restore takes first


def find_backup(root: Path, service: str, backup_id: str | None) -> BackupRecord:
    """``backup_id`` of ``service``, or its newest backup that a restore did not take.

    A restore first backs up what is there; a restore that was interrupted
    and is run again must not pick that safety copy as "the newest" and put
    back the state it was asked to replace.
    """
    backups = list_backups(root, service)
    if not backups:
        raise ArchiveError(f"no backups of {service} in {root}")
    if backup_id is None:
        chosen = [b for b in backups if not b.reason.startswith(SAFETY_PREFIX)]
        return (chosen or backups)[-1]
    for backup in backups:
        if backup.id == backup_id:
            return backup
    raise ArchiveError(f"no backup {backup_id!r} of {service} in {root}")


def verify(backup: BackupRecord) -> list[str]:
    """Every problem found: a checksum mismatch, else each unsafe member."""
    problems = []
    for volume in backup.volumes:
        if posixpath.basename(volume.file) != volume.file:
            problems.append(f"{volume.volume}: archive name {volume.file!r} is not a plain name")
            continue
        found = _scan(backup.path / volume.file, volume.sha256)
        problems.extend(f"{volume.volume}: {p}" for p in found)
    return problems


def extract(backup: BackupRecord, volume: str, target: Path) -> None:
    """Unpack one volume's archive into the empty directory ``target``.

    The checksum and every member are checked in the same pass that writes,
    so an archive changed after ``verify`` is refused too, at no extra read;
    on ``ArchiveError`` the caller throws ``target`` away.
    """
    (entry,) = [v for v in backup.volumes if v.volume == volume]
    problems = _scan(backup.path / entry.file, entry.sha256, into=target)
    if problems:
        raise ArchiveError(f"{volume}: " + "; ".join(problems))
    _fsync_tree(target)


def _scan(path: Path, sha256: str, *, into: Path | None = None) -> list[str]:
    """One read of the archive: its sha256, each member's safety, and (``into``) its files."""
    try:
        raw = path.open("rb")
    except OSError as err:
        return [f"{path}: {err.strerror}"]
    problems: list[str] = []
    unreadable = None
    with raw:
        reader = _HashingReader(raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
                _walk(tar, problems, into)
        except (OSError, EOFError, tarfile.TarError, zlib.error, RecursionError) as err:
            # RecursionError: tarfile chasing a link that names itself.
            unreadable = f"unreadable archive: {err}"
        reader.drain()  # what tarfile left unread still counts for the checksum
    digest = reader.digest.hexdigest()
    if digest != sha256:
        return [
            f"checksum mismatch (manifest {sha256[:12]}…, archive {digest[:12]}…): "
            "the archive was changed or damaged"
        ]
    return [*problems, unreadable] if unreadable else problems


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> None:
    attrs = not member.isdir()
    if hasattr(tarfile, "fully_trusted_filter"):
        # 3.11.4+: our own checks ran; keep modes and owners exactly (the
        # "data" filter, Python 3.14's default, would change them).
        tar.extract(member, into, set_attrs=attrs, numeric_owner=True, filter="fully_trusted")
    else:
        tar.extract(member, into, set_attrs=attrs, numeric_owner=True)


def _walk(tar: tarfile.TarFile, problems: list[str], into: Path | None) -> None:
    seen = _Extracted()
    directories: list[tarfile.TarInfo] = []
    for member in tar:
        problem = _member_problem(member, seen)
        if problem is None and into is not None and not problems:
            problem = _on_disk_problem(member, into)
        if problem:
            problems.append(f"{member.name!r}: {problem}")
        elif into is not None and not problems:
            # Checked just above; directories get their mode and times last,
            # after their content, as extractall does.
            if member.isdir():
                directories.append(member)
            _extract(tar, member, into)
        seen.add(member)
    if into is None or problems:
        return
    for member in reversed(directories):
        path = os.path.join(into, member.name)
        tar.chown(member, path, numeric_owner=True)
        tar.utime(member, path)
        tar.chmod(member, path)


def prune(root: Path, service: str, *, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` backups of ``service``, and stale partials."""
    parent = root / service
    if parent.is_dir():
        for entry in parent.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX):
                shutil.rmtree(entry, ignore_errors=True)
    backups = list_backups(root, service)
    doomed = backups[: max(0, len(backups) - keep)]
    for backup in doomed:
        shutil.rmtree(backup.path)
    return [b.id for b in doomed]


# -- helpers -------------------------------------------------------------------


def _normal(name: str) -> str:
    """``./a/b`` -> ``a/b``; the volume's root itself -> ``""``."""
    normal = posixpath.normpath(name or ".")
    return "" if normal == "." else normal


class _Extracted:
    """What the members so far put where: the model each next member is resolved against."""

    def __init__(self) -> None:
        self.links: set[str] = set()  # symbolic and hard links, by normalized path
        self.files: set[str] = set()  # regular files, which a hard link may name

    def add(self, member: tarfile.TarInfo) -> None:
        name = _normal(member.name)
        self.files.discard(name)
        self.links.discard(name)
        if member.issym() or member.islnk():
            self.links.add(name)
        elif member.isfile():
            self.files.add(name)


def _member_problem(member: tarfile.TarInfo, seen: _Extracted) -> str | None:
    """Why ``member`` may not be extracted, judged against what the members before it made.

    A name may not be absolute, climb with ``..`` or pass through any link
    made before it. A symbolic link's target is resolved step by step
    against the links made so far: it may neither leave the volume nor pass
    through another link (``l0 -> .``, ``l1 -> l0/..`` is a way out that
    looks inside on paper). A hard link may only name a regular file the
    archive itself made. Devices are refused.
    """
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "path climbs out with '..'"
    normal = _normal(name)
    through = _first_link(posixpath.dirname(normal).split("/"), seen.links)
    if through is not None:
        return f"written through the link {through!r}"
    if member.isdev():
        return "device file"
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"symbolic link to the absolute path {target!r}, outside the volume"
        return _link_problem(posixpath.dirname(normal), target, seen.links | {normal})
    if member.islnk():
        target = _normal(member.linkname)
        if member.linkname.startswith("/") or ".." in member.linkname.split("/"):
            return f"hard link to {member.linkname!r}, outside the volume"
        if target not in seen.files:
            return f"hard link to {member.linkname!r}, which is not a file of this archive"
    return None


def _first_link(parts: list[str], links: set[str]) -> str | None:
    """The first prefix of ``parts`` that is a link made by the archive, if any."""
    path = ""
    for part in parts:
        if part in ("", "."):
            continue
        path = f"{path}/{part}" if path else part
        if path in links:
            return path
    return None


def _link_problem(directory: str, target: str, links: set[str]) -> str | None:
    stack = [p for p in directory.split("/") if p not in ("", ".")]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return f"symbolic link to {target!r}, outside the volume"
            stack.pop()
            continue
        stack.append(part)
        if "/".join(stack) in links:
            return f"symbolic link to {target!r} passes through the link {'/'.join(stack)!r}"
    return None


def _on_disk_problem(member: tarfile.TarInfo, into: Path) -> str | None:
    """The same rule asked of the disk: nothing on the way to the member is a link."""
    root = os.path.realpath(into)
    path = os.path.join(root, _normal(member.name))
    parent = os.path.dirname(path)
    if os.path.realpath(parent) != os.path.normpath(parent):
        return "its directory resolves elsewhere on disk"
    if not member.isdir() and _normal(member.name) and os.path.isdir(path):
        return "would replace a directory the archive made"
    if member.islnk():
        target = os.path.join(root, _normal(member.linkname))
        try:
            st = os.lstat(target)
        except OSError:
            return "hard link to a file that is not there"
        if not stat.S_ISREG(st.st_mode) or os.path.realpath(target) != target:
            return "hard link to something that is not a file of this volume"
    return None


def _write_tar(source: Path, destination: Path) -> tuple[str, int]:
    if not source.is_dir():
        raise ArchiveError(f"{source} is not a directory")
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        hashing = _HashingWriter(raw)
        with tarfile.open(fileobj=hashing, mode="w:gz", compresslevel=6) as tar:  # type: ignore[call-overload]
            tar.add(source, arcname=".", recursive=True)
        raw.flush()
        os.fsync(raw.fileno())
        return hashing.digest.hexdigest(), hashing.size


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()


class _HashingReader:
    """A read-only file that hashes what passes through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(dirpath))
