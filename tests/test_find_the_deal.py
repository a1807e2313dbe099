"""The deal found from what the conversation knows: an update by the customer's phone, a true upsert
by contact and pipeline, a warning before a second open deal, and the read tool, on both CRMs,
through the protocol against the sandbox."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import LC_PIPELINE, SandboxState
from opportunity_mcp.sandbox.deals import add_lc_deal, add_plazbot_deal
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
MARIA = "+51 912 345 678"  # contact-456 on Plazbot, LiKJ2vnRg5ETM8Z19K7 on LeadConnector
STAGE = "7915dedc-8f18-44d5-8bc3-77c04e994a10"  # New lead


def writes(sandbox: SandboxState) -> int:
    return sum(len(sandbox.requests_to(r)) for r in ("plazbot.create", "plazbot.update", "lc.upsert", "lc.create"))


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool(tool, arguments)
    return bool(result.is_error), text_of(result), result.structured_content or {}


# --- update_opportunity_field by contact (Plazbot) ---------------------------------------------


async def test_an_update_by_phone_moves_the_one_deal_the_server_created(client: Client, sandbox: SandboxState) -> None:
    failed, _, created = await call(client, "create_opportunity", {**DEAL, "contactPhone": MARIA})
    assert not failed
    sandbox.requests.clear()
    failed, said, env = await call(
        client, "update_opportunity_field", {"contactPhone": MARIA, "field": "stageId", "value": "Propuesta"}
    )
    assert not failed, said
    assert env["id"] == created["id"] and env["action"] == "updated"
    head = f"Updated stageId of opportunity {created['code']} 'Plan anual' of 'Maria Lopez (+51912345678)'"
    assert said.startswith(head)
    assert said.endswith("to 'Propuesta'.")
    (update,) = sandbox.requests_to("plazbot.update")
    assert update.query["id"] == created["id"] and update.body["stageId"] == "stage-proposal"
    # The journal knew the deal: contact, the deal read by id, the update (the stages list aside).
    assert sandbox.requests_to("plazbot.list") == []
    assert len(sandbox.requests_to("plazbot.get")) == 1


async def test_an_update_by_phone_finds_a_deal_made_elsewhere_by_reading_the_list(
    client: Client, sandbox: SandboxState
) -> None:
    for i in range(45):  # three pages of other customers' deals
        add_plazbot_deal(sandbox, f"Otro {i}", "contact-458")
    mine = add_plazbot_deal(sandbox, "Plan mensual", "contact-456")
    add_plazbot_deal(sandbox, "Plan viejo", "contact-456", win_loss=1)  # closed: ignored
    add_plazbot_deal(sandbox, "Plan borrado", "contact-456", deleted=True)  # deleted: ignored
    failed, said, env = await call(
        client, "update_opportunity_field", {"contactEmail": "maria@empresa.pe", "field": "amount", "value": 90}
    )
    assert not failed, said
    assert env["id"] == mine["id"] and sandbox.plazbot[mine["id"]]["amount"] == 90
    assert len(sandbox.requests_to("plazbot.list")) == 3


async def test_an_update_by_contact_with_several_open_deals_lists_them(client: Client, sandbox: SandboxState) -> None:
    first = add_plazbot_deal(sandbox, "Plan anual", "contact-456", amount=1200, stage="stage-proposal")
    add_plazbot_deal(sandbox, "Plan mensual", "contact-456", amount=100)
    failed, said, _ = await call(
        client, "update_opportunity_field", {"contactId": "contact-456", "field": "stageId", "value": "stage-won"}
    )
    assert failed
    assert "Ambiguous: 'contact-456' has 2 open deals. Nothing was written; pass opportunityName" in said
    assert f"'Plan anual' (stage 'Propuesta', 1,200.00, open, id {first['id']})" in said
    assert writes(sandbox) == 0
    failed, said, env = await call(
        client,
        "update_opportunity_field",
        {"contactId": "contact-456", "opportunityName": "plan ANUAL", "field": "stageId", "value": "stage-won"},
    )
    assert not failed, said
    assert env["id"] == first["id"]


async def test_an_update_by_contact_without_an_open_deal_says_to_create_one(
    client: Client, sandbox: SandboxState
) -> None:
    add_plazbot_deal(sandbox, "Plan viejo", "contact-456", win_loss=2)
    failed, said, _ = await call(
        client, "update_opportunity_field", {"contactPhone": MARIA, "field": "stageId", "value": "Nuevo"}
    )
    assert failed
    assert "Not found: 'Maria Lopez (+51912345678)' has no open deal. Nothing was written; create one" in said
    assert "create_opportunity" in said and writes(sandbox) == 0


async def test_a_page_limit_reached_is_said_not_taken_for_none(config: ServerConfig, sandbox: SandboxState) -> None:
    for i in range(30):
        add_plazbot_deal(sandbox, f"Otro {i}", "contact-458")
    add_plazbot_deal(sandbox, "Plan anual", "contact-456")  # on the second page
    async with Client(build_server(replace(config, plazbot_pages=1)), mode="legacy") as client:
        failed, said, _ = await call(
            client, "update_opportunity_field", {"contactId": "contact-456", "field": "amount", "value": 5}
        )
    assert failed and "among the deals that could be read in time (the list is long)" in said
    assert len(sandbox.requests_to("plazbot.list")) == 1 and writes(sandbox) == 0


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"field": "amount", "value": 5}, "opportunityId: required, or find the deal by contactPhone"),
        (
            {"opportunityId": "x", "contactPhone": MARIA, "field": "amount", "value": 5},
            "opportunityId and contactPhone: give one of",
        ),
        ({"opportunityId": "x", "opportunityName": "y", "field": "amount", "value": 5}, "opportunityName: only with"),
    ],
)
async def test_an_update_names_its_deal_one_way(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], said: str
) -> None:
    failed, text, _ = await call(client, "update_opportunity_field", arguments)
    assert failed and said in text
    assert sandbox.requests == []


# --- LeadConnector ----------------------------------------------------------------------------


async def test_an_upsert_by_phone_updates_the_contacts_open_deal_in_the_pipeline(
    client: Client, sandbox: SandboxState
) -> None:
    mine = add_lc_deal(sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE, value=100)
    renewal = "3b2a1c0d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
    add_lc_deal(sandbox, "Renovación", "LiKJ2vnRg5ETM8Z19K7", pipeline="pipe-renewals", stage=renewal)
    add_lc_deal(sandbox, "Antiguo", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE, status="won")
    sandbox.requests.clear()
    failed, said, env = await call(
        client, "upsert_opportunity", {"contactPhone": MARIA, "name": "Plan anual", "stageName": "Contacted"}
    )
    assert not failed, said
    assert env["id"] == mine["id"] and env["action"] == "updated"
    assert sandbox.leadconnector[mine["id"]]["pipelineStageId"] == "0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f"
    (search,) = sandbox.requests_to("lc.search")
    assert search.query["contact_id"] == "LiKJ2vnRg5ETM8Z19K7" and search.query["pipeline_id"] == LC_PIPELINE
    assert search.query["status"] == "open"
    assert len(sandbox.leadconnector) == 3


async def test_an_upsert_by_phone_without_a_deal_creates_one_linked_to_the_contact(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.options.upsert_shapes = "followers"  # this location's upsert takes no contactId
    failed, said, env = await call(client, "upsert_opportunity", {"contactPhone": MARIA, "name": "Plan anual"})
    assert not failed, said
    assert env["action"] == "created"
    assert sandbox.leadconnector[env["id"]]["contactId"] == "LiKJ2vnRg5ETM8Z19K7"
    (create,) = sandbox.requests_to("lc.create")
    assert create.body["contactId"] == "LiKJ2vnRg5ETM8Z19K7" and create.body["status"] == "open"
    assert "created with POST /opportunities/" in said
    # The first call learned the location's form from a refused upsert (nothing written by it); the
    # next new deal for a contact goes straight to the create.
    assert len(sandbox.requests_to("lc.upsert")) == 1 and len(sandbox.leadconnector) == 1
    sandbox.requests.clear()
    failed, said, env = await call(client, "upsert_opportunity", {"contactPhone": "+14155550100", "name": "Otro"})
    assert not failed and env["action"] == "created", said
    assert sandbox.requests_to("lc.upsert") == [] and len(sandbox.requests_to("lc.create")) == 1


async def test_an_upsert_by_phone_with_two_open_deals_lists_them(client: Client, sandbox: SandboxState) -> None:
    for name in ("Plan anual", "Plan mensual"):
        add_lc_deal(sandbox, name, "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE)
    failed, said, _ = await call(client, "upsert_opportunity", {"contactPhone": MARIA, "name": "Nuevo nombre"})
    assert failed and "has 2 open deals" in said and "'Plan anual' (stage 'New lead'" in said
    assert writes(sandbox) == 0
    failed, said, _ = await call(
        client, "upsert_opportunity", {"contactPhone": MARIA, "opportunityName": "Plan mensual", "name": "Plan pro"}
    )
    assert not failed, said
    assert "name 'Plan mensual' → 'Plan pro'" in said


async def test_allow_duplicate_always_creates_a_new_deal(client: Client, sandbox: SandboxState) -> None:
    add_lc_deal(sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE)
    failed, said, env = await call(
        client, "upsert_opportunity", {"contactPhone": MARIA, "name": "Plan anual", "allowDuplicate": True}
    )
    assert not failed, said
    assert env["action"] == "created" and len(sandbox.leadconnector) == 2
    assert sandbox.requests_to("lc.search") == []


# --- find_opportunities ---------------------------------------------------------------------


async def test_find_lists_a_contacts_deals_newest_first_on_plazbot(client: Client, sandbox: SandboxState) -> None:
    older = add_plazbot_deal(sandbox, "Plan viejo", "contact-456", amount=300, win_loss=1)
    newer = add_plazbot_deal(sandbox, "Plan anual", "contact-456", amount=1200, stage="stage-proposal")
    add_plazbot_deal(sandbox, "De otra", "contact-458")
    sandbox.plazbot[newer["id"]]["updatedDate"] = "2099-01-01T00:00:00Z"
    failed, said, found = await call(client, "find_opportunities", {"contactPhone": MARIA, "accountId": "ws-sandbox"})
    assert not failed, said
    assert said.startswith("Found 2 deals of 'Maria Lopez (+51912345678)' in workspace ws-sandbox, newest first: ")
    assert f"'Plan anual' (stage 'Propuesta', 1,200.00, open, id {newer['id']}, changed 2099-01-01)" in said
    assert [d["id"] for d in found["deals"]] == [newer["id"], older["id"]]
    assert found["deals"][1]["status"] == "closed" and found["complete"] is True
    assert writes(sandbox) == 0
    failed, said, found = await call(
        client, "find_opportunities", {"contactId": "contact-456", "status": "open", "accountId": "ws-sandbox"}
    )
    assert [d["id"] for d in found["deals"]] == [newer["id"]]


async def test_find_on_leadconnector_filters_on_its_side(client: Client, sandbox: SandboxState) -> None:
    mine = add_lc_deal(sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE, value=50)
    renewed = "6c5b4a39-2817-4f6e-8d5c-4b3a29180f7e"
    add_lc_deal(sandbox, "Renovación", "LiKJ2vnRg5ETM8Z19K7", pipeline="pipe-renewals", stage=renewed)
    sandbox.requests.clear()
    failed, said, found = await call(
        client, "find_opportunities", {"contactPhone": MARIA, "pipelineName": "Ventas", "accountId": "loc-sandbox"}
    )
    assert not failed, said
    assert [d["id"] for d in found["deals"]] == [mine["id"]] and found["deals"][0]["stage"] == "New lead"
    (search,) = sandbox.requests_to("lc.search")
    assert search.query["pipeline_id"] == LC_PIPELINE and search.query["contact_id"] == "LiKJ2vnRg5ETM8Z19K7"
    failed, said, _ = await call(client, "find_opportunities", {"status": "won"})
    assert failed and "accountId: required, since you may read several" in said


async def test_find_is_a_read_in_tools_list(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    find = listed["find_opportunities"]
    assert find.annotations is not None and find.annotations.read_only_hint and find.annotations.idempotent_hint
    assert listed["upsert_opportunity"].annotations is not None
    assert not listed["upsert_opportunity"].annotations.read_only_hint


# --- no silent second deal (Plazbot), and a keyed repeat before any lookup ---------------------


async def test_a_second_open_deal_for_a_contact_is_said_or_refused(
    config: ServerConfig, client: Client, sandbox: SandboxState
) -> None:
    failed, _, first = await call(client, "create_opportunity", {**DEAL, "contactPhone": MARIA})
    assert not failed and first["warnings"] == []
    failed, said, second = await call(client, "create_opportunity", {**DEAL, "name": "Plan pro", "contactPhone": MARIA})
    assert not failed
    (note,) = second["warnings"]
    assert note.startswith("'Maria Lopez (+51912345678)' already had an open deal: 'Plan anual' (stage no stage")
    assert f"id {first['id']})" in note and "update_opportunity_field" in said
    forced = {**DEAL, "name": "Otro", "contactPhone": MARIA, "allowDuplicate": True}
    assert (await call(client, "create_opportunity", forced))[2]["warnings"] == []
    plazbot = replace(config.accounts[0], options=(("open_deals", "refuse"),))
    strict = replace(config, accounts=(plazbot, *config.accounts[1:]))
    async with Client(build_server(strict), mode="legacy") as refusing:
        failed, said, _ = await call(refusing, "create_opportunity", {**DEAL, "name": "Cuarto", "contactPhone": MARIA})
    assert failed and "Refused: 'Maria Lopez (+51912345678)' already has an open deal" in said
    assert len(sandbox.plazbot) == 3
    journal = (await client.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    assert journal.splitlines()[0].split()[1:4] == ["create_opportunity", "ws-sandbox", "failed"]  # nothing sent


@pytest.mark.parametrize("tool", ["create_opportunity", "upsert_opportunity"])
async def test_a_keyed_repeat_is_answered_with_every_lookup_route_failing(
    client: Client, sandbox: SandboxState, tool: str
) -> None:
    from opportunity_mcp.sandbox import Fault

    create = tool == "create_opportunity"
    arguments: dict[str, Any] = {"contactPhone": MARIA, "stageName": "Propuesta" if create else "Contacted"}
    arguments |= {**(DEAL if create else {"name": "Plan anual"}), "idempotencyKey": "wamid.1"}
    failed, said, first = await call(client, tool, arguments)
    assert not failed, said
    sandbox.requests.clear()
    sandbox.inject(Fault(route="*", status=503, times=1000))  # every route of the CRM fails from here on
    failed, said, again = await call(client, tool, arguments)
    assert not failed, said
    assert again["action"] == "already_done" and again["id"] == first["id"]
    assert sandbox.requests == []  # answered from the journal: zero upstream requests
