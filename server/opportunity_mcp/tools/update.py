"""`update_opportunity_field`: one field of a Plazbot / Wabotify deal. For stageId, assignedAgentId
and contactId the value may also be a stage's name, a seller's email, or a contact's phone or email."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult

from opportunity_mcp.confirm_policy import WriteFacts
from opportunity_mcp.crm.plazbot import FieldChange, PlazbotClient
from opportunity_mcp.models import UpdateOpportunityFieldArgs, reference
from opportunity_mcp.tools import read_back
from opportunity_mcp.tools.access import parse, pick, reading_for, state_of
from opportunity_mcp.tools.deals import Wanted, the_open_deal
from opportunity_mcp.tools.plazbot_names import plazbot_contact, plazbot_seller, plazbot_stage
from opportunity_mcp.tools.resolve import Lookups, exclusive
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.write import Write, call_policy, journaled
from opportunity_mcp.untrusted import quoted


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


async def _the_deal(look: Lookups, client: PlazbotClient, args: UpdateOpportunityFieldArgs) -> str:
    """The id of the deal the call names: as given, or the contact's one open deal (moved from the
    words of 'contact' to those of 'deal of', which an update of contactId may need for its value)."""
    if args.opportunityId is not None:
        return args.opportunityId
    contact = args.contactId or await plazbot_contact(look, client, args.contactPhone, args.contactEmail)
    assert contact is not None
    who = look.resolved.pop("contact", contact)
    look.note("deal of", who)
    wanted = Wanted(contact=contact, name=args.opportunityName)
    deal = await the_open_deal(look, client, wanted, who=quoted(who), id_arg="opportunityId", none=_create_instead)
    return deal.id


def _create_instead(who: str) -> str:
    return f"create one for {who} with create_opportunity."


async def update_opportunity_field(
    arguments: dict[str, Any], ctx: Context[Any, Any]
) -> CallToolResult | InputRequiredResult:
    """Change one field of a Plazbot/Wabotify deal, by its id or its contact's phone/email (their one
    open deal). Custom field: customFields + customFieldName."""
    state = state_of(ctx)
    reading = reading_for(state, PlazbotClient, arguments.get("workspaceId"))
    args = parse(UpdateOpportunityFieldArgs, arguments, reading)
    given = vars(args)
    exclusive(given, "opportunityId", "contactId", "contactPhone", "contactEmail")
    if args.opportunityId is None and not any(given[k] for k in ("contactId", "contactPhone", "contactEmail")):
        raise ToolError(
            "Invalid arguments: opportunityId: required, or find the deal by contactPhone, contactEmail or contactId"
        )
    if args.opportunityName is not None and args.opportunityId is not None:
        raise ToolError("Invalid arguments: opportunityName: only with a contact (the id already names the deal)")
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
    deal = await _the_deal(look, client, args)
    if args.field in ("stageId", "assignedAgentId", "contactId"):
        value = await _resolved(look, client, args.field, str(value))
    # The field names of this tool are the upstream ones.
    change = FieldChange(deal, args.field, value, args.customFieldName)
    # As ids only: the same change by contact or by id is the same write.
    finder = {"contactId": None, "contactPhone": None, "contactEmail": None, "opportunityName": None}
    write = Write(
        tool="update_opportunity_field",
        account=client.account,
        args=args.model_copy(update={"value": value, "opportunityId": deal, **finder}),
        key=None,
        guard=None,
        kind="update",
        send=lambda policy: client.update_field(change, policy),
        field=args.customFieldName if args.field == "customFields" else args.field,
        policy=look.policy,
        resolved=look.resolved,
        check=read_back.plazbot_update(client, change),
        payload={"opportunityId": deal, "field": args.field, "value": value, "customFieldName": args.customFieldName},
        facts=WriteFacts(
            amount=float(value) if args.field == "amount" else None,
            stage=look.resolved.get("stage", str(value)) if args.field == "stageId" else None,
            assignee=args.field == "assignedAgentId",
        ),
        verb="update",
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    update_opportunity_field,
    title="Update opportunity field",
    family="plazbot",
    args=UpdateOpportunityFieldArgs,
    idempotent=True,
)
