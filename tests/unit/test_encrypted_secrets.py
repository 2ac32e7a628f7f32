"""Secrets kept in git, encrypted with age: loading, fingerprints and every way it can go wrong.

Real age (pyrage) with real keys made by ``paid secret keygen``; the
command line is run as users run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from paid.storage.loading import LoadResult, load_directory
from paid.storage.secret_files import SecretSource

VALUE = b"s3cr3t-Vx9q-correct-horse"


def _paid(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PAID_SECRETS_DIR": str(cwd / "no-secrets-dir")},
    )


@pytest.fixture
def host_key(tmp_path: Path) -> tuple[Path, str]:
    """This host's age identity, made as a user makes it: its file and its public key."""
    made = _paid("secret", "keygen", "-o", str(tmp_path / "age.key"), cwd=tmp_path)
    assert 0 == made.returncode, made.stderr
    return tmp_path / "age.key", made.stdout.decode().strip()


def _repo(tmp_path: Path, public: str, value: bytes = VALUE, *, name: str = "db.age") -> Path:
    """A desired-state directory whose service reads DB_PASSWORD from secrets/``name``."""
    repo = tmp_path / "desired-state"
    (repo / "secrets").mkdir(parents=True, exist_ok=True)
    encrypted = _paid(
        "secret", "encrypt", "-r", public, "-o", f"secrets/{name}", "--force", "-",
        cwd=repo, stdin=value,
    )  # fmt: skip
    assert 0 == encrypted.returncode, encrypted.stderr
    doc = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {
            "image": "localhost/db:1",
            "secretEnv": {"DB_PASSWORD": {"encrypted": f"secrets/{name}"}},
            "secrets": [{"encrypted": f"secrets/{name}", "mode": "0400"}],
        },
    }
    (repo / "db.yaml").write_text(yaml.safe_dump(doc))
    return repo


def _load(repo: Path, identity: Path | None, state: Path, *, offline: bool = False) -> LoadResult:
    nowhere = repo / "no-secrets-dir"
    source = SecretSource.open(nowhere, state_dir=state, repo=repo, identity=identity)
    return load_directory(repo, secrets=source, offline=offline)


def _fingerprints(result: LoadResult) -> dict[str, str]:
    assert result.desired is not None, result.errors
    return dict(result.desired.services["db"].secret_fingerprints)


def test_an_encrypted_secret_loads_with_the_hosts_identity(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """Decrypted on load; env and file secret share the value; the mount drops `.age`."""
    identity, public = host_key
    repo = _repo(tmp_path, public)

    result = _load(repo, identity, tmp_path / "state")

    prints = _fingerprints(result)
    assert {"DB_PASSWORD", "file:/run/secrets/db"} == set(prints)
    assert prints["DB_PASSWORD"] == prints["file:/run/secrets/db"]
    source = SecretSource.open(tmp_path, state_dir=tmp_path / "state", repo=repo, identity=identity)
    assert (VALUE, prints["DB_PASSWORD"]) == source.read("secrets/db.age", encrypted=True)
    assert b"BEGIN AGE ENCRYPTED FILE" in (repo / "secrets" / "db.age").read_bytes()
    assert VALUE not in (repo / "secrets" / "db.age").read_bytes()


def test_reencrypting_the_same_value_changes_nothing_and_a_new_value_does(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """The fingerprint is of the value, not of the ciphertext (new each time)."""
    identity, public = host_key
    state = tmp_path / "state"
    first = _fingerprints(_load(_repo(tmp_path, public), identity, state))
    cipher = (tmp_path / "desired-state" / "secrets" / "db.age").read_bytes()

    again = _fingerprints(_load(_repo(tmp_path, public), identity, state))
    assert cipher != (tmp_path / "desired-state" / "secrets" / "db.age").read_bytes()
    assert first == again

    changed = _fingerprints(_load(_repo(tmp_path, public, b"another"), identity, state))
    assert first["DB_PASSWORD"] != changed["DB_PASSWORD"]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no identity", "no age identity to decrypt it with (give --age-identity"),
        ("wrong identity", "cannot decrypt with"),
        ("not age", "not an age file (no age-encryption.org/v1 header)"),
        ("truncated", "truncated"),
        ("sops", "a SOPS file, not an age file"),
        ("missing", "No such file or directory"),
        ("fifo", "not a regular file (a FIFO)"),
        ("symlink out", "leads out of the desired-state directory"),
        ("identity garbage", "not an age identity (AGE-SECRET-KEY-1...)"),
    ],
)
def test_an_encrypted_secret_that_cannot_be_read_is_a_load_error_naming_the_file(
    tmp_path: Path, host_key: tuple[Path, str], case: str, words: str
) -> None:
    """file:line: spec.secretEnv: what is wrong; never a traceback, never a hang."""
    identity: Path | None = host_key[0]
    repo = _repo(tmp_path, host_key[1])
    secret = repo / "secrets" / "db.age"
    if case == "no identity":
        identity = None
    elif case == "wrong identity":
        other = _paid("secret", "keygen", "-o", str(tmp_path / "other.key"), cwd=tmp_path)
        assert 0 == other.returncode
        identity = tmp_path / "other.key"
    elif case == "not age":
        secret.write_bytes(VALUE)
    elif case == "truncated":
        secret.write_bytes(secret.read_bytes()[:-40])
    elif case == "sops":
        secret.write_text("password: ENC[AES256_GCM,data:x]\nsops:\n  age: []\n")
    elif case == "missing":
        secret.unlink()
    elif case == "fifo":
        secret.unlink()
        os.mkfifo(secret)
    elif case == "symlink out":
        secret.unlink()
        outside = tmp_path / "elsewhere.age"
        outside.write_bytes(b"x")
        secret.symlink_to(outside)
    elif case == "identity garbage":
        assert identity is not None
        identity.write_text("# a comment is fine\nAGE-SECRET-KEY-1NOTAKEY\n")
        words = f"{identity}:2: not an age identity"

    result = _load(repo, identity, tmp_path / "state")

    assert result.desired is None
    messages = [str(e) for e in result.errors]
    assert any(words in m for m in messages), messages
    assert all(m.startswith(f"{repo / 'db.yaml'}:") for m in messages), messages
    assert all(VALUE.decode() not in m for m in messages)


def test_a_device_in_the_repository_is_refused_unread(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """A character device inside the tree (not a symlink out) is named, never read."""
    repo = _repo(tmp_path, host_key[1])
    source = SecretSource.open(tmp_path, state_dir=tmp_path / "s", repo=Path("/"))
    with pytest.raises(Exception, match=r"not a regular file \(a character device\)"):
        source.read("dev/zero", encrypted=True)
    assert repo.exists()


def test_validate_offline_checks_the_shape_without_any_key(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """`paid validate --offline`: a well-formed age file passes with no identity; plain text not."""
    repo = _repo(tmp_path, host_key[1])

    good = _paid("validate", "--offline", str(repo), cwd=tmp_path)
    assert 0 == good.returncode, good.stderr

    (repo / "secrets" / "db.age").write_bytes(VALUE + b"\n")
    bad = _paid("validate", "--offline", str(repo), cwd=tmp_path)
    assert 1 == bad.returncode
    assert b"db.yaml:" in bad.stderr
    assert b"not an age file" in bad.stderr
    assert VALUE not in bad.stderr + bad.stdout


def test_validate_with_the_identity_decrypts_and_a_wrong_one_is_named(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """Online, the identity is used (--age-identity or PAID_AGE_IDENTITY); a wrong one fails."""
    identity, public = host_key
    repo = _repo(tmp_path, public)

    ok = _paid("validate", "--age-identity", str(identity), str(repo), cwd=tmp_path)
    assert 0 == ok.returncode, ok.stderr
    missing = _paid("validate", str(repo), cwd=tmp_path)
    assert 1 == missing.returncode
    assert b"--age-identity" in missing.stderr


def test_keygen_never_overwrites_a_key_and_keeps_it_private(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """A second keygen onto the same file is refused and the first key survives, 0600."""
    identity, public = host_key
    before = identity.read_bytes()

    again = _paid("secret", "keygen", "-o", str(identity), cwd=tmp_path)

    assert 1 == again.returncode
    assert b"never overwrites" in again.stderr
    assert before == identity.read_bytes()
    assert 0o600 == identity.stat().st_mode & 0o777
    assert f"# public key: {public}".encode() in before


def test_encrypt_refuses_a_bad_recipient_and_an_existing_file(
    tmp_path: Path, host_key: tuple[Path, str]
) -> None:
    """No recipient, a malformed one, or an existing output without --force: exit 1, no file."""
    (tmp_path / "plain").write_bytes(VALUE)
    none = _paid("secret", "encrypt", "plain", cwd=tmp_path)
    bad = _paid("secret", "encrypt", "-r", "age1nope", "plain", cwd=tmp_path)
    assert (1, 1) == (none.returncode, bad.returncode)
    assert b"no recipient" in none.stderr
    assert b"not an age recipient" in bad.stderr
    assert not (tmp_path / "plain.age").exists()

    first = _paid("secret", "encrypt", "-r", host_key[1], "plain", cwd=tmp_path)
    assert 0 == first.returncode, first.stderr
    kept = (tmp_path / "plain.age").read_bytes()
    second = _paid("secret", "encrypt", "-r", host_key[1], "plain", cwd=tmp_path)
    assert 1 == second.returncode
    assert b"--force" in second.stderr
    assert kept == (tmp_path / "plain.age").read_bytes()


def test_a_plain_secret_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """The secrets directory's files are read as every file paid is given: never a FIFO."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    os.mkfifo(secrets_dir / "token")
    source = SecretSource.open(secrets_dir, state_dir=tmp_path / "state")
    with pytest.raises(Exception, match=r"not a regular file \(a FIFO\)"):
        source.read("token")
