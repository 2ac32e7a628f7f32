"""bench/notes.py's reset of paid's side: the notes app's containers and volumes removed.

``python -m bench.notes_down PODMAN_URL STATE_DIR``: removes the containers
and data volumes paid made for the example (by their labels), and the store,
so the next ``paid apply`` is a first deploy on a new host.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def main() -> None:
    url, state = sys.argv[1], Path(sys.argv[2])
    remote = ["podman", "--url", url]
    ids = subprocess.run(
        [*remote, "ps", "-aq", "--filter", "label=paid.managed=true"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if ids:
        subprocess.run([*remote, "rm", "-f", "-t", "2", *ids], capture_output=True, check=True)
    volumes = subprocess.run(
        [*remote, "volume", "ls", "-q", "--filter", "label=paid.managed=true"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if volumes:
        subprocess.run([*remote, "volume", "rm", "-f", *volumes], capture_output=True, check=True)
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
