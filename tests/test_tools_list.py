"""What the agent sees: the tools/list snapshot, which tools are listed, and the schemas' shape.

Any change to a tool's name, schema, annotations or description changes the snapshot; review it,
then regenerate with `UPDATE_SNAPSHOTS=1 make test`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.tools import TOOLS
from opportunity_mcp.tools.spec import ANY

pytestmark = pytest.mark.anyio
SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"


async def _listed(config: ServerConfig, mode: str = "legacy") -> list[dict[str, Any]]:
    async with Client(build_server(config), mode=mode) as client:
        result = await client.list_tools()
    return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in result.tools]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_tools_list_matches_the_snapshot(config: ServerConfig, mode: str) -> None:
    tools = await _listed(config, mode)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        # Never under CI, and never green: an update is a change for a person to review and commit.
        assert not os.environ.get("CI"), "UPDATE_SNAPSHOTS refuses to run under CI"
        SNAPSHOT.write_text(json.dumps(tools, indent=2, ensure_ascii=False) + "\n")
        pytest.fail("snapshot written: review the diff of tests/snapshots/tools_list.json, then run without it")
    assert tools == json.loads(SNAPSHOT.read_text())


async def test_only_the_configured_crms_tools_are_listed(config: ServerConfig) -> None:
    for family in FAMILIES:
        alone = replace(config, accounts=config.accounts_of(family))
        listed = [t["name"] for t in await _listed(alone)]
        assert listed == [spec.name for spec in TOOLS if spec.family in (family, ANY)]
        assert listed  # every family has its tools
    assert [t["name"] for t in await _listed(config)] == [spec.name for spec in TOOLS]


def test_every_declared_tool_is_listed_in_the_snapshot() -> None:
    snapshot = json.loads(SNAPSHOT.read_text())
    assert [t["name"] for t in snapshot] == [spec.name for spec in TOOLS]
    for spec, listed in zip(TOOLS, snapshot, strict=True):
        assert listed["annotations"]["idempotentHint"] is spec.idempotent
        assert listed["description"] == spec.description and listed["title"] == spec.title


async def test_annotations_are_honest(config: ServerConfig) -> None:
    hints = {t["name"]: t["annotations"] for t in await _listed(config)}
    for name, ann in hints.items():
        writes = name != "find_opportunities"
        assert ann["readOnlyHint"] is not writes and ann["destructiveHint"] is False, name
        assert ann["openWorldHint"] is True, name
    assert hints["find_opportunities"]["idempotentHint"] is True
    assert hints["create_opportunity"]["idempotentHint"] is False
    assert hints["update_opportunity_field"]["idempotentHint"] is True
    assert hints["upsert_opportunity"]["idempotentHint"] is False  # without id it creates


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


async def test_schemas_are_flat_and_every_argument_is_described(config: ServerConfig) -> None:
    for tool in await _listed(config):
        schema = tool["inputSchema"]
        assert schema["type"] == "object"
        for node in _walk(schema) + _walk(tool["outputSchema"]):
            assert not {"$ref", "$defs", "title", "oneOf", "allOf"} & node.keys(), (tool["name"], node)
            # A value of several types is an anyOf of plain types, never a "type" list: pydantic-ai's
            # TestModel cannot generate a type list and google-adk keeps only its first type.
            assert not isinstance(node.get("type"), list), (tool["name"], node)
            assert all(set(branch) == {"type"} for branch in node.get("anyOf", [])), (tool["name"], node)
        for name, prop in schema["properties"].items():
            assert name[0].islower() and "_" not in name, name  # upstream camelCase names
            assert 0 < len(prop["description"]) <= 60, (tool["name"], name)
        assert tool["title"] and 0 < len(tool["description"]) <= 220
        published = {"id"} if tool["name"] != "find_opportunities" else {"deals"}
        assert set(tool["outputSchema"]["properties"]) >= published
