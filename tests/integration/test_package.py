"""The package carries its parts: built as a distribution builds it, sdist then wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = (
    "paid.service",
    "paid-user.service",
    "paid-rules.yml",
    "grafana-dashboard.json",
    "paid-v1.json",
    "containers.conf",
    "README.md",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, and the wheel built from that sdist (as pip would)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.mark.slow
def test_the_wheel_carries_the_parts_and_the_license(dist: Path) -> None:
    """Units, rules, dashboard, schema, containers.conf, README as files; LICENSE in dist-info."""
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for part in PARTS:
            data = archive.read(f"paid/files/{part}")
            assert data == (ROOT / "paid" / "files" / part).read_bytes(), part
        licence = next(n for n in names if n.endswith("/licenses/LICENSE"))
        assert b"Apache License" in archive.read(licence)
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata


@pytest.mark.slow
def test_the_sdist_can_be_built_and_tested_from(dist: Path) -> None:
    """Tests, schema, monitoring, units, examples and LICENSE are in the sdist."""
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    expected = {
        "LICENSE",
        "MANIFEST.in",
        "scripts/test",
        "tests/conftest.py",
        "tests/unit/test_cli.py",
        "schema/paid-v1.json",
        "monitoring/paid-rules.yml",
        "monitoring/tests/paid-rules.test.yml",
        "systemd/paid.service",
        "examples/notes/compose.yaml",
    }
    assert expected <= names, expected - names


@pytest.mark.slow
def test_paid_files_finds_them_where_the_wheel_put_them(dist: Path, tmp_path: Path) -> None:
    """`paid files` from the installed wheel: every path exists; a unit written runs that paid."""
    (wheel,) = dist.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # noqa: S202 -- the wheel this test just built
    # -S: no site processing, so the checkout's editable install (a meta-path finder) is not
    # loaded; the dependencies come from this venv's site-packages, after the wheel's files.
    packages = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": f"{site}:{packages}"}

    def paid(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-S", "-m", "paid", *args],
            env=env,
            cwd=tmp_path,  # not the checkout, which -m would import first
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    paths = {part: Path(paid("files", part).strip()) for part in PARTS}
    written = paid("files", "paid.service", "--to", str(tmp_path / "unit" / "paid.service"))

    for part, path in paths.items():
        assert site in path.parents, part  # the installed copy, not the checkout's
        assert path.is_file(), part
    assert "wrote" in written
    unit = (tmp_path / "unit" / "paid.service").read_text()
    assert f"ExecStart={Path(sys.executable).parent / 'paid'} run" in unit
    assert f"Documentation={paths['README.md'].resolve().as_uri()}" in unit
