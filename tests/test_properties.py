"""Property-based: whatever arguments an agent sends, the server answers (never the SDK's bare crash
message), and nothing reaches the CRM unless it passed the tool's validation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from pydantic import BaseModel, ValidationError

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.models import CreateOpportunityArgs, UpdateOpportunityFieldArgs, UpsertOpportunityArgs
from opportunity_mcp.sandbox import SandboxState
from tests.conftest import assert_clean, text_of

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
IDS = st.sampled_from(["contact-456", "user-123", "stage-new", "opp-1", "a b", "", "x/../y", "ü", "0" * 200])
TEXT = st.text(max_size=40) | st.sampled_from(["Plan anual", "  ", "x" * 300])
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
            }
        ),
    ),
}


def _valid(model: type[BaseModel], arguments: dict[str, Any]) -> bool:
    # What a client may send beside the model: its bookkeeping (n8n's toolCallId, sessionId), and
    # null or "" for an optional argument it does not know (strict mode): both mean "not given".
    given = {
        name: value
        for name, value in arguments.items()
        if name not in ("toolCallId", "sessionId")
        and not (
            name in model.model_fields
            and not model.model_fields[name].is_required()
            and (value is None or (isinstance(value, str) and not value.strip()))
        )
    }
    try:
        parsed = model.model_validate(given)
    except ValidationError:
        return False
    if isinstance(parsed, UpdateOpportunityFieldArgs):
        try:
            parsed.checked_value()
        except ValueError:
            return False
    return True


@pytest.mark.parametrize("tool", list(TOOLS))
def test_no_input_crashes_or_reaches_the_crm_unvalidated(
    tool: str, config: ServerConfig, sandbox: SandboxState
) -> None:
    model, arguments_strategy = TOOLS[tool]
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
            if sandbox.requests:
                assert _valid(model, arguments), f"unvalidated input reached the CRM: {arguments!r}"

        anyio.run(call)

    check()
