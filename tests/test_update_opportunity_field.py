"""update_opportunity_field through the protocol, against both documented Plazbot update styles."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import PLAZBOT_WORKSPACE, SandboxState
from tests.conftest import CANARY_KEY, text_of

pytestmark = pytest.mark.anyio


async def _create(client: Client) -> str:
    result = await client.call_tool(
        "create_opportunity", {"name": "Plan anual", "description": "Premium", "amount": 100, "stageId": "stage-new"}
    )
    assert result.structured_content is not None
    opp_id: str = result.structured_content["id"]
    return opp_id


@pytest.mark.parametrize("style", ["param", "fields"])
@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("amount", 2500.75, 2500.75),
        ("amount", "2500.75", 2500.75),
        ("name", "Nuevo nombre", "Nuevo nombre"),
        ("description", "Otra descripción", "Otra descripción"),
        ("stageId", "stage-proposal", "stage-proposal"),
        ("contactId", "contact-458", "contact-458"),
    ],
)
async def test_update_applies_in_both_styles(
    client: Client, sandbox: SandboxState, style: str, field: str, value: Any, stored: Any
) -> None:
    opp_id = await _create(client)
    sandbox.options.plazbot_update_style = style  # type: ignore[assignment]
    result = await client.call_tool(
        "update_opportunity_field", {"opportunityId": opp_id, "field": field, "value": value}
    )
    assert not result.is_error, text_of(result)
    assert sandbox.plazbot[opp_id][field] == stored
    env = result.structured_content
    assert env is not None and env["action"] == "updated" and env["id"] == opp_id and env["warnings"] == []
    assert text_of(result).startswith(f"Updated {field} of opportunity OPP-")


async def test_update_sends_one_body_both_styles_accept(client: Client, sandbox: SandboxState) -> None:
    opp_id = await _create(client)
    await client.call_tool("update_opportunity_field", {"opportunityId": opp_id, "field": "amount", "value": 99})
    (sent,) = sandbox.requests_to("plazbot.update")
    assert (sent.method, sent.path) == ("PUT", "/api/opportunity")
    assert sent.query == {"id": opp_id, "workspaceId": PLAZBOT_WORKSPACE}
    assert sent.headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert sent.headers["x-workspace-id"] == PLAZBOT_WORKSPACE
    assert sent.body == {"paramToUpdate": "amount", "amount": 99.0}


async def test_expiration_date_and_assignee_in_the_single_field_style(client: Client, sandbox: SandboxState) -> None:
    opp_id = await _create(client)
    for field, value in (("expirationDate", "2026-12-31"), ("assignedAgentId", "user-124")):
        result = await client.call_tool(
            "update_opportunity_field", {"opportunityId": opp_id, "field": field, "value": value}
        )
        assert not result.is_error, text_of(result)
    assert sandbox.plazbot[opp_id]["expirationDate"] == "2026-12-31T00:00:00"
    assert sandbox.plazbot[opp_id]["assignedAgentId"] == "user-124"


async def test_custom_field_is_sent_as_custom_fields_list(client: Client, sandbox: SandboxState) -> None:
    opp_id = await _create(client)
    result = await client.call_tool(
        "update_opportunity_field",
        {"opportunityId": opp_id, "field": "customFields", "customFieldName": "Origen", "value": "WhatsApp"},
    )
    assert not result.is_error, text_of(result)
    (sent,) = sandbox.requests_to("plazbot.update")
    assert sent.body == {"paramToUpdate": "customFields", "customFields": [{"name": "Origen", "value": "WhatsApp"}]}
    assert sandbox.plazbot[opp_id]["customFields"] == [{"name": "Origen", "value": "WhatsApp"}]
    assert "Updated Origen of opportunity" in text_of(result)


async def test_an_ok_that_did_not_apply_is_reported_as_not_done(client: Client, sandbox: SandboxState) -> None:
    """The multi-field style has no assignedAgentId: the CRM answers OK and changes nothing."""
    opp_id = await _create(client)
    sandbox.options.plazbot_update_style = "fields"
    result = await client.call_tool(
        "update_opportunity_field", {"opportunityId": opp_id, "field": "assignedAgentId", "value": "user-124"}
    )
    assert result.is_error
    assert "answered OK but the opportunity still shows another assignedAgentId" in text_of(result)
    assert sandbox.plazbot[opp_id]["assignedAgentId"] is None


async def test_unknown_opportunity_is_a_not_found_error(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool(
        "update_opportunity_field", {"opportunityId": "missing-1", "field": "name", "value": "x"}
    )
    assert result.is_error
    assert "did not find" in text_of(result) and "Opportunity not found" in text_of(result)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"field": "amount", "value": "mil"}, "value: for amount, must be digits"),
        ({"field": "amount", "value": -5}, "value: for amount, must be ≥ 0"),
        ({"field": "amount", "value": "inf"}, "value: for amount, must be written with digits only"),
        ({"field": "expirationDate", "value": "mañana"}, "value: for expirationDate, must be an ISO date"),
        (
            {"field": "assignedAgentId", "value": "no es un id"},
            "for assignedAgentId, must be an id as the CRM gave it or a seller",
        ),
        ({"field": "status", "value": "won"}, "field: must be one of 'name', 'description', 'amount'"),
        ({"field": "customFields", "value": "x"}, "customFieldName: required when field is customFields"),
        ({"field": "name", "value": "x", "customFieldName": "y"}, "customFieldName: only allowed when field"),
        ({"field": "name", "value": ""}, "value: for name, must be text of 1 to 200 characters"),
        ({"field": "name"}, "value: required"),
        ({"field": "name", "value": False}, "value: must be text or a number, not true/false"),
        (
            {"field": "amount", "value": [1]},
            "Invalid arguments: value: must be text or a number (one value, not a list",
        ),
        ({"field": "name", "value": {"a": 1}}, "value: must be text or a number (one value, not a list or an object)"),
    ],
)
async def test_invalid_updates_are_refused_before_any_request(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("update_opportunity_field", {"opportunityId": "opp-1", **arguments})
    assert result.is_error
    assert expected in text_of(result)
    problems = text_of(result).split("Invalid arguments: ", 1)[-1]
    assert len([p for p in problems.split("; ") if p.split(":")[0].isidentifier()]) == 1  # one problem, one line
    assert sandbox.requests == []


@pytest.mark.parametrize("get_shape", ["envelope", "bare"])
async def test_an_answer_without_the_field_is_verified_by_reading_back(
    client: Client, sandbox: SandboxState, get_shape: str
) -> None:
    import json

    from opportunity_mcp.sandbox import Fault

    opp_id = await _create(client)
    sandbox.options.plazbot_get_shape = get_shape  # type: ignore[assignment]
    terse = {"success": True, "code": 200, "errorCode": None, "message": "ok", "data": {"id": opp_id}}
    sandbox.inject(Fault(route="plazbot.update", status=200, body=json.dumps(terse), apply=True))
    result = await client.call_tool(
        "update_opportunity_field", {"opportunityId": opp_id, "field": "amount", "value": 7}
    )
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None and result.structured_content["warnings"] == []
    assert result.structured_content["amount"] == 7
    assert len(sandbox.requests_to("plazbot.get")) == 1


async def test_reading_back_catches_an_ok_that_changed_nothing(client: Client, sandbox: SandboxState) -> None:
    import json

    from opportunity_mcp.sandbox import Fault

    opp_id = await _create(client)
    terse = {"success": True, "code": 200, "errorCode": None, "message": "ok", "data": {"id": opp_id}}
    sandbox.inject(Fault(route="plazbot.update", status=200, body=json.dumps(terse)))  # not applied
    result = await client.call_tool(
        "update_opportunity_field", {"opportunityId": opp_id, "field": "amount", "value": 7}
    )
    assert result.is_error and "still shows another amount" in text_of(result)
