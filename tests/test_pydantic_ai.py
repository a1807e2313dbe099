"""pydantic-ai (`pydantic-ai-slim[mcp]`, pinned) as an agent developer uses it: `MCPToolset` over
streamable HTTP with a bearer token (and over stdio), and its `TestModel`, which calls every tool with arguments it
generates from our schemas (no LLM needed). What the schema allows must pass our validation; the one
rule a flat schema cannot state (an upsert needs an `id` or a `name`) is refused in one line."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ToolCallPart, ToolReturnPart
from pydantic_ai.models.test import TestModel

from opportunity_mcp.tools import TOOLS
from tests.conftest import COMMAND, bearer, http_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _run(toolset: MCPToolset[None]) -> Any:
    async with Agent(TestModel(), toolsets=[toolset]) as agent:
        return await agent.run("Register the deal from this conversation.")


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_test_model_calls_every_tool_with_arguments_from_our_schemas(transport: str) -> None:
    # "failed": a tool error goes back to the model as the tool's answer, as a deployed agent would
    # see it, instead of ending the run.
    if transport == "stdio":
        stdio = StdioTransport(command=COMMAND, args=["--sandbox"])
        run = await _run(MCPToolset(stdio, tool_error_behavior="failed"))
    else:
        with http_server("--sandbox") as (base, banner):
            run = await _run(MCPToolset(f"{base}/mcp", headers=bearer(banner), tool_error_behavior="failed"))
    calls: dict[str, Any] = {}
    answers: dict[str, str] = {}
    for message in run.all_messages():
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls[part.tool_name] = part.args_as_dict()
            elif isinstance(part, ToolReturnPart):
                answers[part.tool_name] = str(part.content)
    assert sorted(calls) == sorted(spec.name for spec in TOOLS), calls

    # Every required argument, generated from the schema (a `value` that is text or a number among
    # them), passes validation: the create is written. The update's deal may be named by its id or by
    # its contact, so none is required by the schema, and the refusal says which to give, in one line.
    assert "'ok': True" in answers["create_opportunity"] and "'action': 'created'" in answers["create_opportunity"]
    assert "OPP-" in answers["create_opportunity"]
    update = answers["update_opportunity_field"]
    assert '"ok":false' in update and "opportunityId: required, or find the deal by contactPhone" in update, update
    # The read with no argument: both CRMs are configured, so it asks which account.
    assert "accountId: required, since you may read several" in answers["find_opportunities"]

    # An upsert with no argument at all is what the schema allows (nothing is required) and what the
    # tool cannot do: one line that says which argument to give.
    upsert = answers["upsert_opportunity"]
    assert calls["upsert_opportunity"] == {}
    assert '"ok":false' in upsert and "Invalid arguments: name: required when id is not given" in upsert, upsert
    assert "\\n" not in upsert and "\n" not in upsert
