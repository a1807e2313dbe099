"""The layers call one way down: CLI → serve → app → tools → CRM clients → HTTP. Read from the
source's imports, so a shortcut back up fails here before a reviewer has to find it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "server" / "opportunity_mcp"


def _imports(path: Path) -> set[str]:
    return imports_of(path.read_text())


def imports_of(source: str) -> set[str]:
    """Every module a source imports, a module imported from its package included: `from
    opportunity_mcp import serve` imports opportunity_mcp.serve, not only opportunity_mcp."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_a_planted_violation_is_caught() -> None:
    # What the tools layer must never do, written the ways a module can be named.
    for planted in (
        "from opportunity_mcp import serve",
        "import opportunity_mcp.serve",
        "from opportunity_mcp.serve import serve",
        "from opportunity_mcp.app import build_server",
    ):
        above = {n for n in imports_of(planted) if n.startswith(("opportunity_mcp.serve", "opportunity_mcp.app"))}
        assert above, planted
    assert imports_of("from opportunity_mcp.crm import plazbot") >= {"opportunity_mcp.crm.plazbot"}


def _ours(path: Path) -> set[str]:
    """Our modules (and names in them) a module imports, leaves left out."""
    ours = {name for name in _imports(path) if name.startswith("opportunity_mcp")}
    return {name for name in ours if not any(name == leaf or name.startswith(f"{leaf}.") for leaf in LEAVES)}


# Leaves: modules of plain functions on text that import nothing of ours, so any layer may use them.
LEAVES = frozenset({"opportunity_mcp.untrusted", "opportunity_mcp.scrub", "opportunity_mcp.defaults"})


def _modules(folder: str = "") -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py") if folder else PACKAGE.rglob("*.py"))


def test_the_crm_layer_knows_no_mcp_no_tool_models_and_no_settings() -> None:
    for path in _modules("crm"):
        imports = _imports(path)
        assert not {i for i in imports if i == "mcp" or i.startswith(("mcp.", "mcp_types"))}, path
        ours = _ours(path)
        assert all(name.startswith("opportunity_mcp.crm") for name in ours), (path, ours)


def test_leaves_import_nothing_of_ours() -> None:
    for leaf in LEAVES:
        found = {n for n in _imports(PACKAGE / f"{leaf.split('.')[-1]}.py") if n.startswith("opportunity_mcp")}
        assert found == set(), leaf


def test_the_journal_knows_neither_tools_nor_crm() -> None:
    for path in _modules("journal"):
        assert all(name.startswith("opportunity_mcp.journal") for name in _ours(path)), path


def test_tools_never_reach_up_to_the_app_the_transport_or_the_sandbox() -> None:
    above = ("opportunity_mcp.app", "opportunity_mcp.http_app", "opportunity_mcp.serve", "opportunity_mcp.cli")
    for path in _modules("tools"):
        ours = _ours(path)
        assert not {n for n in ours if n.startswith((*above, "opportunity_mcp.sandbox"))}, (path, ours)


def test_only_the_command_line_wires_the_sandbox_in() -> None:
    for path in _modules():
        if "sandbox" in path.parts or path.name == "cli.py":
            continue
        assert not {n for n in _ours(path) if n.startswith("opportunity_mcp.sandbox")}, path


def test_no_module_is_much_over_300_lines() -> None:
    long = {path.name: n for path in _modules() if (n := len(path.read_text().splitlines())) > 320}
    assert long == {}
