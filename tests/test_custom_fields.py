"""Custom fields by name on LeadConnector, through the protocol against the sandbox over loopback
HTTP: every data type checked by the field's own definition before anything is sent, written as one
create or one update (never the upsert, which takes none), read back by name; misses, wrong values
and a definitions read refused write nothing."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import LC_PIPELINE, SandboxState
from opportunity_mcp.sandbox.deals import add_lc_deal
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
MARIA = "+51 912 345 678"  # LiKJ2vnRg5ETM8Z19K7 on LeadConnector
PREFIX = "Error executing tool upsert_opportunity: "  # the SDK's, before the tool's own first words
STAGE = "7915dedc-8f18-44d5-8bc3-77c04e994a10"
EVERY_TYPE = {
    "Budget": 5000,  # MONETORY
    "units": "12",  # NUMERICAL, by its key (opportunity.units), a number as text
    "Product": "Plan anual",  # TEXT
    "Notes": "Llamar\nel lunes",  # LARGE_TEXT keeps its line break
    "Preferred date": "2026-12-20",  # DATE
    "source": "whatsapp",  # SINGLE_OPTIONS, matched like names, sent as the field spells it
    "Urgente": "si",  # RADIO: accents set aside
    "Extras": ["instalacion", "Soporte 24/7"],  # CHECKBOX
    "opportunity.colores": ["Azul"],  # MULTIPLE_OPTIONS, by its full key
}
WRITTEN = {
    "cf-budget": "5000",
    "cf-units": "12",
    "cf-product": "Plan anual",
    "cf-notes": "Llamar\nel lunes",
    "cf-date": "2026-12-20",
    "cf-source": "WhatsApp",
    "cf-urgent": "Sí",
    "cf-extras": ["Instalación", "Soporte 24/7"],
    "cf-colors": ["Azul"],
}


async def upsert(client: Client, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool("upsert_opportunity", arguments)
    return bool(result.is_error), text_of(result), result.structured_content or {}


def deal(sandbox: SandboxState) -> dict[str, Any]:
    made = add_lc_deal(sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage=STAGE, value=100)
    sandbox.requests.clear()
    return made


def writes(sandbox: SandboxState) -> int:
    return sum(len(sandbox.requests_to(r)) for r in ("lc.update", "lc.create", "lc.upsert"))


async def test_every_data_type_is_written_by_one_update(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    failed, said, env = await upsert(client, {"id": mine["id"], "monetaryValue": 900, "customFields": EVERY_TYPE})
    assert not failed, said
    assert env["action"] == "updated" and env["id"] == mine["id"]
    assert "custom fields 'Budget', 'Units', 'Product'" in said
    (put,) = sandbox.requests_to("lc.update")
    assert put.body["monetaryValue"] == 900 and "locationId" not in put.body
    assert {i["id"]: i["field_value"] for i in put.body["customFields"]} == WRITTEN
    assert writes(sandbox) == 1  # one write: no upsert beside it
    held = {v["id"]: v["fieldValue"] for v in sandbox.leadconnector[mine["id"]]["customFields"]}
    assert held == WRITTEN


async def test_a_new_deal_with_custom_fields_is_one_create_linked_to_its_contact(
    client: Client, sandbox: SandboxState
) -> None:
    arguments = {"name": "Plan anual", "contactPhone": MARIA, "customFields": {"Budget": "1 200", "Source": "Web"}}
    failed, said, env = await upsert(client, arguments)
    assert not failed and env["action"] == "created", said
    (post,) = sandbox.requests_to("lc.create")
    assert post.body["contactId"] == "LiKJ2vnRg5ETM8Z19K7"
    sent = [{"id": "cf-budget", "field_value": "1200"}, {"id": "cf-source", "field_value": "Web"}]
    assert post.body["customFields"] == sent
    assert writes(sandbox) == 1
    (made,) = sandbox.leadconnector.values()
    assert made["customFields"] == [{"id": "cf-budget", "fieldValue": "1200"}, {"id": "cf-source", "fieldValue": "Web"}]


async def test_the_same_key_again_writes_nothing_more(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    arguments = {"id": mine["id"], "customFields": {"Product": "Plan B"}, "idempotencyKey": "wamid.cf1"}
    assert not (await upsert(client, arguments))[0]
    failed, said, env = await upsert(client, arguments)
    assert not failed and env["action"] == "already_done", said
    assert len(sandbox.requests_to("lc.update")) == 1


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"Presupuesto": 1}, "customFields 'Presupuesto' matches no opportunity custom field"),
        ({"Source": "Email"}, "'Email' is not one of its options. Options: 'WhatsApp', 'Web', 'Referido'"),
        ({"Extras": "Instalación"}, "customFields 'Extras': must be a list of its options"),
        ({"Extras": ["Nada"]}, "'Nada' is not one of its options"),
        ({"Preferred date": "20/12/2026"}, "must be a date as YYYY-MM-DD"),
        ({"Budget": "mil"}, "customFields 'Budget'"),
        ({"Budget": "1.200"}, "could mean 1200 or 1.200"),
        ({"Product": "x" * 501}, "must be text of 1 to 500 characters"),
        ({"Contrato": "file.pdf"}, "its type (file_upload) is not one this tool writes"),
        ({"Budget": 1, "opportunity.budget": 2}, "two names there are the same field"),
    ],
)
async def test_a_value_or_a_name_the_field_does_not_take_writes_nothing(
    client: Client, sandbox: SandboxState, fields: dict[str, Any], said: str
) -> None:
    mine = deal(sandbox)
    failed, text, _ = await upsert(client, {"id": mine["id"], "customFields": fields})
    assert failed and said in text, text
    assert text.removeprefix(PREFIX).startswith(("Invalid arguments", "Not found"))
    assert writes(sandbox) == 0


async def test_an_unknown_field_lists_the_known_ones(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    failed, text, _ = await upsert(client, {"id": mine["id"], "customFields": {"Presupuesto": 1}})
    assert failed and "Known: 'Budget' (monetory), 'Units' (numerical)" in text and "Nothing was written" in text


async def test_a_field_made_a_moment_ago_is_found_by_fetching_the_list_again_once(
    client: Client, sandbox: SandboxState
) -> None:
    mine = deal(sandbox)
    assert not (await upsert(client, {"id": mine["id"], "customFields": {"Product": "A"}}))[0]
    with sandbox.lock:
        sandbox.lc_fields.append(
            {"id": "cf-new", "name": "Canal", "fieldKey": "opportunity.canal", "dataType": "TEXT",
             "picklistOptions": [], "model": "opportunity"}
        )  # fmt: skip
    failed, said, _ = await upsert(client, {"id": mine["id"], "customFields": {"canal": "Instagram"}})
    assert not failed, said
    assert len(sandbox.requests_to("lc.custom_fields")) == 2  # kept, then fetched again on the miss
    assert {"id": "cf-new", "fieldValue": "Instagram"} in sandbox.leadconnector[mine["id"]]["customFields"]


async def test_definitions_refused_name_the_missing_scope(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    sandbox.lc_missing_scopes.add("locations/customFields.readonly")
    failed, text, _ = await upsert(client, {"id": mine["id"], "customFields": {"Product": "A"}})
    assert failed and text.removeprefix(PREFIX).startswith("Lookup refused")
    assert "locations/customFields.readonly" in text
    assert writes(sandbox) == 0


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"name": "Nuevo", "customFields": {"Product": "A"}}, "needs its contact"),
        ({"name": "Nuevo", "contactPhone": MARIA, "lostReasonName": "Precio", "customFields": {"Product": "A"}}, ""),
    ],
)
async def test_custom_fields_that_one_write_cannot_carry_are_refused(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], said: str
) -> None:
    failed, text, _ = await upsert(client, arguments)
    assert failed and text.removeprefix(PREFIX).startswith("Invalid arguments: customFields") and said in text, text
    assert writes(sandbox) == 0


async def test_find_shows_a_deals_custom_fields_by_name(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    fields = {"Budget": 5000, "Extras": ["Soporte 24/7"]}
    assert not (await upsert(client, {"id": mine["id"], "customFields": fields}))[0]
    wanted = {"contactPhone": MARIA, "accountId": "loc-sandbox"}
    result = await client.call_tool("find_opportunities", {**wanted, "customFields": True})
    text = text_of(result)
    assert not result.is_error and "'Budget' '5000'" in text and "'Extras' 'Soporte 24/7'" in text, text
    assert result.structured_content is not None
    assert result.structured_content["deals"][0]["customFields"] == {"Budget": "5000", "Extras": ["Soporte 24/7"]}
    plain = await client.call_tool("find_opportunities", wanted)
    assert "Budget" not in text_of(plain)


async def test_plazbot_create_says_where_its_custom_fields_go(client: Client, sandbox: SandboxState) -> None:
    arguments = {"name": "Plan", "description": "d", "amount": 1, "customFields": {"Budget": 1}}
    result = await client.call_tool("create_opportunity", arguments)
    assert result.is_error and "update_opportunity_field" in text_of(result) and sandbox.plazbot == {}


async def test_values_are_read_exactly(client: Client, sandbox: SandboxState) -> None:
    mine = deal(sandbox)
    week = await upsert(client, {"id": mine["id"], "customFields": {"Preferred date": "2026-W01-1"}})
    assert week[0] and "YYYY-MM-DD" in week[1]
    big = 12345678901234
    failed, said, _ = await upsert(client, {"id": mine["id"], "customFields": {"Product": big}})
    assert not failed, said
    assert {"id": "cf-product", "fieldValue": str(big)} in sandbox.leadconnector[mine["id"]]["customFields"]
    huge = await upsert(client, {"id": mine["id"], "customFields": {"Product": 10**400}})
    assert huge[0] and "Invalid arguments" in huge[1]
