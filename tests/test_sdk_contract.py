"""What tools/spec.py takes from the MCP SDK beyond its exported API (`utilities.func_metadata`):
the SDK is pinned to its minor version, and these checks fail the day those internals move."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver.utilities import func_metadata

from opportunity_mcp.tools.spec import _RawArguments
from tests.conftest import text_of

pytestmark = pytest.mark.anyio


def test_the_internals_spec_builds_on_are_where_it_expects_them() -> None:
    assert issubclass(_RawArguments, func_metadata.ArgModelBase)
    assert "model_dump_one_level" in vars(func_metadata.ArgModelBase)
    fields = inspect.signature(func_metadata.FuncMetadata).parameters
    assert {"arg_model", "output_schema"} <= fields.keys()
    # Arguments reach the tool as given: unknown names too, for the tool's own one-line refusal.
    raw = _RawArguments.model_validate({"name": "x", "made_up": 1})
    assert raw.model_dump_one_level() == {"arguments": {"name": "x", "made_up": 1}}


async def test_raw_arguments_reach_the_tool_through_the_sdk(client: Client) -> None:
    arguments: dict[str, Any] = {"name": "x", "description": "d", "amount": 1, "made_up": 1}
    result = await client.call_tool("create_opportunity", arguments)
    assert result.is_error
    assert "made_up: is not an argument of this tool (allowed: name, description" in text_of(result)
