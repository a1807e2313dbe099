"""create_opportunity through the MCP protocol, against the sandbox over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import PLAZBOT_WORKSPACE, SandboxState
from tests.conftest import CANARY_KEY, assert_clean, text_of

pytestmark = pytest.mark.anyio

DEAL = {"name": "Oportunidad Q2 - Empresa X", "description": "Venta de paquete anual premium", "amount": 1200.5}


async def test_create_returns_envelope_and_short_text(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool(
        "create_opportunity", {**DEAL, "contactId": "contact-456", "assignedComercialId": "user-123"}
    )
    assert not result.is_error
    env = result.structured_content
    assert env is not None
    stored = next(iter(sandbox.plazbot.values()))
    year = datetime.now(UTC).year
    assert env == {
        "ok": True,
        "action": "created",
        "account": PLAZBOT_WORKSPACE,
        "id": stored["id"],
        "code": f"OPP-{year}-0001",
        "name": DEAL["name"],
        "amount": 1200.5,
        "contact": "contact-456",
        "assignee": "user-123",
        "warnings": [],
    }
    text = text_of(result)
    assert text == (
        f"Created opportunity OPP-{year}-0001 'Oportunidad Q2 - Empresa X' (id {stored['id']}) "
        "for 1,200.50, contact contact-456, assigned to user-123."
    )
    assert len(text) <= 300
    assert_clean(text)


async def test_create_sends_the_documented_request(client: Client, sandbox: SandboxState) -> None:
    await client.call_tool(
        "create_opportunity",
        {**DEAL, "stageId": "stage-new", "expirationDate": "2026-12-31", "contactId": "contact-457"},
    )
    (sent,) = sandbox.requests_to("plazbot.create")
    assert (sent.method, sent.path, sent.query) == ("POST", "/api/opportunity", {})
    assert sent.headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert sent.headers["x-workspace-id"] == PLAZBOT_WORKSPACE
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "workspaceId": PLAZBOT_WORKSPACE,
        "name": DEAL["name"],
        "description": DEAL["description"],
        "amount": 1200.5,
        "contactId": "contact-457",
        "stageId": "stage-new",
        "expirationDate": "2026-12-31T00:00:00",
    }


async def test_codes_count_up_and_a_later_read_shows_the_write(client: Client, sandbox: SandboxState) -> None:
    first = await client.call_tool("create_opportunity", DEAL)
    second = await client.call_tool("create_opportunity", {**DEAL, "name": "Otra"})
    assert first.structured_content and second.structured_content
    assert first.structured_content["code"].endswith("-0001")
    assert second.structured_content["code"].endswith("-0002")
    assert sandbox.plazbot[second.structured_content["id"]]["name"] == "Otra"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({**DEAL, "amount": -1}, "amount: must be ≥ 0"),
        ({**DEAL, "amount": "doce"}, "amount: must be digits"),
        ({**DEAL, "amount": True}, "amount: must be a number, not true/false"),
        ({**DEAL, "amount": "NaN"}, "amount: must be written with digits only (no exponent, inf or nan)"),
        ({"name": "x", "amount": 1}, "description: required"),
        ({**DEAL, "name": "   "}, "name: must be text of 1 to 200 characters"),
        ({**DEAL, "name": "x" * 201}, "name: must be text of 1 to 200 characters"),
        ({**DEAL, "contactId": "a b"}, "contactId: must be an id as the CRM gave it"),
        ({**DEAL, "workspaceId": "wsñ"}, "workspaceId: must be an id as the CRM gave it"),
        ({**DEAL, "expirationDate": "31/12/2026"}, "expirationDate: must be an ISO date like 2026-12-31"),
        ({**DEAL, "priority": "high"}, "priority: is not an argument of this tool (allowed: name, description"),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("create_opportunity", arguments)
    assert result.is_error
    text = text_of(result)
    assert expected in text
    assert "validation error" not in text and "pydantic" not in text
    assert sandbox.requests == []


async def test_a_refused_value_is_not_echoed(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "amount": CANARY_KEY})
    assert result.is_error
    assert_clean(text_of(result))


async def test_an_unknown_argument_is_named_unless_its_name_is_not_a_name(client: Client) -> None:
    plain = await client.call_tool("create_opportunity", {**DEAL, "stage": "x"})
    odd = await client.call_tool("create_opportunity", {**DEAL, '{"<b>': "x"})
    assert plain.is_error and "stage: is not an argument of this tool (allowed: name, description" in text_of(plain)
    assert odd.is_error and "arguments: include a name that is not an argument of this tool" in text_of(odd)
    assert "<b>" not in text_of(odd)
