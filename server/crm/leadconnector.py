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
from typing import Any, Literal, Protocol

import httpx2

from server.config import LeadConnectorAccount
from server.crm.errors import CrmBadResponse, CrmInvalid
from server.crm.http import send
from server.crm.policy import CallPolicy, RateLimiter, with_retries
from server.crm.result import Opportunity, WriteResult, number, text
from server.models import UpsertOpportunityArgs

API_VERSION = "2021-07-28"
UpsertShape = Literal["followers", "contact"]

_COMMON = ("name", "status", "pipelineStageId", "monetaryValue", "assignedTo")


class ShapeMemory(Protocol):
    """Where the body shape a location accepts is remembered (the journal database)."""

    def learned_shape(self, location: str) -> str | None: ...

    def learn_shape(self, location: str, shape: str) -> None: ...


def _fits_contact(args: UpsertOpportunityArgs) -> bool:
    return args.contactId is not None and args.id is None


def choose_shape(args: UpsertOpportunityArgs, learned: str | None = None) -> UpsertShape:
    """The shape this location is known to take; else the contact-keyed shape only when the call is
    about a contact and not about an id or followers; else the current spec's shape."""
    if learned == "followers":
        return "followers"
    if learned == "contact":
        return "contact" if _fits_contact(args) else "followers"
    if _fits_contact(args) and args.followers is None and args.lostReasonId is None:
        return "contact"
    return "followers"


def drift_target(err: CrmInvalid, sent: UpsertShape, args: UpsertOpportunityArgs) -> UpsertShape | None:
    """The other shape, when a 422 says the one sent is not what this location takes."""
    said = " ".join(err.details).lower()
    if err.status != 422 or not said:
        return None
    if sent == "contact" and ("property contactid should not exist" in said or "followers" in said):
        return "followers"
    if (
        sent == "followers"
        and _fits_contact(args)
        and (
            "property followers should not exist" in said
            or "contactid should not be empty" in said
            or "contactid must be" in said
        )
    ):
        return "contact"
    return None


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

    def __init__(
        self,
        account: LeadConnectorAccount,
        http: httpx2.AsyncClient,
        *,
        limiter: RateLimiter | None = None,
        shapes: ShapeMemory | None = None,
    ) -> None:
        self.account = account
        self.http = http
        self.limiter = limiter or RateLimiter()
        self.shapes = shapes

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.account.token.get_secret_value()}",
            "Version": API_VERSION,
            "Content-Type": "application/json",
        }

    async def upsert(
        self, args: UpsertOpportunityArgs, *, location: str, pipeline: str, policy: CallPolicy
    ) -> WriteResult:
        """Upsert in the shape this location takes. A 422 that names the other shape means nothing
        was written, so the call is sent once more in that shape, which is remembered."""
        shape = choose_shape(args, self.shapes.learned_shape(location) if self.shapes else None)
        try:
            return await self._upsert(args, location, pipeline, shape, policy)
        except CrmInvalid as err:
            other = drift_target(err, shape, args)
            if other is None:
                raise
        result = await self._upsert(args, location, pipeline, other, policy)
        if self.shapes is not None:
            self.shapes.learn_shape(location, other)
        note = f"this location refused the {shape} form of upsert; sent in the {other} form, remembered"
        return WriteResult(result.opportunity, result.created, result.account, (*result.warnings, note))

    async def _upsert(
        self, args: UpsertOpportunityArgs, location: str, pipeline: str, shape: UpsertShape, policy: CallPolicy
    ) -> WriteResult:
        body, warnings = upsert_body(args, location=location, pipeline=pipeline, shape=shape)
        headers = self._headers()

        async def attempt(time_left: float) -> Any:
            await self.limiter.acquire(location, policy)
            return await send(
                self.http,
                self.name,
                "POST",
                "/opportunities/upsert",
                headers=headers,
                body=body,
                time_left=min(time_left, policy.remaining()),
            )

        # An upsert that names its opportunity is idempotent; one without id may create.
        data = await with_retries(policy, attempt, idempotent=args.id is not None)
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
