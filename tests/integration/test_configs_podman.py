"""Configs and env files from the repository, on the suite's real Podman.

What the container sees is read from inside it (cat, printenv, a write
attempt), never taken from paid's own account.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from paid.cli import main
from tests.harness import MUTATING_EVENTS, PodmanService, service_doc


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def repo(directory: Path) -> Path:
    """app.yaml beside conf/ and app.env, in a subdirectory of the tree."""
    apps = directory / "apps"
    (apps / "conf" / "site").mkdir(parents=True)
    (apps / "conf" / "app.conf").write_text("greeting = hello\n")
    (apps / "conf" / "site" / "one.conf").write_text("one\n")
    (apps / "app.env").write_text("# from the env file\nGREETING='hi there'\nLEVEL=info\n")
    doc = service_doc(
        "web",
        user="1000:1000",
        configs=[
            {"source": "conf/app.conf", "target": "/etc/app/app.conf"},
            {"source": "conf/site", "target": "/etc/app/site.d", "mode": "0440"},
        ],
        envFiles=["app.env"],
        env={"LEVEL": "debug"},
    )
    (apps / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return apps


def inside(podman: PodmanService, script: str) -> tuple[int, str]:
    said = podman.podman("exec", "web", "sh", "-c", f"{script} 2>&1; echo rc=$?", check=False)
    body, _, code = said.rstrip().rpartition("rc=")
    return int(code or 1), body.strip()


def test_configs_are_mounted_read_only_and_env_files_set_the_environment(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """The file and the directory are there, read-only, with their modes; env wins over the file."""
    repo(desired_dir)

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert (0, "greeting = hello") == inside(podman, "cat /etc/app/app.conf")
    code, said = inside(podman, "echo x >> /etc/app/app.conf")
    assert code != 0, said
    assert (0, "greeting = hello") == inside(podman, "cat /etc/app/app.conf")
    assert (0, "444") == inside(podman, "stat -c %a /etc/app/app.conf")
    assert (0, "440") == inside(podman, "stat -c %a /etc/app/site.d/one.conf")
    assert (0, "hi there") == inside(podman, "echo $GREETING")
    assert (0, "debug") == inside(podman, "echo $LEVEL")
    mounts = {m["Destination"]: m for m in podman.inspect("web")["Mounts"]}
    assert not mounts["/etc/app/app.conf"]["RW"]
    assert mounts["/etc/app/app.conf"]["Source"].startswith(str(state_dir / "configs"))


def test_a_config_edit_rolls_out_and_a_rollback_brings_the_old_content_back(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """Edit → plan names the config, apply replaces the container; rollback → the old bytes."""
    apps = repo(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    first = podman.inspect("web")["Id"]
    (apps / "conf" / "app.conf").write_text("greeting = bonjour\n")
    capsys.readouterr()

    assert 2 == paid(podman, state_dir, "plan", str(desired_dir))
    assert "spec.configs" in capsys.readouterr().out
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert first != podman.inspect("web")["Id"]
    assert (0, "greeting = bonjour") == inside(podman, "cat /etc/app/app.conf")

    assert 0 == paid(podman, state_dir, "rollback", "web", str(desired_dir), "--to-revision", "1")
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert "1" == podman.inspect("web")["Config"]["Labels"]["paid.revision"]
    assert (0, "greeting = hello") == inside(podman, "cat /etc/app/app.conf")
    assert "greeting = bonjour\n" == (apps / "conf" / "app.conf").read_text()  # checkout untouched


def test_bad_config_input_touches_nothing(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """A config escaping the tree, a missing one, a FIFO: file:line errors, no Podman event."""
    apps = repo(desired_dir)
    os.mkfifo(apps / "conf" / "fifo")
    doc = yaml.safe_load((apps / "app.yaml").read_text())
    doc["spec"]["configs"] = [
        {"source": "../../../etc/passwd", "target": "/etc/a"},
        {"source": "conf/missing.conf", "target": "/etc/b"},
        {"source": "conf/fifo", "target": "/etc/c"},
    ]
    (apps / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    mark = podman.event_mark()
    capsys.readouterr()

    assert 1 == paid(podman, state_dir, "apply", str(desired_dir))

    errors = capsys.readouterr().err
    assert errors.count("app.yaml:") == 3
    assert "spec.configs[0].source" in errors
    assert "leads out of the desired-state directory" in errors
    assert "No such file or directory" in errors
    assert "is a FIFO" in errors
    assert [] == [e for e in podman.container_events_since(mark) if e[0] in MUTATING_EVENTS]
    assert not (state_dir / "configs").exists()
