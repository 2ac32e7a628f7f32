"""The host key behind secret fingerprints: made once, atomically, and never a weak one."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from paid.state.secrets import KEY_FILENAME, SecretUnavailable
from paid.storage.secret_files import SecretSource


def _fingerprint(state_dir: str) -> str:
    token = Path(state_dir) / "secrets" / "token"
    if not token.exists():
        token.parent.mkdir(exist_ok=True)
        token.write_bytes(b"hunter2")
    return SecretSource.open(Path(state_dir) / "secrets", state_dir=state_dir).read("token")[1]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param("", "0-byte key", id="empty"),
        pytest.param("abcd\n", "2-byte key", id="short"),
        pytest.param("zz" * 32, "not hex", id="not-hex"),
    ],
)
def test_a_weak_or_broken_key_is_refused(tmp_path: Path, content: str, words: str) -> None:
    """An empty or short key would make fingerprints guessable: refused, not used."""
    (tmp_path / KEY_FILENAME).write_text(content)

    with pytest.raises(SecretUnavailable, match=words):
        _fingerprint(str(tmp_path))


def test_a_new_key_is_whole_private_and_left_no_partial(tmp_path: Path) -> None:
    """32 random bytes in hex, mode 0600, and no temporary file beside it."""
    _fingerprint(str(tmp_path))

    key = tmp_path / KEY_FILENAME
    assert 64 == len(key.read_text().strip())
    assert 0o600 == key.stat().st_mode & 0o777
    assert [KEY_FILENAME] == sorted(p.name for p in tmp_path.iterdir() if p.is_file())


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    """Eight processes make the key at the same moment: one key, one fingerprint."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_bytes(b"hunter2")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        prints = pool.map(_fingerprint, [str(tmp_path)] * 8)

    assert 1 == len(set(prints))
    assert prints[0] == _fingerprint(str(tmp_path))
