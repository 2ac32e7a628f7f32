"""The tools venv: paid as users install it, podman-compose and Ansible beside it.

``python3 -m venv .venv-bench && .venv-bench/bin/pip install '.[bench]'``,
made on first use; paid itself is reinstalled from this tree on every
run (a wheel install, byte-compiled as pip does for users), so what is
measured is this checkout, as a user's ``pip install`` would run it, and
not the development venv (editable, with the test tools' extra imports).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-bench"


def tools_venv(path: Path = TOOLS) -> Path:
    """The tools venv at ``path``, made if missing, with this tree's paid installed."""
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if not (path / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([*pip, f"{ROOT}[bench]"], check=True)
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(ROOT)], check=True)
    return path
