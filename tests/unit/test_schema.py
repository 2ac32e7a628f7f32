"""The JSON Schema for editors and CI: current, and judged by a real validator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from paid.state.schema import json_schema
from tests.harness import service_doc

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema" / "paid-v1.json"


def test_the_schema_file_is_current() -> None:
    """schema/paid-v1.json is what `paid schema` prints; regenerate it when the models change."""
    assert json_schema() == json.loads(SCHEMA.read_text()), "run: paid schema > schema/paid-v1.json"


def _check(tmp_path: Path, documents: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    files = []
    for i, document in enumerate(documents):
        path = tmp_path / f"doc{i}.yaml"
        path.write_text(yaml.safe_dump(document))
        files.append(str(path))
    tool = shutil.which("check-jsonschema") or str(
        Path(__file__).parents[2] / ".venv/bin/check-jsonschema"
    )
    return subprocess.run(
        [tool, "--schemafile", str(SCHEMA), *files], capture_output=True, text=True, check=False
    )


def test_the_examples_and_every_shorthand_pass(tmp_path: Path) -> None:
    """The examples' paid documents (networks included) and each string shorthand validate.

    examples/notes is a compose file, paid's input to import, not a paid document.
    """
    examples = [
        doc
        for path in sorted(
            [*(ROOT / "desired-state").glob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")]
        )
        for doc in yaml.safe_load_all(path.read_text())
        if doc and str(doc.get("apiVersion", "")).startswith("paid/")
    ]
    shorthands = service_doc(
        "web",
        ports=["127.0.0.1:8080:80", "9090:90/udp"],
        volumes=["data:/data", "/srv/web:/srv:ro"],
        resources={"memory": "256Mi", "cpus": "500m"},
        tmpfs=["/tmp", {"path": "/run", "size": "64Mi"}],
        ulimits={"nofile": 1024, "nproc": {"soft": 10, "hard": 20}},
        shmSize="64m",
        logging={"driver": "journald"},
        networks=["backend", {"name": "paid", "aliases": ["www"]}],
    )

    result = _check(tmp_path, [*examples, shorthands])

    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param({"restartPolicyy": "Always"}, "'restartPolicyy' was unexpected", id="typo"),
        pytest.param({"ports": [8080]}, "8080", id="bare-port"),
        pytest.param({"rollout": {"strategy": "BlueGreen"}}, "BlueGreen", id="bad-enum"),
    ],
)
def test_typos_and_wrong_values_fail(tmp_path: Path, spec: dict[str, Any], words: str) -> None:
    """The validator names what is wrong, as the editor will."""
    result = _check(tmp_path, [service_doc("web", **spec)])

    assert 1 == result.returncode
    assert words in result.stdout


AJV = ROOT / ".cache" / "ajv"
AJV_CHECK = """
const Ajv2020 = require(process.argv[2] + "/node_modules/ajv/dist/2020");
const fs = require("fs");
const ajv = new Ajv2020({strict: true, allErrors: true});
const validate = ajv.compile(JSON.parse(fs.readFileSync(process.argv[3])));
let bad = 0;
for (const file of process.argv.slice(4)) {
  if (!validate(JSON.parse(fs.readFileSync(file)))) {
    bad++;
    console.log(file, JSON.stringify(validate.errors));
  }
}
process.exit(bad ? 1 : 0);
"""


def _ajv(tmp_path: Path, documents: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    if not (AJV / "node_modules" / "ajv").is_dir():
        pytest.fail("ajv is not installed: run scripts/install-deps (CI does)")
    tmp_path.mkdir()
    files = []
    for i, document in enumerate(documents):
        path = tmp_path / f"doc{i}.json"
        path.write_text(json.dumps(document))
        files.append(str(path))
    script = tmp_path / "check.js"
    script.write_text(AJV_CHECK)
    return subprocess.run(
        ["node", str(script), str(AJV), str(SCHEMA), *files],
        capture_output=True,
        text=True,
        check=False,
    )


def test_ajv_in_strict_mode_accepts_the_schema(tmp_path: Path) -> None:
    """No non-standard keyword (pydantic's discriminator, ge): strict ajv compiles and judges."""
    good = _ajv(tmp_path / "good", [service_doc("web", ports=["8080:80"], volumes=["d:/d"])])
    bad = _ajv(tmp_path / "bad", [service_doc("web", restartPolicyy="Always")])

    assert 0 == good.returncode, good.stdout + good.stderr
    assert 1 == bad.returncode
    assert "restartPolicyy" in bad.stdout


def test_every_property_has_a_description() -> None:
    """yaml-language-server shows it on hover: none may be left without."""
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if not prop.get("description"):
                    missing.append(f"{where}.{name}")
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    schema = json_schema()
    for name, definition in schema["$defs"].items():
        walk(definition, name)

    assert [] == missing
