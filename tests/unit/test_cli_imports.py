"""The command line imports only what a command uses (issue: 0.4 s of imports on every command).

Measured by the modules a fresh interpreter holds after the command, not
by the clock: what is never imported costs nothing on any machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pydantic", "podman", "requests", "structlog", "apprise", "yaml", "apscheduler")


def _imported_by(*argv: str, cwd: Path | None = None) -> set[str]:
    """The top-level packages loaded by ``paid ARGV`` in a new interpreter."""
    script = (
        "import sys\n"
        "from paid.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "names = sorted({m.split('.')[0] for m in sys.modules})\n"
        "print('\\n' + '\\n'.join(names), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    return set(done.stderr.split())


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ()])
def test_version_and_help_load_no_library(argv: tuple[str, ...]) -> None:
    """`paid --version`, `paid --help` and a bare `paid`: argparse and paid's index only."""
    loaded = _imported_by(*argv)
    assert "paid" in loaded  # the probe sees the right interpreter
    assert set() == loaded & set(HEAVY)


def test_validate_loads_the_models_but_nothing_that_talks_to_podman(tmp_path: Path) -> None:
    """`paid validate`: pydantic and YAML, never podman-py, requests, structlog or Apprise."""
    (tmp_path / "web.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec: {image: 'docker.io/library/nginx:1.27'}\n"
    )
    loaded = _imported_by("validate", str(tmp_path))
    assert {"pydantic", "yaml"} <= loaded
    assert set() == loaded & {"podman", "requests", "structlog", "apprise"}


def test_every_command_is_indexed_with_the_help_its_module_gives() -> None:
    """paid.cli.commands names each command's module and help exactly as the module does."""
    import argparse  # noqa: PLC0415

    from paid.cli.commands import COMMANDS  # noqa: PLC0415
    from paid.cli.dispatch import build_parser  # noqa: PLC0415

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert {name: line for name, (_, line) in COMMANDS.items()} == helps
    for name, (module, _) in COMMANDS.items():
        alone = build_parser(name)
        built = next(a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
        full = built.choices[name]
        assert full.add_help, (name, module)  # its module's parser, not the index's stand-in
        assert not built.choices[next(n for n in COMMANDS if COMMANDS[n][0] != module)].add_help
