"""Plazbot / Wabotify lookups (contracts: the project's notes on its lookups):

    contact by phone   GET /api/contact/searchByCellphone?cellphone=DIGITS&workspaceId=   data.data[]
    contact by email   GET /api/contact/searchByEmail?email=&workspaceId=                 data.data[]
    sellers            GET /api/workspace/usersByWorkspaceId/{workspaceId}                data[]
    stages             GET /api/workspace/{workspaceId}        [{masterOfStates[]}] or {masterOfStates[]}

Phones go as digits with the country code and no `+`. A search that finds nothing may answer with an
empty list, a 404 or `success: false`: all three mean no match. Which list of the workspace holds the
opportunities' stages is not documented: `masterOfStates` (id, name), else a `phases` list.
"""

from __future__ import annotations

from typing import Any

from opportunity_mcp.crm.errors import CrmNotFound
from opportunity_mcp.crm.http import segment
from opportunity_mcp.crm.lookups import Named, items, named
from opportunity_mcp.crm.plazbot import PlazbotClient
from opportunity_mcp.crm.policy import CallPolicy


async def _search(client: PlazbotClient, path: str, params: dict[str, str], policy: CallPolicy) -> list[Named]:
    try:
        data = await client.send(policy, "GET", path, params=params, idempotent=True)
    except CrmNotFound:
        return []
    if not isinstance(data, dict) or data.get("success") is not True:
        return []
    inner = data.get("data")
    rows = inner.get("data") if isinstance(inner, dict) else inner
    return [n for row in items(rows) if (n := named(row, name_keys=("name", "lastname", "lastName")))]


async def contacts_by_phone(client: PlazbotClient, e164: str, policy: CallPolicy) -> list[Named]:
    params = {"cellphone": e164.removeprefix("+"), "workspaceId": client.account.target}
    return await _search(client, "/api/contact/searchByCellphone", params, policy)


async def contacts_by_email(client: PlazbotClient, email: str, policy: CallPolicy) -> list[Named]:
    params = {"email": email, "workspaceId": client.account.target}
    return await _search(client, "/api/contact/searchByEmail", params, policy)


async def sellers(client: PlazbotClient, policy: CallPolicy) -> list[Named]:
    workspace = client.account.target
    data = await client.send(policy, "GET", f"/api/workspace/usersByWorkspaceId/{segment(workspace)}", idempotent=True)
    rows = data.get("data") if isinstance(data, dict) else data
    return [n for row in items(rows) if (n := named(row, name_keys=("name", "lastName")))]


async def stages(client: PlazbotClient, policy: CallPolicy) -> list[Named]:
    workspace = client.account.target
    data: Any = await client.send(policy, "GET", f"/api/workspace/{segment(workspace)}", idempotent=True)
    if isinstance(data, dict) and "success" in data:
        data = data.get("data")
    if isinstance(data, list):
        data = next((w for w in data if isinstance(w, dict) and w.get("id") == workspace), data[0] if data else None)
    if not isinstance(data, dict):
        return []
    rows = data.get("masterOfStates") or data.get("phases")
    return [n for row in items(rows) if (n := named(row))]
