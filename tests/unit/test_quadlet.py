"""`paid import quadlet` reads units as Quadlet reads them (golden cases written here).

Each case is written from podman-systemd.unit(5), systemd.syntax(7) and
systemd.unit(5): drop-ins and their order, systemd's quoting and escapes,
specifiers, and every key that has a paid field.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from paid.cli import main
from paid.storage.loading import load_directory
from paid.translate.quadlet import import_quadlet
from paid.translate.systemd_syntax import Host, drop_ins, words

ANN = Host(
    home="/home/ann",
    user="ann",
    uid=1000,
    runtime="/run/user/1000",
    state="/home/ann/.local/state",
    cache="/home/ann/.cache",
    logs="/home/ann/.local/state/log",
    config="/home/ann/.config",
)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _spec(root: Path, name: str = "web") -> tuple[dict[str, Any], list[str], list[str]]:
    """The spec of ``name``, the problems (file:line: key: why) and the notes."""
    translation = import_quadlet(root, host=ANN)
    problems = [f"{Path(p.file).name}:{p.line}: {p.key}: {p.why}" for p in translation.problems]
    for output in translation.outputs:
        if output.documents[0]["metadata"]["name"] == name:
            return output.documents[0]["spec"], problems, list(output.notes)
    return {}, problems, []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            '/some/path "an arg" "a;b\\nc\\td\'e" a;b\\nc\\td \'a"b\'',
            ["/some/path", "an arg", "a;b\nc\td'e", "a;b\nc\td", 'a"b'],
            id="quadlet-escapes",
        ),
        pytest.param('say "hello "world', ["say", "hello world"], id="quote-inside-a-word"),
        pytest.param("\\x41\\102\\u00e9 \\s", ["ABé", " "], id="c-escapes"),
        pytest.param("a\\qb", ["a\\qb"], id="unknown-escape-kept"),
        pytest.param("'$HOME' \"`x`\"", ["$HOME", "`x`"], id="no-shell-expansion"),
        pytest.param('"unclosed word', ["unclosed word"], id="relaxed-unclosed-quote"),
        pytest.param("  \t ", [], id="blank"),
    ],
)
def test_words_split_as_systemd_splits(value: str, expected: list[str]) -> None:
    """Not shell rules: C escapes in and out of quotes, quotes anywhere in a word."""
    assert expected == words(value)


def test_drop_ins_are_merged_in_systemds_order(tmp_path: Path) -> None:
    """Own .d, then dashed prefixes, then container.d; ordered by file name; own name wins."""
    _write(
        tmp_path,
        {
            "app-web.container": "[Container]\nImage=localhost/a:1\nEnvironment=A=unit\n",
            "app-web.container.d/20-own.conf": "[Container]\nEnvironment=B=own\n",
            "app-web.container.d/50-shared.conf": "[Container]\nEnvironment=D=own-wins\n",
            "app-.container.d/10-prefix.conf": "[Container]\nEnvironment=C=prefix\n",
            "container.d/50-shared.conf": "[Container]\nEnvironment=D=type-wide\n",
            "container.d/90-last.conf": "[Container]\nEnvironment=A=last\n",
            "container.d/notes.txt": "[Container]\nEnvironment=E=not-a-conf\n",
        },
    )

    order = [p.relative_to(tmp_path).as_posix() for p in drop_ins(tmp_path / "app-web.container")]
    spec, problems, _ = _spec(tmp_path, "app-web")

    assert [
        "app-.container.d/10-prefix.conf",
        "app-web.container.d/20-own.conf",
        "app-web.container.d/50-shared.conf",
        "container.d/90-last.conf",
    ] == order
    assert {"A": "last", "B": "own", "C": "prefix", "D": "own-wins"} == spec["env"]
    assert [] == problems


def test_an_empty_assignment_clears_the_key(tmp_path: Path) -> None:
    """Environment= in a drop-in resets what the unit set, as systemd's list settings do."""
    _write(
        tmp_path,
        {
            "web.container": "[Container]\nImage=localhost/a:1\nEnvironment=A=1 B=2\n",
            "web.container.d/override.conf": "[Container]\nEnvironment=\nEnvironment=C=3\n",
        },
    )

    spec, _, _ = _spec(tmp_path)

    assert {"C": "3"} == spec["env"]


def test_a_problem_in_a_drop_in_names_the_drop_in_and_its_line(tmp_path: Path) -> None:
    """file:line of the .conf, not of the unit."""
    _write(
        tmp_path,
        {
            "web.container": "[Container]\nImage=localhost/a:1\n",
            "web.container.d/extra.conf": "[Container]\n# a comment\nPodmanArgs=--privileged\n",
        },
    )

    _, problems, _ = _spec(tmp_path)

    assert ["extra.conf:3: Container.PodmanArgs"] == [p.split(": raw")[0] for p in problems]


def test_specifiers_are_resolved_or_refused_where_written(tmp_path: Path) -> None:
    """%n %N %% from the unit, %h %t for the importing user (noted), %H refused at its line."""
    _write(
        tmp_path,
        {
            "web.container": """\
                [Container]
                Image=localhost/a:1
                Environment=UNIT=%n NAME=%N SHARE=100%% RUN=%t
                Volume=%h/data:/data
                HostName=%H
                """,
        },
    )

    spec, problems, notes = _spec(tmp_path)

    assert {"UNIT": "web.service", "NAME": "web", "SHARE": "100%", "RUN": "/run/user/1000"} == (
        spec["env"]
    )
    assert ["/home/ann/data:/data"] == spec["volumes"]
    assert any("%h, %t resolved for ann" in n for n in notes)
    assert ["web.container:5: Container.HostName: %H is the running host's"] == [
        p.split(", not known")[0] for p in problems
    ]


def test_every_key_with_a_paid_field_is_translated_and_valid(tmp_path: Path) -> None:
    """The keys the first import refused, in Quadlet's spelling; the result loads in paid."""
    _write(
        tmp_path,
        {
            "web.container": """\
                [Container]
                Image="docker.io/library/nginx:latest"
                AutoUpdate=registry
                Pull=always
                Memory=512M
                PidsLimit=100
                StopSignal=INT
                DNS=192.0.2.53
                DNSSearch=example.org
                DNSOption=ndots:2
                AddHost=db.local:192.0.2.10
                GroupAdd=wheel
                Network=backend.network
                NetworkAlias=www frontend
                SeccompProfile=/etc/paid/seccomp.json
                AppArmor=unconfined
                SecurityLabelDisable=true
                Mask=/proc/acpi:/sys/firmware
                Unmask=/proc/kcore
                LogOpt=max-size=5m
                PublishPort=:18080:80
                AddDevice=-/dev/null
                """,
            "backend.network": "[Network]\n",
        },
    )
    out = tmp_path / "out"

    code = main(["import", "quadlet", str(tmp_path), "-o", str(out)])
    spec, problems, notes = _spec(tmp_path)
    loaded = load_directory(out, offline=True)

    assert 0 == code, problems
    assert [] == problems
    assert loaded.desired is not None, [str(e) for e in loaded.errors]
    assert "docker.io/library/nginx:latest" == spec["image"]  # unquoted, followed by digest
    assert {"policy": "registry"} == spec["imageUpdate"]
    assert "Always" == spec["imagePullPolicy"]
    assert {"memory": "512M"} == spec["resources"]
    assert (100, "SIGINT") == (spec["pidsLimit"], spec["stopSignal"])
    assert {"servers": ["192.0.2.53"], "search": ["example.org"], "options": ["ndots:2"]} == (
        spec["dns"]
    )
    assert ["db.local:192.0.2.10"] == spec["extraHosts"]
    assert ["wheel"] == spec["groupAdd"]
    assert [{"name": "backend", "aliases": ["www", "frontend"]}] == spec["networks"]
    assert [
        "seccomp=/etc/paid/seccomp.json",
        "apparmor=unconfined",
        "label=disable",
        "mask=/proc/acpi:/sys/firmware",
        "unmask=/proc/kcore",
    ] == spec["securityOpt"]
    assert {"maxSize": "5m"} == spec["logging"]
    assert ["18080:80"] == spec["ports"]
    assert ["/dev/null"] == spec["devices"]
    assert any("optional" in n for n in notes)


def test_mounts_user_namespaces_and_volatile_tmp(tmp_path: Path) -> None:
    """Mount= of volumes, binds and tmpfs (quoted as Quadlet's tests write them), RemapUsers=."""
    _write(
        tmp_path,
        {
            "web.container": """\
                [Container]
                Image=localhost/a:1
                Mount=type=volume,source=cache.volume,destination=/cache,ro=true
                Mount="type=bind,src=/srv/with spaces,dst=/srv"
                Mount=type=tmpfs,tmpfs-size=512M,destination=/scratch
                RemapUsers=keep-id
                VolatileTmp=yes
                ExposeHostPort=1000
                """,
        },
    )

    spec, problems, notes = _spec(tmp_path)

    assert [] == problems
    assert ["cache:/cache:ro", "/srv/with spaces:/srv"] == spec["volumes"]
    assert [{"path": "/scratch", "size": "512M"}, "/var/tmp"] == spec["tmpfs"]
    assert "keep-id" == spec["userns"]
    assert any("ExposeHostPort=1000 is dropped" in n for n in notes)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Image=localhost/a", "is not pinned", id="moving-tag"),
        pytest.param("Network=db.container", "another container's network namespace", id="ns"),
        pytest.param("AutoUpdate=local", "paid follows registries", id="autoupdate-local"),
        pytest.param("Pull=sometimes", "one of always, missing, never, newer", id="pull"),
        pytest.param("LogOpt=tag=web", "max-size only", id="logopt"),
        pytest.param("PublishPort=::80", "give a host port", id="no-host-port"),
        pytest.param("AddDevice=null", "absolute path", id="relative-device"),
        pytest.param("Image=web.build", ".image or .build unit", id="build-unit"),
        pytest.param("Mount=type=devpts,destination=/dev/pts", "type=devpts", id="mount-type"),
        pytest.param("Mount=type=volume,destination=/x", "anonymous volume", id="anon-mount"),
        pytest.param("RemapUsers=manual", "manual maps have no field", id="remap-manual"),
    ],
)
def test_what_paid_cannot_take_is_said_clearly_at_its_line(
    tmp_path: Path, line: str, expected: str
) -> None:
    """Each refusal names the key and what to do instead."""
    image = "" if line.startswith("Image=") else "Image=localhost/a:1\n"
    _write(tmp_path, {"web.container": f"[Container]\n{image}{line}\n"})

    _, problems, _ = _spec(tmp_path)

    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith("web.container:")


def test_hostile_drop_ins_are_problems_and_never_hang(tmp_path: Path) -> None:
    """A FIFO named x.conf is named as the drop-in it is; a symlinked .d directory is not read."""
    _write(tmp_path, {"web.container": "[Container]\nImage=localhost/a:1\n"})
    (tmp_path / "web.container.d").mkdir()
    os.mkfifo(tmp_path / "web.container.d" / "pipe.conf")
    elsewhere = _write(tmp_path / "elsewhere", {"x.conf": "[Container]\nPodmanArgs=--privileged\n"})
    (tmp_path / "container.d").symlink_to(elsewhere)

    translation = import_quadlet(tmp_path, host=ANN)

    (problem,) = [p for p in translation.problems if p.file == str(tmp_path / "web.container")]
    assert "its drop-in" in problem.why
    assert "pipe.conf" in problem.why
    assert "a unit is a file" in problem.why
    assert "privileged" not in str(translation.problems)  # the symlinked directory was not read
