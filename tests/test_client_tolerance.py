"""What real clients send beside the schema: OpenAI strict mode's "" and null for what the model does
not know, n8n's toolCallId and sessionId, and an idempotency key by argument, by `_meta` or by HTTP
header. All of it works; an unknown argument is still refused."""

from __future__ import annotations

import pytest
from mcp import Client

from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import SandboxState
from tests.asgi import mcp_client, serving
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
# Every optional argument, as a strict-mode model fills those it does not know.
STRICT_CREATE = {
    "contactId": "",
    "contactPhone": "",
    "contactEmail": None,
    "assignedComercialId": "",
    "assigneeEmail": None,
    "stageId": "",
    "stageName": "",
    "expirationDate": "",
    "workspaceId": "",
    "idempotencyKey": "",
    "allowDuplicate": None,
}


async def test_strict_mode_blanks_mean_not_given(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("create_opportunity", {**DEAL, **STRICT_CREATE})
    assert not created.is_error, text_of(created)
    (sent,) = sandbox.requests_to("plazbot.create")
    assert set(sent.body) == {"workspaceId", "name", "description", "amount"}
    upserted = await client.call_tool(
        "upsert_opportunity", {"name": "x", "id": "", "status": None, "followers": None, "monetaryValue": None}
    )
    assert not upserted.is_error, text_of(upserted)


async def test_a_blank_required_argument_is_still_refused(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "name": "", "amount": None})
    assert result.is_error
    assert "name: must be text of 1 to 200 characters" in text_of(result) and "amount:" in text_of(result)
    assert sandbox.requests == []


async def test_n8n_bookkeeping_is_ignored_and_never_sent(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "toolCallId": "call_abc123", "sessionId": "s-1"})
    assert not result.is_error, text_of(result)
    (sent,) = sandbox.requests_to("plazbot.create")
    assert "toolCallId" not in sent.body and "sessionId" not in sent.body
    other = await client.call_tool("create_opportunity", {**DEAL, "name": "Otro", "tool": "x"})
    assert other.is_error and "tool: is not an argument of this tool (allowed: name," in text_of(other)


async def test_a_key_in_meta_makes_a_repeat_harmless(client: Client, sandbox: SandboxState) -> None:
    meta = {"idempotencyKey": "wamid.meta-1"}
    first = await client.call_tool("create_opportunity", DEAL, meta=meta)  # type: ignore[arg-type]
    again = await client.call_tool("create_opportunity", {**DEAL, "allowDuplicate": True}, meta=meta)  # type: ignore[arg-type]
    assert not first.is_error and not again.is_error
    assert again.structured_content is not None and again.structured_content["action"] == "already_done"
    assert "this idempotencyKey was used" in text_of(again)
    assert len(sandbox.requests_to("plazbot.create")) == 1


async def test_two_channels_with_different_keys_are_refused(client: Client, sandbox: SandboxState) -> None:
    meta = {"idempotencyKey": "wamid.B"}
    result = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "wamid.A"}, meta=meta)  # type: ignore[arg-type]
    assert result.is_error
    assert "idempotencyKey: idempotencyKey and _meta.idempotencyKey carry different keys" in text_of(result)
    assert sandbox.requests == []
    same = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "wamid.B"}, meta=meta)  # type: ignore[arg-type]
    assert not same.is_error


async def test_a_key_in_the_http_header_makes_a_repeat_harmless(config: ServerConfig, sandbox: SandboxState) -> None:
    header = {"Idempotency-Key": "wamid.header-1"}
    async with serving(config) as transport:
        async with mcp_client(transport, header) as first_connection:
            first = await first_connection.call_tool("create_opportunity", DEAL)
        async with mcp_client(transport, header) as second_connection:  # a new session, as LangChain opens
            again = await second_connection.call_tool("create_opportunity", {**DEAL, "allowDuplicate": True})
        async with mcp_client(transport, {"Idempotency-Key": "wamid.other"}) as third:
            clash = await third.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "wamid.mine"})
    assert not first.is_error and not again.is_error, text_of(first)
    assert again.structured_content is not None and again.structured_content["action"] == "already_done"
    assert len(sandbox.requests_to("plazbot.create")) == 1
    assert clash.is_error and "the Idempotency-Key header carry different keys" in text_of(clash)
