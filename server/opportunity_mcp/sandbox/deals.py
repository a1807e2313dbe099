"""The sandbox's deal listings and the direct LeadConnector create, and deals made to order for
tests and demos (several per contact, open and closed, in two pipelines).

- Plazbot `GET /api/opportunity?workspaceId=`: every deal of the workspace, 20 a page, oldest first,
  the next page's `continuationToken` in `data.continuationToken` (null on the last page). No filter:
  none is documented.
- LeadConnector `GET /opportunities/search?location_id=&contact_id=&pipeline_id=&status=&limit=&page=`
  (the `Version: 2021-07-28` spellings): newest first, `limit` at most 100, `meta.total`.
- LeadConnector `POST /opportunities/`: pipelineId, locationId, name, status and contactId required;
  pipelineStageId, monetaryValue, assignedTo optional; any other property is refused (422); 201.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opportunity_mcp.sandbox import custom_fields as fields
from opportunity_mcp.sandbox import leadconnector as lc
from opportunity_mcp.sandbox.plazbot import auth as pz_auth
from opportunity_mcp.sandbox.plazbot import envelope
from opportunity_mcp.sandbox.state import LC_LOCATION, PLAZBOT_WORKSPACE, SandboxState, new_id, now_iso

Reply = tuple[int, Any]
PLAZBOT_PAGE = 20
LC_CREATE_REQUIRED = frozenset({"pipelineId", "locationId", "name", "status", "contactId"})
LC_CREATE_ALLOWED = LC_CREATE_REQUIRED | {"pipelineStageId", "monetaryValue", "assignedTo", "customFields"}


def plazbot_list(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    workspace = query.get("workspaceId")
    refused = pz_auth(state, headers, workspace)
    if refused:
        return refused
    token = query.get("continuationToken") or "p0"
    if not token.startswith("p") or not token[1:].isdigit():
        return envelope(400, "Invalid continuationToken.", error="BAD_REQUEST")
    start = int(token[1:])
    with state.lock:
        items = [dict(o) for o in state.plazbot.values() if o["workspaceId"] == workspace]
    page = items[start : start + PLAZBOT_PAGE]
    following = f"p{start + PLAZBOT_PAGE}" if start + PLAZBOT_PAGE < len(items) else None
    return envelope(
        200, "List obtained successfully.", {"workspaceId": workspace, "continuationToken": following, "data": page}
    )


def add_plazbot_deal(
    state: SandboxState,
    name: str,
    contact: str,
    *,
    amount: float = 1000,
    stage: str | None = "stage-new",
    win_loss: int = 0,
    deleted: bool = False,
    workspace: str = PLAZBOT_WORKSPACE,
) -> dict[str, Any]:
    """A deal as if someone had made it in Plazbot's own interface (won: win_loss 1, lost: 2)."""
    stamp = now_iso()
    opp: dict[str, Any] = {
        "id": new_id(),
        "opportCode": state.next_code(workspace),
        "opportStatus": 1,
        "winLossStatus": win_loss,
        "winLossDate": stamp if win_loss else None,
        "finalAmount": amount,
        "creationDate": stamp,
        "updatedDate": None,
        "deletionDate": stamp if deleted else None,
        "userDeletion": "someone" if deleted else None,
        "statusId": 1,
        "workspaceId": workspace,
        "name": name,
        "description": name,
        "amount": amount,
        "userCreation": "ui",
        "contactId": contact,
        "expirationDate": None,
        "assignedAgentId": None,
        "stageId": stage,
        "customFields": [],
    }
    with state.lock:
        state.plazbot[opp["id"]] = opp
    return dict(opp)


def lc_search(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "opportunities.readonly")
    if refused:
        return refused
    location = query.get("location_id")
    if not location:
        return lc.error(422, ["location_id should not be empty"], "Unprocessable Entity")
    status = query.get("status", "all")
    if status not in (*lc.STATUSES, "all"):
        return lc.error(422, ["status must be one of the following values: open, won, lost, abandoned, all"])
    try:
        limit, page = int(query.get("limit", "20")), int(query.get("page", "1"))
    except ValueError:
        return lc.error(422, ["limit and page must be numbers"], "Unprocessable Entity")
    if not (1 <= limit <= 100 and page >= 1):
        return lc.error(422, ["limit must not be greater than 100"], "Unprocessable Entity")
    with state.lock:
        found = [
            dict(o)
            for o in state.leadconnector.values()
            if o["locationId"] == location
            and query.get("contact_id", o["contactId"]) == o["contactId"]
            and query.get("pipeline_id", o["pipelineId"]) == o["pipelineId"]
            and status in ("all", o["status"])
        ]
    found.reverse()  # newest first: deals are kept in the order they were made
    shown = found[(page - 1) * limit : page * limit]
    following = page + 1 if page * limit < len(found) else None
    for opp in shown:
        person = state.seed.lc_people.get(opp.get("contactId") or "")
        if person:
            opp["contact"] = {"id": opp["contactId"], "name": person[0], "phone": person[1], "email": person[2]}
    return 200, {"opportunities": shown, "meta": {"total": len(found), "currentPage": page, "nextPage": following}}


def lc_create(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = lc.auth(state, headers)
    if refused:
        return refused
    if not isinstance(body, dict):
        return lc.error(400, "Bad Request", "Bad Request")
    problems = [f"property {k} should not exist" for k in body if k not in LC_CREATE_ALLOWED]
    problems += [f"{k} should not be empty" for k in sorted(LC_CREATE_REQUIRED - body.keys())]
    problems += [p for p in lc.type_problems(body) if not p.startswith("followers")]
    wrong, values = fields.written(state, body.get("customFields", []))
    if problems or wrong:
        return lc.error(422, problems + wrong, "Unprocessable Entity")
    stages = [s for s, _ in state.seed.lc_pipelines.get(body["pipelineId"], ())]
    refused = lc.check_refs(state, body, stages)
    if refused:
        return refused
    opp = add_lc_deal(
        state,
        body["name"],
        body["contactId"],
        pipeline=body["pipelineId"],
        stage=body.get("pipelineStageId") or stages[0],
        value=body.get("monetaryValue", 0),
        status=body["status"],
        location=body["locationId"],
        assigned_to=body.get("assignedTo"),
        custom=values,
    )
    return 201, {"opportunity": opp}


def add_lc_deal(
    state: SandboxState,
    name: str,
    contact: str | None,
    *,
    pipeline: str,
    stage: str,
    value: float = 0,
    status: str = "open",
    location: str = LC_LOCATION,
    assigned_to: str | None = None,
    custom: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A LeadConnector deal as its create makes it (also: one made in its own interface)."""
    stamp = now_iso()
    opp: dict[str, Any] = {
        "id": new_id(),
        "name": name,
        "monetaryValue": value,
        "pipelineId": pipeline,
        "pipelineStageId": stage,
        "assignedTo": assigned_to,
        "status": status,
        "source": "api",
        "lastStatusChangeAt": stamp,
        "lastStageChangeAt": stamp,
        "createdAt": stamp,
        "updatedAt": stamp,
        "contactId": contact,
        "locationId": location,
        "lostReasonId": None,
        "followers": [],
        "customFields": list(custom or ()),
    }
    with state.lock:
        state.leadconnector[opp["id"]] = opp
    return dict(opp)
