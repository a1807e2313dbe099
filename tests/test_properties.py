"""Property-based: whatever arguments an agent sends (ids, names, phones, emails, amounts, or any
JSON at all), the server answers (never the SDK's bare crash message), and a refusal of the
arguments and a write to the CRM never go together: a call is refused with nothing written, or its
arguments were good enough to write. The rule is stated on what the server did, not by validating
the arguments again."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from pydantic import BaseModel

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.models import CreateOpportunityArgs, UpdateOpportunityFieldArgs, UpsertOpportunityArgs
from opportunity_mcp.sandbox import SandboxState
from opportunity_mcp.tools.find import FindOpportunitiesArgs
from tests.conftest import assert_clean, text_of

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
IDS = st.sampled_from(["contact-456", "user-123", "stage-new", "opp-1", "a b", "", "x/../y", "ü", "0" * 200])
TEXT = st.text(max_size=40) | st.sampled_from(["Plan anual", "  ", "x" * 300])
PHONES = st.sampled_from(["+51 912 345 678", "912345678", "+51987654321", "0051912345678", "x", "+1"]) | st.text(
    max_size=16
)
EMAILS = st.sampled_from(["maria@empresa.pe", "juan@acme.com", "MARIA@x.pe", "nope", "a@b"]) | st.text(max_size=16)
NAMES = st.sampled_from(["Propuesta", "negociacion", "Ventas", "Renewed", "Precio", "Plan anual", "No existe"]) | TEXT
MONEY = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 10**12) | st.sampled_from(["12.5", "1,200"])


def _args(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    optional = {name: strategy | ANY_JSON for name, strategy in fields.items()}
    return st.fixed_dictionaries({}, optional=optional) | st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=3)


TOOLS: dict[str, tuple[type[BaseModel], st.SearchStrategy[dict[str, Any]]]] = {
    "create_opportunity": (
        CreateOpportunityArgs,
        _args(
            {
                "name": TEXT,
                "description": TEXT,
                "amount": MONEY,
                "contactId": IDS,
                "assignedComercialId": IDS,
                "stageId": IDS,
                "expirationDate": st.sampled_from(["2026-12-31", "2026-02-30", "mañana", "2026-12-31T10:00Z"]),
                "workspaceId": IDS,
                "idempotencyKey": TEXT,
                "allowDuplicate": st.booleans(),
                "contactPhone": PHONES,
                "contactEmail": EMAILS,
                "assigneeEmail": EMAILS,
                "stageName": NAMES,
            }
        ),
    ),
    "update_opportunity_field": (
        UpdateOpportunityFieldArgs,
        _args(
            {
                "opportunityId": IDS,
                "field": st.sampled_from(["name", "amount", "expirationDate", "customFields", "status"]),
                "value": TEXT | MONEY,
                "customFieldName": TEXT,
                "workspaceId": IDS,
                "contactId": IDS,
                "contactPhone": PHONES,
                "contactEmail": EMAILS,
                "opportunityName": NAMES,
            }
        ),
    ),
    "upsert_opportunity": (
        UpsertOpportunityArgs,
        _args(
            {
                "id": IDS,
                "name": TEXT,
                "status": st.sampled_from(["open", "won", "all", "closed"]),
                "pipelineStageId": IDS,
                "monetaryValue": MONEY,
                "assignedTo": IDS,
                "lostReasonId": IDS,
                "contactId": IDS,
                "followers": st.lists(IDS, max_size=3),
                "followersActionType": st.sampled_from(["add", "remove", "x"]),
                "isRemoveAllFollowers": st.booleans(),
                "pipelineId": IDS,
                "locationId": IDS,
                "idempotencyKey": TEXT,
                "contactPhone": PHONES,
                "contactEmail": EMAILS,
                "assigneeEmail": EMAILS,
                "stageName": NAMES,
                "pipelineName": NAMES,
                "lostReasonName": NAMES,
                "opportunityName": NAMES,
            }
        ),
    ),
    "find_opportunities": (
        FindOpportunitiesArgs,
        _args(
            {
                "contactId": IDS,
                "contactPhone": PHONES,
                "contactEmail": EMAILS,
                "name": NAMES,
                "stageName": NAMES,
                "pipelineName": NAMES,
                "status": st.sampled_from(["open", "won", "closed", "all"]),
                "accountId": st.sampled_from(["ws-sandbox", "loc-sandbox", "nope"]),
            }
        ),
    ),
}
WRITES = ("plazbot.create", "plazbot.update", "lc.upsert", "lc.create")


@pytest.mark.parametrize("tool", list(TOOLS))
def test_no_input_crashes_or_reaches_the_crm_unvalidated(
    tool: str, config: ServerConfig, sandbox: SandboxState
) -> None:
    _, arguments_strategy = TOOLS[tool]
    server = build_server(config)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(arguments=arguments_strategy)
    def check(arguments: dict[str, Any]) -> None:
        sandbox.reset()

        async def call() -> None:
            async with Client(server, mode="legacy") as client:
                result = await client.call_tool(tool, arguments)
            text = text_of(result)
            assert text != f"Error executing tool {tool}", "the server crashed"
            assert_clean(text)
            written = any(sandbox.requests_to(route) for route in WRITES)
            refused = "Invalid arguments" in text
            assert not (written and refused), f"refused, yet written: {arguments!r}"
            action = (result.structured_content or {}).get("action")
            if not result.is_error and action in ("created", "updated"):
                assert written, f"answered {action} with nothing written: {arguments!r}"

        anyio.run(call)

    check()
