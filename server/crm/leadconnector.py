"""LeadConnector (HighLevel, Leadway and other white labels): `POST /opportunities/upsert`.

Two body shapes are documented and the server refuses any property its shape does not know
(a 422 "property X should not exist"), so a body is always exactly one of them:

- "followers" (the spec since 2026-05): pipelineId, locationId, followers, isRemoveAllFollowers and
  followersActionType required; id, name, status, pipelineStageId, monetaryValue, assignedTo,
  lostReasonId optional; no contactId.
- "contact" (the spec until 2025-08): pipelineId, locationId, contactId required; name, status,
  pipelineStageId, monetaryValue, assignedTo optional; no id, lostReasonId or followers.

The answer is 200 `{opportunity, new}`; `new` says whether it created or updated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx2

from server.config import LeadConnectorAccount
from server.crm.errors import CrmBadResponse
from server.crm.http import send
from server.crm.result import Opportunity, WriteResult, number, text
from server.models import UpsertOpportunityArgs

API_VERSION = "2021-07-28"
UpsertShape = Literal["followers", "contact"]

_COMMON = ("name", "status", "pipelineStageId", "monetaryValue", "assignedTo")


def choose_shape(args: UpsertOpportunityArgs) -> UpsertShape:
    """The contact-keyed shape only when the call is about a contact and not about an id;
    otherwise the current spec's shape."""
    if args.contactId is not None and args.id is None and args.followers is None and args.lostReasonId is None:
        return "contact"
    return "followers"


def upsert_body(
    args: UpsertOpportunityArgs, *, location: str, pipeline: str, shape: UpsertShape
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The request body in `shape`, and a warning for every argument that shape cannot carry."""
    body: dict[str, Any] = {"pipelineId": pipeline, "locationId": location}
    warnings: list[str] = []
    if shape == "followers":
        if args.id is not None:
            body["id"] = args.id
        body["followers"] = list(args.followers or [])
        body["isRemoveAllFollowers"] = args.isRemoveAllFollowers
        body["followersActionType"] = args.followersActionType
        if args.contactId is not None:
            warnings.append("contactId was not sent: this upsert form has no contactId (the contact stays as it is)")
    else:
        body["contactId"] = args.contactId
    for key in _COMMON:
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if shape == "followers" and args.lostReasonId is not None:
        body["lostReasonId"] = args.lostReasonId
    return body, tuple(warnings)


class LeadConnectorClient:
    """Upserts into one LeadConnector location through a shared pooled HTTP client."""

    name = "LeadConnector"

    def __init__(self, account: LeadConnectorAccount, http: httpx2.AsyncClient) -> None:
        self.account = account
        self.http = http

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.account.token.get_secret_value()}",
            "Version": API_VERSION,
            "Content-Type": "application/json",
        }

    async def upsert(self, args: UpsertOpportunityArgs, *, location: str, pipeline: str) -> WriteResult:
        body, warnings = upsert_body(args, location=location, pipeline=pipeline, shape=choose_shape(args))
        data = await send(self.http, self.name, "POST", "/opportunities/upsert", headers=self._headers(), body=body)
        if not isinstance(data, dict) or not isinstance(data.get("opportunity"), dict):
            raise CrmBadResponse(f"{self.name} answered without the opportunity it upserted")
        created = data.get("new")
        if not isinstance(created, bool):
            raise CrmBadResponse(f"{self.name} did not say whether it created or updated (no 'new')")
        opportunity = self._opportunity(data["opportunity"], fallback_id=args.id)
        return WriteResult(opportunity, created=created, account=location, warnings=warnings)

    def _opportunity(self, raw: Mapping[str, Any], fallback_id: str | None) -> Opportunity:
        opp_id = text(raw, "id") or text(raw, "_id") or fallback_id
        if opp_id is None:
            raise CrmBadResponse(f"{self.name} answered without an opportunity id")
        return Opportunity(
            id=opp_id,
            name=text(raw, "name"),
            amount=number(raw, "monetaryValue"),
            stage=text(raw, "pipelineStageId"),
            status=text(raw, "status"),
            contact=text(raw, "contactId"),
            assignee=text(raw, "assignedTo"),
        )
