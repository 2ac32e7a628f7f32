"""What docs/architecture.md promises about the code's shape, checked on the code itself."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "paid"
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()

# The runtime's verbs that change a container.
CONTAINER_VERBS = {
    "create_container",
    "start_container",
    "stop_container",
    "remove_container",
    "pause_container",
    "unpause_container",
    "rename_container",
    "kill_container",
    "restart_container",
}
EXECUTOR = "paid/controllers/services.py"
FAULT_INJECTOR = "paid/controllers/chaos.py"  # breaks containers on purpose, as a fault would

MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 500, 300, 80


def _modules() -> Iterator[tuple[str, ast.Module, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        yield path.relative_to(ROOT).as_posix(), ast.parse(source), source


def _too_long_table() -> set[str]:
    """The long ones docs/architecture.md names, each with why (its table of sizes)."""
    section = ARCHITECTURE.split("## Long on purpose", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def test_only_the_executor_changes_containers() -> None:
    """No module but the executor calls a container-changing verb of the runtime.

    Rollouts, backups, restores and the reconciler itself go through the
    executor's verbs (``ServiceController.start``, ``stop``, ``pause`` …),
    which act by the ID of a container checked as paid's. The runtime
    package implements the verbs; chaos is the declared fault injector.
    """
    callers = {
        f"{name}:{node.lineno}"
        for name, tree, _ in _modules()
        if not name.startswith("paid/runtime/") and name not in (EXECUTOR, FAULT_INJECTOR)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CONTAINER_VERBS
    }
    assert set() == callers


def test_sizes_stay_small_or_are_named_with_a_reason() -> None:
    """No module over 500 lines, class over 300 or function over 80, unless the
    architecture document names it, with why, under "Long on purpose"."""
    allowed = _too_long_table()
    found: set[str] = set()
    for name, tree, source in _modules():
        if source.count("\n") > MAX_MODULE:
            found.add(name)
        for node in ast.walk(tree):
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > limit:
                    found.add(f"{name}:{node.name}")
    assert set() == found - allowed, "too long, and not named in docs/architecture.md"
    assert set() == allowed - found, "named as long in docs/architecture.md, but no longer is"
