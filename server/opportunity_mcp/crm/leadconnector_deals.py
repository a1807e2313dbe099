"""LeadConnector deals read back and created directly (`Version: 2021-07-28`, whose query spellings
are snake_case: `location_id`, `contact_id`, `pipeline_id`):

    get      GET /opportunities/{id} → {opportunity}                 opportunities.readonly
    search   GET /opportunities/search?location_id&contact_id&pipeline_id&status&limit&page
             {opportunities: [...], meta: {total, nextPage}}           opportunities.readonly
    create   POST /opportunities/  pipelineId, locationId, name, status, contactId required;
             pipelineStageId, monetaryValue, assignedTo, customFields optional → 201 {opportunity}
                                                                        opportunities.write
    update   PUT /opportunities/{id}  pipelineId, name, pipelineStageId, status, monetaryValue,
             assignedTo, customFields (no lostReasonId, contactId or followers) → {opportunity}
                                                                        opportunities.write

The create is the one documented way to link a new deal to its contact on a location whose upsert
form has no contactId (the form since 2026-05).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opportunity_mcp.crm.deals import Deal, DealPage, field
from opportunity_mcp.crm.errors import CrmBadResponse, CrmNotFound
from opportunity_mcp.crm.http import segment
from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert, opportunity_of
from opportunity_mcp.crm.leadconnector_fields import values_of
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import WriteResult, number
from opportunity_mcp.untrusted import NAME_LIMIT

SEARCH_LIMIT = 100  # the most one page may hold
Item = dict[str, Any]  # a custom field value as written: {id, field_value}


def read_deal(raw: Mapping[str, Any]) -> Deal | None:
    deal_id = field(raw, "id", "_id")
    if deal_id is None:
        return None
    contact = raw.get("contact")
    return Deal(
        id=deal_id,
        name=field(raw, "name", limit=NAME_LIMIT),
        amount=number(raw, "monetaryValue"),
        stage=field(raw, "pipelineStageId"),
        status=field(raw, "status") or "open",
        contact=field(raw, "contactId") or (field(contact, "id") if isinstance(contact, Mapping) else None),
        pipeline=field(raw, "pipelineId"),
        changed=field(raw, "updatedAt", "lastStatusChangeAt", "lastStageChangeAt", "createdAt"),
        created=field(raw, "createdAt"),
        custom=values_of(raw),
    )


@dataclass(frozen=True, slots=True)
class Search:
    contact: str | None = None
    pipeline: str | None = None
    status: str | None = None  # open, won, lost, abandoned; None: all


async def search_deals(client: LeadConnectorClient, wanted: Search, policy: CallPolicy) -> DealPage:
    """The deals matching `wanted` (one page of up to 100: more is said by `complete`)."""
    params = {"location_id": client.account.target, "limit": str(SEARCH_LIMIT), "page": "1"}
    for key, value in (("contact_id", wanted.contact), ("pipeline_id", wanted.pipeline), ("status", wanted.status)):
        if value is not None:
            params[key] = value
    data = await client.send(policy, "GET", "/opportunities/search", params=params, idempotent=True)
    rows = data.get("opportunities") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CrmBadResponse(f"{client.name} answered the search without its opportunities list")
    deals = tuple(d for raw in rows if isinstance(raw, dict) and (d := read_deal(raw)))
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    total = meta.get("total") if isinstance(meta.get("total"), int) else None
    return DealPage(deals, complete=total is None or total <= len(deals), total=total)


async def get_deal(client: LeadConnectorClient, deal_id: str, policy: CallPolicy) -> Deal | None:
    """The deal with this id; None when the CRM does not have it (404)."""
    try:
        data = await client.send(policy, "GET", f"/opportunities/{segment(deal_id)}", idempotent=True)
    except CrmNotFound:
        return None
    found = data.get("opportunity") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise CrmBadResponse(f"{client.name} answered the opportunity without it")
    return read_deal(found)


async def create_deal(
    client: LeadConnectorClient, args: Upsert, pipeline: str, policy: CallPolicy, custom: tuple[Item, ...] = ()
) -> WriteResult:
    """POST /opportunities/: a new deal linked to `args.contact_id` (never sent twice: it may create)."""
    body: dict[str, Any] = {
        "pipelineId": pipeline,
        "locationId": client.account.target,
        "name": args.name,
        "status": args.status or "open",
        "contactId": args.contact_id,
    }
    optional = (("pipelineStageId", args.stage_id), ("monetaryValue", args.value), ("assignedTo", args.assigned_to))
    body.update((key, value) for key, value in optional if value is not None)
    if custom:
        body["customFields"] = list(custom)
    data = await client.send(policy, "POST", "/opportunities/", body=body, idempotent=False)
    return _written(client, data, None, created=True)


async def update_deal(
    client: LeadConnectorClient, args: Upsert, pipeline: str | None, policy: CallPolicy, custom: tuple[Item, ...]
) -> WriteResult:
    """PUT /opportunities/{id}: the fields given and the custom field items (an update: safe to retry)."""
    assert args.id is not None
    body: dict[str, Any] = {"customFields": list(custom)}
    optional = (
        ("pipelineId", pipeline),
        ("name", args.name),
        ("pipelineStageId", args.stage_id),
        ("status", args.status),
        ("monetaryValue", args.value),
        ("assignedTo", args.assigned_to),
    )
    body.update((key, value) for key, value in optional if value is not None)
    data = await client.send(policy, "PUT", f"/opportunities/{segment(args.id)}", body=body, idempotent=True)
    return _written(client, data, args.id, created=False)


def _written(client: LeadConnectorClient, data: Any, deal_id: str | None, *, created: bool) -> WriteResult:
    if not isinstance(data, dict) or not isinstance(data.get("opportunity"), dict):
        raise CrmBadResponse(f"{client.name} answered the write without the opportunity it wrote")
    opportunity = opportunity_of(data["opportunity"], deal_id)
    return WriteResult(opportunity, created=created, account=client.account.target)
