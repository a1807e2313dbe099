"""upsert_opportunity through the protocol, against both documented LeadConnector body shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import LC_LOCATION, LC_PIPELINE, SandboxState
from opportunity_mcp.sandbox.leadconnector import SHAPES
from tests.conftest import CANARY_TOKEN, text_of

pytestmark = pytest.mark.anyio
STAGE = "0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f"


async def test_create_without_id_in_the_current_shape(client: Client, sandbox: SandboxState) -> None:
    sandbox.options.upsert_shapes = "followers"
    result = await client.call_tool(
        "upsert_opportunity",
        {
            "name": "Deal LC",
            "status": "open",
            "monetaryValue": 220,
            "pipelineStageId": STAGE,
            "assignedTo": "user-lc-1",
        },
    )
    assert not result.is_error, text_of(result)
    (sent,) = sandbox.requests_to("lc.upsert")
    assert (sent.method, sent.path) == ("POST", "/opportunities/upsert")
    assert sent.headers["authorization"] == f"Bearer {CANARY_TOKEN}"
    assert sent.headers["version"] == "2021-07-28"
    assert sent.body == {
        "pipelineId": LC_PIPELINE,
        "locationId": LC_LOCATION,
        "followers": [],
        "isRemoveAllFollowers": False,
        "followersActionType": "add",
        "name": "Deal LC",
        "status": "open",
        "pipelineStageId": STAGE,
        "monetaryValue": 220.0,
        "assignedTo": "user-lc-1",
    }
    env = result.structured_content
    assert env is not None
    assert env["action"] == "created" and env["account"] == LC_LOCATION and env["amount"] == 220
    assert env["stage"] == STAGE and env["status"] == "open" and env["assignee"] == "user-lc-1"
    assert text_of(result).startswith(f"Created opportunity 'Deal LC' (id {env['id']}) for 220.00, status open")


async def test_monetary_value_goes_out_as_a_json_number(client: Client, sandbox: SandboxState) -> None:
    await client.call_tool("upsert_opportunity", {"name": "N", "monetaryValue": "1500.5"})
    (sent,) = sandbox.requests_to("lc.upsert")
    assert isinstance(sent.body["monetaryValue"], float) and sent.body["monetaryValue"] == 1500.5


async def test_update_by_id_says_updated(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("upsert_opportunity", {"name": "Deal", "monetaryValue": 10})
    assert created.structured_content is not None
    opp_id = created.structured_content["id"]
    result = await client.call_tool(
        "upsert_opportunity", {"id": opp_id, "status": "lost", "lostReasonId": "lost-price", "followers": ["user-lc-1"]}
    )
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None and result.structured_content["action"] == "updated"
    stored = sandbox.leadconnector[opp_id]
    assert (stored["status"], stored["lostReasonId"], stored["followers"]) == ("lost", "lost-price", ["user-lc-1"])
    assert text_of(result).startswith(f"Updated opportunity 'Deal' (id {opp_id})")


async def test_contact_without_id_uses_the_contact_keyed_shape(client: Client, sandbox: SandboxState) -> None:
    first = await client.call_tool("upsert_opportunity", {"name": "Por contacto", "contactId": "contact-lc-1"})
    again = await client.call_tool("upsert_opportunity", {"name": "Renombrado", "contactId": "contact-lc-1"})
    sent = sandbox.requests_to("lc.upsert")
    assert sent[0].body == {
        "pipelineId": LC_PIPELINE,
        "locationId": LC_LOCATION,
        "contactId": "contact-lc-1",
        "name": "Por contacto",
    }
    assert first.structured_content and again.structured_content
    assert (first.structured_content["action"], again.structured_content["action"]) == ("created", "updated")
    assert first.structured_content["id"] == again.structured_content["id"]


async def test_contact_with_id_is_not_sent_and_the_answer_says_so(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("upsert_opportunity", {"name": "Deal"})
    assert created.structured_content is not None
    result = await client.call_tool(
        "upsert_opportunity", {"id": created.structured_content["id"], "contactId": "contact-lc-1", "status": "won"}
    )
    assert not result.is_error
    assert "contactId" not in sandbox.requests_to("lc.upsert")[-1].body
    assert result.structured_content is not None
    assert result.structured_content["warnings"] == [
        "contactId was not sent: this upsert form has no contactId (the contact stays as it is)"
    ]
    assert "Note: contactId was not sent" in text_of(result)


@pytest.mark.parametrize(
    "arguments",
    [
        {"name": "a"},
        {"name": "a", "contactId": "contact-lc-1"},
        {
            "id": "x1",
            "name": "a",
            "contactId": "contact-lc-1",
            "lostReasonId": "lost-price",
            "followers": ["u1"],
            "pipelineId": "p",
        },
        {"name": "a", "followers": ["u1"], "followersActionType": "remove", "isRemoveAllFollowers": True},
        {
            "name": "a",
            "contactId": "c1",
            "status": "open",
            "monetaryValue": 1,
            "assignedTo": "u",
            "pipelineStageId": "s",
        },
    ],
)
async def test_the_body_is_always_exactly_one_documented_shape(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any]
) -> None:
    await client.call_tool("upsert_opportunity", arguments)
    (sent,) = sandbox.requests_to("lc.upsert")
    keys = set(sent.body)
    fits = [shape for shape, (required, allowed) in SHAPES.items() if required <= keys <= allowed]
    assert len(fits) == 1, (keys, fits)


async def test_a_422_naming_the_other_shape_is_learned_and_nothing_is_dropped(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.options.upsert_shapes = "followers"
    # Its 422 teaches the form (nothing written), and the new deal is linked through POST /opportunities/.
    first = await client.call_tool("upsert_opportunity", {"name": "Por contacto", "contactId": "contact-lc-1"})
    assert not first.is_error and "created with POST /opportunities/" in text_of(first)
    again = await client.call_tool("upsert_opportunity", {"name": "Por contacto", "contactId": "contact-lc-2"})
    assert not again.is_error and len(sandbox.requests_to("lc.upsert")) == 1  # learned: straight to the create
    assert [r.body["contactId"] for r in sandbox.requests_to("lc.create")] == ["contact-lc-1", "contact-lc-2"]
    unlinked = await client.call_tool("upsert_opportunity", {"name": "Sin contacto"})
    assert not unlinked.is_error
    assert "followers" in sandbox.requests_to("lc.upsert")[1].body and len(sandbox.leadconnector) == 3


async def test_a_location_on_the_contact_form_is_learned(client: Client, sandbox: SandboxState) -> None:
    sandbox.options.upsert_shapes = "contact"
    refused = await client.call_tool("upsert_opportunity", {"name": "Sin contacto"})
    assert refused.is_error and "is the contact-keyed form: it needs contactId" in text_of(refused)
    linked = await client.call_tool("upsert_opportunity", {"name": "Con contacto", "contactId": "contact-lc-1"})
    assert not linked.is_error
    by_id = await client.call_tool("upsert_opportunity", {"id": "any", "status": "won"})
    assert by_id.is_error and len(sandbox.requests_to("lc.upsert")) == 2  # refused before sending


async def test_a_422_on_an_update_by_id_says_what_to_change(client: Client, sandbox: SandboxState) -> None:
    sandbox.options.upsert_shapes = "contact"
    created = await client.call_tool("upsert_opportunity", {"name": "x", "contactId": "contact-lc-1"})
    assert created.structured_content is not None
    result = await client.call_tool("upsert_opportunity", {"id": created.structured_content["id"], "status": "won"})
    assert result.is_error
    text = text_of(result)
    assert "this location's upsert is the contact-keyed form" in text
    assert "learned from its 422: 'property id should not exist'" in text
    assert "Nothing was written." in text


async def test_without_a_configured_pipeline_the_argument_is_required(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    from dataclasses import replace

    lc = config.first("leadconnector")
    assert lc is not None
    no_pipeline = replace(config, accounts=(*config.accounts_of("plazbot"), replace(lc, options=())))
    async with Client(build_server(no_pipeline), mode="legacy") as client:
        refused = await client.call_tool("upsert_opportunity", {"name": "x"})
        accepted = await client.call_tool("upsert_opportunity", {"name": "x", "pipelineId": LC_PIPELINE})
    assert refused.is_error
    assert "pipelineId: required, since this location has no default pipeline configured" in text_of(refused)
    assert not accepted.is_error
    assert len(sandbox.requests_to("lc.upsert")) == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"name": "x", "status": "all"},
            "status: 'all' is a search filter; a write takes open, won, lost or abandoned",
        ),
        ({"name": "x", "status": "closed"}, "status: must be one of 'open', 'won', 'lost' or 'abandoned'"),
        ({"status": "won"}, "name: required when id is not given"),
        ({"name": "x", "monetaryValue": -1}, "monetaryValue: must be ≥ 0"),
        ({"name": "x", "followers": ["a"] * 51}, "followers: must have at most 50 items"),
        ({"name": "x", "followersActionType": "replace"}, "followersActionType: must be one of 'add' or 'remove'"),
        ({"name": "x", "isRemoveAllFollowers": "maybe"}, "isRemoveAllFollowers: must be true or false"),
        ({"name": "x", "contactId": 42}, "contactId: must be text"),
        ({"followers": None}, "name: required when id is not given"),
    ],
)
async def test_invalid_upserts_are_refused_before_any_request(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("upsert_opportunity", arguments)
    assert result.is_error
    assert expected in text_of(result)
    assert sandbox.requests == []


async def test_followers_sent_as_a_json_string_are_read_as_a_list(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("upsert_opportunity", {"name": "x", "followers": json.dumps(["user-lc-1"])})
    assert not result.is_error, text_of(result)
    assert sandbox.requests_to("lc.upsert")[0].body["followers"] == ["user-lc-1"]


async def test_an_update_by_id_keeps_the_deal_in_its_own_pipeline(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("upsert_opportunity", {"name": "Renovación", "pipelineId": "pipe-renewals"})
    assert created.structured_content is not None
    opp_id = created.structured_content["id"]
    won = await client.call_tool("upsert_opportunity", {"id": opp_id, "status": "won"})
    assert not won.is_error, text_of(won)
    assert won.structured_content is not None and won.structured_content["warnings"] == []
    assert sandbox.requests_to("lc.upsert")[-1].body["pipelineId"] == "pipe-renewals"
    assert sandbox.leadconnector[opp_id]["pipelineId"] == "pipe-renewals"
    assert len(sandbox.requests_to("lc.get")) == 1


async def test_an_unknown_id_is_refused_before_any_write(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("upsert_opportunity", {"id": "nope123", "status": "won"})
    assert result.is_error and "Opportunity not found" in text_of(result)
    assert sandbox.requests_to("lc.upsert") == []


async def test_without_read_scope_the_configured_pipeline_is_sent_and_said(
    client: Client, sandbox: SandboxState
) -> None:
    from opportunity_mcp.sandbox import Fault

    created = await client.call_tool("upsert_opportunity", {"name": "Sin lectura"})
    assert created.structured_content is not None
    sandbox.inject(
        Fault(route="lc.get", status=401, body='{"statusCode":401,"message":"not authorized for this scope"}')
    )
    result = await client.call_tool("upsert_opportunity", {"id": created.structured_content["id"], "status": "won"})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["warnings"] == [
        "could not read the opportunity's pipeline; sent the configured one"
    ]


async def test_an_update_by_id_with_a_stage_name_reads_the_deal_once(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("upsert_opportunity", {"name": "Una lectura", "pipelineName": "Renovaciones"})
    assert created.structured_content is not None
    sandbox.requests.clear()
    deal = created.structured_content["id"]
    moved = await client.call_tool("upsert_opportunity", {"id": deal, "stageName": "Renewed"})
    assert not moved.is_error, text_of(moved)
    assert len(sandbox.requests_to("lc.get")) == 1  # its pipeline, for the stage's name and for the write alike
    (sent,) = sandbox.requests_to("lc.upsert")
    assert sent.body["pipelineId"] == "pipe-renewals"  # kept in its own pipeline
