"""The command line's conventions: exit codes, errors that teach, quiet pipes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paid import logs
from paid.cli import main
from paid.storage.lock import LockHeld, WriterLock
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


def _complete(script: str, *words: str, cwd: Path | None = None) -> list[str]:
    """What bash's completion offers after ``paid <words>``, the last one being typed."""
    line = " ".join(f'"{w}"' for w in ("paid", *words))
    command = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _paid; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    paid_on_path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={**os.environ, "PATH": paid_on_path},
    )
    return sorted(done.stdout.split())


def test_bash_completion_is_generated_from_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commands, sub-verbs and options complete in a real bash."""
    assert 0 == main(["completion", "bash"])
    script = tmp_path / "paid.bash"
    script.write_text(capsys.readouterr().out)

    assert ["plan", "postmortem", "preflight"] == _complete(str(script), "p")
    assert ["retry"] == _complete(str(script), "rollout", "re")
    assert ["--wait", "--wait-timeout", "--workers"] == _complete(str(script), "apply", "--w")


def test_bash_completes_values_services_and_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Option values from choices, service names from the desired state, directories for DIR."""
    assert 0 == main(["completion", "bash"])
    script = tmp_path / "paid.bash"
    script.write_text(capsys.readouterr().out)
    write_services(tmp_path / "desired-state", service_doc("web"), service_doc("worker"))
    (tmp_path / "desired-state" / "broken.yaml").write_text("kind: [\n")  # others still complete
    (tmp_path / "other").mkdir()
    (tmp_path / "notes.txt").write_text("")

    assert ["json", "text"] == _complete(str(script), "plan", "--output", "", cwd=tmp_path)
    assert ["web", "worker"] == _complete(str(script), "logs", "", cwd=tmp_path)
    assert ["worker"] == _complete(str(script), "history", "wo", cwd=tmp_path)
    assert ["desired-state", "other"] == _complete(str(script), "apply", "", cwd=tmp_path)
    assert ["desired-state", "other"] == _complete(
        str(script), "run", "--backup-dir", "", cwd=tmp_path
    )
    assert ["list", "run", "verify"] == _complete(str(script), "backup", "", cwd=tmp_path)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    """zsh through bashcompinit, fish with its own `complete` lines naming every command."""
    assert 0 == main(["completion", shell])
    script = capsys.readouterr().out

    assert "validate" in script
    assert "allow-mass-prune" in script


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        pytest.param(["stauts"], "did you mean 'status'?", id="command"),
        pytest.param(["apply", "--dryrun"], "did you mean '--dry-run'?", id="option"),
        pytest.param(["backup", "lst"], "did you mean 'list'?", id="verb"),
    ],
)
def test_a_misspelt_command_gets_did_you_mean(
    typed: list[str], suggested: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The nearest command, verb or option of the level where the typo is."""
    with pytest.raises(SystemExit) as exited:
        main(typed)

    assert 64 == exited.value.code
    assert suggested in capsys.readouterr().err


def test_options_are_never_abbreviated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`import compose --output json x` was read as --output-dir json: now a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(["import", "compose", "--output", "json", str(tmp_path / "compose.yaml")])

    assert 64 == exited.value.code
    assert "did you mean '--output-dir'?" in capsys.readouterr().err
    assert not (tmp_path / "json").exists()


def test_dash_o_is_output_and_errors_are_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan -o json of an invalid directory: the errors on stdout, as JSON, exit 1."""
    write_services(tmp_path, service_doc("web", bogus=1))

    code = main(["plan", str(tmp_path), "-o", "json", "--podman-url", "unix:///nonexistent.sock"])

    doc = json.loads(capsys.readouterr().out)
    assert 1 == code
    assert doc["valid"] is False
    assert ["spec.bogus"] == [e["field"] for e in doc["errors"]]


def test_an_unreachable_podman_is_json_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status -o json with no Podman: {"error": ...} on stdout, exit 1."""
    write_services(tmp_path, service_doc("web"))

    code = main(
        [
            *("status", str(tmp_path), "-o", "json", "--listen", "127.0.0.1:9"),
            *("--podman-url", "unix:///nonexistent.sock", "--state-dir", str(tmp_path / "s")),
        ]
    )

    assert 1 == code
    assert "cannot reach Podman" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_validate_exit_code_is_honest_when_its_reader_leaves(tmp_path: Path, valid: bool) -> None:
    """`validate -o json | head -1`: the exit code says valid or not, whatever head did."""
    extra = {} if valid else {"bogus": 1}
    room = {"apiVersion": "paid/v1", "kind": "Network", "metadata": {"name": "paid"}}
    room["spec"] = {"subnet": "10.89.0.0/16"}  # 2,000 services fit
    long_names = (f"a-service-with-a-rather-long-name-{i:04d}" for i in range(2000))  # > 64 KiB
    write_services(tmp_path, room, *(service_doc(name, **extra) for name in long_names))
    command = f"{sys.executable} -m paid validate {tmp_path} -o json | head -1 >/dev/null"

    codes = {
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], capture_output=True, check=False
        ).returncode
        for _ in range(3)
    }

    assert {0 if valid else 1} == codes


def test_one_file_or_stdin_is_a_desired_state(tmp_path: Path) -> None:
    """A file, or - with the file on stdin, validates as a directory of one would."""
    path = write_services(tmp_path, service_doc("web"))
    text = path.read_text()

    as_file = subprocess.run(
        [sys.executable, "-m", "paid", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    piped = subprocess.run(
        [sys.executable, "-m", "paid", "validate", "-", "-o", "json"],
        input=text.replace("apiVersion", "apiVersoin", 1),
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == as_file.returncode, as_file.stderr
    assert "1 services in 1 files, valid" in as_file.stdout
    assert 1 == piped.returncode
    errors = json.loads(piped.stdout)["errors"]
    assert ("-", 1) == (errors[0]["file"], errors[0]["line"])


def test_stdin_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A stream bigger than a desired-state file may be: refused, never read whole."""
    huge = subprocess.run(
        [
            "bash",
            "-c",
            f"head -c 40000000 /dev/zero | tr '\\0' 'a' | {sys.executable} -m paid validate -",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert 1 == huge.returncode
    assert "over the limit" in huge.stderr


def test_wait_timeout_gives_up_on_a_held_lock(tmp_path: Path) -> None:
    """--wait-timeout: LockHeld naming the holder after that long, not a wait for ever."""
    held = WriterLock(tmp_path)
    held.acquire(role="apply", directory=str(tmp_path))
    try:
        waiting = WriterLock(tmp_path)
        with pytest.raises(LockHeld) as refused:
            waiting.acquire(role="apply", directory=str(tmp_path), wait=True, timeout=0.2)
        assert f"pid {os.getpid()}" in str(refused.value)
    finally:
        held.release()
    waiting.acquire(role="apply", directory=str(tmp_path), wait=True, timeout=0.2)
    waiting.release()


def test_every_command_has_a_description_and_an_example() -> None:
    """`paid CMD --help` says what it does and shows how (every command and verb)."""
    from paid.cli.dispatch import build_parser  # noqa: PLC0415

    missing = []
    for name, command in _commands(build_parser()):
        if not command.description or "example" not in (command.epilog or ""):
            missing.append(name)
        for action in command._actions:
            if action.option_strings and not action.help and action.dest != "help":
                missing.append(f"{name} {action.option_strings[0]}")

    assert [] == missing


def test_every_example_parses() -> None:
    """The examples in --help are real command lines: each parses (up to a pipe)."""
    from paid.cli.dispatch import build_parser  # noqa: PLC0415
    from paid.cli.manual import PAGES  # noqa: PLC0415

    parser = build_parser()
    for _, examples in PAGES.values():
        for example in examples:
            lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = list(lexer)
            end = next((i for i, w in enumerate(words) if w in ("|", ">")), len(words))
            if words[0] == "paid":
                parser.parse_args(words[1:end])  # a usage error exits 64 and fails the test


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                verbs = _commands(sub, f"{prefix}{name} ")
                found += verbs or [(f"{prefix}{name}", sub)]
    return found
