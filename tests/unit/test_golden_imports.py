"""Golden files for the importers: an input that uses every key, and the files paid writes.

Each ``tests/golden/import/<case>/`` holds a ``compose.yaml`` (or a
``units/`` directory of Quadlet units) and ``expected/``, the directory
``paid import`` writes from it, byte for byte. After a deliberate change,
regenerate with ``PAID_UPDATE_GOLDEN=1 pytest tests/unit/test_golden_imports.py``
and read the diff. Two more tests check that the inputs use every key the
importers translate, so a new key comes with its golden line.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from paid.cli import main
from paid.storage.loading import load_directory
from paid.translate import compose_keys, quadlet

GOLDEN = Path(__file__).parent.parent / "golden" / "import"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", CASES)
def test_the_import_writes_the_golden_files(case: str, tmp_path: Path) -> None:
    """The written directory equals ``expected/`` file for file, and it validates."""
    source = GOLDEN / case
    out = tmp_path / "out"
    if (source / "compose.yaml").exists():
        code = main(["import", "compose", str(source / "compose.yaml"), "-o", str(out)])
    else:
        code = main(["import", "quadlet", str(source / "units"), "-o", str(out)])
    expected = source / "expected"
    if os.environ.get("PAID_UPDATE_GOLDEN"):
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(out, expected)

    assert 0 == code
    assert _files(expected) == _files(out)
    loaded = load_directory(out, offline=True)
    assert loaded.desired is not None, [str(e) for e in loaded.errors]


def test_the_compose_golden_input_uses_every_key_paid_translates() -> None:
    """Each key with a translation is written in a golden compose file."""
    used: set[str] = set()
    for path in GOLDEN.glob("*/compose.yaml"):
        for service in yaml.safe_load(path.read_text())["services"].values():
            used |= set(service)
    translated = {k.compose for k in compose_keys.KEYS if k.handler is not None}

    assert set() == translated - used


def test_the_quadlet_golden_input_uses_every_key_paid_translates() -> None:
    """Each [Section] Key with a translation is written in a golden unit or drop-in."""
    used: set[tuple[str, str]] = set()
    for path in [*GOLDEN.glob("*/units/*"), *GOLDEN.glob("*/units/*.d/*.conf")]:
        if not path.is_file():
            continue
        section = ""
        for line in path.read_text().splitlines():
            if match := re.fullmatch(r"\[(\w+)\]", line.strip()):
                section = match[1]
            elif "=" in line and not line.startswith("#"):
                used.add((section, line.split("=", 1)[0].strip()))
    translated = {(k.section, k.key) for k in quadlet.KEYS if k.handler is not None}

    assert set() == translated - used


@pytest.mark.parametrize("case", CASES)
def test_the_kube_export_of_each_golden_state(case: str, tmp_path: Path) -> None:
    """``paid export kube`` of each ``expected/`` directory equals its ``kube.yaml``."""
    written = tmp_path / "kube.yaml"
    golden = GOLDEN / case / "kube.yaml"

    code = main(["export", "kube", str(GOLDEN / case / "expected"), "-o", str(written)])
    if os.environ.get("PAID_UPDATE_GOLDEN"):
        shutil.copy(written, golden)

    assert 0 == code
    assert golden.read_text() == written.read_text()
