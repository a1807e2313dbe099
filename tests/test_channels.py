"""Both channels carry the same facts, for every kind of outcome: clients show their model either the
text (Claude Desktop, ChatGPT, LangChain, the Agents SDK, Flowise, Dify) or the structured content
(Claude Code, VS Code, Copilot CLI, Codex, n8n), and Flowise and Dify ignore isError."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import Fault, SandboxState
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


def _same_facts(result: Any) -> None:
    text, facts = text_of(result), result.structured_content
    assert facts is not None, text
    if result.is_error:
        # A failure reads as one from its first words, and says the same on both channels.
        assert text.startswith("Error executing tool ") and facts["ok"] is False
        assert text.endswith(facts["error"])
        return
    words = {"created": "Created ", "updated": "Updated ", "already_done": "Already done, nothing sent: "}
    assert text.startswith(words[facts["action"]]), text
    assert f"(id {facts['id']})" in text
    if "code" in facts:
        assert facts["code"] in text
    for warning in facts["warnings"]:
        assert warning in text
    for said in (facts.get("resolved") or {}).values():
        assert said in text


async def test_every_outcome_says_the_same_on_both_channels(client: Client, sandbox: SandboxState) -> None:
    outcomes = [
        await client.call_tool("create_opportunity", {**DEAL, "contactPhone": "+51912345678", "stageName": "Nuevo"}),
        await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k1", "contactPhone": "+51912345678"}),
        # the same key with other arguments: answered from the journal, with the warning that they differ
        await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k1", "amount": 99}),
        await client.call_tool("create_opportunity", {**DEAL, "contactPhone": "+51912345678", "stageName": "Nuevo"}),
        await client.call_tool("upsert_opportunity", {"name": "x", "assigneeEmail": "ana@acme.com"}),
        await client.call_tool("create_opportunity", {**DEAL, "amount": -1}),  # refused arguments
        await client.call_tool("create_opportunity", {**DEAL, "stageName": "Inexistente"}),  # no such name
        await client.call_tool("create_opportunity", {**DEAL, "workspaceId": "ws-elsewhere"}),  # not allowed
    ]
    created = outcomes[0].structured_content
    assert created is not None
    outcomes.append(
        await client.call_tool(
            "update_opportunity_field", {"opportunityId": created["id"], "field": "stageId", "value": "ganado"}
        )
    )
    sandbox.inject(Fault(route="plazbot.create", status=401))
    outcomes.append(await client.call_tool("create_opportunity", {**DEAL, "name": "Otra"}))  # refused credentials
    sandbox.inject(Fault(route="plazbot.create", status=500))
    outcomes.append(await client.call_tool("create_opportunity", {**DEAL, "name": "Tercera"}))  # unknown outcome
    kinds = {(r.is_error, (r.structured_content or {}).get("action")) for r in outcomes}
    assert kinds == {(False, "created"), (False, "already_done"), (False, "updated"), (True, None)}
    assert any("were NOT applied" in text_of(r) for r in outcomes)
    for result in outcomes:
        _same_facts(result)
