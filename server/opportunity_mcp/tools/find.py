"""`find_opportunities`: a read, on both CRMs: the deals of a contact (by phone, email or id), by
name, stage, pipeline or status, one short line each, newest first, at most ten."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import Field, StrictBool

from opportunity_mcp.crm import leadconnector_lookups as lc_find
from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.crm.deals import Deal
from opportunity_mcp.crm.leadconnector import LeadConnectorClient
from opportunity_mcp.crm.lookups import Named
from opportunity_mcp.crm.plazbot import PlazbotClient
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.models import EMAIL_HELP, PHONE_HELP, Email, Id, Name, Phone, Reading, ToolArgs
from opportunity_mcp.summaries import bounded, money
from opportunity_mcp.tools.access import State, parse, reading_for, state_of
from opportunity_mcp.tools.custom_fields import by_name, field_names, said
from opportunity_mcp.tools.deals import Wanted, find_deals, stage_names
from opportunity_mcp.tools.plazbot_names import plazbot_contact, plazbot_stage
from opportunity_mcp.tools.resolve import Lookups, exclusive
from opportunity_mcp.tools.spec import ANY, ToolSpec
from opportunity_mcp.tools.write import call_policy
from opportunity_mcp.untrusted import quoted

DealStatus = Literal["open", "won", "lost", "abandoned", "closed"]


class FindOpportunitiesArgs(ToolArgs):
    contactId: Annotated[Id | None, Field(description="Contact id")] = None
    contactPhone: Annotated[Phone | None, Field(description=PHONE_HELP)] = None
    contactEmail: Annotated[Email | None, Field(description=EMAIL_HELP)] = None
    name: Annotated[Name | None, Field(description="Deal name")] = None
    stageName: Annotated[Name | None, Field(description="Stage name")] = None
    pipelineName: Annotated[Name | None, Field(description="Pipeline name")] = None
    status: Annotated[DealStatus | None, Field(description="Default all")] = None
    accountId: Annotated[Id | None, Field(description="Workspace/location id")] = None
    customFields: Annotated[StrictBool, Field(description="Show custom fields")] = False


SHOWN = 10
MAX_FOUND_TEXT = 2000
OUTPUT: dict[str, Any] = {"type": "object", "properties": {"deals": {"type": "array"}}}


def _reading(state: State, account: object) -> Reading:
    """How the account named (or the only one) reads phones, whichever its CRM."""
    for kind in (PlazbotClient, LeadConnectorClient):
        found = reading_for(state, kind, account)
        if found != Reading():
            return found
    return Reading()


def _client(state: State, args: FindOpportunitiesArgs) -> CrmClient:
    """The account the call names, or the only one the caller may read."""
    allowed = state.allowed()
    usable = [c for c in state.clients if allowed is None or c.account.name in allowed]
    wanted = args.accountId
    if wanted is not None:
        usable = [c for c in usable if c.account.target == wanted]
        if not usable:
            raise ToolError(f"Not allowed: {wanted} is not a workspace or location this connection may read.")
    if len(usable) > 1:
        choices = ", ".join(c.account.target for c in usable)
        raise ToolError(f"Invalid arguments: accountId: required, since you may read several: {choices}")
    if not usable:
        raise ToolError("Not allowed: this connection may not read any account.")
    return usable[0]


async def _wanted(look: Lookups, client: CrmClient, args: FindOpportunitiesArgs) -> tuple[Wanted, str | None]:
    """The filter, with the contact and the names resolved to ids; the stage id to keep, if named."""
    contact, stage, pipeline = args.contactId, None, None
    if isinstance(client, PlazbotClient):
        if contact is None:
            contact = await plazbot_contact(look, client, args.contactPhone, args.contactEmail)
        if args.stageName is not None:
            stage = await plazbot_stage(look, client, args.stageName, "stageName")
        if args.pipelineName is not None:
            raise ToolError("Invalid arguments: pipelineName: Plazbot workspaces have no pipelines")
        if args.status in ("won", "lost", "abandoned"):
            raise ToolError(
                "Invalid arguments: status: Plazbot does not say whether a closed deal was won or lost; "
                "use open, closed or all"
            )
    else:
        assert isinstance(client, LeadConnectorClient)
        if contact is None and (args.contactPhone or args.contactEmail):
            phone, email = args.contactPhone, args.contactEmail
            shown = phone or email or ""
            arg = "contactPhone" if phone else "contactEmail"
            found = await look.contact(arg, shown, lambda p: lc_find.contact(client, p, e164=phone, email=email))
            contact = found.id
        pipeline, stage = await _lc_names(look, client, args)
    return Wanted(contact=contact, pipeline=pipeline, status=args.status, name=args.name), stage


async def _lc_names(look: Lookups, client: LeadConnectorClient, args: FindOpportunitiesArgs) -> tuple[str | None, ...]:
    def board(policy: CallPolicy) -> Awaitable[list[Named]]:
        return lc_find.board(client, policy)

    pipeline = stage = None
    if args.pipelineName is not None:
        found = await look.by_name(
            "pipeline", "pipelineName", "pipelineId", args.pipelineName, board, keep=lambda n: n.within is None,
            cache_as="pipelines",
        )  # fmt: skip
        pipeline = found.id
    if args.stageName is not None:
        found = await look.by_name(
            "stage", "stageName", "stageId", args.stageName, board,
            keep=lambda n: n.within is not None and pipeline in (None, n.within), cache_as="pipelines",
        )  # fmt: skip
        stage = found.id
    return pipeline, stage


def _line(deal: Deal, stages: dict[str, str], custom: dict[str, Any] | None) -> str:
    stage = quoted(stages[deal.stage]) if deal.stage in stages else (deal.stage or "none")
    parts = [
        f"stage {stage}",
        money(deal.amount) if deal.amount is not None else None,
        deal.status,
        f"id {deal.id}",
        f"changed {deal.changed[:10]}" if deal.changed else None,
        *(f"{quoted(name, 40)} {said(value)}" for name, value in (custom or {}).items()),
    ]
    return f"{quoted(deal.name or 'unnamed')} ({', '.join(p for p in parts if p)})"


async def find_opportunities(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Find deals by contact, name, stage, pipeline or status."""
    state = state_of(ctx)
    args = parse(FindOpportunitiesArgs, arguments, _reading(state, arguments.get("accountId")))
    exclusive(vars(args), "contactId", "contactPhone", "contactEmail")
    client = _client(state, args)
    look = Lookups(state, client, call_policy(ctx), scopes=lc_find.SCOPES)
    wanted, stage = await _wanted(look, client, args)
    page = await find_deals(look, client, wanted, journal_first=False)
    deals = sorted((d for d in page.deals if stage is None or d.stage == stage), key=lambda d: d.changed or "")
    deals.reverse()  # newest first
    stages = await stage_names(look, client) if deals else {}
    names = await field_names(look, client) if deals and args.customFields else None
    custom = {d.id: by_name(d, names) for d in deals[:SHOWN]} if names is not None else {}
    whose = f" of {quoted(look.resolved['contact'])}" if "contact" in look.resolved else ""
    head = f"Found {len(deals)} deal{'s' if len(deals) != 1 else ''}{whose} in {look.where}"
    if not page.complete:
        head += " (not every deal could be read in time: the list is long; narrow the search)"
    lines = [_line(d, stages, custom.get(d.id)) for d in deals[:SHOWN]]
    more = f"; and {len(deals) - SHOWN} more" if len(deals) > SHOWN else ""
    text = head + (", newest first: " + "; ".join(lines) + more + "." if lines else ".")
    structured = {
        "ok": True,
        "account": client.account.target,
        "count": len(deals),
        "complete": page.complete,
        "deals": [
            {
                "id": d.id,
                "name": d.name,
                "stage": stages.get(d.stage or "", d.stage),
                "amount": d.amount,
                "status": d.status,
                "contact": d.contact,
                "pipeline": d.pipeline,
                "changed": d.changed,
                **({"customFields": custom[d.id]} if d.id in custom else {}),
            }
            for d in deals[:SHOWN]
        ],
    }
    text = state.scrub(bounded(text, MAX_FOUND_TEXT))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


SPEC = ToolSpec(
    find_opportunities,
    title="Find opportunities",
    family=ANY,
    args=FindOpportunitiesArgs,
    idempotent=True,
    read_only=True,
    output=OUTPUT,
)
