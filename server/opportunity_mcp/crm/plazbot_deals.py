"""Plazbot / Wabotify deals read back: one by id (`GET /api/opportunity/{id}`), or the workspace's
list (`GET /api/opportunity?workspaceId=`, about 20 a page, the next page's `continuationToken` in
`data.continuationToken`). No filter is documented, so a contact's deals are found by reading pages,
as few as the call allows (`pages`, and the call's budget), saying when not everything was read.

Which deals are open is not documented either. Every source shows a live deal with
`winLossStatus: 0`, `winLossDate: null` and `deletionDate: null`, and Plazbot's interface moves a
deal to won or lost: so a deal is open while all three hold, deleted (left out) once `deletionDate`
is set, and otherwise closed (won or lost: which number means which is not documented, so neither
is claimed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opportunity_mcp.crm.deals import Deal, DealPage, field
from opportunity_mcp.crm.errors import CrmBadResponse
from opportunity_mcp.crm.lookups import items
from opportunity_mcp.crm.plazbot import PlazbotClient
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import number
from opportunity_mcp.untrusted import NAME_LIMIT, clean

# A page is read only while this share of the call's budget is left: the write must keep its time.
KEEP_FOR_THE_WRITE = 0.4
MAX_CUSTOM = 50  # custom values kept per deal


def read_deal(raw: Mapping[str, Any]) -> Deal | None:
    """The deal of an upstream object; None for one that is deleted or has no id."""
    deal_id = field(raw, "id")
    if deal_id is None or raw.get("deletionDate"):
        return None
    closed = raw.get("winLossStatus") not in (0, None) or bool(raw.get("winLossDate"))
    return Deal(
        id=deal_id,
        name=field(raw, "name", limit=NAME_LIMIT),
        amount=number(raw, "amount"),
        stage=field(raw, "stageId"),
        status="closed" if closed else "open",
        contact=field(raw, "contactId"),
        changed=field(raw, "updatedDate", "winLossDate", "creationDate"),
        created=field(raw, "creationDate"),
        code=field(raw, "opportCode", limit=NAME_LIMIT),
        custom=tuple(
            (clean(name, NAME_LIMIT), item.get("value"))
            for item in items(raw.get("customFields"))[:MAX_CUSTOM]
            if isinstance(item, Mapping) and isinstance(name := item.get("name"), str) and name.strip()
        ),
    )


async def get_deal(client: PlazbotClient, deal_id: str, policy: CallPolicy) -> Deal | None:
    """The deal with this id, None when the CRM does not have it (or it was deleted)."""
    raw = await client.fetch(deal_id, policy)
    return None if raw is None else read_deal(raw)


async def list_deals(
    client: PlazbotClient, policy: CallPolicy, *, keep: Callable[[Deal], bool], pages: int
) -> DealPage:
    """The deals `keep` keeps, reading at most `pages` pages and stopping while the call still has
    time to write; `complete` says whether the last page was reached."""
    found: list[Deal] = []
    token: str | None = None
    for _ in range(pages):
        if policy.remaining() < policy.budget * KEEP_FOR_THE_WRITE:
            return DealPage(tuple(found), complete=False)
        params = {"workspaceId": client.account.target, **({"continuationToken": token} if token else {})}
        data = await client.send(policy, "GET", "/api/opportunity", params=params, idempotent=True)
        inner = data.get("data") if isinstance(data, dict) and data.get("success") is True else None
        if not isinstance(inner, dict) or not isinstance(inner.get("data"), list):
            raise CrmBadResponse(f"{client.name} answered the opportunity list without its data.data list")
        found += [d for raw in inner["data"] if isinstance(raw, dict) and (d := read_deal(raw)) and keep(d)]
        token = inner.get("continuationToken") if isinstance(inner.get("continuationToken"), str) else None
        if not token:
            return DealPage(tuple(found), complete=True)
    return DealPage(tuple(found), complete=False)
