"""Hostile and malformed desired-state files: a ``file:line: field`` error each, never a crash.

Table tests for every input a hostile tester broke the loader with, and a
property test (hypothesis) that mutates a valid file into thousands of
broken ones and asserts that loading returns — a desired state or errors
with a line — in bounded time, and never raises.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid.storage.loading import LoadResult, load_directory

VALID = """\
apiVersion: paid/v1
kind: Service
metadata:
  name: web
spec:
  image: localhost/web:1
  env: {LOG: info}
  ports: ["127.0.0.1:8080:80"]
"""


def _load(tmp_path: Path, text: str | bytes) -> LoadResult:
    path = tmp_path / "web.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return load_directory(tmp_path)


def _spec(body: str) -> str:
    return VALID.replace("  image: localhost/web:1\n", "  image: localhost/web:1\n" + body)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        pytest.param(_spec("  terminationGracePeriodSeconds: !!int abc\n"), 7,
                     "spec.terminationGracePeriodSeconds", "not a int", id="tagged-int"),
        pytest.param(_spec("  init: !!bool maybe\n"), 7, "spec.init", "not a bool",
                     id="tagged-bool"),
        pytest.param(_spec("  revisionHistoryLimit: " + "9" * 5000 + "\n"), 7,
                     "spec.revisionHistoryLimit", "too long a number", id="5000-digit-int"),
        pytest.param(_spec("  stopSignal: !!python/name:os.system\n"), 7, "spec.stopSignal",
                     "is not allowed here", id="python-tag"),
        pytest.param(_spec("  env: {BUILT: 2024-01-01}\n").replace("  env: {LOG: info}\n", ""),
                     7, "spec.env.BUILT", "must be a string", id="unquoted-date"),
        pytest.param(_spec("  ? [a, b]\n  : 1\n"), 7, "spec", "a key must be a plain value",
                     id="non-scalar-key"),
        pytest.param(_spec("  stopSignal: SIGFOO\n"), 7, "spec.stopSignal",
                     "not a signal of this system", id="unknown-signal"),
        pytest.param(_spec("  volumes: [{source: data, destination: relative}]\n"), 7,
                     "spec.volumes[0]", "absolute path", id="relative-mapping-destination"),
        pytest.param(_spec("  volumes: [{source: 'my data;rm', destination: /data}]\n"), 7,
                     "spec.volumes[0]", "neither a volume name", id="volume-name-spaces"),
        pytest.param(_spec("  volumes: [{source: /srv/../etc, destination: /x}]\n"), 7,
                     "spec.volumes[0]", "'..'", id="mapping-dotdot"),
        pytest.param(_spec('  command: ["a\\0b"]\n'), 7, "spec.command", "NUL",
                     id="nul-in-command"),
        pytest.param(VALID.replace("{LOG: info}", '{LOG: "a\\0b"}'), 7, "spec.env", "NUL",
                     id="nul-in-env"),
        pytest.param(_spec("  ports: [{hostIp: not-an-ip, hostPort: 1, containerPort: 2}]\n")
                     .replace('  ports: ["127.0.0.1:8080:80"]\n', ""), 7,
                     "spec.ports[0].hostIp", "not an IP address", id="host-ip"),
        pytest.param(VALID.replace("image: localhost/web:1", 'image: "localhost/web:1\\n"'), 6,
                     "spec.image", "not an image reference", id="image-newline"),
        pytest.param(VALID.replace("{LOG: info}", '{"LOG\\n": info}'), 7, "spec.env",
                     "not valid", id="env-key-newline"),
        pytest.param(VALID.replace("  name: web\n", '  name: web\n  labels: {"a\\n": b}\n'),
                     5, "metadata.labels", "not valid", id="label-key-newline"),
        pytest.param(VALID.replace('["127.0.0.1:8080:80"]', '["8080:80", "8080:81"]'), 8,
                     "spec.ports[1]", "already claimed by this service", id="port-twice"),
    ],
)  # fmt: skip
def test_each_bad_value_is_a_located_error(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    """The error names the line and the field, in words a person can act on."""
    result = _load(tmp_path, text)

    assert result.desired is None
    located = [(e.line, e.field) for e in result.errors]
    assert (line, field) in located, result.errors
    assert any(words in e.message for e in result.errors), result.errors


def test_a_nul_byte_in_the_file_is_located(tmp_path: Path) -> None:
    """NUL is not YAML: the error gives the line it is on."""
    result = _load(tmp_path, VALID.replace("kind: Service", "kind: Serv\0ice"))

    assert [(2, "invalid YAML: character '\\x00' is not allowed")] == [
        (e.line, e.message) for e in result.errors
    ]


def test_non_utf8_gives_a_line_not_a_byte_offset(tmp_path: Path) -> None:
    """Latin-1 on line 4: the error says line 4."""
    result = _load(tmp_path, VALID.encode().replace(b"name: web", b"name: w\xe9b"))

    assert [4] == [e.line for e in result.errors]


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    """`validate` on a FIFO named x.yaml used to block forever: it is refused unread."""
    os.mkfifo(tmp_path / "x.yaml")

    started = time.monotonic()
    result = load_directory(tmp_path)

    assert time.monotonic() - started < 5
    assert ["not a regular file (a FIFO); refused unread"] == [e.message for e in result.errors]


def test_a_symlink_to_a_device_is_refused_unread(tmp_path: Path) -> None:
    """A symlink to /dev/zero was read without limit until MemoryError."""
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")

    result = load_directory(tmp_path)

    assert ["not a regular file (a character device); refused unread"] == [
        e.message for e in result.errors
    ]


def test_a_file_that_grows_past_the_limit_is_cut_off(tmp_path: Path) -> None:
    """Only limit + 1 bytes are ever read; more is an error, not a memory spike."""
    (tmp_path / "big.yaml").write_bytes(b"#" * (2 * 1024 * 1024))

    result = load_directory(tmp_path)

    assert ["file is over the limit of 1048576 bytes"] == [e.message for e in result.errors]


# -- property: mutate a valid file; loading returns, never raises ---------------

_SPLICES = st.sampled_from(
    [
        "!!int x", "!!bool maybe", "!!float nan?", "!!timestamp 2024-13-45", "!!binary ***",
        "9" * 4400, "-" + "9" * 4400, "1e999", "0x" + "f" * 100, "&a [*a]", "*nope",
        "\0", "\x85", "\ufeff", "{", "[", "]", "}", ":", "- ", "? ", "<<: *x", "!foo bar",
        "'", '"', "\\", "\t", "%YAML 1.1", "---", "...", "2024-01-01", "~", "null", "[[[[[[[[",
    ]
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    text = VALID.encode()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        piece = draw(st.one_of(_SPLICES.map(str.encode), st.binary(max_size=12)))
        text = text[:at] + piece + text[at + cut :]
    return text


@settings(
    max_examples=int(os.environ.get("PAID_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=_mutated())
def test_mutated_files_load_or_fail_with_located_errors(tmp_path: Path, data: bytes) -> None:
    """Any mutation: a valid state, or errors that each name the file; never an exception."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)

    started = time.monotonic()
    result = load_directory(tmp_path)

    assert time.monotonic() - started < 5
    assert (result.desired is None) == bool(result.errors)
    assert all(e.file.endswith("fuzz.yaml") for e in result.errors)
