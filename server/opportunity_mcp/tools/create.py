"""`create_opportunity`: a new Plazbot / Wabotify deal, from ids or from what a conversation knows
(the customer's phone or email, the seller's email, the stage's name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult

from opportunity_mcp.confirm_policy import WriteFacts
from opportunity_mcp.crm.plazbot import NewOpportunity, PlazbotClient
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.models import CreateOpportunityArgs, with_ids
from opportunity_mcp.tools import read_back
from opportunity_mcp.tools.access import idempotency_key, parse, pick, reading_for, state_of
from opportunity_mcp.tools.deals import describe, stage_names, written_open_deals
from opportunity_mcp.tools.plazbot_names import plazbot_contact, plazbot_seller, plazbot_stage
from opportunity_mcp.tools.resolve import Lookups, exclusive
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, answered_before, call_policy, journaled
from opportunity_mcp.untrusted import quoted


async def create_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Create a Plazbot/Wabotify deal. Phones, emails and names are looked up; never
    invent an id."""
    state = state_of(ctx)
    if "customFields" in arguments:  # the usual next step for a bot that fills a LeadConnector deal's
        raise ToolError(
            "Invalid arguments: customFields: Plazbot's create takes no custom fields; create the deal, then set "
            "each with update_opportunity_field (field customFields, customFieldName, value). Nothing was written."
        )
    args = parse(CreateOpportunityArgs, arguments, reading_for(state, PlazbotClient, arguments.get("workspaceId")))
    key = idempotency_key(ctx, args.idempotencyKey)  # any channel; refused before anything is sent
    given = vars(args)
    exclusive(given, "contactId", "contactPhone", "contactEmail")
    exclusive(given, "assignedComercialId", "assigneeEmail")
    exclusive(given, "stageId", "stageName")
    client = pick(state, PlazbotClient, args.workspaceId, "workspaceId", "workspace")
    if (known := await answered_before(ctx, "create_opportunity", client.account, key, args)) is not None:
        return known
    look = Lookups(state, client, call_policy(ctx))
    contact = args.contactId or await plazbot_contact(look, client, args.contactPhone, args.contactEmail)
    seller = args.assignedComercialId
    if args.assigneeEmail is not None:
        seller = await plazbot_seller(look, client, args.assigneeEmail, "assignedComercialId")
    stage = args.stageId
    if args.stageName is not None:
        stage = await plazbot_stage(look, client, args.stageName, "stageName")
    new = NewOpportunity(
        name=args.name,
        description=args.description,
        amount=args.amount,
        contact_id=contact,
        seller_id=seller,
        stage_id=stage,
        expiration_date=args.expirationDate,
    )
    guard = (
        None
        if args.allowDuplicate
        else {"name": args.name, "contactId": contact, "amount": args.amount, "description": args.description}
    )
    ids = {"contactId": contact, "assignedComercialId": seller, "stageId": stage}
    checked = None if contact is None or args.allowDuplicate else _open_deal_check(look, client, contact)
    write = Write(
        tool="create_opportunity",
        account=client.account,
        args=with_ids(args, ids),
        key=key,
        guard=guard,
        kind="create",
        send=lambda policy: client.create(new, policy),
        policy=look.policy,
        resolved=look.resolved,
        precheck=checked,
        check=read_back.plazbot_create(client, new.name, new.amount, new.contact_id),
        payload={k: v for k, v in {**vars(args), **ids}.items() if k in _SENT and v is not None},
        facts=WriteFacts(amount=args.amount, stage=look.resolved.get("stage", stage), assignee=seller is not None),
        verb="create",
    )
    return await journaled(ctx, write)


_SENT = ("name", "description", "amount", "contactId", "assignedComercialId", "stageId", "expirationDate")


def _open_deal_check(
    look: Lookups, client: PlazbotClient, contact: str
) -> Callable[[CallPolicy], Awaitable[tuple[str, ...]]]:
    """No silent second deal: a contact with an open deal (one this server wrote) gets a note in the
    answer, or, where the account sets open_deals = "refuse", a refusal; allowDuplicate skips it."""

    async def check(_: CallPolicy) -> tuple[str, ...]:
        found = await written_open_deals(look, client, contact)
        if not found:
            return ()
        stages = await stage_names(look, client)
        who = quoted(look.resolved.get("contact", contact))
        shown = "; ".join(describe(deal, stages) for deal in found[:3])
        if client.account.option("open_deals") == "refuse":
            raise ToolError(
                f"Refused: {who} already has an open deal: {shown}. Nothing was written; change it with "
                "update_opportunity_field (by the contact's phone or the id), or pass allowDuplicate: true."
            )
        return (f"{who} already had an open deal: {shown}; to change it, use update_opportunity_field",)

    return check


SPEC = ToolSpec(
    create_opportunity,
    title="Create opportunity",
    family="plazbot",
    args=CreateOpportunityArgs,
    idempotent=False,
)
