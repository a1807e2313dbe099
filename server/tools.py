"""The three tools. Each is thin: validate the arguments, call the CRM, shape the envelope.

A tool receives the raw arguments and validates them itself (`parse`), so a refusal names the
argument and what is allowed, in one line, without echoing the input back. Every text leaving a
tool passes `State.scrub`, a last line of defence that no configured secret can reach the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from server.crm.errors import CrmError
from server.crm.leadconnector import LeadConnectorClient
from server.crm.plazbot import PlazbotClient
from server.crm.result import WriteResult
from server.models import (
    CreateOpportunityArgs,
    Envelope,
    UpdateOpportunityFieldArgs,
    UpsertOpportunityArgs,
    describe_validation,
)
from server.summaries import WriteKind, failure_text, success_text

M = TypeVar("M", bound=BaseModel)
Crm = Literal["plazbot", "leadconnector"]


@dataclass(frozen=True, slots=True)
class State:
    """What the lifespan holds for the tools: one client per configured CRM."""

    plazbot: PlazbotClient | None
    leadconnector: LeadConnectorClient | None
    secrets: tuple[str, ...] = ()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        raise ToolError(describe_validation(exc, model)) from None


def _state(ctx: Context[Any, Any]) -> State:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, State)
    return state


def _envelope(result: WriteResult) -> Envelope:
    opp = result.opportunity
    return Envelope(
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
        warnings=list(result.warnings),
    )


def _answer(state: State, env: Envelope, field: str | None = None) -> CallToolResult:
    text = state.scrub(success_text(env, field=field))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=env.wire())


def _failed(state: State, err: CrmError, kind: WriteKind, crm: Crm) -> ToolError:
    return ToolError(state.scrub(failure_text(err, kind=kind, crm=crm)))


async def create_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create a Plazbot/Wabotify opportunity (deal). Use ids from lookups, never invented ones.
    Not idempotent: if an error says the outcome is unknown, check before calling again."""
    args = parse(CreateOpportunityArgs, arguments)
    state = _state(ctx)
    assert state.plazbot is not None
    try:
        result = await state.plazbot.create(args)
    except CrmError as err:
        raise _failed(state, err, "create", "plazbot") from None
    return _answer(state, _envelope(result))


async def update_opportunity_field(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Change one field of a Plazbot/Wabotify opportunity. For a custom field, set field to
    customFields and name it in customFieldName. Safe to repeat."""
    args = parse(UpdateOpportunityFieldArgs, arguments)
    if args.field == "customFields" and not args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: required when field is customFields")
    if args.field != "customFields" and args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: only allowed when field is customFields")
    try:
        value = args.checked_value()
    except ValueError as exc:
        raise ToolError(f"Invalid arguments: {exc}") from None
    state = _state(ctx)
    assert state.plazbot is not None
    try:
        result = await state.plazbot.update_field(args, value)
    except CrmError as err:
        raise _failed(state, err, "update", "plazbot") from None
    field = args.customFieldName if args.field == "customFields" else args.field
    return _answer(state, _envelope(result), field=field)


async def upsert_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create or update a LeadConnector (HighLevel, Leadway) opportunity: with id it updates
    that one, without id it creates one. The answer says which."""
    args = parse(UpsertOpportunityArgs, arguments)
    if args.id is None and args.name is None:
        raise ToolError("Invalid arguments: name: required when id is not given (a new opportunity needs a name)")
    state = _state(ctx)
    client = state.leadconnector
    assert client is not None
    pipeline = args.pipelineId or client.account.pipeline_id
    if pipeline is None:
        raise ToolError("Invalid arguments: pipelineId: required, since LEADCONNECTOR_PIPELINE_ID is not configured")
    location = args.locationId or client.account.location_id
    try:
        result = await client.upsert(args, location=location, pipeline=pipeline)
    except CrmError as err:
        raise _failed(state, err, "upsert-id" if args.id else "upsert-new", "leadconnector") from None
    return _answer(state, _envelope(result))
