"""Every test asserts something that can fail: an `assert`, a `pytest.raises` / `pytest.fail`, or a
call to a helper of the suite that asserts (read from the source, so a test without a check fails
here before a reviewer has to find it)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _checks(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Assert):
            return True
        if isinstance(inner, ast.Attribute) and inner.attr in ("raises", "fail"):
            return True
    return False


def _called(node: ast.AST) -> set[str]:
    names = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


def _asserting_helpers(trees: dict[Path, ast.Module]) -> set[str]:
    """Helpers of the suite (not tests) that check something, directly or through another helper."""
    helpers = {
        node.name: node
        for tree in trees.values()
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("test_")
    }
    asserting = {name for name, node in helpers.items() if _checks(node)}
    while True:
        more = {name for name, node in helpers.items() if name not in asserting and _called(node) & asserting}
        if not more:
            return asserting
        asserting |= more


def test_every_test_function_checks_something() -> None:
    trees = {path: ast.parse(path.read_text()) for path in sorted(TESTS.rglob("*.py"))}
    asserting = _asserting_helpers(trees)
    silent = [
        f"{path.name}::{node.name}"
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not (_checks(node) or _called(node) & asserting)
    ]
    assert silent == []


def test_the_check_catches_a_test_without_a_check() -> None:
    planted = ast.parse("def helper():\n    return 1\n\ndef test_nothing():\n    helper()\n")
    (test,) = [n for n in planted.body if isinstance(n, ast.FunctionDef) and n.name == "test_nothing"]
    assert not _checks(test) and not (_called(test) & _asserting_helpers({Path("x.py"): planted}))
