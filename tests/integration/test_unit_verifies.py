"""systemd/paid.service passes `systemd-analyze verify` without a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "scope"),
    [
        pytest.param("paid.service", [], id="system"),
        pytest.param("paid-user.service", ["--user"], id="user"),
    ],
)
def test_the_unit_verifies_cleanly(tmp_path: Path, name: str, scope: list[str]) -> None:
    """No unknown keys (StartLimitIntervalSec belongs in [Unit]), no other complaint.

    The user unit (rootless Podman) is verified as systemd --user reads it.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: scripts/install-deps installs systemd")
    paid = Path(sys.executable).parent / "paid"  # the unit's /usr/local/bin/paid, here
    unit = tmp_path / name
    unit.write_text((ROOT / "systemd" / name).read_text().replace("/usr/local/bin/paid", str(paid)))

    runtime = tmp_path / "run"  # systemd --user needs a runtime directory to start a manager
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, *scope, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )

    assert 0 == result.returncode, result.stderr
    assert "" == result.stdout + result.stderr


@pytest.mark.slow
def test_scripts_install_makes_a_venv_a_command_and_a_unit_that_verifies(tmp_path: Path) -> None:
    """scripts/install: a venv (never the system Python), the paid link, the unit; it verifies."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "PAID_PREFIX": str(tmp_path / "opt" / "paid"),
        "PAID_BIN_DIR": str(tmp_path / "bin"),
        "PAID_UNIT_DIR": str(tmp_path / "units"),
        "PAID_ETC_DIR": str(tmp_path / "etc"),
        "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip"),  # the machine's, for speed
    }

    def install() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts" / "install"), "--no-enable"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    result = install()

    assert 0 == result.returncode, result.stdout + result.stderr
    paid = tmp_path / "bin" / "paid"
    assert paid.resolve() == (tmp_path / "opt" / "paid" / "bin" / "paid").resolve()
    version = subprocess.run([str(paid), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("paid ")
    unit = tmp_path / "units" / "paid.service"
    assert f"ExecStart={paid} run {tmp_path / 'etc'}/desired-state" in unit.read_text()
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "" == verified.stdout + verified.stderr
    documentation = unit.read_text().split("Documentation=file://", 1)[1].split("\n", 1)[0]
    assert "paid" in Path(documentation).read_text()[:200]  # the README, installed
    assert 0o700 == (tmp_path / "etc" / "secrets").stat().st_mode & 0o777
    again = install()
    assert 0 == again.returncode, again.stderr  # idempotent: an upgrade in place


@pytest.mark.slow
def test_scripts_install_user_puts_everything_under_home(tmp_path: Path) -> None:
    """scripts/install --user: venv, command, user unit and config under $HOME; it verifies."""
    home = tmp_path / "home"
    home.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),  # no systemd --user runs here: nothing is enabled
        "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip"),
    }

    result = subprocess.run(
        [str(ROOT / "scripts" / "install"), "--user"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert 0 == result.returncode, result.stdout + result.stderr
    paid = home / ".local" / "bin" / "paid"
    assert paid.resolve() == (home / ".local/share/paid/venv/bin/paid").resolve()
    unit = home / ".config" / "systemd" / "user" / "paid.service"
    text = unit.read_text()
    assert f"ExecStart={paid} run {home}/.config/paid/desired-state" in text
    assert (home / ".config" / "paid" / "desired-state").is_dir()
    assert 0o700 == (home / ".config" / "paid" / "secrets").stat().st_mode & 0o777
    assert "systemd is not running here" in result.stdout
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    verified = subprocess.run(
        [analyze, "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home)},
    )
    assert "" == verified.stdout + verified.stderr
