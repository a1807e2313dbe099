"""The OpenAI Agents SDK (`openai-agents`, pinned) as a bot flow uses it: its streamable-HTTP MCP
client with a bearer token (and its stdio client), strict schema conversion (every property required,
so a strict model fills what it does not know with "" or null), then a call the way such a model
sends it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import Agent, FunctionTool
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp, MCPUtil
from agents.run_context import RunContextWrapper
from agents.tool_context import ToolContext

from tests.conftest import COMMAND, bearer, http_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _strict_blanks(schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """What a strict model sends: every property; "" or null for those it knows nothing about."""
    blanks: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        types = prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")]
        blanks[name] = "" if "string" in types and "enum" not in prop else None
    return {**blanks, **given}


async def _strict_call(server: MCPServerStdio | MCPServerStreamableHttp) -> Any:
    async with server:
        agent = Agent(name="crm", mcp_servers=[server])
        tools = await MCPUtil.get_function_tools(server, True, RunContextWrapper(context=None), agent)
        by_name = {tool.name: tool for tool in tools if isinstance(tool, FunctionTool)}
        create = by_name["create_opportunity"]
        schema = create.params_json_schema
        assert create.strict_json_schema is True
        assert set(schema["required"]) == set(schema["properties"]) and schema["additionalProperties"] is False
        arguments = json.dumps(_strict_blanks(schema, {"name": "Plan anual", "description": "Premium", "amount": 1200}))
        context = ToolContext(context=None, tool_name=create.name, tool_call_id="call_1", tool_arguments=arguments)
        return await create.on_invoke_tool(context, arguments)


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_strict_schemas_and_a_strict_models_call(transport: str) -> None:
    if transport == "stdio":
        stdio = MCPServerStdio(params={"command": COMMAND, "args": ["--sandbox"]}, client_session_timeout_seconds=30)
        answer = await _strict_call(stdio)
    else:
        with http_server("--sandbox") as (base, banner):
            params: Any = {"url": f"{base}/mcp", "headers": bearer(banner), "timeout": 30}
            answer = await _strict_call(MCPServerStreamableHttp(params=params, client_session_timeout_seconds=30))
    text = json.dumps(answer) if not isinstance(answer, str) else answer
    assert "Created opportunity OPP-" in text, text
    assert "Error" not in text
