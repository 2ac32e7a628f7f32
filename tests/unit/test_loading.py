"""The loader: YAML to DesiredState, or file:line errors, never half of each."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from paid.state.desired import DesiredService, DesiredState
from paid.state.shapes import shape_of, spec_hash
from paid.state.specs import ServiceName
from paid.storage.documents import to_documents
from paid.storage.loading import MAX_FILE_BYTES, load_directory
from paid.storage.secret_files import SecretSource

GOLDEN = Path(__file__).parent.parent / "golden"
EXAMPLE = Path(__file__).parent.parent.parent / "desired-state"
_EXPECT = re.compile(r"^# expect: (.*)$", re.MULTILINE)


def _golden_invalid() -> list[object]:
    return [pytest.param(p, id=p.stem) for p in sorted((GOLDEN / "invalid").glob("*.yaml"))]


@pytest.mark.parametrize("source", _golden_invalid())
def test_golden_invalid_file_reports_exactly_the_expected_errors(
    source: Path, tmp_path: Path
) -> None:
    """Each golden file lists its expected errors in `# expect:` comments; all are reported."""
    target = tmp_path / source.name
    shutil.copy(source, target)
    expected = sorted(
        f"{target}:{line.replace('FILE', str(target))}"
        for line in _EXPECT.findall(source.read_text())
    )

    result = load_directory(tmp_path)

    assert expected
    assert result.desired is None
    assert expected == sorted(str(e) for e in result.errors)


def test_example_desired_state_is_valid_and_ordered_by_dependency() -> None:
    """The shipped example loads, and db comes before the web that depends on it."""
    result = load_directory(EXAMPLE)

    assert result.errors == ()
    assert result.desired is not None
    order = list(result.desired.order)
    assert order.index("db") < order.index("web")
    assert {"db", "web", "worker"} == set(order)


def test_errors_of_several_files_are_reported_together(tmp_path: Path) -> None:
    """One pass reports the problems of every file, not just the first."""
    (tmp_path / "a.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n"
    )
    (tmp_path / "b.yml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: b}\nspec: {image: x}\n"
    )

    result = load_directory(tmp_path)

    assert {("a.yaml", "spec.image"), ("b.yml", "spec.image")} == {
        (Path(e.file).name, e.field) for e in result.errors
    }


def test_hidden_directories_and_other_files_are_ignored(tmp_path: Path) -> None:
    """.git and non-YAML files are not desired state."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("not: [valid")
    (tmp_path / "README.md").write_text("# hello")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: s}\nspec: {image: 'localhost/s:1'}\n"
    )

    result = load_directory(tmp_path)

    assert result.desired is not None
    assert ["s"] == list(result.desired.order)


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """A file over the size limit is an error, not a memory spike."""
    (tmp_path / "big.yaml").write_text("# " + "x" * MAX_FILE_BYTES)

    result = load_directory(tmp_path)

    assert result.desired is None
    assert "limit" in result.errors[0].message


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    """Binary junk gets a clear message with the line it is on."""
    (tmp_path / "bin.yaml").write_bytes(b"apiVersion: \xff\xfe\n")

    result = load_directory(tmp_path)

    assert [(1, "not UTF-8 text (invalid start byte)")] == [
        (e.line, e.message) for e in result.errors
    ]


def test_python_tags_are_refused(tmp_path: Path) -> None:
    """Safe loading: no object construction from tags."""
    (tmp_path / "evil.yaml").write_text("a: !!python/object/apply:os.system ['true']\n")

    result = load_directory(tmp_path)

    assert result.desired is None
    assert (
        "YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed here"
        == result.errors[0].message
    )


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    """A wrong path is reported, not taken for an empty desired state."""
    result = load_directory(tmp_path / "nope")

    assert result.desired is None
    assert "no such file or directory" == result.errors[0].message


def test_merge_keys_are_supported_and_explicit_keys_win(tmp_path: Path) -> None:
    """`<<: *defaults` works as users know it from compose files."""
    (tmp_path / "m.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: m}\n"
        "spec:\n  <<: {image: 'localhost/a:1', init: true}\n  image: localhost/b:2\n"
    )

    result = load_directory(tmp_path)

    assert result.desired is not None
    spec = result.desired.services["m"].spec  # type: ignore[index]
    assert ("localhost/b:2", True) == (spec.image, spec.init)


def test_equivalent_spellings_hash_the_same(tmp_path: Path) -> None:
    """'18080:80' and '0.0.0.0:18080:80/tcp' are one port; order of keys does not matter."""
    hashes = []
    for i, (port, env) in enumerate(
        [("18080:80", "{A: '1', B: '2'}"), ("0.0.0.0:18080:80/tcp", "{B: '2', A: '1'}")]
    ):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "s.yaml").write_text(
            "apiVersion: paid/v1\nkind: Service\nmetadata: {name: s}\n"
            f"spec: {{image: 'localhost/s:1', ports: ['{port}'], env: {env}}}\n"
        )
        result = load_directory(d)
        assert result.desired is not None
        hashes.append(result.desired.services["s"].spec_hash)  # type: ignore[index]
    assert hashes[0] == hashes[1]


def test_controller_fields_do_not_change_the_hash(tmp_path: Path) -> None:
    """Tuning a probe or the rollout must not replace a running container."""
    result = load_directory(EXAMPLE)
    assert result.desired is not None
    web = result.desired.services["web"]  # type: ignore[index]
    tuned = web.spec.model_copy(
        update={"rollout": web.spec.rollout.model_copy(update={"min_ready_seconds": 99})}
    )

    assert spec_hash(shape_of(name=web.name, labels=dict(web.labels), spec=tuned)) == web.spec_hash
    changed = web.spec.model_copy(update={"image": "localhost/paid-example/busybox:9"})
    assert (
        spec_hash(shape_of(name=web.name, labels=dict(web.labels), spec=changed)) != web.spec_hash
    )


def test_host_path_under_allowed_prefix_is_accepted(tmp_path: Path) -> None:
    """The allow-list is a prefix match on whole path components."""
    (tmp_path / "h.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: h}\n"
        "spec: {image: 'localhost/h:1', volumes: ['/srv/data/h:/data', '/srv/database:/db']}\n"
    )

    result = load_directory(tmp_path, allowed_host_paths=["/srv/data"])

    assert ["spec.volumes[1]"] == [e.field for e in result.errors]


def test_canary_name_and_ports_must_be_free(tmp_path: Path) -> None:
    """web's canary runs as web-canary on its own ports: neither may be taken."""
    (tmp_path / "c.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  image: localhost/w:1\n  ports: ['18080:80']\n"
        "  rollout: {strategy: Canary, canary: {ports: ['18080:80']}}\n"
        "---\napiVersion: paid/v1\nkind: Service\nmetadata: {name: web-canary}\n"
        "spec: {image: 'localhost/w:1'}\n"
    )

    result = load_directory(tmp_path)

    assert ["spec.rollout.canary.ports[0]", "spec.rollout.strategy"] == sorted(
        e.field for e in result.errors
    )


def test_canary_with_a_writable_volume_is_refused(tmp_path: Path) -> None:
    """Two instances on one volume, even briefly, is what stateful services must never see."""
    (tmp_path / "c.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: db}\n"
        "spec:\n  image: localhost/d:1\n  volumes: ['db-data:/data']\n"
        "  rollout: {strategy: Canary}\n"
    )

    result = load_directory(tmp_path)

    assert ["spec.rollout.strategy"] == [e.field for e in result.errors]
    assert "two instances on one volume" in result.errors[0].message


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("ports: ['8080:80']", "publish the port on a front proxy and reach this service by name"),
        ("volumes: ['db-data:/data']", "two copies would write db-data at once"),
        ("volumes: ['/srv/data:/data']", "two copies would write /srv/data at once"),
        ("networks: [{name: paid, ipv4Address: 10.89.0.9}]", "a fixed address is one container's"),
        ("hostNetwork: true", "two copies on the host's network"),
    ],
)
def test_start_first_refuses_what_two_copies_cannot_share(
    tmp_path: Path, spec: str, words: str
) -> None:
    """Each refusal at the strategy's own file and line, saying what works instead."""
    (tmp_path / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        f"spec:\n  image: localhost/w:1\n  {spec}\n"
        "  rollout:\n    strategy: StartFirst\n"
    )

    (tmp_path / "n.yaml").write_text(
        "apiVersion: paid/v1\nkind: Network\nmetadata: {name: paid}\nspec: {subnet: 10.89.0.0/24}\n"
    )

    result = load_directory(tmp_path, allowed_host_paths=["/srv"])

    (error,) = result.errors
    assert (str(tmp_path / "s.yaml"), 8, "spec.rollout.strategy") == (
        error.file,
        error.line,
        error.field,
    )
    assert words in error.message


def test_start_first_with_shared_volumes_or_read_only_ones_loads(tmp_path: Path) -> None:
    """sharedVolumes: true says two copies may share; a read-only volume is shared safely."""
    (tmp_path / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  image: localhost/w:1\n  volumes: ['cache:/cache', 'site:/www:ro']\n"
        "  rollout: {strategy: StartFirst, sharedVolumes: true, drainSeconds: 0}\n"
        "---\napiVersion: paid/v1\nkind: Service\nmetadata: {name: ro}\n"
        "spec:\n  image: localhost/w:1\n  volumes: ['site:/www:ro']\n"
        "  rollout: {strategy: StartFirst}\n"
    )

    result = load_directory(tmp_path)

    assert () == result.errors
    assert result.desired is not None
    assert 0 == result.desired.services["web"].spec.rollout.drain_seconds  # type: ignore[index]


def test_drain_seconds_is_bounded(tmp_path: Path) -> None:
    """A day of draining is a typo, not a setting: refused with its field."""
    (tmp_path / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  image: localhost/w:1\n  rollout: {strategy: StartFirst, drainSeconds: 99999}\n"
    )

    result = load_directory(tmp_path)

    assert ["spec.rollout.drainSeconds"] == [e.field for e in result.errors]


def _secret_doc(directory: Path, file: str) -> None:
    (directory / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: s}\n"
        f"spec: {{image: 'localhost/s:1', secretEnv: {{TOKEN: {{file: '{file}'}}}}}}\n"
    )


def test_secret_files_are_named_inside_the_secrets_directory(tmp_path: Path) -> None:
    """An absolute path or '..' could read any host file into a container: refused."""
    for bad in ("/etc/shadow", "../etc/shadow", "a/../../b"):
        _secret_doc(tmp_path, bad)
        result = load_directory(tmp_path, secrets=SecretSource(tmp_path, key=b"k"))
        assert result.desired is None, bad
        assert "spec.secretEnv.TOKEN.file" == result.errors[0].field


def test_missing_secret_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """The error says which file could not be read, at the document's line."""
    desired, secrets = tmp_path / "d", tmp_path / "s"
    desired.mkdir()
    secrets.mkdir()
    _secret_doc(desired, "token")

    result = load_directory(desired, secrets=SecretSource(secrets, key=b"k"))

    assert result.desired is None
    (error,) = result.errors
    assert "spec.secretEnv" == error.field
    assert str(secrets / "token") in error.message


def test_secret_value_changes_the_hash_but_never_appears(tmp_path: Path) -> None:
    """The keyed fingerprint stands in for the value in the shape, label and hash."""
    desired, secrets = tmp_path / "d", tmp_path / "s"
    desired.mkdir()
    secrets.mkdir()
    _secret_doc(desired, "token")
    source = SecretSource(secrets, key=b"host key")

    def load(value: str) -> DesiredService:
        (secrets / "token").write_text(value)
        result = load_directory(desired, secrets=source)
        assert result.desired is not None, result.errors
        return result.desired.services[ServiceName("s")]

    first, same, other = load("hunter2"), load("hunter2"), load("hunter3")

    assert first.spec_hash == same.spec_hash
    assert first.spec_hash != other.spec_hash
    assert "hunter2" not in json.dumps(dict(first.shape))
    assert "hunter2" not in json.dumps(to_documents(DesiredState.of({first.name: first})))
    again = SecretSource(secrets, key=b"another host")
    assert again.fingerprint(b"hunter2") != source.fingerprint(b"hunter2")


def test_services_without_secrets_keep_their_hash(tmp_path: Path) -> None:
    """Adding secretEnv to the format must not recreate every existing container."""
    result = load_directory(EXAMPLE)
    assert result.desired is not None
    web = result.desired.services[ServiceName("web")]
    assert "secretEnv" not in web.shape


@pytest.mark.parametrize(
    ("analysis", "field", "words"),
    [
        ("{prometheus: 'http://p:9090', query: up}", "analysis[0]", "needs max, min or both"),
        ("{prometheus: 'http://p:9090', query: up, min: 2, max: 1}", "analysis[0]", "above max"),
        ("{prometheus: 'file:///etc/passwd', query: up, max: 1}", "prometheus", "http://"),
        ("{prometheus: 'http://p:9090', query: up, max: .nan}", "max", "finite"),
        ("{prometheus: 'http://p:9090', query: up, max: 1e999}", "max", "finite"),
        ("{prometheus: 'http://p:9090', query: '', max: 1}", "query", "at least 1"),
    ],
    ids=["no bounds", "min above max", "not http", "NaN", "infinite", "empty query"],
)
def test_canary_analysis_is_checked_with_its_line(
    tmp_path: Path, analysis: str, field: str, words: str
) -> None:
    """A canary judged by a query that cannot judge is refused at file:line, with why."""
    (tmp_path / "s.yaml").write_text(
        "apiVersion: paid/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  image: localhost/w:1\n  rollout:\n    strategy: Canary\n"
        f"    canary:\n      analysis:\n      - {analysis}\n"
    )

    result = load_directory(tmp_path)

    (error,) = result.errors
    assert error.field.startswith("spec.rollout.canary.analysis")
    assert error.field.endswith(field) or f".{field}" in error.field
    assert 10 == error.line
    assert words in error.message
