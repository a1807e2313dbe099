"""The sandbox's lookups, as each CRM documents them (and, where the sources disagree, the variants):

Plazbot / Wabotify (the envelope; `x-workspace-id` and a key or login token):
    GET /api/contact/searchByCellphone?cellphone=DIGITS&workspaceId=   data.data[] of contacts
    GET /api/contact/searchByEmail?email=&workspaceId=                 data.data[]
    GET /api/workspace/usersByWorkspaceId/{workspaceId}                data[] of users
    GET /api/workspace/{workspaceId}                                   [ {masterOfStates[]} ] (an array)
  A search with no match answers as `not_found` says: an empty list, 404, or success false.

LeadConnector (`Version: 2021-07-28`):
    GET /contacts/search/duplicate?locationId&number=+E164|email=     {contact: {...} | null}
    GET /opportunities/pipelines?locationId                            {pipelines: [{id, name, stages[]}]}
    GET /locations/{locationId}                                        {location: {id, companyId, ...}}
    GET /users/search?companyId&locationId                             {users: [...], count}
    GET /opportunities/lost-reason?locationId                          {lostReasons: [...], total}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opportunity_mcp.sandbox import leadconnector as lc
from opportunity_mcp.sandbox import plazbot as pz
from opportunity_mcp.sandbox.state import SandboxState

Reply = tuple[int, Any]


def _pz_contacts(state: SandboxState, workspace: str, match: str, value: str) -> Reply:
    found = [
        {
            "id": cid,
            "name": name.split(" ", 1)[0],
            "lastname": name.split(" ", 1)[1] if " " in name else "",
            "platformSenderPhone": phone,
            "email": email,
            "workspaceId": workspace,
        }
        for cid, (name, phone, email) in state.seed.plazbot_people.items()
        if (phone if match == "phone" else (email or "").lower()) == value
    ]
    if not found and state.options.plazbot_not_found == "404":
        return pz.envelope(404, "Contact not found.", error="CONTACT_NOT_FOUND")
    if not found and state.options.plazbot_not_found == "failure":
        return pz.envelope(200, "Contact not found.", error="CONTACT_NOT_FOUND")
    return pz.envelope(
        200, "Successfully obtained list.", {"contactId": found[0]["id"] if found else None, "data": found}
    )


def pz_by_phone(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    workspace = query.get("workspaceId", "")
    refused = pz.auth(state, headers, workspace)
    return refused or _pz_contacts(state, workspace, "phone", query.get("cellphone", ""))


def pz_by_email(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    workspace = query.get("workspaceId", "")
    refused = pz.auth(state, headers, workspace)
    return refused or _pz_contacts(state, workspace, "email", query.get("email", "").lower())


def pz_users(state: SandboxState, headers: Mapping[str, str], workspace: str) -> Reply:
    refused = pz.auth(state, headers, workspace)
    if refused:
        return refused
    users = [
        {"id": uid, "name": name.split(" ")[0], "lastName": name.split(" ", 1)[-1], "email": email, "role": "agent"}
        for uid, (name, email) in state.seed.plazbot_sellers.items()
    ]
    return pz.envelope(200, "Successfully obtained list.", users)


def pz_workspace(state: SandboxState, headers: Mapping[str, str], workspace: str) -> Reply:
    refused = pz.auth(state, headers, workspace)
    if refused:
        return refused
    stages = state.seed.plazbot_stages
    if state.options.plazbot_workspace_shape == "phases":
        phases = [{"id": sid, "name": name, "order": n + 1} for n, (sid, name) in enumerate(stages)]
        return pz.envelope(200, "Workspace obtained.", {"id": workspace, "name": "Sandbox", "phases": phases})
    states = [
        {"id": sid, "color": "#888", "name": name, "stateCode": n, "isDefault": n == 0}
        for n, (sid, name) in enumerate(stages)
    ]
    return 200, [{"id": workspace, "name": "Sandbox", "status": 0, "masterOfStates": states, "masterOfProjects": []}]


def lc_duplicate(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "contacts.readonly")
    if refused:
        return refused
    if query.get("locationId") not in state.seed.locations:
        return lc.error(422, ["locationId should not be empty"], "Unprocessable Entity")
    number, email = query.get("number"), (query.get("email") or "").lower()
    for cid, (name, phone, mail) in state.seed.lc_people.items():
        if (number and phone == number) or (email and (mail or "") == email):
            first, _, last = name.partition(" ")
            contact = {"id": cid, "name": name, "firstName": first, "lastName": last, "phone": phone, "email": mail}
            return 200, {"contact": contact}
    return 200, {"contact": None}


def lc_pipelines(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "opportunities.readonly")
    if refused:
        return refused
    seed = state.seed
    pipelines = [
        {
            "id": pid,
            "name": seed.lc_pipeline_names.get(pid, pid),
            "stages": [{"id": sid, "name": name, "position": n, "pipelineId": pid} for n, (sid, name) in enumerate(st)],
            "locationId": query.get("locationId"),
        }
        for pid, st in seed.lc_pipelines.items()
    ]
    return 200, {"pipelines": pipelines}


def lc_location(state: SandboxState, headers: Mapping[str, str], location: str) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "locations.readonly")
    if refused:
        return refused
    if location not in state.seed.locations:
        return lc.error(400, "Location not found")
    return 200, {"location": {"id": location, "companyId": state.seed.lc_company, "name": "Sandbox"}}


def lc_users(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "users.readonly")
    if refused:
        return refused
    if query.get("companyId") != state.seed.lc_company:
        return lc.error(422, ["companyId should not be empty"], "Unprocessable Entity")
    users = [
        {"id": uid, "name": name, "firstName": name.split(" ")[0], "email": email, "deleted": False}
        for uid, (name, email) in state.seed.lc_sellers.items()
    ]
    return 200, {"users": users, "count": len(users)}


def lc_lost_reasons(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "opportunities.readonly")
    if refused:
        return refused
    names = state.seed.lc_lost_reason_names
    reasons = [{"id": rid, "name": names.get(rid, rid), "locationId": query.get("locationId")} for rid in names]
    return 200, {"lostReasons": reasons, "total": len(reasons)}
