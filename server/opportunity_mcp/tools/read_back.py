"""After a create whose answer was lost (a dropped connection, a time-out, a 5xx), the deal it may have
made is looked for in the CRM rather than the outcome left "unknown": a deal with the name, amount
and contact sent, made since the call began. Exactly one → the create is confirmed; several → they
are listed and the outcome stays unknown; none, or a CRM that cannot be read in time → unknown.
Nothing is sent again here: a create still in flight at the CRM must not be doubled.

Plazbot has no filter, so its list is read within the call's budget; LeadConnector filters by contact
and pipeline on its side (a new deal without a contact cannot be searched for, and stays unknown)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from opportunity_mcp.crm.deals import Deal
from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert
from opportunity_mcp.crm.leadconnector_deals import Search, search_deals
from opportunity_mcp.crm.plazbot import NewOpportunity, PlazbotClient
from opportunity_mcp.crm.plazbot_deals import list_deals
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import Opportunity, WriteResult
from opportunity_mcp.tools.deals import describe
from opportunity_mcp.tools.resolve import Lookups, norm

SLACK = 5.0  # seconds the CRM's clock may run behind this server's
Verify = Callable[[CallPolicy, float], Awaitable[WriteResult | tuple[str, ...] | None]]


def made_since(changed: str | None, since: float) -> bool:
    """Whether a deal's time (ISO, any number of fraction digits, Z or an offset) is at or after `since`."""
    if not changed:
        return False
    text = changed.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Plazbot writes seven fraction digits; Python reads at most six
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return False
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.timestamp() >= since - SLACK


def _one(deals: tuple[Deal, ...], account: str, *, with_status: bool) -> WriteResult | tuple[str, ...] | None:
    if len(deals) == 1:
        d = deals[0]
        status = d.status if with_status else None
        opp = Opportunity(d.id, d.code, d.name, d.amount, d.stage, status, d.contact)
        return WriteResult(opp, created=True, account=account)
    return tuple(describe(d, {}) for d in deals[:5]) or None


def plazbot_create(look: Lookups, client: PlazbotClient, new: NewOpportunity) -> Verify:
    def made_by_it(deal: Deal, since: float) -> bool:
        return (
            deal.open
            and norm(deal.name or "") == norm(new.name)
            and deal.amount == new.amount
            and (deal.contact or None) == (new.contact_id or None)
            and made_since(deal.changed, since)
        )

    async def verify(policy: CallPolicy, since: float) -> WriteResult | tuple[str, ...] | None:
        pages = look.state.plazbot_pages
        page = await list_deals(client, policy, keep=lambda d: made_by_it(d, since), pages=pages)
        return _one(page.deals, client.account.target, with_status=False)

    return verify


def leadconnector_new(client: LeadConnectorClient, upsert: Upsert, pipeline: str | None) -> Verify | None:
    if upsert.contact_id is None or upsert.name is None or pipeline is None:
        return None
    wanted = Search(contact=upsert.contact_id, pipeline=pipeline)

    def made_by_it(deal: Deal, since: float) -> bool:
        return (
            norm(deal.name or "") == norm(upsert.name or "")
            and (upsert.value is None or deal.amount == upsert.value)
            and (upsert.status is None or deal.status == upsert.status)
            and made_since(deal.changed, since)
        )

    async def verify(policy: CallPolicy, since: float) -> WriteResult | tuple[str, ...] | None:
        page = await search_deals(client, wanted, policy)
        found = tuple(d for d in page.deals if made_by_it(d, since))
        return _one(found, client.account.target, with_status=True)

    return verify
