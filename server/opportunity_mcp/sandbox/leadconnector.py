"""The sandbox's LeadConnector API: upsert with `new`, the 401/422 bodies of the official error
schemas, and the refusal of any property the body shape does not know ("property X should not
exist"). It plays the "followers" shape (spec since 2026-05), the "contact" shape (spec until
2025-08), or either one, each validated strictly on its own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from opportunity_mcp.sandbox.state import SandboxState, new_id, now_iso

Reply = tuple[int, Any]
VERSION = "2021-07-28"
STATUSES = ("open", "won", "lost", "abandoned")
SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # shape: (required, allowed)
    "followers": (
        frozenset({"pipelineId", "locationId", "followers", "isRemoveAllFollowers", "followersActionType"}),
        frozenset(
            {
                "id",
                "pipelineId",
                "locationId",
                "followers",
                "isRemoveAllFollowers",
                "followersActionType",
                "name",
                "status",
                "pipelineStageId",
                "monetaryValue",
                "assignedTo",
                "lostReasonId",
            }
        ),
    ),
    "contact": (
        frozenset({"pipelineId", "locationId", "contactId"}),
        frozenset(
            {
                "pipelineId",
                "locationId",
                "contactId",
                "name",
                "status",
                "pipelineStageId",
                "monetaryValue",
                "assignedTo",
            }
        ),
    ),
}


def error(status: int, message: str | list[str], name: str | None = None) -> Reply:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if name:
        body["error"] = name
    return status, body


def auth(state: SandboxState, headers: Mapping[str, str]) -> Reply | None:
    if headers.get("authorization") != f"Bearer {state.leadconnector_token}":
        return error(401, "Invalid token: access token is invalid", "Unauthorized")
    if headers.get("version") != VERSION:
        return error(400, f"Version header must be {VERSION}", "Bad Request")
    return None


def scope(state: SandboxState, name: str) -> Reply | None:
    """403, as LeadConnector answers a token without the scope an endpoint needs."""
    if name in state.lc_missing_scopes:
        return error(403, "The token is not authorized for this scope.", "Forbidden")
    return None


def _shape_problems(shape: str, body: Mapping[str, Any]) -> list[str]:
    required, allowed = SHAPES[shape]
    problems = [f"property {k} should not exist" for k in body if k not in allowed]
    for key in sorted(required - body.keys()):
        problems.append(f"{key} should not be empty" if key != "followers" else "followers must be an array")
    return problems


def type_problems(body: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for key in ("id", "pipelineId", "locationId", "contactId", "name", "pipelineStageId", "assignedTo", "lostReasonId"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} must be a string")
    if "followers" in body and not (
        isinstance(body["followers"], list) and all(isinstance(f, str) for f in body["followers"])
    ):
        problems.append("followers must be an array of strings")
    if "isRemoveAllFollowers" in body and not isinstance(body["isRemoveAllFollowers"], bool):
        problems.append("isRemoveAllFollowers must be a boolean value")
    if "followersActionType" in body and body["followersActionType"] not in ("add", "remove"):
        problems.append("followersActionType must be one of the following values: add, remove")
    if "status" in body and body["status"] not in STATUSES:
        problems.append("status must be one of the following values: open, won, lost, abandoned")
    value = body.get("monetaryValue")
    if "monetaryValue" in body and not (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ):
        problems.append("monetaryValue must be a number")
    return problems


def _pick_shape(state: SandboxState, body: Mapping[str, Any]) -> tuple[str, list[str]]:
    played = state.options.upsert_shapes
    if played != "either":
        return played, _shape_problems(played, body)
    best = min(SHAPES, key=lambda s: len(_shape_problems(s, body)))
    return best, _shape_problems(best, body)


def upsert(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Reply:
    refused = auth(state, headers)
    if refused:
        return refused
    if not isinstance(body, dict):
        return error(400, "Bad Request", "Bad Request")
    shape, problems = _pick_shape(state, body)
    problems += type_problems(body)
    if problems:
        return error(422, problems, "Unprocessable Entity")
    location, pipeline = body["locationId"], body["pipelineId"]
    stages = [s for s, _ in state.seed.lc_pipelines.get(pipeline, ())]
    refused = check_refs(state, body, stages)
    if refused:
        return refused
    with state.lock:
        existing = _match(state, shape, body)
        if body.get("id") and existing is None:
            return error(400, "Opportunity not found")
        stamp = now_iso()
        created = existing is None
        opp = (
            existing
            if existing is not None
            else {
                "id": new_id(),
                "name": "",
                "monetaryValue": 0,
                "pipelineId": pipeline,
                "pipelineStageId": stages[0],
                "assignedTo": None,
                "status": "open",
                "source": "api",
                "lastStatusChangeAt": stamp,
                "lastStageChangeAt": stamp,
                "createdAt": stamp,
                "contactId": body.get("contactId"),
                "locationId": location,
                "lostReasonId": None,
                "followers": [],
                "customFields": [],
            }
        )
        _apply(opp, body, stamp, stages)
        opp["updatedAt"] = stamp
        state.leadconnector[opp["id"]] = opp
        return 200, {"opportunity": dict(opp), "new": created}


def check_refs(state: SandboxState, body: Mapping[str, Any], stages: list[str]) -> Reply | None:
    """What LeadConnector says when the body names a location, pipeline, stage, contact, user or lost
    reason it does not know."""
    seed = state.seed
    if body["locationId"] not in seed.locations:
        return error(403, "The token does not have access to this location", "Forbidden")
    if not stages:
        return error(400, "Pipeline not found")
    for key, known, message in (
        ("pipelineStageId", stages, "Pipeline stage not found in this pipeline"),
        ("contactId", seed.lc_contacts, "Contact not found"),
        ("assignedTo", seed.lc_users, "User not found"),
        ("lostReasonId", seed.lc_lost_reasons, "Lost reason not found"),
    ):
        if body.get(key) and body[key] not in known:
            return error(400, message)
    return None


def _match(state: SandboxState, shape: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    if body.get("id"):
        found = state.leadconnector.get(body["id"])
        return found if found is not None and found["locationId"] == body["locationId"] else None
    if shape == "contact":
        # One opportunity per contact and pipeline, as with "Allow Duplicate Opportunities" off.
        for opp in state.leadconnector.values():
            if (opp["locationId"], opp["pipelineId"], opp["contactId"]) == (
                body["locationId"],
                body["pipelineId"],
                body["contactId"],
            ):
                return opp
    return None


def _apply(opp: dict[str, Any], body: Mapping[str, Any], stamp: str, stages: list[str]) -> None:
    # Naming another pipeline moves the deal there, into that pipeline's first stage unless one is named.
    if body["pipelineId"] != opp["pipelineId"]:
        opp["pipelineId"], opp["pipelineStageId"], opp["lastStageChangeAt"] = body["pipelineId"], stages[0], stamp
    for key in ("name", "monetaryValue", "assignedTo", "lostReasonId"):
        if key in body:
            opp[key] = body[key]
    if "status" in body and body["status"] != opp["status"]:
        opp["status"], opp["lastStatusChangeAt"] = body["status"], stamp
    if "pipelineStageId" in body and body["pipelineStageId"] != opp["pipelineStageId"]:
        opp["pipelineStageId"], opp["lastStageChangeAt"] = body["pipelineStageId"], stamp
    if "followers" in body:
        current = [] if body.get("isRemoveAllFollowers") else list(opp["followers"])
        if body.get("followersActionType") == "remove":
            current = [f for f in current if f not in body["followers"]]
        else:
            current += [f for f in body["followers"] if f not in current]
        opp["followers"] = current


def get(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], opp_id: str) -> Reply:
    refused = auth(state, headers)
    if refused:
        return refused
    with state.lock:
        opp = state.leadconnector.get(opp_id)
        if opp is None:
            return error(400, "Opportunity not found")
        return 200, {"opportunity": dict(opp)}
