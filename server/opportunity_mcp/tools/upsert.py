"""`upsert_opportunity`: create or update a LeadConnector deal (HighLevel, Leadway), from ids or
from names: the customer's phone or email, the seller's email, the pipeline's, the stage's and the
lost reason's names."""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult

from opportunity_mcp.confirm_policy import WriteFacts
from opportunity_mcp.crm import leadconnector_lookups as find
from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert
from opportunity_mcp.crm.lookups import Named
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.models import HUMAN_ARGUMENTS, UpsertOpportunityArgs, with_ids
from opportunity_mcp.tools import read_back
from opportunity_mcp.tools.access import idempotency_key, parse, pick, reading_for, state_of
from opportunity_mcp.tools.custom_fields import Item
from opportunity_mcp.tools.deals import Wanted, one_open_deal
from opportunity_mcp.tools.resolve import Lookups, exclusive
from opportunity_mcp.tools.spec import ToolSpec
from opportunity_mcp.tools.upsert_send import payload_of, send_upsert, with_custom_fields
from opportunity_mcp.tools.write import Write, answered_before, call_policy, journaled
from opportunity_mcp.untrusted import quoted


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


async def _ids(look: Lookups, client: LeadConnectorClient, args: UpsertOpportunityArgs) -> dict[str, Any]:
    """The ids the human arguments stand for (only those given), the pipeline first: a stage's name
    is looked up within it."""
    ids: dict[str, Any] = {}
    if args.contactPhone is not None or args.contactEmail is not None:
        phone, email = args.contactPhone, args.contactEmail
        arg, shown = ("contactPhone", phone) if phone else ("contactEmail", email)
        assert shown is not None
        found = await look.contact(arg, shown, lambda p: find.contact(client, p, e164=phone, email=email))
        ids["contactId"] = found.id
    if args.assigneeEmail is not None:
        email = args.assigneeEmail
        seller = await look.by_name(
            "seller", "assigneeEmail", "assignedTo", email, lambda p: find.sellers(client, p), on=lambda n: n.email
        )
        look.note("seller", seller.email or email)
        ids["assignedTo"] = seller.id

    def board(p: CallPolicy) -> Awaitable[list[Named]]:
        return find.board(client, p)

    if args.pipelineName is not None:
        pipeline = await look.by_name(
            "pipeline", "pipelineName", "pipelineId", args.pipelineName, board, keep=_top, cache_as="pipelines"
        )
        ids["pipelineId"] = pipeline.id
    if args.stageName is not None:
        within = ids.get("pipelineId") or args.pipelineId
        within = within or await look.ask("opportunity", "pipelineId", lambda: _pipeline_of(look, client, args))
        stage = await look.by_name(
            "stage",
            "stageName",
            "pipelineStageId",
            args.stageName,
            board,
            keep=lambda n: n.within == within,
            cache_as="pipelines",
        )
        ids["pipelineStageId"] = stage.id
    if args.lostReasonName is not None:
        reason = await look.by_name(
            "lost reason", "lostReasonName", "lostReasonId", args.lostReasonName, lambda p: find.lost_reasons(client, p)
        )
        ids["lostReasonId"] = reason.id
    return ids


def _top(item: Named) -> bool:
    return item.within is None  # a pipeline, not one of its stages


async def _pipeline_of(look: Lookups, client: LeadConnectorClient, args: UpsertOpportunityArgs) -> str:
    """The pipeline a stage's name is looked up in when the call names none: the configured one for a
    new deal, the deal's own for an update."""
    if args.id is None and client.default_pipeline is not None:
        return client.default_pipeline
    if args.id is not None:
        own = await client.pipeline_of(args.id, look.policy)
        if own is not None:
            look.note("own pipeline", own)  # read once per call: the write keeps the deal in it
            return own
    raise ToolError(
        "Invalid arguments: stageName: the pipeline to look it up in is not known; pass pipelineId or pipelineName"
    )


async def _the_contacts_deal(
    look: Lookups, client: LeadConnectorClient, args: UpsertOpportunityArgs, pipeline: str | None
) -> tuple[UpsertOpportunityArgs, bool]:
    """A true upsert, as LeadConnector's own when a location forbids duplicate deals: the contact's
    one open deal in the pipeline (named `opportunityName`, when given) is updated; with none, the
    arguments stay those of a new deal; several are refused, listed. Also whether the deal found
    already holds every value the call sets (then the call changes nothing)."""
    assert args.contactId is not None
    who = look.resolved.get("contact", args.contactId)
    wanted = Wanted(contact=args.contactId, pipeline=pipeline, status="open", name=args.opportunityName)
    deal = await one_open_deal(look, client, wanted, who=quoted(who), id_arg="id")
    if deal is None:
        if args.status in ("won", "lost", "abandoned"):
            # Closing a deal that is not open: most likely a repeat of a call that closed it. Not a
            # new closed deal, unless asked for (allowDuplicate).
            raise ToolError(
                f"Not found: {quoted(who)} has no open deal in this pipeline to mark {args.status}. Nothing was "
                f"written; if it is already {args.status}, nothing more is needed. Pass id for another deal, or "
                f"allowDuplicate: true to create a new deal that is {args.status}."
            )
        if args.opportunityName is not None:
            raise ToolError(
                f"Not found: {quoted(who)} has no open deal named {quoted(args.opportunityName)}. Nothing was "
                "written; leave opportunityName out to create a new deal."
            )
        return args, False
    if deal.name and args.name and deal.name != args.name:
        look.note("name was", deal.name)
    sets: list[tuple[object, object]] = [(args.name, deal.name), (args.status, deal.status)]
    sets += [(args.pipelineStageId, deal.stage), (args.monetaryValue, deal.amount)]
    unchanged = all(wanted is None or wanted == held for wanted, held in sets)
    unchanged = unchanged and args.assignedTo is None and args.lostReasonId is None and args.followers is None
    unchanged = unchanged and args.customFields is None
    # The contact-keyed form (older locations) finds the deal by contact itself and takes no id; custom
    # fields are written by id, never by the upsert.
    if await client.learned_shape() == "contact" and args.customFields is None:
        return args, unchanged
    return args.model_copy(update={"id": deal.id, "contactId": None, "opportunityName": None}), unchanged


async def upsert_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Create (no id) or update (id) a LeadConnector deal (HighLevel, Leadway). Phones, emails
    and names are looked up."""
    state = state_of(ctx)
    reading = reading_for(state, LeadConnectorClient, arguments.get("locationId"))
    args = parse(UpsertOpportunityArgs, arguments, reading)
    key = idempotency_key(ctx, args.idempotencyKey)  # any channel; refused before anything is sent
    given = vars(args)
    for pair in (
        ("contactId", "contactPhone", "contactEmail"),
        ("assignedTo", "assigneeEmail"),
        ("pipelineId", "pipelineName"),
        ("pipelineStageId", "stageName"),
        ("lostReasonId", "lostReasonName"),
    ):
        exclusive(given, *pair)
    if args.id is None and args.name is None:
        raise ToolError("Invalid arguments: name: required when id is not given (a new opportunity needs a name)")
    contactless = not any(given[k] for k in ("contactId", "contactPhone", "contactEmail"))
    if args.opportunityName is not None and (args.id is not None or args.allowDuplicate or contactless):
        raise ToolError(
            "Invalid arguments: opportunityName: only to pick a contact's deal (with contactPhone, contactEmail "
            "or contactId, without id or allowDuplicate)"
        )
    client = pick(state, LeadConnectorClient, args.locationId, "locationId", "location")
    # An upsert by contact stores the id of the deal it found: its arguments compare only after that.
    comparable = args.id is not None or args.contactId is None
    known = await answered_before(ctx, "upsert_opportunity", client.account, key, args, comparable=comparable)
    if known is not None:
        return known
    look = Lookups(state, client, call_policy(ctx), scopes=find.SCOPES)
    ids = await _ids(look, client, args)
    args = with_ids(args, ids)  # from here on, ids only
    # With an id and no pipelineId, the deal stays in its own pipeline: read for this call (by the stage
    # lookup, or else by the client), never assumed, since a stale one would move the deal.
    own = look.resolved.pop("own pipeline", None)
    pipeline = args.pipelineId or own or (None if args.id else client.default_pipeline)
    if pipeline is None and args.id is None:
        raise ToolError(
            "Invalid arguments: pipelineId: required, since this location has no default pipeline configured"
        )
    # Only an exact repeat of a create-or-match is a duplicate: a changed status or stage is a new write.
    # Taken before the contact's deal is found, so the repeat of an upsert by contact is one too.
    guard = (
        None
        if args.id is not None or args.allowDuplicate
        else {**args.model_dump(exclude={"idempotencyKey", "allowDuplicate", *HUMAN_ARGUMENTS}), "pipelineId": pipeline}
    )
    contact = args.contactId
    if args.id is None and contact is not None and not args.allowDuplicate:
        args, unchanged = await _the_contacts_deal(look, client, args, pipeline)
        if args.id is not None and not unchanged:
            # A change to the contact's deal is no repeat of an earlier call that set other values
            # (A, then B, then A again is three changes): only a call that changes nothing may be one.
            guard = None
    upsert = _upsert(args)
    custom: tuple[Item, ...] = ()
    if args.customFields is not None:
        send, custom = await with_custom_fields(look, client, args, upsert, pipeline, reading)
    else:
        create = args.allowDuplicate
        send = functools.partial(send_upsert, client, upsert, pipeline, look=look, create=create, contact=contact)
    write = Write(
        tool="upsert_opportunity",
        account=client.account,
        args=args,
        key=key,
        guard=guard,
        kind="upsert-id" if args.id else "upsert-new",
        send=send,
        check=(
            read_back.leadconnector_update(client, upsert, unshown=bool(custom))
            if upsert.id
            else read_back.leadconnector_new(client, upsert, pipeline)
        ),
        policy=look.policy,
        resolved=look.resolved,
        payload=payload_of(upsert, pipeline, custom),
        facts=WriteFacts(
            amount=upsert.value,
            status=upsert.status,
            stage=look.resolved.get("stage", upsert.stage_id),
            assignee=upsert.assigned_to is not None,
        ),
        verb="update" if upsert.id else "create",
    )
    return await journaled(ctx, write)


SPEC = ToolSpec(
    upsert_opportunity,
    title="Upsert opportunity",
    family="leadconnector",
    args=UpsertOpportunityArgs,
    idempotent=False,
)
