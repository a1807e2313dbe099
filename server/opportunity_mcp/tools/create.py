"""`create_opportunity`: a new Plazbot / Wabotify deal."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult

from opportunity_mcp.crm.plazbot import NewOpportunity, PlazbotClient
from opportunity_mcp.models import CreateOpportunityArgs
from opportunity_mcp.tools.access import parse, pick, state_of
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, journaled


async def create_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create a Plazbot/Wabotify opportunity (deal). Use ids from lookups, never invented ones."""
    args = parse(CreateOpportunityArgs, arguments)
    client = pick(state_of(ctx), PlazbotClient, args.workspaceId, "workspaceId", "workspace")
    new = NewOpportunity(
        name=args.name,
        description=args.description,
        amount=args.amount,
        contact_id=args.contactId,
        seller_id=args.assignedComercialId,
        stage_id=args.stageId,
        expiration_date=args.expirationDate,
    )
    guard = (
        None
        if args.allowDuplicate
        else {"name": args.name, "contactId": args.contactId, "amount": args.amount, "description": args.description}
    )
    write = Write(
        tool="create_opportunity",
        account=client.account,
        args=args,
        key=args.idempotencyKey,
        guard=guard,
        kind="create",
        send=lambda policy: client.create(new, policy),
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    create_opportunity,
    title="Create opportunity",
    family="plazbot",
    args=CreateOpportunityArgs,
    idempotent=False,
)
