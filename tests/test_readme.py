"""The README's per-host blocks: each JSON block parses and names the installed command with known
variables; the Claude Code line is well formed; the HTTP example works against a running server."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from opportunity_mcp import __version__
from opportunity_mcp.config import CRM_VARIABLES
from opportunity_mcp.tools import TOOLS
from tests.conftest import http_server, text_of

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
# The code blocks of the README and of docs/: each must work as shown.
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README + "".join(DOCS.values()), flags=re.S)
KNOWN = set(CRM_VARIABLES)
BIN = Path(sys.executable).parent


def _servers(config: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = config.get("mcpServers") or config.get("servers") or {}
    return found


def test_every_json_block_parses_and_names_the_command() -> None:
    configs = [json.loads(body) for lang, body in BLOCKS if lang == "json"]
    hosts = [c for c in configs if _servers(c)]
    assert len(hosts) == 3  # Claude Desktop, Cursor, VS Code
    for config in hosts:
        for server in _servers(config).values():
            assert (BIN / server["command"]).exists(), server["command"]
            assert set(server["env"]) <= KNOWN
            inputs = {i["id"] for i in config.get("inputs", [])}
            for value in server["env"].values():
                for ref in re.findall(r"\$\{input:([\w-]+)\}", value):
                    assert ref in inputs
    vscode = next(c for c in hosts if "servers" in c)
    assert vscode["servers"]["opportunity"]["type"] == "stdio"
    assert all(i["password"] for i in vscode["inputs"])


def test_claude_code_line_is_well_formed() -> None:
    (line,) = [body for lang, body in BLOCKS if lang == "sh" and "claude mcp add" in body]
    words = shlex.split(line)
    assert words[:4] == ["claude", "mcp", "add", "opportunity"]
    split = words.index("--")
    options, command = words[4:split], words[split + 1 :]
    assert options[0::2] == ["--env"] * (len(options) // 2)
    assert {pair.split("=", 1)[0] for pair in options[1::2]} <= KNOWN
    assert command == ["opportunity-mcp"] and (BIN / command[0]).exists()


@pytest.mark.slow
def test_the_http_example_works() -> None:
    (block,) = [body for lang, body in BLOCKS if lang == "sh" and "curl" in body]
    words = shlex.split(block.replace("\\\n", " "))
    headers = dict(h.split(": ", 1) for h in (words[i + 1] for i, w in enumerate(words) if w == "-H"))
    payload = json.loads(words[words.index("-d") + 1])
    assert words[2] == "http://127.0.0.1:8765/mcp"
    with http_server("--sandbox", "--no-auth") as (base, _):
        answer = httpx2.post(f"{base}/mcp", headers=headers, content=json.dumps(payload), timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    result = answer.json()["result"]
    assert result["isError"] is False
    assert result["content"][0]["text"].startswith("Created opportunity OPP-")
    assert result["structuredContent"]["name"] == "Plan anual - Empresa X"


def test_the_config_file_example_loads(tmp_path: Path, monkeypatch: Any) -> None:
    from opportunity_mcp.config import load_config

    (block,) = [body for lang, body in BLOCKS if lang == "toml"]
    for name in re.findall(r'(?:secret_env|env) = "(\w+)"', block):
        monkeypatch.setenv(name, f"value-of-{name.lower()}-0123456789")
    for name in CRM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "accounts.toml"
    path.write_text(block)
    config = load_config(str(path))
    assert [a.name for a in config.accounts] == ["acme-wa", "beta-hl"]
    tokens = [(t.name, sorted(t.accounts), t.connector) for t in config.tokens]
    assert tokens == [("acme-bot", ["acme-wa"], False), ("ops", ["*"], False), ("acme-sales", ["acme-wa"], True)]


def test_the_tool_table_names_every_declared_tool_and_each_of_its_arguments() -> None:
    section = README.split("## The tools", 1)[1].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    assert [row[0].strip("| `") for row in rows] == [spec.name for spec in TOOLS]
    for row, spec in zip(rows, TOOLS, strict=True):
        named = set(re.findall(r"`(\w+)`", row[-1]))
        assert named == set(spec.args.model_fields), spec.name


def test_the_wheel_block_names_the_wheel_make_dist_builds() -> None:
    (block,) = [body for lang, body in BLOCKS if lang == "sh" and "uvx --from" in body]
    assert f"dist/opportunity_mcp-{__version__}-py3-none-any.whl opportunity-mcp" in block
    assert "make dist" in block and "dist:" in (ROOT / "Makefile").read_text()


@pytest.mark.anyio
async def test_the_names_example_gives_the_sentence_shown(client: Client) -> None:
    section = README.split("### Names, phones and emails instead of ids", 1)[1]
    (example,) = re.findall(r"```json\n(.*?)```", section, flags=re.S)[:1]
    shown = re.search(r"^> (Created opportunity .*)$", section, flags=re.M)
    assert shown is not None
    result = await client.call_tool("create_opportunity", json.loads(example))
    assert not result.is_error
    ids = re.compile(r"\(id [0-9a-f]+\)")
    assert ids.sub("(id …)", text_of(result)) == ids.sub("(id …)", shown.group(1))
    # Three days later: the update by the customer's phone, and the sentence shown for it.
    later = re.findall(r"```json\n(.*?)```", section, flags=re.S)[1]
    moved = re.search(r"^> (Updated stageId .*)$", section, flags=re.M)
    assert moved is not None
    update = await client.call_tool("update_opportunity_field", json.loads(later))
    assert not update.is_error, text_of(update)
    assert ids.sub("(id …)", text_of(update)) == ids.sub("(id …)", moved.group(1))


@pytest.mark.parametrize(("name", "results"), [("bench", "latest.md"), ("chaos", "chaos.md")])
def test_the_figures_shown_are_the_last_ones_measured(name: str, results: str) -> None:
    from bench.figures import as_block, block

    measured = (ROOT / "bench" / "results" / results).read_text()
    assert block(name, DOCS["figures.md"]) == as_block(measured)  # `make bench` / `make chaos` write both


def test_the_first_screen_is_short_and_every_link_resolves() -> None:
    assert len(README.splitlines()) <= 250
    for name, text in {"README.md": README, **{f"docs/{n}": t for n, t in DOCS.items()}}.items():
        base = ROOT if name == "README.md" else ROOT / "docs"
        for target in re.findall(r"\]\(([^)#:]+?)(?:#[^)]*)?\)", text):
            assert (base / target).exists(), (name, target)
        assert "](#" not in text, name  # no anchor into a section that moved


def test_the_sandbox_table_names_what_the_sandbox_holds() -> None:
    from opportunity_mcp.sandbox.state import Seed

    seed = Seed()
    table = README.split("## Try it now", 1)[1].split("\n## ", 1)[0]
    people = [*seed.plazbot_people.values(), *seed.lc_people.values()]
    for name, _, email in people:
        assert name in table and (email is None or email in table), name
    for name, email in [*seed.plazbot_sellers.values(), *seed.lc_sellers.values()]:
        assert name in table and email in table
    for _, stage in seed.plazbot_stages:
        assert stage in table
    for pipeline, stages in seed.lc_pipelines.items():
        assert seed.lc_pipeline_names[pipeline] in table and all(s in table for _, s in stages)
