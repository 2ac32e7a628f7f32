"""Write one benchmark's section of docs/benchmarks.md, leaving the others alone."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Measured by the scripts in `bench/`, run by hand on the project's machines
(2 cores, 24 GiB, Debian 12, Podman 4.3, runc). The machines are shared and
noisy: compare rows measured side by side in one run, not across runs.
Each section says which script wrote it and when.
"""


def _machine() -> str:
    podman = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False)
    return f"{platform.node()}, Python {platform.python_version()}, {podman.stdout.strip()}"


def write_section(key: str, title: str, body: str) -> None:
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"{start}\n## {title}\n\n_{stamp}; {_machine()}_\n\n{body}\n{end}"
    text = DOC.read_text() if DOC.exists() else HEADER
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
