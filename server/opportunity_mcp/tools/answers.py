"""A write's answer: the envelope of its result, and the tool result an agent reads (a sentence, and
the envelope as structured content), passed through the scrubber."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_types import CallToolResult, TextContent

from opportunity_mcp.crm.result import WriteResult
from opportunity_mcp.envelope import Envelope
from opportunity_mcp.summaries import success_text
from opportunity_mcp.tools.access import State


def envelope(result: WriteResult, resolved: Mapping[str, str], notes: tuple[str, ...] = ()) -> Envelope:
    opp = result.opportunity
    # Every value comes typed from the CRM layer's result: no need to validate it again.
    return Envelope.model_construct(
        ok=True,
        action="created" if result.created else "updated",
        account=result.account,
        id=opp.id,
        code=opp.code,
        name=opp.name,
        amount=opp.amount,
        stage=opp.stage,
        status=opp.status,
        contact=opp.contact,
        assignee=opp.assignee,
        resolved=dict(resolved) if resolved else None,
        warnings=[*notes, *result.warnings],
    )


def answer(state: State, env: Envelope, field: str | None = None, wire: dict[str, Any] | None = None) -> CallToolResult:
    text = state.scrub(success_text(env, field=field))
    structured = env.wire() if wire is None else wire
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)
