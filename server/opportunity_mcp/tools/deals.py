"""A customer's deals, found inside a call from what the conversation knows (the contact), on both
CRMs, and said in words.

LeadConnector filters on its side (`contact_id`, `pipeline_id`, `status`): one request. Plazbot
documents no filter, so the deals this server itself wrote for the contact (the journal knows them)
are read first, each by its id; only when none of them is an open deal of that contact is the
workspace's list read, a page at a time, within the call's budget and the configured page limit. An
answer that could not read everything says so rather than claim "none".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from mcp.server.mcpserver.exceptions import ToolError

from opportunity_mcp.crm import leadconnector_lookups as lc_find
from opportunity_mcp.crm import plazbot_lookups as pz_find
from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.crm.deals import Deal, DealPage
from opportunity_mcp.crm.errors import CrmError
from opportunity_mcp.crm.leadconnector import LeadConnectorClient
from opportunity_mcp.crm.leadconnector_deals import Search, search_deals
from opportunity_mcp.crm.plazbot import PlazbotClient
from opportunity_mcp.crm.plazbot_deals import get_deal, list_deals
from opportunity_mcp.summaries import money
from opportunity_mcp.tools.resolve import Lookups, norm
from opportunity_mcp.untrusted import quoted

MAX_LISTED = 5


@dataclass(frozen=True, slots=True)
class Wanted:
    """Which deals: of a contact (an id), in a pipeline, with a status (None: any), named so."""

    contact: str | None = None
    pipeline: str | None = None
    status: str | None = "open"
    name: str | None = None

    def keeps(self, deal: Deal) -> bool:
        return (
            (self.contact is None or deal.contact == self.contact)
            and (self.pipeline is None or deal.pipeline in (None, self.pipeline))
            and (self.status is None or deal.status == self.status or (self.status == "closed" and not deal.open))
            and (self.name is None or norm(deal.name or "") == norm(self.name))
        )


async def find_deals(look: Lookups, client: CrmClient, wanted: Wanted, *, journal_first: bool = True) -> DealPage:
    """The deals `wanted` names, as far as the CRM and the call's budget allow (`complete` says).
    On Plazbot a write takes the deals this server wrote for the contact first (`journal_first`); a
    listing reads the workspace's pages instead, so it shows deals made elsewhere too."""
    if isinstance(client, LeadConnectorClient):
        search = Search(wanted.contact, wanted.pipeline, None if wanted.status == "closed" else wanted.status)
        page = await look.ask("opportunity", "the id", lambda: search_deals(client, search, look.policy))
        kept = tuple(d for d in page.deals if wanted.keeps(d))
        return DealPage(kept, page.complete, page.total if kept == page.deals else None)
    assert isinstance(client, PlazbotClient)
    if wanted.contact is not None and journal_first:
        known = await _written(look, client, wanted)
        if known:
            return DealPage(known, complete=False)
    pages = look.state.plazbot_pages
    return await look.ask(
        "opportunity", "the id", lambda: list_deals(client, look.policy, keep=wanted.keeps, pages=pages)
    )


async def written_open_deals(look: Lookups, client: PlazbotClient, contact: str) -> tuple[Deal, ...]:
    """The open deals this server wrote for `contact` (each read by its id: still open, still theirs)."""
    return await _written(look, client, Wanted(contact=contact))


async def _written(look: Lookups, client: PlazbotClient, wanted: Wanted) -> tuple[Deal, ...]:
    """The deals this server wrote for the contact that are still as `wanted` (each read by its id)."""
    assert wanted.contact is not None
    try:
        ids = await look.state.journal.written_for(client.account.target, wanted.contact, limit=MAX_LISTED)
    except Exception as exc:  # the journal is this server's own store: said plainly, nothing written
        raise ToolError(
            f"Not sent: the write journal cannot be read ({type(exc).__name__}). Nothing was written; try again "
            "shortly, or pass the deal's id."
        ) from None
    found = []
    for deal_id in ids:
        deal = await look.ask("opportunity", "the id", functools.partial(get_deal, client, deal_id, look.policy))
        if deal is not None and wanted.keeps(deal):
            found.append(deal)
    return tuple(found)


async def stage_names(look: Lookups, client: CrmClient) -> dict[str, str]:
    """Stage ids to names, from the reference lists the name lookups keep ({} when unreadable)."""
    account = client.account.name
    try:
        if isinstance(client, LeadConnectorClient):
            items, _ = await look.state.references.get(account, "pipelines", lambda: lc_find.board(client, look.policy))
        else:
            assert isinstance(client, PlazbotClient)
            items, _ = await look.state.references.get(account, "stage", lambda: pz_find.stages(client, look.policy))
    except CrmError:
        return {}
    return {n.id: n.name for n in items}


def describe(deal: Deal, stages: dict[str, str]) -> str:
    """'Plan anual' (stage 'Propuesta', 1,200.00, open, id 65f1…), names quoted."""
    stage = quoted(stages[deal.stage]) if deal.stage in stages else (deal.stage or "no stage")
    parts = [f"stage {stage}", money(deal.amount) if deal.amount is not None else None, deal.status]
    shown = ", ".join(p for p in parts if p)
    return f"{quoted(deal.name or 'unnamed')} ({shown}, id {deal.id})"


async def the_open_deal(
    look: Lookups, client: CrmClient, wanted: Wanted, *, who: str, id_arg: str, none: Callable[[str], str]
) -> Deal:
    """The one open deal `wanted` names; a refusal when there is none (`none` says what to do then)
    or several (listed, with how to pick one). Nothing is written either way."""
    page = await find_deals(look, client, wanted)
    if not page.deals:
        named = f" named {quoted(wanted.name)}" if wanted.name else ""
        unread = "" if page.complete else " among the deals that could be read in time (the list is long)"
        raise ToolError(f"Not found: {who} has no open deal{named}{unread}. Nothing was written; {none(who)}")
    return await _one(look, client, wanted, page.deals, who=who, id_arg=id_arg)


async def one_open_deal(look: Lookups, client: CrmClient, wanted: Wanted, *, who: str, id_arg: str) -> Deal | None:
    """The one open deal `wanted` names, None when there is none; several are refused, listed."""
    page = await find_deals(look, client, wanted)
    if not page.deals and not page.complete:
        raise ToolError(
            f"Not sure: could not read every deal of {who} in time (the list is long), so nothing was written "
            f"rather than risk a second deal. Pass {id_arg}, or allowDuplicate: true to create one anyway."
        )
    return await _one(look, client, wanted, page.deals, who=who, id_arg=id_arg) if page.deals else None


async def _one(
    look: Lookups, client: CrmClient, wanted: Wanted, deals: tuple[Deal, ...], *, who: str, id_arg: str
) -> Deal:
    if len(deals) == 1:
        return deals[0]
    named = f" named {quoted(wanted.name)}" if wanted.name else ""
    where = f" in pipeline {wanted.pipeline}" if wanted.pipeline else ""
    stages = await stage_names(look, client)
    listed = "; ".join(describe(d, stages) for d in deals[:MAX_LISTED])
    more = f"; and {len(deals) - MAX_LISTED} more" if len(deals) > MAX_LISTED else ""
    raise ToolError(
        f"Ambiguous: {who} has {len(deals)} open deals{named}{where}. Nothing was written; pass opportunityName "
        f"with one of these names, or {id_arg}: {listed}{more}."
    )
