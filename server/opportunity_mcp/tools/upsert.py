"""`upsert_opportunity`: create or update a LeadConnector deal (HighLevel, Leadway)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert
from opportunity_mcp.models import UpsertOpportunityArgs
from opportunity_mcp.tools.access import parse, pick, state_of
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, journaled


def _upsert(args: UpsertOpportunityArgs) -> Upsert:
    return Upsert(
        id=args.id,
        name=args.name,
        status=args.status,
        stage_id=args.pipelineStageId,
        value=args.monetaryValue,
        assigned_to=args.assignedTo,
        lost_reason_id=args.lostReasonId,
        contact_id=args.contactId,
        followers=None if args.followers is None else tuple(args.followers),
        followers_action=args.followersActionType,
        remove_all_followers=args.isRemoveAllFollowers,
    )


async def upsert_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create (without id) or update (with id) a LeadConnector opportunity: HighLevel, Leadway."""
    args = parse(UpsertOpportunityArgs, arguments)
    if args.id is None and args.name is None:
        raise ToolError("Invalid arguments: name: required when id is not given (a new opportunity needs a name)")
    client = pick(state_of(ctx), LeadConnectorClient, args.locationId, "locationId", "location")
    # With an id and no pipelineId, the client reads the deal's own pipeline instead of moving it.
    pipeline = args.pipelineId or (None if args.id else client.default_pipeline)
    if pipeline is None and args.id is None:
        raise ToolError(
            "Invalid arguments: pipelineId: required, since this location has no default pipeline configured"
        )
    # Only an exact repeat of a create-or-match is a duplicate: a changed status or stage is a new write.
    guard = (
        None
        if args.id is not None or args.allowDuplicate
        else {**args.model_dump(exclude={"idempotencyKey", "allowDuplicate"}), "pipelineId": pipeline}
    )
    upsert = _upsert(args)
    write = Write(
        tool="upsert_opportunity",
        account=client.account,
        args=args,
        key=args.idempotencyKey,
        guard=guard,
        kind="upsert-id" if args.id else "upsert-new",
        send=lambda policy: client.upsert(upsert, pipeline=pipeline, policy=policy),
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    upsert_opportunity,
    title="Upsert opportunity",
    family="leadconnector",
    args=UpsertOpportunityArgs,
    idempotent=False,
)
