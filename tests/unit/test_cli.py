"""The command line's conventions: exit codes, errors that teach, quiet pipes."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from paid import logs
from paid.cli import main
from tests.harness import service_doc, write_services


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["plna"], id="unknown-command"),
        pytest.param(["plan", "--bogus"], id="unknown-option"),
        pytest.param(["apply", "--workers", "many"], id="bad-value"),
        pytest.param(["apply", "--instance", "Not_A_Name"], id="bad-instance"),
    ],
)
def test_usage_errors_exit_64_never_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """2 means "changes pending" to a CI script: a typo must not look like that."""
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert 64 == exited.value.code
    assert "usage:" in capsys.readouterr().err


def test_a_typo_gets_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """difflib over the model's own fields, at the level of the typo."""
    write_services(tmp_path, service_doc("web", restartPolicyy="Always"))

    assert 1 == main(["validate", str(tmp_path)])

    assert "spec.restartPolicyy: unknown field; did you mean 'restartPolicy'?" in (
        capsys.readouterr().err
    )


def test_a_compose_file_is_recognised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not `services: unknown field`, but what the file is."""
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.25\n")

    assert 1 == main(["validate", str(tmp_path)])

    said = capsys.readouterr().err
    assert "compose.yaml:1: services: this looks like a Compose file" in said
    assert "try `paid import compose" in said


def test_a_missing_socket_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A socket that is not there: the error names it and the way to get one."""
    write_services(tmp_path / "d", service_doc("web"))
    socket = tmp_path / "no.sock"

    code = main(["plan", str(tmp_path / "d"), "--podman-url", f"unix://{socket}",
                 "--state-dir", str(tmp_path / "state")])  # fmt: skip

    assert 1 == code
    err = capsys.readouterr().err
    assert f"no Podman API socket at {socket}" in err
    assert "enable --now podman.socket" in err


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`paid validate --output json | head -c1`: no BrokenPipeError traceback."""
    # Far more output than a pipe holds: 3,000 errors.
    write_services(tmp_path, *(service_doc(f"s{i}", bogus=1) for i in range(3000)))
    command = f"{sys.executable} -m paid validate {tmp_path} --output json | head -c1 >/dev/null"

    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=False
    )

    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


@pytest.mark.parametrize(
    ("name", "quiet", "verbose", "expected"),
    [
        pytest.param(None, 0, 0, logging.INFO, id="default"),
        pytest.param(None, 1, 0, logging.WARNING, id="-q"),
        pytest.param(None, 5, 0, logging.ERROR, id="-qqqqq"),
        pytest.param(None, 0, 1, logging.DEBUG, id="-v"),
        pytest.param("error", 0, 2, logging.ERROR, id="--log-level-wins"),
    ],
)
def test_verbosity(name: str | None, quiet: int, verbose: int, expected: int) -> None:
    """-q and -v step the level from info; --log-level sets it outright."""
    assert expected == logs.level_of(name=name, quiet=quiet, verbose=verbose)


def _complete(script: str, *words: str) -> list[str]:
    """What bash's completion offers after ``paid <words>``, the last one being typed."""
    line = " ".join(f'"{w}"' for w in ("paid", *words))
    command = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _paid; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completion_is_generated_from_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commands, sub-verbs and options complete in a real bash."""
    assert 0 == main(["completion", "bash"])
    script = tmp_path / "paid.bash"
    script.write_text(capsys.readouterr().out)

    assert ["plan", "postmortem", "preflight"] == _complete(str(script), "p")
    assert ["retry"] == _complete(str(script), "rollout", "re")
    assert ["--wait", "--workers"] == _complete(str(script), "apply", "--w")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    """zsh through bashcompinit, fish with its own `complete` lines naming every command."""
    assert 0 == main(["completion", shell])
    script = capsys.readouterr().out

    assert "validate" in script
    assert "allow-mass-prune" in script
