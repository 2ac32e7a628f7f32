"""systemd/paid.service passes `systemd-analyze verify` without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    """No unknown keys (StartLimitIntervalSec belongs in [Unit]), no other complaint."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: scripts/install-deps installs systemd")
    paid = Path(sys.executable).parent / "paid"  # the unit's /usr/local/bin/paid, here
    unit = tmp_path / "paid.service"
    unit.write_text(
        (ROOT / "systemd" / "paid.service").read_text().replace("/usr/local/bin/paid", str(paid))
    )

    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )

    assert 0 == result.returncode, result.stderr
    assert "" == result.stdout + result.stderr
