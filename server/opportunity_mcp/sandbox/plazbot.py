"""The sandbox's Plazbot / Wabotify API: the envelope, OPP-YYYY-NNNN codes, both update styles and
the `oportunity` spelling of the single-field style."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from opportunity_mcp.sandbox.state import PLAZBOT_EMAIL, SandboxState, new_id, now_iso

Reply = tuple[int, Any]
UPDATABLE = (
    "name",
    "description",
    "amount",
    "stageId",
    "assignedAgentId",
    "expirationDate",
    "contactId",
    "customFields",
)
FIELDS_STYLE = ("name", "description", "amount", "stageId", "contactId", "customFields")


def envelope(code: int, message: str, data: Any = None, error: str | None = None) -> Reply:
    return code, {"success": error is None, "code": code, "errorCode": error, "message": message, "data": data}


def login(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    """POST /api/user/login: {email, password} → a Bearer token at data.token."""
    if not isinstance(body, dict) or not body.get("email") or not body.get("password"):
        return envelope(400, "email and password are required.", error="BAD_REQUEST")
    if body["email"].lower() != PLAZBOT_EMAIL or body["password"] != state.plazbot_password:
        return envelope(401, "Invalid credentials.", error="INVALID_CREDENTIALS")
    token = state.issue_token()
    if state.options.plazbot_login_shape == "expires":
        return 200, {
            "success": True,
            "code": 200,
            "message": "Login successful",
            "data": {"token": token, "expiresIn": state.options.plazbot_token_seconds},
        }
    user = {"id": "user-123", "name": "Ventas", "lastName": "Sandbox", "email": PLAZBOT_EMAIL, "role": "admin"}
    return envelope(200, "Login successful.", {"token": token, "user": user})


def auth(state: SandboxState, headers: Mapping[str, str], workspace: Any) -> Reply | None:
    # A key belongs to its workspace when the sandbox is told so; otherwise one key opens them all.
    # A token from the login opens every workspace until it expires.
    expected = state.workspace_keys.get(str(workspace), state.plazbot_key)
    given = headers.get("authorization", "")
    if given != f"Bearer {expected}" and not state.token_valid(given.removeprefix("Bearer ")):
        return envelope(401, "Invalid or missing API key.", error="UNAUTHORIZED")
    header_ws = headers.get("x-workspace-id")
    if not header_ws:
        return envelope(401, "The x-workspace-id header is required.", error="WORKSPACE_REQUIRED")
    if header_ws != workspace:
        return envelope(400, "x-workspace-id does not match workspaceId.", error="WORKSPACE_MISMATCH")
    if workspace not in state.seed.workspaces:
        return envelope(404, "Workspace not found.", error="WORKSPACE_NOT_FOUND")
    return None


def _is_amount(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _check_refs(state: SandboxState, values: Mapping[str, Any]) -> Reply | None:
    seed = state.seed
    contact = values.get("contactId")
    if contact and contact not in seed.plazbot_contacts:
        return envelope(404, "Contact not found.", error="CONTACT_NOT_FOUND")
    for key in ("assignedComercialId", "assignedAgentId"):
        user = values.get(key)
        if user and user not in seed.plazbot_users:
            return envelope(404, "Comercial not found.", error="USER_NOT_FOUND")
    stage = values.get("stageId")
    if stage and stage not in {s for s, _ in seed.plazbot_stages}:
        return envelope(404, "Stage not found.", error="STAGE_NOT_FOUND")
    return None


def create(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    if not isinstance(body, dict):
        return envelope(400, "The body must be a JSON object.", error="BAD_REQUEST")
    refused = auth(state, headers, body.get("workspaceId"))
    if refused:
        return refused
    for key in ("name", "description"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            return envelope(400, f"The field {key} is required.", error="VALIDATION_ERROR")
    if not _is_amount(body.get("amount")):
        return envelope(400, "The field amount must be a number.", error="VALIDATION_ERROR")
    refused = _check_refs(state, body)
    if refused:
        return refused
    workspace = body["workspaceId"]
    stamp = now_iso()
    opp = {
        "id": new_id(),
        "opportCode": state.next_code(workspace),
        "opportStatus": 1,
        "winLossStatus": 0,
        "winLossDate": None,
        "finalAmount": body["amount"],
        "creationDate": stamp,
        "creationTypeId": 1,
        "updatedDate": None,
        "deletionDate": None,
        "userDeletion": None,
        "statusId": 1,
        "files": [],
        "orderInCards": 1,
        "orderInCardsLastUpdated": stamp,
        "activities": [],
        "segmentationId": None,
        "workspaceId": workspace,
        "name": body["name"],
        "description": body["description"],
        "amount": body["amount"],
        "userCreation": "api",
        "contactId": body.get("contactId") or "",
        "expirationDate": body.get("expirationDate"),
        "assignedAgentId": body.get("assignedComercialId"),
        "stageId": body.get("stageId"),
        "customFields": [],
    }
    with state.lock:
        state.plazbot[opp["id"]] = opp
    return envelope(200, "Opportunity successfully created.", {"id": opp["id"], "opportunity": dict(opp)})


def _valid_value(field: str, value: Any) -> bool:
    if field == "amount":
        return _is_amount(value)
    if field == "customFields":
        return isinstance(value, list) and all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("value"), str) for i in value
        )
    if field in ("stageId", "contactId", "assignedAgentId", "expirationDate"):
        return value is None or isinstance(value, str)
    return isinstance(value, str) and bool(value.strip())


def _apply(opp: dict[str, Any], field: str, value: Any) -> None:
    if field == "customFields":
        current = {c["name"]: c for c in opp.get("customFields", [])}
        for item in value:
            current[item["name"]] = {"name": item["name"], "value": item["value"]}
        opp["customFields"] = list(current.values())
        return
    opp[field] = value
    if field == "amount":
        opp["finalAmount"] = value


def _changes(state: SandboxState, body: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The fields an update body sets in the style this sandbox plays, and the key its answer uses
    (the single-field style answers with the misspelled `oportunity`). None: a malformed body."""
    if state.options.plazbot_update_style == "param":
        field = body.get("paramToUpdate")
        if field not in UPDATABLE or field not in body:
            return "oportunity", None
        return "oportunity", {field: body[field]}
    return "opportunity", {k: body[k] for k in FIELDS_STYLE if k in body}


def update(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    opp_id, workspace = query.get("id"), query.get("workspaceId")
    if not opp_id or not workspace:
        return envelope(400, "The query parameters id and workspaceId are required.", error="BAD_REQUEST")
    refused = auth(state, headers, workspace)
    if refused:
        return refused
    if not isinstance(body, dict):
        return envelope(400, "The body must be a JSON object.", error="BAD_REQUEST")
    with state.lock:
        opp = state.plazbot.get(opp_id)
        if opp is None or opp["workspaceId"] != workspace:
            return envelope(404, "Opportunity not found.", error="OPPORTUNITY_NOT_FOUND")
        key, changes = _changes(state, body)
        if changes is None:
            return envelope(400, "paramToUpdate must name an updatable field present in the body.", error="BAD_REQUEST")
        for field, value in changes.items():
            if not _valid_value(field, value):
                return envelope(422, f"Invalid value for {field}.", error="VALIDATION_ERROR")
        refused = _check_refs(state, changes)
        if refused:
            return refused
        for field, value in changes.items():
            _apply(opp, field, value)
        opp["updatedDate"] = now_iso()
        return envelope(200, "Opportunity successfully updated.", {"id": opp_id, key: dict(opp)})


def get(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], opp_id: str) -> Reply:
    workspace = query.get("workspaceId")
    refused = auth(state, headers, workspace)
    if refused:
        return refused
    with state.lock:
        opp = state.plazbot.get(opp_id)
        if opp is None or opp["workspaceId"] != workspace:
            return envelope(404, "Opportunity not found.", error="OPPORTUNITY_NOT_FOUND")
        if state.options.plazbot_get_shape == "bare":
            return 200, [dict(opp)]
        return envelope(200, "Opportunity obtained successfully.", dict(opp))
