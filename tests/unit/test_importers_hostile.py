"""The importers never crash or hang, on any input: every problem is file:line: key: why.

Property-based: compose files whose values are drawn from a pool of
hostile values at every key the importer knows, byte-level mutations of a
real compose file and of Quadlet units, and hand-picked cases that
crashed or hung (FIFOs, devices, a directory for a unit, colliding names).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid.translate.compose import import_compose
from paid.translate.compose_keys import KEYS
from paid.translate.quadlet import import_quadlet

EXAMPLES = int(os.environ.get("PAID_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_SCALARS = st.sampled_from(
    [None, True, 0, -1, 2**70, 1.5, float("inf"), "", ".", "..", "/", "/dev/zero", "../x",
     "a:b:c:d", "8080", "8080:80", "x" * 300, "${X:-y}", "$$", "~", "\x00", "é", "[", "{"]
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "target", "source", "test", "x", "0"]), inner,
                        max_size=3),
    ),
    max_leaves=8,
)  # fmt: skip
_KEYS = st.sampled_from([k.compose for k in KEYS] + ["frob", "x-ext"])


@st.composite
def _compose(draw: st.DrawFn) -> dict[str, object]:
    services = {}
    for name in draw(st.lists(st.sampled_from(["web", "Web", "web_", "db", "1", "a b"]),
                              min_size=1, max_size=3, unique=True)):  # fmt: skip
        body = {"image": "localhost/app:1"}
        body.update(draw(st.dictionaries(_KEYS, _VALUES, max_size=4)))
        services[name] = body
    top: dict[str, object] = {"services": services}
    for key in ("networks", "volumes", "configs", "secrets"):
        if draw(st.booleans()):
            top[key] = draw(st.dictionaries(st.sampled_from(["web", "data", "c"]), _VALUES,
                                            max_size=2))  # fmt: skip
    return top


def _imported(path: Path) -> None:
    started = time.monotonic()
    translation = import_compose(path, environ={})
    assert time.monotonic() - started < 10
    for problem in translation.problems:
        assert problem.file, problem
        assert problem.why, problem


@FUZZ
@given(document=_compose())
def test_hostile_values_at_every_key_are_problems_not_crashes(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, object]
) -> None:
    """Any value at any key the importer knows: a Translation, never an exception."""
    root = tmp_path_factory.mktemp("compose")
    path = root / "compose.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    _imported(path)


REAL = """\
name: shop
services:
  web:
    build: {context: ., args: [A=1]}
    ports: ["8080:80", "127.0.0.1:9000-9001:9000-9001/udp"]
    volumes: [".:/code", "data:/data", "/srv:/srv:ro"]
    environment: {A: "1"}
    env_file: [app.env]
    healthcheck: {test: ["CMD", "true"], interval: 5s, start_period: 30s}
    depends_on: {db: {condition: service_healthy}}
    networks: {back: {aliases: [api], ipv4_address: 10.1.0.5}}
  db:
    image: postgres:16
    ulimits: {nofile: 1024}
    tmpfs: ["/tmp:size=64m"]
volumes: {data: {}}
networks: {back: {ipam: {config: [{subnet: 10.1.0.0/24}]}}}
"""


@FUZZ
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, len(REAL)), st.integers(0, 6), st.binary(max_size=8)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_compose_files_are_problems_not_crashes(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[tuple[int, int, bytes]]
) -> None:
    """Byte-level mutations of a real compose file: a Translation, never an exception."""
    root = tmp_path_factory.mktemp("compose")
    (root / "app.env").write_text("A=1\n")
    data = REAL.encode()
    for at, cut, piece in cuts:
        data = data[:at] + piece + data[at + cut :]
    (root / "compose.yaml").write_bytes(data)
    _imported(root / "compose.yaml")


UNIT = """\
[Unit]
Description=web
[Container]
Image=localhost/web:1
Exec=httpd -f -p 8080
Environment=A=1 "B=two words"
PublishPort=8080:8080
Volume=data:/data
Label="team=shop"
HealthCmd=true
HealthRetries=3
HealthStartPeriod=10s
Network=back.network
[Service]
Restart=always
"""


@FUZZ
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, len(UNIT)), st.integers(0, 6), st.binary(max_size=8)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_quadlet_units_are_problems_not_crashes(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[tuple[int, int, bytes]]
) -> None:
    """Byte-level mutations of a real unit (not UTF-8, HealthRetries=x, open quotes): no crash."""
    root = tmp_path_factory.mktemp("units")
    data = UNIT.encode()
    for at, cut, piece in cuts:
        data = data[:at] + piece + data[at + cut :]
    (root / "web.container").write_bytes(data)
    (root / "back.network").write_text("[Network]\n")
    started = time.monotonic()
    translation = import_quadlet(root)
    assert time.monotonic() - started < 10
    assert all(p.why for p in translation.problems)


def _compose_file(root: Path, text: str) -> Path:
    path = root / "compose.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("setup", "text", "expected"),
    [
        pytest.param(
            lambda root: os.mkfifo(root / "app.conf"),
            "services:\n  web:\n    image: localhost/a:1\n    volumes: [./app.conf:/etc/a]\n",
            "app.conf is a FIFO",
            id="fifo-config",
        ),
        pytest.param(
            lambda root: os.mkfifo(root / "app.env"),
            "services:\n  web:\n    image: localhost/a:1\n    env_file: app.env\n",
            "app.env is a FIFO",
            id="fifo-env-file",
        ),
        pytest.param(
            lambda root: (root / "conf").mkdir() or os.mkfifo(root / "conf" / "pipe"),
            "services:\n  web:\n    image: localhost/a:1\n    volumes: [./conf:/etc/a]\n",
            "pipe is a FIFO",
            id="fifo-inside-a-config-directory",
        ),
        pytest.param(
            lambda root: os.symlink("/dev/zero", root / "zero.conf"),
            "services:\n  web:\n    image: localhost/a:1\n    volumes: [./zero.conf:/z]\n",
            "outside the project directory",
            id="link-to-dev-zero",
        ),
        pytest.param(
            lambda root: None,
            "services:\n  Web:\n    image: localhost/a:1\n  web_:\n    image: localhost/a:1\n",
            "becomes 'web', as service 'Web' does",
            id="names-that-collide",
        ),
        pytest.param(
            lambda root: None,
            "services:\n  network-web:\n    image: localhost/a:1\nnetworks:\n  web: {name: web}\n",
            "would both be network-web.yaml",
            id="service-and-network-file-collide",
        ),
        pytest.param(
            lambda root: (root / "web.yaml").write_text("A=1\n"),
            "services:\n  web:\n    image: localhost/a:1\n    env_file: web.yaml\n",
            "would both be web.yaml",
            id="env-file-named-as-the-output",
        ),
        pytest.param(
            lambda root: None,
            "services:\n  web:\n    image: localhost/a:1\nconfigs:\n  c: {file: .}\n",
            None,
            id="the-project-as-a-config",
        ),
    ],
)
def test_hand_picked_inputs_that_crashed_or_hung(
    tmp_path: Path, setup: object, text: str, expected: str | None
) -> None:
    """Each once crashed or hung the importer: now a problem at its key, or a clean import."""
    root = tmp_path / "app"
    root.mkdir()
    setup(root)  # type: ignore[operator]
    started = time.monotonic()
    translation = import_compose(_compose_file(root, text), environ={})
    assert time.monotonic() - started < 10
    shown = [str(p) for p in translation.problems]
    if expected is None:
        assert [] == shown
    else:
        assert any(expected in p for p in shown), shown


def test_a_sparse_giant_is_refused_before_a_byte_is_copied(tmp_path: Path) -> None:
    """A 2 GiB sparse file bound as a config: refused at import, nothing copied, nothing left."""
    from paid.cli import main  # noqa: PLC0415

    root = tmp_path / "app"
    root.mkdir()
    with (root / "big.bin").open("wb") as file:
        file.truncate(2 << 30)
    path = _compose_file(
        root, "services:\n  web:\n    image: localhost/a:1\n    volumes: [./big.bin:/big]\n"
    )
    out = tmp_path / "out"

    assert 1 == main(["import", "compose", str(path), "-o", str(out)])
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: p.mkdir(), "is a directory", id="a-directory"),
        pytest.param(os.mkfifo, "is a FIFO", id="a-fifo"),
        pytest.param(lambda p: os.symlink("/dev/zero", p), "a character device", id="dev-zero"),
        pytest.param(
            lambda p: p.write_bytes(b"[Container]\nImage=\xff\n"), "not UTF-8", id="bytes"
        ),
        pytest.param(
            lambda p: p.write_text("[Container]\nImage=localhost/a:1\nExec=%\n"),
            "Container.Exec",
            id="lone-percent",
        ),
        pytest.param(
            lambda p: p.write_text("[Container]\nImage=localhost/a:1\nHealthRetries=x\n"),
            "Container.HealthRetries",
            id="retries-not-a-number",
        ),
    ],
)
def test_hostile_units_are_problems_and_never_hang(
    tmp_path: Path, make: object, expected: str
) -> None:
    """A unit that is a directory, a FIFO, /dev/zero, not UTF-8, or a bad specifier: a problem."""
    unit = tmp_path / "web.container"
    make(unit)  # type: ignore[operator]
    started = time.monotonic()
    translation = import_quadlet(tmp_path)
    assert time.monotonic() - started < 10
    shown = [f"{p.key}: {p.why}" for p in translation.problems]
    assert any(expected in s for s in shown), shown
