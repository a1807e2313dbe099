"""`update_opportunity_field`: one field of a Plazbot / Wabotify deal."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from opportunity_mcp.crm.plazbot import FieldChange, PlazbotClient
from opportunity_mcp.models import UpdateOpportunityFieldArgs
from opportunity_mcp.tools.access import parse, pick, state_of
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, journaled


async def update_opportunity_field(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Change one field of a Plazbot/Wabotify opportunity; for a custom field use customFields
    and customFieldName."""
    args = parse(UpdateOpportunityFieldArgs, arguments)
    if args.field == "customFields" and not args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: required when field is customFields")
    if args.field != "customFields" and args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: only allowed when field is customFields")
    try:
        value = args.checked_value()
    except ValueError as exc:
        raise ToolError(f"Invalid arguments: {exc}") from None
    client = pick(state_of(ctx), PlazbotClient, args.workspaceId, "workspaceId", "workspace")
    # The field names of this tool are the upstream ones.
    change = FieldChange(args.opportunityId, args.field, value, args.customFieldName)
    write = Write(
        tool="update_opportunity_field",
        account=client.account,
        args=args,
        key=None,
        guard=None,
        kind="update",
        send=lambda policy: client.update_field(change, policy),
        field=args.customFieldName if args.field == "customFields" else args.field,
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    update_opportunity_field,
    title="Update opportunity field",
    family="plazbot",
    args=UpdateOpportunityFieldArgs,
    idempotent=True,
)
