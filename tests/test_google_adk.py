"""google-adk (pinned) as an agent developer uses it: `McpToolset` over streamable HTTP with a bearer
token (and over stdio), inside a real `Runner`. The model is scripted (no Gemini account here): it records the function
declarations ADK built from our schemas, in both of ADK's ways (JSON schema, the default, and Gemini's
own `Schema`), then calls `create_opportunity` and reads the answer ADK hands back."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.adk.tools.mcp_tool import McpToolset, StdioConnectionParams, StreamableHTTPConnectionParams
from google.genai import types
from mcp import StdioServerParameters
from pydantic import Field

from opportunity_mcp.tools import TOOLS
from tests.conftest import COMMAND, bearer, http_server

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    # Once pydantic-ai has imported fastmcp (earlier in the run), fastmcp gives the SDK's Tool a
    # camelCase `inputSchema` and `outputSchema` that warn; ADK reads that name first. A clash of two clients, not ours.
    pytest.mark.filterwarnings("ignore:Accessing `Tool.[a-zA-Z]+` is deprecated"),
]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


class Scripted(BaseLlm):
    """A model that calls create_opportunity once, then ends its turn; it keeps what it was sent."""

    declarations: dict[str, types.FunctionDeclaration] = Field(default_factory=dict)
    answers: list[dict[str, Any]] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        for tool in llm_request.config.tools or []:
            for declaration in getattr(tool, "function_declarations", None) or []:
                self.declarations[str(declaration.name)] = declaration
        parts = llm_request.contents[-1].parts or []
        answers = [p.function_response.response or {} for p in parts if p.function_response]
        if answers:
            self.answers.extend(answers)
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="Done.")]))
            return
        call = types.FunctionCall(name="create_opportunity", args=DEAL, id="call-1")
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))


def _properties(declaration: types.FunctionDeclaration) -> tuple[dict[str, Any], list[str]]:
    """The declared arguments and the required ones, whichever way ADK built the declaration."""
    if declaration.parameters is not None:
        schema = declaration.parameters.model_dump(exclude_none=True, mode="json")
    else:
        schema = dict(declaration.parameters_json_schema or {})
    return schema["properties"], schema.get("required", [])


async def _converse(toolset: McpToolset, model: Scripted) -> dict[str, Any]:
    """One user turn through a real Runner; the schemas the server published, by tool."""
    try:
        published = {tool.name: tool.raw_mcp_tool.input_schema for tool in await toolset.get_tools()}
        runner = InMemoryRunner(agent=LlmAgent(name="crm", model=model, tools=[toolset]), app_name="crm")
        session = await runner.session_service.create_session(app_name="crm", user_id="seller")
        message = types.Content(role="user", parts=[types.Part(text="Register the annual plan, 1200.")])
        async for _event in runner.run_async(user_id="seller", session_id=session.id, new_message=message):
            pass
    finally:
        await toolset.close()
    return published


@pytest.mark.parametrize(
    ("declarations", "transport"), [("json-schema", "http"), ("gemini-schema", "http"), ("json-schema", "stdio")]
)
async def test_declarations_from_our_schemas_and_a_call(
    declarations: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if declarations == "gemini-schema":
        monkeypatch.setenv("ADK_DISABLE_JSON_SCHEMA_FOR_FUNC_DECL", "1")
    model = Scripted(model="scripted")
    if transport == "stdio":
        server = StdioServerParameters(command=COMMAND, args=["--sandbox"])
        published = await _converse(
            McpToolset(connection_params=StdioConnectionParams(server_params=server, timeout=30)), model
        )
    else:
        with http_server("--sandbox") as (base, banner):
            connection = StreamableHTTPConnectionParams(url=f"{base}/mcp", headers=bearer(banner))
            published = await _converse(McpToolset(connection_params=connection), model)

    assert sorted(model.declarations) == sorted(spec.name for spec in TOOLS)
    for name, declaration in model.declarations.items():
        properties, required = _properties(declaration)
        assert list(properties) == list(published[name]["properties"]), name
        assert required == published[name].get("required", []), name
        for prop, schema in properties.items():  # every argument keeps a type the model can fill
            assert "type" in schema or "any_of" in schema or "anyOf" in schema, (name, prop, schema)
    value, _ = _properties(model.declarations["update_opportunity_field"])
    branches = value["value"].get("any_of") or value["value"].get("anyOf")
    assert sorted(str(b["type"]).lower() for b in branches) == ["number", "string"], value["value"]

    # ADK hands the model the whole result: the text and the structured envelope, both complete.
    [answer] = model.answers
    assert answer["isError"] is False
    assert answer["content"][0]["text"].startswith("Created opportunity OPP-")
    assert answer["structuredContent"]["ok"] is True and answer["structuredContent"]["action"] == "created"
