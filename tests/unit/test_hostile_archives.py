"""Generated hostile backup archives: a restore never writes, links or changes anything outside.

hypothesis builds archives from members an attacker would use — symlink
chains that look inside on paper (``l0 -> .``, ``l1 -> l0/..``), hard
links to host files, members written through links, absolute names,
devices — and extracts each with the same ``extract`` that ``paid
restore`` uses. Outside the target, a host file and a host directory are
watched: their content, link count and listing must not change, whatever
the archive was and whether it was refused or not.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid.storage.archives import ArchiveError, BackupRecord, VolumeArchive, extract

NAMES = ["l0", "l1", "l2", "d", "d/x", "f", "l0/x", "l1/x", "l1/host/victim", "l2/y", "./l1/z"]


def _targets(host: Path) -> list[str]:
    return [
        ".", "..", "l0", "l0/..", "l1/..", "l0/../..", "d", "d/..", "d/../..", "f",
        "l1/host", "l1/host/victim", str(host), str(host / "victim"), "../host", "x/../../..",
    ]  # fmt: skip


@st.composite
def _members(draw: st.DrawFn, host: Path) -> list[tuple[str, str, str]]:
    """(kind, name, target) triples: dir, file, sym, hard, dev."""
    kinds = st.sampled_from(["dir", "file", "sym", "sym", "sym", "hard", "hard", "dev"])
    names = st.sampled_from(NAMES)
    targets = st.sampled_from(_targets(host))
    return draw(st.lists(st.tuples(kinds, names, targets), min_size=1, max_size=8))


def _archive(path: Path, members: list[tuple[str, str, str]]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for kind, name, target in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            data = b""
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, target
            elif kind == "dev":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            else:
                data = b"attacker was here"
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st_ = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            out[str(path.relative_to(root))] = (st_.st_mode, st_.st_nlink, content)
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """sandbox/host (what must not change) beside sandbox/volume (where restores go)."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "victim").write_bytes(b"host secret")
    return tmp_path


@settings(
    max_examples=int(os.environ.get("PAID_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_generated_archive_touches_anything_outside(sandbox: Path, data: st.DataObject) -> None:
    """Refused or extracted, the host side is exactly as it was."""
    host = sandbox / "host"
    members = data.draw(_members(host))
    backup = sandbox / "backup"
    shutil.rmtree(backup, ignore_errors=True)
    backup.mkdir()
    digest = _archive(backup / "v.tar.gz", members)
    record = BackupRecord(
        "id", "svc", 0.0, None, "live", "test", (VolumeArchive("v", "v.tar.gz", digest, 0),), backup
    )
    target = sandbox / "volume" / "_data.paid-restore"
    shutil.rmtree(sandbox / "volume", ignore_errors=True)
    target.mkdir(parents=True, mode=0o700)
    before = _snapshot(host)

    with contextlib.suppress(ArchiveError):
        extract(record, "v", target)

    assert before == _snapshot(host)
    assert {"host", "volume", "backup"} >= {p.name for p in sandbox.iterdir()}


@pytest.mark.parametrize(
    ("members", "words"),
    [
        pytest.param(
            [("sym", "l0", "."), ("sym", "l1", "l0/.."), ("file", "l1/x", "")],
            "passes through the link 'l0'",
            id="chain-l0-l1",
        ),
        pytest.param(
            [("sym", "l0", "."), ("sym", "l1", "l0/.."), ("hard", "h", "l1/host/victim")],
            "passes through the link 'l0'",
            id="chain-then-hard-link",
        ),
        pytest.param(
            [("file", "l0/x", ""), ("sym", "l0", "l0")],
            "passes through the link 'l0'",
            id="self-link-over-a-directory",
        ),
        pytest.param(
            [("hard", "h", "HOST/victim")],
            "hard link",
            id="hard-link-to-host-file",
        ),
        pytest.param(
            [("file", "f", ""), ("sym", "s", "f"), ("hard", "h", "s")],
            "not a file of this archive",
            id="hard-link-to-a-symlink",
        ),
    ],
)
def test_known_escapes_are_refused_by_name(
    sandbox: Path, members: list[tuple[str, str, str]], words: str
) -> None:
    """The escapes a hostile tester used, each refused with its reason."""
    host = sandbox / "host"
    members = [(k, n, t.replace("HOST", str(host))) for k, n, t in members]
    backup = sandbox / "backup"
    backup.mkdir()
    digest = _archive(backup / "v.tar.gz", members)
    record = BackupRecord(
        "id", "svc", 0.0, None, "live", "test", (VolumeArchive("v", "v.tar.gz", digest, 0),), backup
    )
    target = sandbox / "volume"
    target.mkdir(mode=0o700)

    with pytest.raises(ArchiveError, match=words):
        extract(record, "v", target)
    assert 1 == (host / "victim").stat().st_nlink
