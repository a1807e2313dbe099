"""`update_opportunity_field`: one field of a Plazbot / Wabotify deal. For stageId, assignedAgentId
and contactId the value may also be a stage's name, a seller's email, or a contact's phone or email."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from opportunity_mcp.crm.plazbot import FieldChange, PlazbotClient
from opportunity_mcp.models import UpdateOpportunityFieldArgs, reference
from opportunity_mcp.tools.access import parse, pick, reading_for, state_of
from opportunity_mcp.tools.plazbot_names import plazbot_contact, plazbot_seller, plazbot_stage
from opportunity_mcp.tools.resolve import Lookups
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, call_policy, journaled


async def _resolved(look: Lookups, client: PlazbotClient, field: str, value: str) -> str:
    """The id a name, an email or a phone stands for (`value` is already normalised); an id as it is."""
    how, text = reference(field, value)
    if how == "id":
        return text
    if field == "stageId":
        return await plazbot_stage(look, client, text, "value")
    if field == "assignedAgentId":
        return await plazbot_seller(look, client, text, "value")
    found = await plazbot_contact(look, client, text if how == "phone" else None, text if how == "email" else None)
    assert found is not None
    return found


async def update_opportunity_field(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Change one field of a Plazbot/Wabotify opportunity (a custom field: customFields with
    customFieldName)."""
    state = state_of(ctx)
    reading = reading_for(state, PlazbotClient, arguments.get("workspaceId"))
    args = parse(UpdateOpportunityFieldArgs, arguments, reading)
    if args.field == "customFields" and not args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: required when field is customFields")
    if args.field != "customFields" and args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: only allowed when field is customFields")
    try:
        value = args.checked_value(reading)
    except ValueError as exc:
        raise ToolError(f"Invalid arguments: {exc}") from None
    client = pick(state, PlazbotClient, args.workspaceId, "workspaceId", "workspace")
    look = Lookups(state, client, call_policy(ctx))
    if args.field in ("stageId", "assignedAgentId", "contactId"):
        value = await _resolved(look, client, args.field, str(value))
    # The field names of this tool are the upstream ones.
    change = FieldChange(args.opportunityId, args.field, value, args.customFieldName)
    write = Write(
        tool="update_opportunity_field",
        account=client.account,
        args=args.model_copy(update={"value": value}),
        key=None,
        guard=None,
        kind="update",
        send=lambda policy: client.update_field(change, policy),
        field=args.customFieldName if args.field == "customFields" else args.field,
        policy=look.policy,
        resolved=look.resolved,
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    update_opportunity_field,
    title="Update opportunity field",
    family="plazbot",
    args=UpdateOpportunityFieldArgs,
    idempotent=True,
)
