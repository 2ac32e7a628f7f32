"""The command line: ``paid validate | plan | apply | status | run | ...``.

Nothing is imported here: ``paid --version`` must not pay for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from paid.cli.dispatch import main as run  # noqa: PLC0415 -- see the docstring

    return run(argv)
