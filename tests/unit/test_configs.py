"""Configs and env files from the repository: path rules, digests, copies, env format."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from paid.controllers.converging import converge
from paid.runtime.fake import FakeRuntime
from paid.state.configs import ConfigError, parse_env
from paid.storage.config_files import ConfigStore
from paid.storage.documents import from_documents, to_documents
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.unit.builders import FAST

IMAGE = "localhost/app:1"
SERVICE = """\
apiVersion: paid/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/app:1
  rollout: {minReadySeconds: 0}
  configs:
    - {source: conf/nginx.conf, target: /etc/nginx/nginx.conf}
    - {source: conf/site, target: /etc/nginx/conf.d, mode: "0440"}
  envFiles: [app.env]
  env: {LEVEL: debug}
"""


def _repo(tmp_path: Path, service: str = SERVICE) -> Path:
    root = tmp_path / "desired-state"
    (root / "apps" / "conf" / "site").mkdir(parents=True)
    (root / "apps" / "web.yaml").write_text(service)
    (root / "apps" / "conf" / "nginx.conf").write_text("worker_processes 1;\n")
    (root / "apps" / "conf" / "site" / "a.conf").write_text("server {}\n")
    (root / "apps" / "app.env").write_text("# settings\nLEVEL=info\nexport NAME='paid app'\n")
    return root


def test_configs_are_digested_and_env_files_merged_with_env_winning(tmp_path: Path) -> None:
    """Sources resolve beside the YAML file; env wins over the env file."""
    state = load_directory(_repo(tmp_path)).desired

    assert state is not None
    web = state.services["web"]  # type: ignore[index]
    assert {"LEVEL": "debug", "NAME": "paid app"} == web.spec.env
    assert ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d"] == [c.target for c in web.configs]
    assert all(len(c.digest) == 64 for c in web.configs)
    assert [c.digest for c in web.configs] == [c["digest"] for c in web.shape["configs"]]


def test_an_edit_to_a_config_changes_the_hash(tmp_path: Path) -> None:
    """Content is part of the spec hash: a byte changed, a file added, a mode changed."""
    root = _repo(tmp_path)
    hashes = []
    hashes.append(load_directory(root).desired.services["web"].spec_hash)  # type: ignore[union-attr, index]
    (root / "apps" / "conf" / "nginx.conf").write_text("worker_processes 2;\n")
    hashes.append(load_directory(root).desired.services["web"].spec_hash)  # type: ignore[union-attr, index]
    (root / "apps" / "conf" / "site" / "b.conf").write_text("")
    hashes.append(load_directory(root).desired.services["web"].spec_hash)  # type: ignore[union-attr, index]
    (root / "apps" / "web.yaml").write_text(SERVICE.replace('"0440"', '"0400"'))
    hashes.append(load_directory(root).desired.services["web"].spec_hash)  # type: ignore[union-attr, index]

    assert len(set(hashes)) == 4


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("../../outside.conf", "leads out of the desired-state directory"),
        ("conf/link-out", "leads out of the desired-state directory"),
        ("conf/missing.conf", "No such file or directory"),
        ("conf/fifo", "is a FIFO"),
        ("conf/null", "is a character device"),
        ("conf/linkdir", "is a symlink"),
        ("conf/huge", "a config holds at most"),
    ],
)
def test_bad_config_sources_are_refused_with_file_line_field(
    tmp_path: Path, source: str, expected: str
) -> None:
    """Escapes, links out, missing files, FIFOs, devices, links inside and huge files."""
    root = _repo(tmp_path)
    conf = root / "apps" / "conf"
    (tmp_path / "outside.conf").write_text("secret")
    (conf / "link-out").symlink_to(tmp_path / "outside.conf")
    os.mkfifo(conf / "fifo")
    (conf / "null").symlink_to("/dev/null")
    (conf / "dir").mkdir()
    (conf / "dir" / "inner").symlink_to(conf / "nginx.conf")
    (conf / "linkdir").mkdir()
    (conf / "linkdir" / "sub").symlink_to(conf / "site", target_is_directory=True)
    with (conf / "huge").open("wb") as f:
        f.truncate(17 * 1024 * 1024)
    if source == "conf/null":  # a device inside the tree
        (conf / "null").unlink()
        os.mknod(conf / "null", 0o600 | 0o020000, os.makedev(1, 3))
    (root / "apps" / "web.yaml").write_text(SERVICE.replace("conf/nginx.conf", source))

    result = load_directory(root)

    assert result.desired is None
    (error,) = result.errors
    assert error.file.endswith("web.yaml")
    assert (8, "spec.configs[0].source") == (error.line, error.field)
    assert expected in error.message


def test_a_symlink_inside_the_tree_is_followed(tmp_path: Path) -> None:
    """A link to another file of the repository is fine: it stays inside."""
    root = _repo(tmp_path)
    (root / "shared.conf").write_text("shared\n")
    (root / "apps" / "conf" / "link-in").symlink_to(root / "shared.conf")
    (root / "apps" / "web.yaml").write_text(SERVICE.replace("conf/nginx.conf", "conf/link-in"))

    assert load_directory(root).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\n# c\n\nB = two words \nexport C=3", {"A": "1", "B": "two words", "C": "3"}),
        (
            'A=\'x # y\'\nB="a\\nb \\"q\\""\nC=v # comment',
            {"A": "x # y", "B": 'a\nb "q"', "C": "v"},
        ),
        ("EMPTY=\nURL=http://h/?a=b", {"EMPTY": "", "URL": "http://h/?a=b"}),
    ],
)
def test_env_file_format_is_composes(text: str, expected: dict[str, str]) -> None:
    """KEY=VALUE, comments, blank lines, export, quotes and escapes."""
    assert expected == parse_env(text)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("A=1\nNOEQUALS\n", 2, "is not KEY=VALUE"),
        ("1A=x\n", 1, "is not a variable name"),
        ("A=1\nB='open\n", 2, "quote is not closed"),
        ('A="x" y\n', 1, "text after the closing quote"),
    ],
)
def test_bad_env_files_name_their_line(text: str, line: int, message: str) -> None:
    """A broken env file says which line is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_env(text)
    assert line == caught.value.line
    assert message in str(caught.value)


def test_a_bad_env_file_is_reported_at_the_service(tmp_path: Path) -> None:
    """file:line: spec.envFiles[0]: app.env: line 2: ..."""
    root = _repo(tmp_path)
    (root / "apps" / "app.env").write_text("A=1\nbroken\n")

    result = load_directory(root)

    (error,) = result.errors
    assert "spec.envFiles[0]" == error.field
    assert error.message.startswith("app.env: line 2:")


def test_a_revision_rebuilt_from_the_store_keeps_its_digests(tmp_path: Path) -> None:
    """The snapshot carries each config's digest: the rebuilt hash is the same."""
    state = load_directory(_repo(tmp_path)).desired
    assert state is not None

    rebuilt = from_documents(to_documents(state), origin="store").desired

    assert rebuilt is not None
    assert state.services["web"].spec_hash == rebuilt.services["web"].spec_hash  # type: ignore[index]
    assert all(c.source is None for c in rebuilt.services["web"].configs)  # type: ignore[index]


def test_apply_mounts_a_kept_copy_and_rollback_content_survives_an_edit(tmp_path: Path) -> None:
    """Each digest is copied once into the state dir, read-only; the old copy outlives an edit."""
    root = _repo(tmp_path)
    runtime = FakeRuntime(images={IMAGE})
    with Store.open(tmp_path / "state") as store:
        first = load_directory(root).desired
        assert first is not None
        assert converge(first, runtime=runtime, store=store, timings=FAST).converged
        bind = runtime.requests["web"].configs[0]
        kept = Path(bind.host_path)
        assert "worker_processes 1;\n" == kept.read_text()
        assert 0o444 == kept.stat().st_mode & 0o777
        assert str(tmp_path / "state" / "configs") in bind.host_path

        (root / "apps" / "conf" / "nginx.conf").write_text("worker_processes 2;\n")
        second = load_directory(root).desired
        assert second is not None
        assert converge(second, runtime=runtime, store=store, timings=FAST).converged

        now = Path(runtime.requests["web"].configs[0].host_path)
        assert "worker_processes 2;\n" == now.read_text()
        assert "worker_processes 1;\n" == kept.read_text()  # revision 1 keeps its own


def test_a_source_edited_between_load_and_create_fails_that_action(tmp_path: Path) -> None:
    """The copy is checked against the planned digest: no silent other content."""
    root = _repo(tmp_path)
    state = load_directory(root).desired
    assert state is not None
    (root / "apps" / "conf" / "nginx.conf").write_text("changed meanwhile\n")
    runtime = FakeRuntime(images={IMAGE})

    with Store.open(tmp_path / "state") as store:
        report = converge(state, runtime=runtime, store=store, timings=FAST)

    assert not report.converged
    assert "web" not in runtime.containers
    assert not list((tmp_path / "state" / "configs").glob("[0-9a-f]*"))


def test_copies_nothing_names_are_collected(tmp_path: Path) -> None:
    """A copy whose digest no revision, container or desired spec names is removed."""
    store = ConfigStore(tmp_path / "configs")
    (tmp_path / "configs" / ("a" * 64) / "content").mkdir(parents=True)
    (tmp_path / "configs" / ("b" * 64) / "content").mkdir(parents=True)

    assert ["b" * 64] == store.collect({"a" * 64})
    assert [("a" * 64)] == [p.name for p in (tmp_path / "configs").iterdir()]


def test_env_file_that_escapes_or_is_a_fifo_is_refused(tmp_path: Path) -> None:
    """envFiles follow the configs' path rules."""
    root = _repo(tmp_path)
    os.mkfifo(root / "apps" / "fifo.env")
    (root / "apps" / "web.yaml").write_text(
        textwrap.dedent(SERVICE).replace("[app.env]", "[fifo.env, ../../x.env]")
    )

    result = load_directory(root)

    messages = sorted(e.message for e in result.errors)
    assert 2 == len(messages)
    assert "is a FIFO" in messages[1]
    assert "leads out of the desired-state directory" in messages[0]


def test_a_staging_copy_left_by_a_killed_paid_is_collected_one_in_the_making_is_not(
    tmp_path: Path,
) -> None:
    """kill -9 mid-copy leaves .staging-<digest>-<pid>: collected once that pid is gone."""
    store = ConfigStore(tmp_path / "configs")
    gone = tmp_path / "configs" / f".staging-{'c' * 16}-{2**22 + 17}"  # above pid_max
    mine = tmp_path / "configs" / f".staging-{'d' * 16}-{os.getpid()}"
    for staging in (gone, mine):
        (staging / "content").mkdir(parents=True)

    removed = store.collect(set())

    assert [gone.name] == removed
    assert mine.is_dir()


def test_writers_of_one_content_at_once_all_get_the_copy(tmp_path: Path) -> None:
    """Eight threads (paid's workers) ensuring one shared config at once: none fails, one copy.

    Before, they staged under one name per process, so one deleted another's
    copy mid-way and that rollout failed (1 in 5 cold applies of four services).
    """
    import threading  # noqa: PLC0415

    from paid.state.configs import ConfigMount  # noqa: PLC0415
    from paid.storage.config_files import read_config  # noqa: PLC0415

    source = tmp_path / "repo" / "conf"
    source.mkdir(parents=True)
    for i in range(50):
        (source / f"f{i}.conf").write_text(f"line {i}\n" * 200)
    content = read_config(
        tmp_path / "repo", tmp_path / "repo", ConfigMount(source="conf", target="/etc/app")
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def ensure() -> None:
        store = ConfigStore(tmp_path / "configs")  # each worker's own, as in paid
        barrier.wait()
        for _ in range(5):
            try:
                store.ensure(content)
            except BaseException as err:  # collected, asserted below
                errors.append(err)

    threads = [threading.Thread(target=ensure) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [] == errors
    assert [content.digest] == [p.name for p in (tmp_path / "configs").iterdir()]
    assert 50 == len(list((tmp_path / "configs" / content.digest / "content").iterdir()))
