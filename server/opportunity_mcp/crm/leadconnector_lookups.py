"""LeadConnector lookups (`Version: 2021-07-28`; each needs a scope the token may lack: a 403):

    contact by phone or email  GET /contacts/search/duplicate?locationId&number=+E164|email=
                               {contact: {...} | null}                      contacts.readonly
    pipelines and stages       GET /opportunities/pipelines?locationId      opportunities.readonly
    sellers                    GET /locations/{locationId} → companyId      locations.readonly
                               GET /users/search?companyId&locationId       users.readonly
    lost reasons               GET /opportunities/lost-reason?locationId    opportunities.readonly

The duplicate search answers one contact or none (the location's duplicate settings decide which);
`GET /users/?locationId=` is deprecated since 2026-05, so sellers come from `/users/search`.
"""

from __future__ import annotations

from opportunity_mcp.crm.http import segment
from opportunity_mcp.crm.leadconnector import LeadConnectorClient
from opportunity_mcp.crm.lookups import Named, items, named
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import text

SCOPES = {
    "contact": "contacts.readonly",
    "stage": "opportunities.readonly",
    "pipeline": "opportunities.readonly",
    "seller": "locations.readonly and users.readonly",
    "lost reason": "opportunities.readonly",
    "opportunity": "opportunities.readonly",
}


async def contact(
    client: LeadConnectorClient, policy: CallPolicy, *, e164: str | None = None, email: str | None = None
) -> list[Named]:
    params = {"locationId": client.account.target}
    if e164 is not None:
        params["number"] = e164
    if email is not None:
        params["email"] = email
    data = await client.send(policy, "GET", "/contacts/search/duplicate", params=params, idempotent=True)
    found = named(data.get("contact"), name_keys=("firstName", "lastName")) if isinstance(data, dict) else None
    if found is not None and found.name == found.id and isinstance(data, dict):
        found = named(data["contact"])  # no first/last name: the full `name`
    return [found] if found else []


async def pipelines(client: LeadConnectorClient, policy: CallPolicy) -> tuple[list[Named], list[Named]]:
    """The pipelines, and every stage with the pipeline it belongs to."""
    params = {"locationId": client.account.target}
    data = await client.send(policy, "GET", "/opportunities/pipelines", params=params, idempotent=True)
    found, stage_list = [], []
    for row in items(data.get("pipelines") if isinstance(data, dict) else None):
        pipeline = named(row)
        if pipeline is None:
            continue
        found.append(pipeline)
        stage_list += [s for st in items(row.get("stages")) if (s := named(st, within=pipeline.id))]
    return found, stage_list


async def board(client: LeadConnectorClient, policy: CallPolicy) -> list[Named]:
    """The pipelines and their stages as one reference list (kept as "pipelines")."""
    pipelines_found, stages = await pipelines(client, policy)
    return pipelines_found + stages


async def sellers(client: LeadConnectorClient, policy: CallPolicy) -> list[Named]:
    location = client.account.target
    data = await client.send(policy, "GET", f"/locations/{segment(location)}", idempotent=True)
    company = text(data.get("location") or {}, "companyId") if isinstance(data, dict) else None
    if company is None:
        return []
    params = {"companyId": company, "locationId": location, "limit": "100"}
    data = await client.send(policy, "GET", "/users/search", params=params, idempotent=True)
    rows = data.get("users") if isinstance(data, dict) else None
    return [n for row in items(rows) if not (isinstance(row, dict) and row.get("deleted")) and (n := named(row))]


async def lost_reasons(client: LeadConnectorClient, policy: CallPolicy) -> list[Named]:
    params = {"locationId": client.account.target}
    data = await client.send(policy, "GET", "/opportunities/lost-reason", params=params, idempotent=True)
    return [n for row in items(data.get("lostReasons") if isinstance(data, dict) else None) if (n := named(row))]
