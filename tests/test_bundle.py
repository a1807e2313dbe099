"""The MCP Bundle: manifest.json lists exactly what the server serves, mcpb accepts it, and the packed
bundle starts the server the way its mcp_config says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from opportunity_mcp.app import build_server
from opportunity_mcp.config import CRM_VARIABLES, ServerConfig
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.prompts import load
from opportunity_mcp.tools import TOOLS
from tests.npm_tools import MCPB, ROOT, npx

pytestmark = pytest.mark.anyio
MANIFEST: dict[str, Any] = json.loads((ROOT / "manifest.json").read_text())


async def test_manifest_tools_and_prompts_are_what_the_server_lists(config: ServerConfig) -> None:
    async with Client(build_server(config), mode="legacy") as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
    assert MANIFEST["tools"] == [{"name": s.name, "description": s.description} for s in TOOLS]
    assert [t.name for t in tools] == [s.name for s in TOOLS]
    assert [p["name"] for p in MANIFEST["prompts"]] == [p.name for p in prompts]
    files = {p.name: p for p in load()}
    for entry, listed in zip(MANIFEST["prompts"], prompts, strict=True):
        assert entry["description"] == listed.description
        assert entry["arguments"] == [a.name for a in listed.arguments or []]
        assert entry["text"] == files[entry["name"]].text


def test_user_config_reaches_the_server_under_its_variable_names() -> None:
    env = MANIFEST["server"]["mcp_config"]["env"]
    user_config = MANIFEST["user_config"]
    assert set(env) == {
        "PLAZBOT_BASE_URL",
        "PLAZBOT_API_KEY",
        "PLAZBOT_EMAIL",
        "PLAZBOT_PASSWORD",
        "PLAZBOT_WORKSPACE_ID",
        "LEADCONNECTOR_TOKEN",
        "LEADCONNECTOR_LOCATION_ID",
        "LEADCONNECTOR_PIPELINE_ID",
        "PLAZBOT_NUMBER_FORMAT",
        "PLAZBOT_DEFAULT_COUNTRY",
        "PLAZBOT_OPEN_DEALS",
        "OPPORTUNITY_MCP_SANDBOX",
        "LEADCONNECTOR_NUMBER_FORMAT",
        "LEADCONNECTOR_DEFAULT_COUNTRY",
        "PLAZBOT_CONFIRM",
        "LEADCONNECTOR_CONFIRM",
    }
    for value in env.values():
        key = re.fullmatch(r"\$\{user_config\.(\w+)\}", value)
        assert key and key.group(1) in user_config
    assert {k for k, v in user_config.items() if v.get("sensitive")} == {
        "plazbot_api_key",
        "plazbot_password",
        "leadconnector_token",
    }
    # One LeadConnector host: nothing to pick; and the switch that serves the sandbox CRM instead.
    assert set(env) == (set(CRM_VARIABLES) - {"LEADCONNECTOR_BASE_URL"}) | {"OPPORTUNITY_MCP_SANDBOX"}
    for choice in FAMILIES["plazbot"].hosts:
        assert choice in user_config["plazbot_base_url"]["description"]
    assert MANIFEST["version"] == __import__("opportunity_mcp").__version__


@pytest.mark.slow
def test_the_bundles_lock_matches_the_project() -> None:
    uv = str(Path(sys.executable).parent / "uv")
    locked = subprocess.run([uv, "lock", "--check"], capture_output=True, text=True, timeout=120, check=False)
    assert locked.returncode == 0, "uv.lock is out of date with pyproject.toml: run `uv lock`\n" + locked.stderr[-1000:]


@pytest.mark.slow
async def test_mcpb_validates_packs_and_the_bundle_starts(tmp_path: Path) -> None:
    uv = str(Path(sys.executable).parent / "uv")
    validated = npx(MCPB, "validate", "manifest.json")
    assert validated.returncode == 0 and "validation passes" in validated.stdout, validated.stderr[-2000:]
    bundle = tmp_path / "opportunity-mcp.mcpb"
    packed = npx(MCPB, "pack", ".", str(bundle))
    assert packed.returncode == 0, packed.stderr[-2000:]
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert (
            "manifest.json" in names
            and "server/opportunity_mcp/cli.py" in names
            and "prompts/capture_deal.txt" in names
        )
        # Only what the server needs: no virtual environment (the LangChain one included), tests or git.
        allowed = {
            "manifest.json",
            "pyproject.toml",
            "README.md",
            "LICENSE",
            "uv.lock",
            "server",
            "prompts",
        }
        assert {n.split("/", 1)[0] for n in names} <= allowed, sorted({n.split("/", 1)[0] for n in names} - allowed)
        archive.extractall(unpacked)
    config = MANIFEST["server"]["mcp_config"]
    assert config["command"] == "uv"
    assert "uv.lock" in names and "--frozen" in config["args"]  # exactly the locked dependencies
    args = [a.replace("${__dirname}", str(unpacked)) for a in config["args"]]
    # The bundle's "use the sandbox" switch, as Claude Desktop passes it: no --sandbox on a command line.
    env = {**os.environ, "OPPORTUNITY_MCP_SANDBOX": "true"}
    async with Client(StdioServerParameters(command=uv, args=args, env=env), mode="legacy") as client:
        tools = (await client.list_tools()).tools
        created = await client.call_tool(
            "create_opportunity", {"name": "From the bundle", "description": "d", "amount": 1}
        )
    assert [t.name for t in tools] == [t["name"] for t in MANIFEST["tools"]]
    assert not created.is_error
