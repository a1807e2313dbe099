"""Names, emails and phones become ids inside the tools, through the protocol against the sandbox:
hits, misses with candidates, ambiguities, ids with no lookup, a warm cache, a refresh on a miss,
lookups refused (401/403) or failing (5xx), and the receipts that name what was resolved."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import Fault, SandboxState
from tests.conftest import assert_clean, text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
PZ_LOOKUPS = ("plazbot.contact_phone", "plazbot.contact_email", "plazbot.users", "plazbot.workspace")
LC_LOOKUPS = ("lc.contact_duplicate", "lc.pipelines", "lc.location", "lc.users", "lc.lost_reasons")


def _lookups(sandbox: SandboxState, routes: tuple[str, ...] = PZ_LOOKUPS + LC_LOOKUPS) -> int:
    return sum(len(sandbox.requests_to(route)) for route in routes)


async def _journal_requests(client: Client) -> str:
    text: str = (await client.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    return text.splitlines()[0].rsplit(" ", 2)[-2]


@pytest.mark.parametrize("phone", ["+51 912 345 678", "0051 912-345-678", "51912345678", "(+51) 912.345.678"])
async def test_a_phone_as_people_write_it_finds_the_contact(client: Client, sandbox: SandboxState, phone: str) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "contactPhone": phone})
    assert not result.is_error, text_of(result)
    (search,) = sandbox.requests_to("plazbot.contact_phone")
    assert search.query["cellphone"] == "51912345678"  # Plazbot's form: digits with the country code
    (sent,) = sandbox.requests_to("plazbot.create")
    assert sent.body["contactId"] == "contact-456"
    assert "contact 'Maria Lopez (+51912345678)'" in text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["resolved"] == {"contact": "Maria Lopez (+51912345678)"}


async def test_names_and_emails_in_one_create(client: Client, sandbox: SandboxState) -> None:
    arguments = {
        **DEAL,
        "contactEmail": "MARIA@empresa.pe",
        "assigneeEmail": "Juan@Acme.com",
        "stageName": " PROPUESTA ",
    }
    result = await client.call_tool("create_opportunity", arguments)
    assert not result.is_error, text_of(result)
    (sent,) = sandbox.requests_to("plazbot.create")
    assert (sent.body["contactId"], sent.body["assignedComercialId"], sent.body["stageId"]) == (
        "contact-456",
        "user-123",
        "stage-proposal",
    )
    text = text_of(result)
    assert "stage 'Propuesta', contact 'Maria Lopez (MARIA@empresa.pe)', assigned to 'juan@acme.com'" in text
    assert await _journal_requests(client) == "4"  # contact, users, workspace, create


async def test_ids_given_as_ids_cost_no_lookup(client: Client, sandbox: SandboxState) -> None:
    ids = {"contactId": "contact-456", "assignedComercialId": "user-123", "stageId": "stage-won"}
    assert not (await client.call_tool("create_opportunity", {**DEAL, **ids})).is_error
    update = {"opportunityId": next(iter(sandbox.plazbot)), "field": "stageId", "value": "stage-lost"}
    assert not (await client.call_tool("update_opportunity_field", update)).is_error
    upsert = {"name": "x", "pipelineStageId": "0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f", "assignedTo": "user-lc-1"}
    assert not (await client.call_tool("upsert_opportunity", upsert)).is_error
    assert _lookups(sandbox) == 0


async def test_a_warm_cache_costs_only_the_contact_lookup(client: Client, sandbox: SandboxState) -> None:
    # allowDuplicate: the contact's earlier deals are not read back for the open-deal note (its own test).
    named: dict[str, Any] = {"contactPhone": "+51912345678", "assigneeEmail": "ana@acme.com", "stageName": "Ganado"}
    named["allowDuplicate"] = True
    for n in range(3):
        result = await client.call_tool("create_opportunity", {**DEAL, **named, "name": f"Plan {n}"})
        assert not result.is_error, text_of(result)
    assert len(sandbox.requests_to("plazbot.workspace")) == len(sandbox.requests_to("plazbot.users")) == 1
    assert len(sandbox.requests_to("plazbot.contact_phone")) == 3  # contacts are looked up every time
    assert await _journal_requests(client) == "2"  # the contact and the write


@pytest.mark.parametrize("shape", ["states", "phases"])
async def test_stages_are_read_from_either_documented_workspace(
    client: Client, sandbox: SandboxState, shape: Any
) -> None:
    sandbox.options.plazbot_workspace_shape = shape
    result = await client.call_tool("create_opportunity", {**DEAL, "stageName": "calificado"})
    assert not result.is_error, text_of(result)
    assert sandbox.requests_to("plazbot.create")[0].body["stageId"] == "stage-qualified"


async def test_a_name_missing_from_the_kept_list_fetches_it_again_once(
    client: Client, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not (await client.call_tool("create_opportunity", {**DEAL, "stageName": "Nuevo"})).is_error
    # A stage made a minute ago, in the CRM (the seed is the session's: put back after the test).
    monkeypatch.setattr(sandbox.seed, "plazbot_stages", (*sandbox.seed.plazbot_stages, ("stage-demo", "Demo agendada")))
    found = await client.call_tool("create_opportunity", {**DEAL, "name": "Otro", "stageName": "demo agendada"})
    assert not found.is_error, text_of(found)
    assert sandbox.requests_to("plazbot.create")[-1].body["stageId"] == "stage-demo"
    missing = await client.call_tool("create_opportunity", {**DEAL, "name": "Tercero", "stageName": "Cerrado"})
    assert missing.is_error
    assert len(sandbox.requests_to("plazbot.workspace")) == 3  # first, the refresh that found it, one more


async def test_a_miss_lists_the_candidates_and_writes_nothing(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "stageName": "Negociasion"})
    assert result.is_error
    text = text_of(result)
    assert "Not found: stageName 'Negociasion' matches no stage in workspace ws-sandbox" in text
    assert "'Nuevo' (stage-new), 'Calificado' (stage-qualified)" in text and "and 2 more" in text
    assert "Nothing was written" in text
    assert sandbox.requests_to("plazbot.create") == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"stageName": "negociacion"},
            "Ambiguous: stageName 'negociacion' matches 2 stages. Nothing was written; pass stageId with the one "
            "you mean: 'Negociación' (stage-negotiation), 'NEGOCIACION' (stage-negotiation-old).",
        ),
        (
            {"contactPhone": "+51 987 654 321"},
            "Ambiguous: 2 contacts have contactPhone +51987654321. Nothing was written; pass contactId with the "
            "one you mean: 'Mario López' (contact-457), 'Marta Lopez' (contact-458).",
        ),
    ],
)
async def test_an_ambiguity_lists_the_matches_and_writes_nothing(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, **arguments})
    assert result.is_error and expected in text_of(result)
    assert sandbox.requests_to("plazbot.create") == []


@pytest.mark.parametrize("not_found", ["empty", "404", "failure"])
async def test_every_documented_no_match_reads_as_no_contact(
    client: Client, sandbox: SandboxState, not_found: Any
) -> None:
    sandbox.options.plazbot_not_found = not_found
    result = await client.call_tool("create_opportunity", {**DEAL, "contactEmail": "nadie@empresa.pe"})
    assert result.is_error
    assert "Not found: no contact in workspace ws-sandbox has contactEmail nadie@empresa.pe" in text_of(result)
    assert sandbox.requests_to("plazbot.create") == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"contactPhone": "+51 9123"}, "contactPhone: is too short to hold a country code (6 digits; at least 8)"),
        ({"contactPhone": "0912345678"}, "contactPhone: is not written with its country code: add the country code"),
        ({"contactEmail": "maria"}, "contactEmail: must be an email address"),
        (
            {"contactId": "contact-456", "contactPhone": "+51912345678"},
            "contactId and contactPhone: give one of contactId, contactPhone, contactEmail, not several",
        ),
        ({"stageId": "stage-new", "stageName": "Nuevo"}, "stageId and stageName: give one of stageId, stageName"),
    ],
)
async def test_a_bad_human_argument_is_refused_before_any_request(
    client: Client, sandbox: SandboxState, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, **arguments})
    assert result.is_error and expected in text_of(result)
    assert sandbox.requests == []


async def test_the_same_contact_by_phone_and_by_id_is_one_deal(client: Client, sandbox: SandboxState) -> None:
    first = await client.call_tool("create_opportunity", {**DEAL, "contactPhone": "+51912345678"})
    again = await client.call_tool("create_opportunity", {**DEAL, "contactId": "contact-456"})
    other = await client.call_tool("create_opportunity", {**DEAL, "contactEmail": "marta@empresa.pe"})
    assert not first.is_error and not again.is_error and not other.is_error
    assert again.structured_content is not None and again.structured_content["action"] == "already_done"
    assert len(sandbox.requests_to("plazbot.create")) == 2  # Maria once, Marta once


async def test_a_lookup_the_credentials_may_not_make_says_so(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.contact_phone", status=401, body='{"success":false,"message":"No"}'))
    refused = await client.call_tool("create_opportunity", {**DEAL, "contactPhone": "+51912345678"})
    sandbox.lc_missing_scopes.add("contacts.readonly")
    forbidden = await client.call_tool("upsert_opportunity", {"name": "x", "contactEmail": "maria@empresa.pe"})
    assert refused.is_error and forbidden.is_error
    assert "Lookup refused: Plazbot refused the credentials (HTTP 401)" in text_of(refused)
    assert "nothing was written" in text_of(refused)
    text = text_of(forbidden)
    assert "Lookup refused: LeadConnector refused permission (HTTP 403)" in text
    assert "(it needs contacts.readonly)" in text and "Pass contactId instead" in text
    assert sandbox.requests_to("plazbot.create") == [] and sandbox.requests_to("lc.upsert") == []
    for text in (text_of(refused), text_of(forbidden)):
        assert_clean(text)


async def test_a_failing_lookup_is_retried_and_then_reported(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.workspace", status=503))
    recovered = await client.call_tool("create_opportunity", {**DEAL, "stageName": "Nuevo"})
    assert not recovered.is_error, text_of(recovered)
    assert len(sandbox.requests_to("plazbot.workspace")) == 2  # a GET is safe to send again
    sandbox.inject(Fault(route="plazbot.users", status=503, times=10))
    failed = await client.call_tool("create_opportunity", {**DEAL, "name": "B", "assigneeEmail": "ana@acme.com"})
    assert failed.is_error
    assert text_of(failed).split(": ", 1)[1].startswith("Lookup failed: Plazbot failed on its side (HTTP 503)")
    assert "Nothing was written" in text_of(failed)
    assert len(sandbox.requests_to("plazbot.create")) == 1


async def test_update_values_may_be_names_emails_and_phones(client: Client, sandbox: SandboxState) -> None:
    created = await client.call_tool("create_opportunity", DEAL)
    assert created.structured_content is not None
    opp = created.structured_content["id"]
    for field, value, sent in (
        ("stageId", "ganado", "stage-won"),
        ("assignedAgentId", "ana@acme.com", "user-124"),
        ("contactId", "+51 912 345 678", "contact-456"),
        ("contactId", "marta@empresa.pe", "contact-458"),
    ):
        result = await client.call_tool(
            "update_opportunity_field", {"opportunityId": opp, "field": field, "value": value}
        )
        assert not result.is_error, text_of(result)
        assert sandbox.requests_to("plazbot.update")[-1].body[field] == sent
    assert text_of(result).startswith(
        "Updated contactId of opportunity"
    ) and "'Marta Lopez (marta@empresa.pe)'" in text_of(result)


async def test_upsert_resolves_pipeline_stage_seller_contact_and_lost_reason(
    client: Client, sandbox: SandboxState
) -> None:
    named = {
        "name": "Renovación",
        "pipelineName": "renovaciones",
        "stageName": "renewed",
        "assigneeEmail": "ana@acme.com",
    }
    renewal = await client.call_tool("upsert_opportunity", named)
    lost = await client.call_tool(
        "upsert_opportunity",
        {"name": "Perdida", "status": "lost", "lostReasonName": "PRECIO", "stageName": "Contacted"},
    )
    linked = await client.call_tool("upsert_opportunity", {"name": "Con contacto", "contactPhone": "+51912345678"})
    for result in (renewal, lost, linked):
        assert not result.is_error, text_of(result)
    first, second, third = (r.body for r in sandbox.requests_to("lc.upsert"))
    assert (first["pipelineId"], first["pipelineStageId"], first["assignedTo"]) == (
        "pipe-renewals",
        "6c5b4a39-2817-4f6e-8d5c-4b3a29180f7e",
        "user-lc-1",
    )
    assert (second["lostReasonId"], second["pipelineStageId"]) == ("lost-price", "0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f")
    assert third["contactId"] == "LiKJ2vnRg5ETM8Z19K7"
    assert sandbox.requests_to("lc.contact_duplicate")[0].query["number"] == "+51912345678"  # E.164 for LeadConnector
    assert len(sandbox.requests_to("lc.pipelines")) == 1  # pipelines and their stages: one list, kept
    assert "pipeline 'Renovaciones', stage 'Renewed'" in text_of(renewal)
    assert "assigned to 'ana@acme.com'" in text_of(renewal)
    assert "lost reason 'Precio'" in text_of(lost)


async def test_a_stage_name_in_another_pipeline_is_not_found_there(client: Client, sandbox: SandboxState) -> None:
    result = await client.call_tool("upsert_opportunity", {"name": "x", "stageName": "Renewed"})
    assert result.is_error
    said = text_of(result)
    assert "Not found: stageName 'Renewed' matches no stage in location loc-sandbox. Nothing was written" in said
    assert "Known: 'New lead' (7915dedc-8f18-44d5-8bc3-77c04e994a10)" in said


# Each lookup route, the call that makes it, and the write route that follows it.
LOOKUP_CALLS: dict[str, tuple[str, dict[str, Any], str]] = {
    "plazbot.contact_phone": ("create_opportunity", {**DEAL, "contactPhone": "+51912345678"}, "plazbot.create"),
    "plazbot.contact_email": ("create_opportunity", {**DEAL, "contactEmail": "maria@empresa.pe"}, "plazbot.create"),
    "plazbot.users": ("create_opportunity", {**DEAL, "assigneeEmail": "ana@acme.com"}, "plazbot.create"),
    "plazbot.workspace": ("create_opportunity", {**DEAL, "stageName": "Nuevo"}, "plazbot.create"),
    "lc.contact_duplicate": ("upsert_opportunity", {"name": "x", "contactEmail": "maria@empresa.pe"}, "lc.upsert"),
    "lc.pipelines": ("upsert_opportunity", {"name": "x", "pipelineName": "Ventas"}, "lc.upsert"),
    "lc.location": ("upsert_opportunity", {"name": "x", "assigneeEmail": "ana@acme.com"}, "lc.upsert"),
    "lc.users": ("upsert_opportunity", {"name": "x", "assigneeEmail": "ana@acme.com"}, "lc.upsert"),
    "lc.lost_reasons": ("upsert_opportunity", {"name": "x", "status": "lost", "lostReasonName": "Precio"}, "lc.upsert"),
}
# A fault, and how the call ends: None when the lookup recovers and the write lands, else its first words.
LOOKUP_FAULTS: dict[str, tuple[Fault, str | None]] = {
    "503 once": (Fault(status=503), None),
    "429 once": (Fault(status=429, headers={"Retry-After": "0"}), None),
    "dropped once": (Fault(drop="before"), None),
    "500 always": (Fault(status=500, times=10), "Lookup failed: "),
    "not JSON": (Fault(status=200, body="<html>busy</html>", content_type="text/html"), "Lookup failed: "),
    "401": (Fault(status=401, body='{"message": "Invalid token"}'), "Lookup refused: "),
    "403": (Fault(status=403, body='{"message": "Forbidden"}'), "Lookup refused: "),
}


@pytest.mark.parametrize("route", list(LOOKUP_CALLS))
@pytest.mark.parametrize("fault", list(LOOKUP_FAULTS))
async def test_lookup_fault_matrix(client: Client, sandbox: SandboxState, route: str, fault: str) -> None:
    tool, arguments, write_route = LOOKUP_CALLS[route]
    injected, ends = LOOKUP_FAULTS[fault]
    sandbox.inject(Fault(**{**vars(injected), "route": route}))
    result = await client.call_tool(tool, arguments)
    if ends is None:
        assert not result.is_error, text_of(result)
        # Sent again once (a GET is safe to repeat); the sandbox records no request it dropped unread.
        assert len(sandbox.requests_to(route)) == (1 if fault == "dropped once" else 2)
        assert len(sandbox.requests_to(write_route)) == 1
    else:
        assert result.is_error
        text = text_of(result)
        assert text.split(": ", 1)[1].startswith(ends), text
        assert "othing was written" in text
        assert sandbox.requests_to(write_route) == []
        assert_clean(text)
