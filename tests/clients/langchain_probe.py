"""Run by `tests/test_langchain.py` with `.venv-langchain/bin/python` (langchain-mcp-adapters pins
mcp<2, so it cannot share the server's environment). Usage: langchain_probe.py URL TOKEN COMMAND,
COMMAND being the server's console script (run on stdio with its sandbox).

Does what a LangChain agent does through `MultiServerMCPClient` (a new MCP session per tool call),
then prints one JSON object with what each step gave, for the test to check."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.interceptors import MCPToolCallRequest

DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


async def with_key(request: MCPToolCallRequest, handler: Any) -> Any:
    """An interceptor, as the README shows: the triggering message's id as the Idempotency-Key header."""
    headers = {**(request.headers or {}), "Idempotency-Key": "wamid.langchain-1"}
    return await handler(request.override(headers=headers))


async def call(tool: BaseTool, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A tool call the way an agent's tool node makes it: the model sees `content`; `artifact` keeps
    the structured result."""
    message = await tool.ainvoke({"type": "tool_call", "id": call_id, "name": tool.name, "args": args})
    assert isinstance(message, ToolMessage)
    return {"status": message.status, "content": message.content, "artifact": message.artifact}


async def main(url: str, token: str, command: str) -> None:
    connection: Any = {"transport": "streamable_http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}
    plain = MultiServerMCPClient({"crm": connection})
    keyed = MultiServerMCPClient({"crm": connection}, tool_interceptors=[with_key])
    tools = {tool.name: tool for tool in await plain.get_tools()}
    keyed_tools = {tool.name: tool for tool in await keyed.get_tools()}
    out: dict[str, Any] = {
        "tools": sorted(tools),
        "schemas": {name: tool.args_schema for name, tool in tools.items() if isinstance(tool.args_schema, dict)},
        "create": await call(tools["create_opportunity"], DEAL, "call-1"),
        "bad_upsert": await call(tools["upsert_opportunity"], {"status": "won"}, "call-2"),
        # The same header key on two calls, each in its own session: the second is the first's answer.
        "keyed": [
            await call(keyed_tools["create_opportunity"], {**DEAL, "name": "Keyed deal"}, "call-3"),
            await call(keyed_tools["create_opportunity"], {**DEAL, "name": "Keyed deal"}, "call-4"),
        ],
    }
    stdio: Any = {"transport": "stdio", "command": command, "args": ["--sandbox"]}
    over_stdio = {tool.name: tool for tool in await MultiServerMCPClient({"crm": stdio}).get_tools()}
    out["stdio_create"] = await call(over_stdio["create_opportunity"], DEAL, "call-5")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
