"""After a write whose answer was lost (a dropped connection, a time-out, a 5xx), what it may have done is
looked for in the CRM rather than the outcome left "unknown".

- A create: a deal with the name, amount and contact sent, made since the call began. Plazbot has no
  filter, so its list is read within the budget; LeadConnector filters by contact and pipeline on its
  side (a new deal without a contact cannot be searched for, and stays unknown).
- An update: the deal read by its id, its fields compared with those sent.

What a look sees (`Seen`): the write's result (exactly one match), the candidates (several: never a
false done), False (the CRM was read whole and the write is not there), or None (it cannot tell: a
list too long to read in time, a field the CRM does not show).

A `Check` carries its `intent`, the plain facts it compares, kept with the journal row: `rebuilt`
makes the same check from a row, so an unknown write can be settled later (`reconcile`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.crm.deals import Deal
from opportunity_mcp.crm.errors import CrmNotApplied
from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert
from opportunity_mcp.crm.leadconnector_deals import Search, get_deal, search_deals
from opportunity_mcp.crm.plazbot import FieldChange, PlazbotClient
from opportunity_mcp.crm.plazbot_deals import list_deals, read_deal
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import Opportunity, WriteResult
from opportunity_mcp.tools.deals import describe
from opportunity_mcp.tools.resolve import norm

SLACK = 5.0  # seconds the CRM's clock may run behind this server's
PAGES = 100  # pages of a Plazbot list a look may read (about 2,000 deals), within the budget
Seen = WriteResult | tuple[str, ...] | bool | None
_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)  # built once: one per call costs
Look = Callable[[CallPolicy, float], Awaitable[Seen]]


@dataclass(frozen=True, slots=True)
class Check:
    """How to read one write back: `look(policy, since)`; `creates` when sending it again could make a
    second deal (it is then resent only once the settle time has passed)."""

    intent: dict[str, Any]
    look: Look
    creates: bool = True

    def intent_json(self) -> str:
        return _COMPACT.encode(self.intent)


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


def _result(deal: Deal, account: str, *, created: bool, with_status: bool) -> WriteResult:
    status = deal.status if with_status else None
    opp = Opportunity(deal.id, deal.code, deal.name, deal.amount, deal.stage, status, deal.contact)
    return WriteResult(opp, created=created, account=account)


def _one(deals: tuple[Deal, ...], complete: bool, account: str, *, with_status: bool) -> Seen:
    if len(deals) == 1:
        return _result(deals[0], account, created=True, with_status=with_status)
    if deals:
        return tuple(describe(d, {}) for d in deals[:5])
    return False if complete else None


def plazbot_create(client: PlazbotClient, name: str, amount: float, contact: str | None) -> Check:
    def made_by_it(deal: Deal, since: float) -> bool:
        return (
            deal.open
            and norm(deal.name or "") == norm(name)
            and deal.amount == amount
            and (deal.contact or None) == (contact or None)
            and made_since(deal.created or deal.changed, since)  # made, not only changed, since
        )

    async def look(policy: CallPolicy, since: float) -> Seen:
        page = await list_deals(client, policy, keep=lambda d: made_by_it(d, since), pages=PAGES)
        return _one(page.deals, page.complete, client.account.target, with_status=False)

    intent = {"check": "plazbot.create", "name": name, "amount": amount, "contact": contact}
    return Check(intent, look)


def leadconnector_new(client: LeadConnectorClient, upsert: Upsert, pipeline: str | None) -> Check | None:
    if upsert.contact_id is None or upsert.name is None or pipeline is None:
        return None
    name, value, status = upsert.name, upsert.value, upsert.status
    wanted = Search(contact=upsert.contact_id, pipeline=pipeline)

    def made_by_it(deal: Deal, since: float) -> bool:
        return (
            norm(deal.name or "") == norm(name)
            and (value is None or deal.amount == value)
            and (status is None or deal.status == status)
            and made_since(deal.created or deal.changed, since)  # made, not only changed, since
        )

    async def look(policy: CallPolicy, since: float) -> Seen:
        page = await search_deals(client, wanted, policy)
        found = tuple(d for d in page.deals if made_by_it(d, since))
        return _one(found, page.complete, client.account.target, with_status=True)

    intent = {
        "check": "lc.new",
        "name": name,
        "value": value,
        "status": status,
        "contact": upsert.contact_id,
        "pipeline": pipeline,
    }
    return Check(intent, look)


def plazbot_update(client: PlazbotClient, change: FieldChange) -> Check:
    """The deal read by id: the field shows the value sent (done), another value (False), or the CRM
    does not show it (None)."""

    async def look(policy: CallPolicy, since: float) -> Seen:
        raw = await client.fetch(change.opportunity_id, policy)
        deal = None if raw is None else read_deal(raw)
        if raw is None or deal is None:
            return None
        try:
            if client.shown(raw, change):
                return None
        except CrmNotApplied:
            return False
        return _result(deal, client.account.target, created=False, with_status=False)

    intent = {
        "check": "plazbot.update",
        "id": change.opportunity_id,
        "field": change.field,
        "value": change.value,
        "custom": change.custom_field,
    }
    return Check(intent, look, creates=False)


# Upsert fields a LeadConnector deal shows, by where `Deal` keeps them.
_LC_SHOWN = {"name": "name", "value": "amount", "status": "status", "stage_id": "stage"}


def leadconnector_update(client: LeadConnectorClient, upsert: Upsert, *, unshown: bool = False) -> Check:
    """The deal read by id, compared on the fields sent that a deal shows (name, value, status, stage).
    A write that also sets what a deal does not show (a seller, a lost reason, followers, custom
    fields: `unshown`), or nothing it shows, cannot be confirmed by reading: None."""
    assert upsert.id is not None
    deal_id = upsert.id
    sent = {key: getattr(upsert, key) for key in _LC_SHOWN if getattr(upsert, key) is not None}
    hidden = (upsert.assigned_to, upsert.lost_reason_id, upsert.followers)
    blind = unshown or not sent or upsert.remove_all_followers or any(v is not None for v in hidden)

    async def look(policy: CallPolicy, since: float) -> Seen:
        if blind:
            return None
        deal = await get_deal(client, deal_id, policy)
        if deal is None:
            return None
        if any(getattr(deal, _LC_SHOWN[key]) != value for key, value in sent.items()):
            return False
        return _result(deal, client.account.target, created=False, with_status=True)

    return Check({"check": "lc.update", "id": deal_id, **sent, "unshown": blind}, look, creates=False)


def rebuilt(client: CrmClient, intent: Mapping[str, Any]) -> Check | None:
    """The check a journal row's intent describes, for `client` (its account); None when the intent
    is missing, of another family, or not as written."""
    try:
        kind = intent.get("check")
        if kind == "plazbot.create" and isinstance(client, PlazbotClient):
            return plazbot_create(client, str(intent["name"]), float(intent["amount"]), _opt(intent.get("contact")))
        if kind == "plazbot.update" and isinstance(client, PlazbotClient):
            value = intent["value"]
            change = FieldChange(str(intent["id"]), str(intent["field"]), value, _opt(intent.get("custom")))
            return plazbot_update(client, change)
        if kind == "lc.new" and isinstance(client, LeadConnectorClient):
            value = intent.get("value")
            upsert = Upsert(
                name=str(intent["name"]),
                value=None if value is None else float(value),
                status=_opt(intent.get("status")),
                contact_id=str(intent["contact"]),
            )
            return leadconnector_new(client, upsert, str(intent["pipeline"]))
        if kind == "lc.update" and isinstance(client, LeadConnectorClient):
            value = intent.get("value")
            upsert = Upsert(
                id=str(intent["id"]),
                name=_opt(intent.get("name")),
                value=None if value is None else float(value),
                status=_opt(intent.get("status")),
                stage_id=_opt(intent.get("stage_id")),
            )
            return leadconnector_update(client, upsert, unshown=bool(intent.get("unshown", True)))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)
